"""`_auth` is not a sign oracle (issue 15, finding 1; docs/security.md).

`sign = MD5(values sorted by name + secret)` and `_auth = md5(data JSON + _t + secret)` are
the same construction: if a request could place text in `data`, the `data` + `_t` of one
signed answer could be split into the sorted values of another request, and `_auth`
upper-cased would be that request's sign. The split needs the app's `app_key` inside
`data` + `_t` (a request's values include it verbatim), so the checks here are that no
request-controlled text — in any parameter or header of any service — reaches `data`, and
that the attack the review showed is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qqavatar.catalog import SERVICES, Service
from qqavatar.protocol.sign import compute_sign
from tests.server_fixture import RunningServer

# Headers a client may send to a service: any of them reaching `data` would be an oracle.
HEADERS = ("Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP",
           "Forwarded", "Referer", "Origin", "User-Agent", "Cookie", "X-Request-Id",
           "If-None-Match", "If-Modified-Since", "Accept", "Accept-Language")
_FORGEABLE = re.compile(r"x0([1-9][0-9]{4,11})")


@pytest.fixture(scope="module")
def signed(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("oracle", sign_required=True)
    server.wait_for_app(record["app_key"])
    return record


@pytest.fixture(scope="module")
def proxied(server: RunningServer) -> Generator[httpx.Client, None, None]:
    """A client whose requests keep the Host header they are given."""
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def signed_call(client: httpx.Client, app: dict[str, Any], service: str,
                params: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
    params = {"s": service, **params, "app_key": app["app_key"]}
    params["sign"] = compute_sign(params, app["app_secret"])
    return client.get("/", params=params, headers=headers or {})


def data_and_t(response: httpx.Response, secret: str) -> tuple[bytes, int] | None:
    """The exact `data` bytes and `_t` of an envelope that carries `_auth` (None: no `_auth`)."""
    body = response.content
    if response.headers["content-type"].startswith("text/javascript"):  # JSONP: cb(<body>)
        body = body[body.index(b"(") + 1:-1]
    elif not response.headers["content-type"].startswith("application/json"):
        return None  # an image
    reply = json.loads(body)
    if "_auth" not in reply:
        return None
    data = body[body.index(b',"data":') + 8:body.rindex(b',"msg":')]
    t = int(reply["_t"])
    expected = hashlib.md5(data + str(t).encode() + secret.encode()).hexdigest()
    assert reply["_auth"] == expected  # the bytes cut out are the ones `_auth` covers
    return data, t


def forge(data: bytes, t: int, app_key: str) -> dict[str, str] | None:
    """The review's split: `data` + `_t` as the sorted values of a new UserImage request,
    or None when the answer cannot be split so (its app_key is not in it)."""
    blob = (data + str(t).encode()).decode("utf-8", "replace")
    at = blob.find(app_key)
    if at < 0:
        return None
    rest = blob[at + len(app_key):]
    number = _FORGEABLE.match(rest)
    if number is None:
        return None
    # Sorted names a < app_key < b < output < qq < z: their values concatenate to the blob.
    return {"a": blob[:at], "app_key": app_key, "b": "x", "output": "0",
            "qq": number.group(1), "z": rest[number.end():]}


def hostile_text(app: dict[str, Any]) -> str:
    """What the review sent as Host: the app's key, then values for `b`, `output`, `qq`."""
    return str(app["app_key"]) + "x012345678"


def assert_no_oracle(response: httpx.Response, app: dict[str, Any]) -> None:
    found = data_and_t(response, app["app_secret"])
    if found is None:
        return
    data, t = found
    assert app["app_key"].encode() not in data + str(t).encode(), data[:300]
    assert forge(data, t, app["app_key"]) is None


def test_the_reviewed_attack_fails(server: RunningServer, signed: dict[str, Any],
                                   proxied: httpx.Client) -> None:
    attempt_the_attack(proxied, signed)


@pytest.mark.parametrize("how", [("--server", "uvicorn"), ("--access-log",)],
                         ids=["uvicorn", "granian-asgi"])
def test_the_reviewed_attack_fails_on_every_server_path(
        tmp_path: Path, fake_qlogo: Any, how: tuple[str, ...]) -> None:
    """uvicorn's ASGI scope, and the ASGI app granian runs with the access log on, name the
    server's address their own way: neither lets the Host through."""
    running = RunningServer(tmp_path, fake_qlogo.url, args=how)
    try:
        app = running.create_app("oracle", sign_required=True)
        running.wait_for_app(app["app_key"])
        attempt_the_attack(running.client, app)
        link = signed_call(running.client, app, "App.QQ.UserImageLink", {"qq": "376741929"})
        assert link.json()["data"]["url"].startswith(running.url + "/a/")
    finally:
        running.stop()


def attempt_the_attack(proxied: httpx.Client, signed: dict[str, Any]) -> None:
    answer = signed_call(proxied, signed, "App.QQ.UserImageLink", {"qq": "376741929"},
                         {"Host": hostile_text(signed)})
    assert answer.json()["ret"] == 200
    found = data_and_t(answer, signed["app_secret"])
    assert found is not None
    data, t = found
    forged = forge(data, t, signed["app_key"])
    if forged is not None:  # the hole: the forged request would carry a valid sign
        # (/api/… URLs: the service name is not a parameter, so the sign does not cover it)
        reply = proxied.get("/api/App/QQ/UserImage",
                            params={**forged, "sign": answer.json()["_auth"].upper()}).json()
        assert reply["ret"] != 200, "the forged sign was accepted"
    assert forged is None
    # The attacker's best try without the key in `data`: the sign is refused.
    best = {"a": (data + str(t).encode()).decode(), "app_key": signed["app_key"],
            "output": "0", "qq": "376741929", "sign": answer.json()["_auth"].upper()}
    reply = proxied.get("/api/App/QQ/UserImage", params=best).json()
    assert (reply["ret"], reply["msg"]) == (409, "客户端非法请求：签名错误")


def test_members_answers_hold_no_request_text(server: RunningServer, signed: dict[str, Any],
                                              proxied: httpx.Client) -> None:
    """A member registered under a hostile name: its Register and Login answers (which a
    name could most easily reach) carry none of it."""
    credentials = {"username": "u" + hostile_text(signed), "password": "e" * 32}
    for service in ("App.User.Register", "App.User.Login"):
        response = signed_call(proxied, signed, service, credentials)
        assert response.json()["data"]["err_code"] == 0, response.text
        assert_no_oracle(response, signed)


def valid_params(service: Service) -> dict[str, str]:
    return dict(service.example)


def hostile_variants(service: Service, app: dict[str, Any]) -> list[dict[str, str]]:
    """The service's worked example with each parameter (and some it does not know) made
    hostile in turn; a value its rule refuses is still sent: the refusal must not echo it."""
    text = hostile_text(app)
    base = valid_params(service)
    names = [rule.name for rule in service.rules] + ["callback", "uuid", "token", "zz", "a", "_"]
    variants = [{**base, name: value} for name in names
                for value in (text, "A" + text, text + "\n\"},")]
    variants.append({**base, "callback": "A" + str(app["app_key"])})  # a valid JSONP name
    return variants


def test_no_request_text_reaches_data_of_any_service(server: RunningServer,
                                                     signed: dict[str, Any],
                                                     proxied: httpx.Client) -> None:
    text = hostile_text(signed)
    headers = {name: text for name in HEADERS if name != "Host"}
    answered_with_auth = 0
    for service in SERVICES.values():
        for params in hostile_variants(service, signed):
            for extra in ({"Host": text}, headers):
                response = signed_call(proxied, signed, service.name, params, extra)
                assert response.status_code < 500 or response.json()["ret"] == 500
                assert_no_oracle(response, signed)
                answered_with_auth += data_and_t(response, signed["app_secret"]) is not None
        # The services' own success answers, made with every header hostile at once.
        ok = signed_call(proxied, signed, service.name, valid_params(service),
                         {**headers, "Host": text})
        assert_no_oracle(ok, signed)
    assert answered_with_auth > 100  # the checks above looked at real signed answers
