"""YesApi's C# client (`yesapi-c-sharp-sdk`, `OkayApiAdmin/OkayApiAdmin/OkayApiClient.cs`
over `PhalApiClient.cs`), its wire format reproduced byte for byte: `go()` adds `app_key`
and `service` (PhalApi's other name for `s`), signs the values sorted by name, then
escapes each value with Uri.EscapeUriString, which leaves RFC 3986's reserved characters
(`&`, `=`, `+`, …) as they are. PhalApiClient POSTs `&k=v&k=v…` (a leading `&`) as
application/x-www-form-urlencoded to the host URL (no `service` in the query), and .NET's
HttpWebRequest sends `Expect: 100-continue`: the body follows the server's `100 Continue`
(every call here checks that it comes) or, without one, a 350 ms wait.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.clients.calls import SIGN_ERROR, UNKNOWN_APP, UNKNOWN_APP_KEY, USER
from tests.clients.wire import (
    Answer,
    auth_holds,
    exchange_expecting_continue,
    host_port,
    sorted_values_sign,
)
from tests.server_fixture import RunningServer

RESERVED = ":/?#[]@!$&'()*+,;="  # EscapeUriString keeps these and the unreserved ones


def okayapi_go(base_url: str, app_key: str, secret: str, service: str,
               params: dict[str, str]) -> Answer:
    fields = {**params, "app_key": app_key, "service": service}
    fields["sign"] = sorted_values_sign(fields, secret)  # signed before escaping
    body = "".join(f"&{name}={quote(value, safe=RESERVED)}" for name, value in fields.items())
    host, port = host_port(base_url)
    head = (f"POST / HTTP/1.1\r\nAccept: text/html, application/xhtml+xml, */*\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nHost: {host}:{port}\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: Keep-Alive\r\n\r\n")
    # .NET sends the body after 350 ms without an answer; waiting longer here keeps a busy
    # machine from passing for a server that sends no 100 Continue.
    continued, answer = exchange_expecting_continue(base_url, head.encode(), body.encode("ascii"),
                                                    wait=5.0)
    assert continued, "no 100 Continue: .NET would hold the body back for 350 ms"
    return answer


def test_service_parameter_and_escaped_values(server: RunningServer,
                                              signed_app: dict[str, Any]) -> None:
    secret = signed_app["app_secret"]
    for service, params in [(USER, {"qq": "10001", "output": "0"}),
                            ("App.QQ.GroupImage", {"group": "20005", "output": "0",
                                                   "note": "中文 空格 100%"})]:
        answer = okayapi_go(server.url, signed_app["app_key"], secret, service, params)
        rs = answer.json()
        assert (answer.status, rs["ret"], rs["data"]["err_code"]) == (200, 200, 0), rs
        assert auth_holds(answer.body, secret)


def test_reserved_characters_stay_unescaped_and_are_refused(
        server: RunningServer, signed_app: dict[str, Any]) -> None:
    """`a+b` goes out as `a+b`, which a form body means as `a b` (PHP reads it so too): the
    server's signature differs from the client's, ret 409."""
    answer = okayapi_go(server.url, signed_app["app_key"], signed_app["app_secret"], USER,
                        {"qq": "10002", "output": "0", "note": "a+b"})
    assert (answer.json()["ret"], answer.json()["msg"]) == (409, SIGN_ERROR)


def test_refusals_parse(server: RunningServer, signed_app: dict[str, Any]) -> None:
    params = {"qq": "10003", "output": "0"}
    bad = okayapi_go(server.url, signed_app["app_key"], "x" * 64, USER, params).json()
    assert (bad["ret"], bad["msg"], bad["data"]) == (409, SIGN_ERROR, {})
    unknown = okayapi_go(server.url, UNKNOWN_APP_KEY, "x" * 64, USER, params).json()
    assert (unknown["ret"], unknown["msg"]) == (406, UNKNOWN_APP)
