// The try-it form: call the service from the page and show the answer (an image or the JSON).
// Without JavaScript the form still works: it submits into a frame (see <noscript>).
"use strict";
(function () {
  const form = document.getElementById("tryit");
  if (!form) return;
  const out = document.getElementById("tryit-result");
  const show = (selector) => out.querySelector(selector);

  function chosen(name) {
    const input = document.querySelector('input[form="tryit-options"][name="' + name + '"]:checked');
    return input ? input.value : "";
  }

  function parameters() {
    const params = new URLSearchParams();
    for (const element of form.querySelectorAll("[data-param]")) {
      if (element.value !== "") params.append(element.name, element.value);  // empty: not sent
    }
    return params;
  }

  async function send(event) {
    event.preventDefault();
    const params = parameters();
    const oldStyle = chosen("_style") === "old";
    const post = chosen("_method") === "POST";
    let url = oldStyle ? "/?s=" + encodeURIComponent(form.dataset.service) : form.getAttribute("action");
    const init = { method: post ? "POST" : "GET", cache: "no-store" };
    if (post) {
      init.body = params;  // application/x-www-form-urlencoded
    } else if ([...params].length) {
      url += (oldStyle ? "&" : "?") + params.toString();
    }
    out.hidden = false;
    show(".tryit-url").textContent = init.method + " " + url + (post ? "  (body: " + params + ")" : "");
    const image = show(".tryit-image");
    const body = show(".tryit-body");
    image.hidden = true;
    body.hidden = true;
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      show(".tryit-status").textContent = "请求失败 · request failed: " + error;
      return;
    }
    const type = response.headers.get("content-type") || "";
    show(".tryit-status").textContent = "HTTP " + response.status + " · " + type;
    if (type.startsWith("image/")) {
      if (image.src) URL.revokeObjectURL(image.src);
      image.src = URL.createObjectURL(await response.blob());
      image.hidden = false;
      return;
    }
    const text = await response.text();
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (error) { /* JSONP or text */ }
    body.textContent = pretty;
    body.hidden = false;
  }

  form.addEventListener("submit", send);
})();
