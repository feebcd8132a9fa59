"""YesApi's WeChat mini-program SDK (`yesapi-wxmini-sdk`, `utils/YesApi/yesapi.js`), its
wire format reproduced byte for byte: `wx.request` POSTs to `HOST/?s=SVC&app_key=KEY` with
the parameters as a JSON body (wx.request's default `content-type: application/json`), the
object holding the caller's parameters, then `s`, `app_key` and `sign`; `sign` is set to
'' before signing, so it takes part as an empty value. JavaScript joins the values with
`+=`, so a number signs as its decimal text, and `true`/`false` as those words. The SDK
hands `res.data` (the parsed JSON) to onSuccess whatever the HTTP status.
"""

from __future__ import annotations

import json
from typing import Any

from tests.clients.calls import SIGN_ERROR, UNKNOWN_APP, UNKNOWN_APP_KEY, USER
from tests.clients.wire import (
    Answer,
    auth_holds,
    exchange,
    host_port,
    sorted_values_sign,
)
from tests.server_fixture import RunningServer

REFERER = "https://servicewechat.com/wx0123456789abcdef/0/page-frame.html"


def js_text(value: Any) -> str:
    """What `'' + value` gives in JavaScript for the JSON values a caller passes."""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def wx_request(base_url: str, api_host: str, app_key: str, secret: str, service: str,
               params: dict[str, Any]) -> Answer:
    """The SDK's request(): sign, then wx.request's POST as it goes out."""
    body_object = {**params, "s": service, "app_key": app_key, "sign": ""}
    body_object["sign"] = sorted_values_sign({k: js_text(v) for k, v in body_object.items()}, secret)
    # JSON.stringify: no spaces, non-ASCII left as is (sent as UTF-8)
    body = json.dumps(body_object, ensure_ascii=False, separators=(",", ":")).encode()
    url = api_host + "/?s=" + service + "&app_key=" + app_key
    target = url.split("//", 1)[1].partition("/")[2]
    host, port = host_port(base_url)
    head = (f"POST /{target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(body)}\r\nAccept: application/json\r\n"
            "User-Agent: Mozilla/5.0 (Linux; Android 12) MicroMessenger/8.0.40 miniProgram\r\n"
            f"content-type: application/json\r\nReferer: {REFERER}\r\n\r\n")
    return exchange(base_url, head.encode() + body)


def test_signed_calls_answer(server: RunningServer, signed_app: dict[str, Any]) -> None:
    key, secret = signed_app["app_key"], signed_app["app_secret"]
    calls: list[tuple[str, dict[str, Any]]] = [
        (USER, {"qq": "10001", "output": "0"}),
        (USER, {"qq": 10002, "size": 640, "output": 0}),  # numbers: JSON ints, signed as text
        ("App.QQ.GroupImage", {"group": "20005", "output": "0", "note": "中文 a+b&c=d/\u2028"}),
    ]
    for service, params in calls:
        answer = wx_request(server.url, server.url, key, secret, service, params)
        assert answer.status == 200
        rs = answer.json()  # res.data
        assert (rs["ret"], rs["data"]["err_code"], rs["msg"]) == (200, 0, ""), rs
        assert auth_holds(answer.body, secret)


def test_api_host_with_a_trailing_slash(server: RunningServer, signed_app: dict[str, Any]) -> None:
    """`api_host` written as `https://host/` makes the URL `//?s=…`."""
    answer = wx_request(server.url, server.url + "/", signed_app["app_key"],
                        signed_app["app_secret"], USER, {"qq": "10003", "output": "0"})
    assert answer.status == 200, answer.body[:200]
    assert answer.json()["ret"] == 200


def test_booleans_sign_as_words_and_are_refused(server: RunningServer,
                                                signed_app: dict[str, Any]) -> None:
    """`output: false` signs as "false"; PHP (PhalApi, hence YesApi) and qqavatar read the
    JSON false as "" and compute another signature: ret 409, which onSuccess receives."""
    answer = wx_request(server.url, server.url, signed_app["app_key"], signed_app["app_secret"],
                        USER, {"qq": "10004", "output": False})
    assert answer.status == 200
    assert (answer.json()["ret"], answer.json()["msg"]) == (409, SIGN_ERROR)


def test_refusals_reach_on_success(server: RunningServer, signed_app: dict[str, Any]) -> None:
    bad = wx_request(server.url, server.url, signed_app["app_key"], "x" * 64, USER,
                     {"qq": "10005", "output": "0"})
    assert (bad.status, bad.json()["ret"], bad.json()["msg"], bad.json()["data"]) == (200, 409, SIGN_ERROR, {})
    unknown = wx_request(server.url, server.url, UNKNOWN_APP_KEY, "x" * 64, USER,
                         {"qq": "10005", "output": "0"})
    assert (unknown.status, unknown.json()["ret"], unknown.json()["msg"]) == (200, 406, UNKNOWN_APP)
    assert "_auth" not in unknown.json()
