"""A JSONP page, as a site that calls YesApi from the browser writes one: the page's own
server signs every parameter, `callback` included, and writes `<script src=…>` tags; the
browser calls the named function with the envelope. Run in headless Chromium; the bytes
of the answer are checked too (`callback(<envelope>)`, `_auth` over `data`).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from tests.browser import chromium_page
from tests.clients.calls import SIGN_ERROR, UNKNOWN_APP, UNKNOWN_APP_KEY, USER
from tests.clients.wire import auth_holds, sorted_values_sign
from tests.server_fixture import RunningServer

CALLBACK = "YesApiPage.onAvatar"  # a namespaced function, as pages keep their globals tidy


def signed_src(base_url: str, app_key: str, secret: str, params: dict[str, str], *,
               sign_callback: bool = True) -> str:
    query = {**params, "app_key": app_key}
    if sign_callback:
        query["callback"] = CALLBACK
    query["sign"] = sorted_values_sign(query, secret)
    query["callback"] = CALLBACK
    return f"{base_url}/?{urlencode(query)}"


def page_html(sources: list[str]) -> str:
    tags = "".join(f'<script src="{html.escape(src)}"></script>' for src in sources)
    return ("<!doctype html><meta charset=utf-8><script>window.YesApiPage = {answers: [],"
            " onAvatar(rs) { this.answers.push(rs); }};</script>" + tags)


def test_page_receives_answers_and_refusals(server: RunningServer,
                                            signed_app: dict[str, Any]) -> None:
    key, secret = signed_app["app_key"], signed_app["app_secret"]
    sources = [
        signed_src(server.url, key, secret, {"s": USER, "qq": "10001", "output": "0"}),
        signed_src(server.url, key, secret, {"s": "App.QQ.GroupImage", "group": "20005",
                                             "output": "0", "_": "1733400000000"}),
        signed_src(server.url, key, "x" * 64, {"s": USER, "qq": "10002", "output": "0"}),
        signed_src(server.url, UNKNOWN_APP_KEY, "x" * 64, {"s": USER, "qq": "10002", "output": "0"}),
        # a page that leaves `callback` out of the signature: refused, and told so
        signed_src(server.url, key, secret, {"s": USER, "qq": "10002", "output": "0"},
                   sign_callback=False),
    ]
    with chromium_page() as page:
        page.set_content(page_html(sources), wait_until="load")
        answers = page.evaluate("YesApiPage.answers.map(rs => [rs.ret, rs.msg, rs.data.err_code])")
    assert answers == [[200, "", 0], [200, "", 0], [409, SIGN_ERROR, None], [406, UNKNOWN_APP, None],
                       [409, SIGN_ERROR, None]]


def test_answer_bytes(server: RunningServer, signed_app: dict[str, Any]) -> None:
    key, secret = signed_app["app_key"], signed_app["app_secret"]
    reply = server.client.get(signed_src(server.url, key, secret,
                                         {"s": USER, "qq": "10003", "output": "0"}))
    assert reply.headers["content-type"] == "text/javascript; charset=utf-8"
    prefix = CALLBACK.encode() + b"("
    assert reply.content.startswith(prefix) and reply.content.endswith(b")")
    envelope = reply.content[len(prefix):-1]
    assert auth_holds(envelope, secret)
