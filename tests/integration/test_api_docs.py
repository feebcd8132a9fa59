"""The API docs on a live server: /openapi.json (valid, complete) and the /docs pages.

Completeness is checked against the server's own service list (App.Site.Index) and
against the rules in the service table, so a service or parameter added later is
covered without touching this file.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import secrets
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from openapi_spec_validator import validate
from PIL import Image

import qqavatar.web.app  # noqa: F401 - imports every feature, so the service table is complete
from qqavatar.catalog import SERVICES, Service
from qqavatar.protocol.envelope import auth
from qqavatar.protocol.errors import ApiError
from qqavatar.protocol.params import Bool, Enum, Number, Pattern, Str
from qqavatar.protocol.phpjson import dumps
from qqavatar.protocol.sign import (
    canonical_text,
    check_strong_sign,
    compute_sign,
    compute_strong_sign,
)
from qqavatar.web import servicedoc
from tests.browser import chromium_page
from tests.server_fixture import RunningServer

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def document(server: RunningServer) -> dict[str, Any]:
    response = server.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    decoded: dict[str, Any] = response.json()
    return decoded


@pytest.fixture(scope="module")
def served_services(server: RunningServer) -> list[Service]:
    """The services the server says it has, as the service table defines them."""
    names = server.client.get("/").json()["data"]["services"]
    assert set(names) == {service.name for service in SERVICES.values()}
    return [SERVICES[name.lower()] for name in names]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema


def rule_names(service: Service) -> list[str]:
    return [param.name for param in servicedoc.params_of(service)]


# --- /openapi.json -----------------------------------------------------------------------------

def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_document_is_generated_once(server: RunningServer) -> None:
    first, second = server.client.get("/openapi.json"), server.client.get("/openapi.json")
    assert first.content == second.content


def test_every_service_new_style(document: dict[str, Any],
                                 served_services: list[Service]) -> None:
    for service in served_services:
        path = document["paths"]["/api/" + service.name.replace(".", "/")]
        get, post = path["get"], path["post"]
        by_name = {parameter["name"]: parameter for parameter in get["parameters"]}
        assert list(by_name) == rule_names(service), service.name
        for param in servicedoc.params_of(service):
            assert by_name[param.name]["required"] is param.required
            assert by_name[param.name]["in"] == "query"
        content = post["requestBody"]["content"]
        assert set(content) == {"application/x-www-form-urlencoded", "multipart/form-data",
                                "application/json"}
        for media in content.values():
            body = resolve(document, media["schema"])
            assert list(body["properties"]) == rule_names(service)
            assert body.get("required", []) == [p.name for p in servicedoc.params_of(service)
                                                if p.required]
        for operation in (get, post):
            assert {"200", "4XX", "5XX"} <= set(operation["responses"])


def test_every_service_old_style(document: dict[str, Any],
                                 served_services: list[Service]) -> None:
    root = document["paths"]["/"]
    [params] = root["get"]["parameters"]
    assert (params["in"], params["style"], params["explode"]) == ("query", "form", True)
    query_branches = [resolve(document, branch) for branch in params["schema"]["oneOf"]]
    body_branches = {media_type: [resolve(document, branch) for branch in media["schema"]["oneOf"]]
                     for media_type, media in root["post"]["requestBody"]["content"].items()}
    for service in served_services:
        for branches in (query_branches, *body_branches.values()):
            [branch] = [b for b in branches if b["properties"]["s"]["const"] == service.name]
            assert list(branch["properties"]) == ["s", "service", *rule_names(service)]
            required = [p.name for p in servicedoc.params_of(service) if p.required]
            assert set(branch.get("required", [])) - {"s"} == set(required)


def test_parameter_rules_in_the_document(document: dict[str, Any],
                                         served_services: list[Service]) -> None:
    for service in served_services:
        get = document["paths"][servicedoc.url_path(service)]["get"]
        schemas = {parameter["name"]: parameter["schema"] for parameter in get["parameters"]}
        for param in servicedoc.params_of(service):
            rule, schema = param.rule, schemas[param.name]
            if rule.default is not None:
                assert schema["default"] == rule.default
            if isinstance(rule, Enum):
                assert schema["enum"] == list(rule.options)
            elif isinstance(rule, Bool):
                assert schema["type"] == "boolean"
            elif isinstance(rule, Number):
                assert re.search(schema["pattern"], "12345") is not None
                assert re.search(schema["pattern"], "01234") is None
            elif isinstance(rule, Pattern):
                assert schema["pattern"] == f"^(?:{rule.pattern.pattern})$"
            elif isinstance(rule, Str) and not hasattr(rule, "json_schema"):
                assert schema.get("minLength") == rule.min_len
                assert schema.get("maxLength") == rule.max_len
    user_image = {p["name"]: p["schema"]
                  for p in document["paths"]["/api/App/QQ/UserImage"]["get"]["parameters"]}
    assert user_image["app_key"].items() >= {"type": "string", "minLength": 32,
                                             "maxLength": 32}.items()
    assert user_image["size"]["enum"] == [40, 100, 140, 640]
    assert user_image["size"]["default"] == 100
    assert user_image["output"]["default"] is True
    assert user_image["qq"]["pattern"] == "^[1-9][0-9]{4,11}$"
    assert re.fullmatch(user_image["callback"]["pattern"], "jQuery_1.cb$") is not None
    assert re.fullmatch(user_image["callback"]["pattern"], "1cb") is None


def test_answers_in_the_document(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/App/QQ/UserImage"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/javascript", "image/jpeg", "image/png"} <= set(ok)
    assert "304" in document["paths"]["/api/App/QQ/UserImage"]["get"]["responses"]
    schemas = document["components"]["schemas"]
    envelope = schemas["App_QQ_UserImage_Envelope"]
    assert list(envelope["properties"]) == ["ret", "data", "msg", "_t", "_auth"]
    data = resolve(document, envelope["properties"]["data"])
    assert data["required"] == ["err_code", "err_msg", "img"]
    assert schemas["ErrorEnvelope"]["properties"]["ret"]["minimum"] == 400


def test_real_answers_match_their_schemas(server: RunningServer, app: dict[str, Any],
                                          document: dict[str, Any]) -> None:
    """A few answers checked by hand (schemathesis checks thousands in test_schemathesis)."""
    import jsonschema

    schemas = {"components": document["components"]}
    answers = [
        server.client.get("/api/App/QQ/UserImage",
                          params={"app_key": app["app_key"], "qq": "10001", "output": "0"}),
        server.client.get("/", params={"s": "App.QQ.UserImage", "qq": "1",
                                       "app_key": app["app_key"]}),
        server.client.get("/api/App/QQ/GroupImage",
                          params={"app_key": app["app_key"], "group": "10005", "output": "0",
                                  "return_data": "1"}),
    ]
    responses = document["paths"]["/api/App/QQ/UserImage"]["get"]["responses"]["200"]
    schema = responses["content"]["application/json"]["schema"] | schemas
    for answer in answers:
        jsonschema.validate(answer.json(), schema)


def test_upstream_failures_match_the_document(server: RunningServer, app: dict[str, Any],
                                               document: dict[str, Any], fake_qlogo: Any) -> None:
    """Image mode's 5xx (upstream down) and 404 (default=404), and err_code < 0 inside a
    ret 200 envelope: all as documented."""
    import jsonschema

    components = {"components": document["components"]}
    responses = document["paths"]["/api/App/QQ/UserImage"]["get"]["responses"]
    fake_qlogo.fault("error500")
    for output, status in (("1", "5XX"), ("0", "200")):
        answer = server.client.get("/api/App/QQ/UserImage", params={
            "app_key": app["app_key"], "qq": "20003", "output": output})
        assert (answer.status_code >= 500) is (status == "5XX"), answer.status_code
        assert answer.json()["data"]["err_code"] < 0
        schema = responses[status]["content"]["application/json"]["schema"] | components
        jsonschema.validate(answer.json(), schema)
    fake_qlogo.fault("none")
    no_avatar = server.client.get("/api/App/QQ/UserImage", params={
        "app_key": app["app_key"], "qq": "20000", "default": "404"})
    assert no_avatar.status_code == 404 and no_avatar.json()["data"]["err_code"] > 0
    schema = responses["4XX"]["content"]["application/json"]["schema"] | components
    jsonschema.validate(no_avatar.json(), schema)


# --- /docs -------------------------------------------------------------------------------------

def page_text(response: Any) -> str:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return html.unescape(response.text)


def test_docs_index_lists_every_service(server: RunningServer,
                                        served_services: list[Service]) -> None:
    text = page_text(server.client.get("/docs"))
    for service in served_services:
        assert f'href="/docs/{service.name}"' in text
        assert servicedoc.url_path(service) in text
    assert 'href="/openapi.json"' in text and 'href="/docs/signing"' in text


def test_docs_page_per_service(server: RunningServer, served_services: list[Service]) -> None:
    for service in served_services:
        text = page_text(server.client.get(f"/docs/{service.name}"))
        assert f"<h1>{service.name}</h1>" in text
        assert service.description in text
        for param in servicedoc.params_of(service):
            assert f"<td><code>{param.name}</code></td>" in text, (service.name, param.name)
            if param.rule.description:
                assert param.rule.description in text
        for code, meaning in service.errors:
            assert f"<td><code>{code}</code></td><td>{meaning}</td>" in text
        # the worked example: the signs, recomputed here from the example's parameters
        example = servicedoc.example_params(service)
        app = {"app_key": servicedoc.EXAMPLE_APP_KEY} if service.needs_app else {}
        old = {"s": service.name, **app, **example}
        new = {**app, **example}
        for params in (old, new):
            sign = compute_sign(params, servicedoc.EXAMPLE_SECRET)
            assert f"sign={sign}" in text, service.name
            assert urlencode({**params, "sign": sign}) in text
        text_to_hash = "".join(old[name] for name in sorted(old)) + servicedoc.EXAMPLE_SECRET
        assert hashlib.md5(text_to_hash.encode()).hexdigest().upper() == \
            compute_sign(old, servicedoc.EXAMPLE_SECRET)
        assert text_to_hash in text
        # the worked answer and its _auth, recomputed
        data = dumps(servicedoc.example_data(service))
        if service.needs_app:
            assert auth(data, servicedoc.EXAMPLE_T, servicedoc.EXAMPLE_SECRET) in text
        assert data.decode() in text
        # the try-it form: calls this service, one field per parameter
        form = re.search(r'<form class="tryit".*?</form>', text, re.DOTALL)
        assert form is not None, service.name
        assert f'action="{servicedoc.url_path(service)}"' in form.group(0)
        assert f'data-service="{service.name}"' in form.group(0)
        for param in servicedoc.params_of(service):
            assert f'name="{param.name}" data-param' in form.group(0)
        assert '<script src="/docs/static/tryit.js">' in text


def test_docs_error_table_has_the_real_messages(server: RunningServer,
                                                app: dict[str, Any]) -> None:
    """The messages the page shows are the ones the server sends."""
    text = page_text(server.client.get("/docs/App.QQ.UserImage"))
    for params in ({"qq": "10001"}, {"app_key": app["app_key"]},
                   {"app_key": app["app_key"], "qq": "abc"},
                   {"app_key": app["app_key"], "qq": "10001", "size": "641"},
                   {"app_key": "0" * 32, "qq": "10001"},
                   {"app_key": app["app_key"], "qq": "10001", "sign": "0" * 32}):
        reply = server.client.get("/api/App/QQ/UserImage", params={**params, "output": "0"})
        msg = reply.json()["msg"]
        assert msg and msg in text, msg


def test_signing_guide(server: RunningServer) -> None:
    text = page_text(server.client.get("/docs/signing"))
    service = SERVICES["app.qq.userimage"]
    params = {"s": service.name, "app_key": servicedoc.EXAMPLE_APP_KEY,
              **servicedoc.example_params(service)}
    assert f"sign={compute_sign(params, servicedoc.EXAMPLE_SECRET)}" in text
    assert "_auth = md5(" in text


def test_docs_need_no_internet(server: RunningServer, served_services: list[Service]) -> None:
    pages = ["/docs", "/docs/signing"] + [f"/docs/{s.name}" for s in served_services]
    for page in pages:
        assert re.search(r'(src|href)="(https?:)?//', server.client.get(page).text) is None
    for asset in ("/docs/static/docs.css", "/docs/static/tryit.js"):
        assert server.client.get(asset).status_code == 200


def test_docs_unknown_service_is_404(server: RunningServer) -> None:
    response = server.client.get("/docs/App.Nope.Nope")
    assert response.status_code == 404
    assert "App.Nope.Nope" in html.unescape(response.text)


def test_try_it_shows_the_image_and_the_json(server: RunningServer, app: dict[str, Any]) -> None:
    """The form in a real browser: an avatar appears; with output=0, the envelope."""
    with chromium_page() as page:
        page.goto(server.url + "/docs/App.QQ.UserImage")
        page.fill("#try-app_key", app["app_key"])
        page.fill("#try-qq", "10005")
        page.select_option("#try-output", "1")
        page.select_option("#try-size", "40")
        page.click("form.tryit button[type=submit]")
        page.wait_for_selector(".tryit-image:not([hidden])")
        assert "HTTP 200 · image/png" in page.inner_text(".tryit-status")
        shot = page.locator(".tryit-image").screenshot()
        assert Image.open(io.BytesIO(shot)).size[0] >= 40
        assert page.evaluate("document.querySelector('.tryit-image').naturalWidth") == 40

        page.select_option("#try-output", "0")
        page.check('input[name="_style"][value="old"]')
        page.check('input[name="_method"][value="POST"]')
        page.click("form.tryit button[type=submit]")
        page.wait_for_selector(".tryit-body:not([hidden])")
        body = page.inner_text(".tryit-body")
        assert '"ret": 200' in body and '"content_type": "image/png"' in body
        assert page.inner_text(".tryit-url").startswith("POST /?s=App.QQ.UserImage")


def _code(text: str, css_class: str) -> str:
    found = re.search(rf'<code class="{css_class}">(.*?)</code>', text, re.DOTALL)
    assert found is not None, css_class
    return found.group(1)


def _page_signer(text: str) -> Any:
    """The guide's Python `hmac_sha256_sign`, run as a reader would paste it."""
    namespace: dict[str, Any] = {}
    exec(_code(text, "hmac-python"), namespace)
    return namespace["hmac_sha256_sign"]


def test_signing_guide_hmac_sha256(server: RunningServer) -> None:
    """The stronger scheme's section: its worked example verifies with the server's own
    check, and the page's Python and PHP functions sign as the server does."""
    text = page_text(server.client.get("/docs/signing"))
    service = SERVICES["app.qq.userimage"]
    method, url = _code(text, "hmac-url").split(" ", 1)
    path, query = url.split("?", 1)
    assert (method, path) == ("GET", servicedoc.url_path(service))
    params = dict(parse_qsl(query, keep_blank_values=True))
    sign = params.pop("sign")
    assert _code(text, "hmac-text") == canonical_text(service.name, params).decode()
    assert f"sign={sign}" in _code(text, "hmac-sign")
    now = int(params["timestamp"])
    check_strong_sign(service.name, params, servicedoc.EXAMPLE_SECRET, sign, now)  # holds
    with pytest.raises(ApiError):
        check_strong_sign(service.name, params, servicedoc.EXAMPLE_SECRET[:-1], sign, now)
    with pytest.raises(ApiError):  # the sign is the service's own
        check_strong_sign("App.QQ.GroupImage", params, servicedoc.EXAMPLE_SECRET, sign, now)

    page_sign = _page_signer(text)
    assert page_sign(service.name, params, servicedoc.EXAMPLE_SECRET) == sign
    # the old URL style signs the same; awkward names and values are encoded, not joined
    assert page_sign(service.name, {"s": service.name, **params},
                     servicedoc.EXAMPLE_SECRET) == sign
    awkward = {**params, "a b": "x&y=z", "名": "值~", "qq": "1+1"}
    expected = compute_strong_sign(service.name, awkward, servicedoc.EXAMPLE_SECRET)
    assert page_sign(service.name, awkward, servicedoc.EXAMPLE_SECRET) == expected

    php = shutil.which("php")
    if php is None:
        pytest.skip("php-cli is not installed")
    script = _code(text, "hmac-php").removeprefix("// PHP\n") + (
        "\n$p = json_decode($argv[2], true);\n"
        "echo hmac_sha256_sign($argv[1], $p, $argv[3]);\n")
    for signed in (params, awkward):
        done = subprocess.run([php, "-r", script, "--", service.name, json.dumps(signed),
                               servicedoc.EXAMPLE_SECRET], capture_output=True, text=True,
                              timeout=60, check=True)
        assert done.stdout == compute_strong_sign(service.name, signed,
                                                  servicedoc.EXAMPLE_SECRET)


def test_a_request_signed_by_the_guide_is_answered(server: RunningServer) -> None:
    """The page's Python function, a fresh timestamp and nonce: a real app on hmac-sha256
    answers it, and refuses the same request sent again."""
    text = page_text(server.client.get("/docs/signing"))
    page_sign = _page_signer(text)
    done = server.cli("app", "create", "strong docs", "--sign-scheme", "hmac-sha256", "--json")
    assert done.returncode == 0, done.stderr
    app = json.loads(done.stdout)
    server.wait_for_app(app["app_key"])
    params = {"app_key": app["app_key"], "qq": "10001", "output": "0",
              "timestamp": str(int(time.time())), "nonce": secrets.token_urlsafe(24)}
    params["sign"] = page_sign("App.QQ.UserImage", params, app["app_secret"])
    reply = server.client.get("/api/App/QQ/UserImage", params=params).json()
    assert (reply["ret"], reply["data"]["err_code"]) == (200, 0), reply
    again = server.client.get("/api/App/QQ/UserImage", params=params).json()
    assert again["ret"] == 409 and "nonce" in again["msg"], again
