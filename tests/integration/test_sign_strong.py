"""The stronger sign through a real server and the SDK (issue 15, finding 12).

An app keeps YesApi's sign (and its weaknesses, for YesApi's SDKs) unless it is set to
`hmac-sha256`: then the collision, a sign made for another service, a replayed request
and an expired timestamp are all refused.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from qqavatar.client import BadSignature, Client
from qqavatar.protocol.sign import compute_sign, compute_strong_sign
from tests.server_fixture import RunningServer

P = "客户端非法请求："
NUMBER = "376741929"


def app_with(server: RunningServer, *flags: str) -> dict[str, Any]:
    done = server.cli("app", "create", "sign " + secrets.token_hex(3), "--json", *flags)
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    server.wait_for_app(record["app_key"])
    return record


@pytest.fixture(scope="module")
def yesapi_app(server: RunningServer) -> dict[str, Any]:
    return app_with(server, "--sign-required")


@pytest.fixture(scope="module")
def strong_app(server: RunningServer) -> dict[str, Any]:
    record = app_with(server, "--sign-scheme", "hmac-sha256")
    assert record["sign_scheme"] == "hmac-sha256"
    return record


def strong(app: dict[str, Any], service: str, params: dict[str, str], *,
           at: float | None = None) -> dict[str, str]:
    signed = {**params, "app_key": app["app_key"],
              "timestamp": str(int(time.time() if at is None else at)),
              "nonce": secrets.token_urlsafe(18)}
    signed["sign"] = compute_strong_sign(service, signed, app["app_secret"])
    return signed


def get(server: RunningServer, path: str, params: dict[str, str]) -> dict[str, Any]:
    reply: dict[str, Any] = server.client.get(path, params=params).json()
    return reply


def test_the_collision_passes_yesapi_and_fails_the_strong_scheme(
        server: RunningServer, yesapi_app: dict[str, Any], strong_app: dict[str, Any]) -> None:
    asked = {"app_key": yesapi_app["app_key"], "qq": NUMBER, "return_data": "1",
             "output": "0"}
    sign = compute_sign(asked, yesapi_app["app_secret"])
    colliding = {"app_key": yesapi_app["app_key"], "qq": NUMBER[:-1],
                 "return_data": NUMBER[-1] + "1", "output": "0", "zz": "", "sign": sign}
    # Kept for YesApi's SDKs: the weak scheme accepts the other request (documented).
    assert "img" in get(server, "/api/App/QQ/UserImage", colliding)
    signed = strong(strong_app, "App.QQ.UserImage",
                    {"qq": NUMBER, "return_data": "1", "output": "0"})
    forged = {**signed, "qq": NUMBER[:-1], "return_data": NUMBER[-1] + "1", "zz": ""}
    # return_data=91 is true: the body is `data` alone, `{}` for a refusal. The values pass
    # their rules (the YesApi app just took them), so what is refused is the sign.
    assert get(server, "/api/App/QQ/UserImage", forged) == {}
    assert "img" in get(server, "/api/App/QQ/UserImage", signed)


def test_a_sign_for_another_service_is_refused(
        server: RunningServer, yesapi_app: dict[str, Any], strong_app: dict[str, Any]) -> None:
    """/api/… URLs: the service is no parameter. YesApi's sign for UserImageLink works for
    UserImage too; the strong sign names its service."""
    weak = {"app_key": yesapi_app["app_key"], "qq": NUMBER}
    weak["sign"] = compute_sign(weak, yesapi_app["app_secret"])
    assert get(server, "/api/App/QQ/UserImageLink", weak)["ret"] == 200
    assert server.client.get("/api/App/QQ/UserImage", params=weak).status_code == 200
    signed = strong(strong_app, "App.QQ.UserImageLink", {"qq": NUMBER})
    reply = get(server, "/api/App/QQ/UserImage", {**signed, "output": "0"})
    assert (reply["ret"], reply["msg"]) == (409, P + "签名错误")
    assert get(server, "/api/App/QQ/UserImageLink", signed)["ret"] == 200


@pytest.mark.parametrize("output", ["0", "1"])
def test_a_replayed_request_is_refused(server: RunningServer, strong_app: dict[str, Any],
                                       output: str) -> None:
    """The same URL twice, also in image mode (whose answers the server keeps for repeats)."""
    signed = strong(strong_app, "App.QQ.UserImage", {"qq": NUMBER, "output": output})
    first = server.client.get("/", params={"s": "App.QQ.UserImage", **signed})
    assert first.status_code == 200
    again = server.client.get("/", params={"s": "App.QQ.UserImage", **signed})
    reply = again.json()
    assert (reply["ret"], reply["msg"]) == (409, P + "请求重复：该nonce已使用过，请每次请求生成新的nonce")


def test_an_expired_timestamp_is_refused(server: RunningServer,
                                         strong_app: dict[str, Any]) -> None:
    for skew in (-400, 400):
        signed = strong(strong_app, "App.QQ.UserImage", {"qq": NUMBER, "output": "0"},
                        at=time.time() + skew)
        reply = get(server, "/api/App/QQ/UserImage", signed)
        assert (reply["ret"], reply["msg"]) == (
            409, P + "签名已过期：timestamp与服务器时间相差超过300秒")


def test_the_strong_scheme_always_asks_for_a_sign(server: RunningServer,
                                                  strong_app: dict[str, Any]) -> None:
    reply = get(server, "/api/App/QQ/UserImage",
                {"app_key": strong_app["app_key"], "qq": NUMBER, "output": "0"})
    assert (reply["ret"], reply["msg"]) == (400, P + "缺少必要参数sign")
    yesapi_signed = {"app_key": strong_app["app_key"], "qq": NUMBER, "output": "0"}
    yesapi_signed["sign"] = compute_sign(yesapi_signed, strong_app["app_secret"])
    assert get(server, "/api/App/QQ/UserImage", yesapi_signed)["ret"] == 400  # no timestamp


def test_the_sdk_speaks_it(server: RunningServer, strong_app: dict[str, Any]) -> None:
    with Client(server.url, strong_app["app_key"], strong_app["app_secret"],
                sign_scheme="hmac-sha256") as sdk:
        for _ in range(3):  # a fresh nonce each time
            assert sdk.user_image_base64(NUMBER, size=40).content
        uuid = sdk.register("strong-" + secrets.token_hex(3), "pw")  # a POST
        assert len(uuid) == 32
    with Client(server.url, strong_app["app_key"], strong_app["app_secret"],
                retries=0) as yesapi_sdk, pytest.raises(Exception) as refused:
        yesapi_sdk.user_image_base64(NUMBER)
    assert "timestamp" in str(refused.value)
    with Client(server.url, strong_app["app_key"], "wrong" * 8, sign_scheme="hmac-sha256",
                retries=0) as wrong, pytest.raises(BadSignature):
        wrong.user_image_base64(NUMBER)


def test_the_scheme_is_an_app_setting(server: RunningServer) -> None:
    record = app_with(server)
    assert record["sign_scheme"] == "yesapi"
    done = server.cli("app", "update", record["app_key"], "--sign-scheme", "hmac-sha256",
                      "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sign_scheme"] == "hmac-sha256"
    shown = server.cli("app", "show", record["app_key"])
    assert "sign_scheme    hmac-sha256" in shown.stdout
    refused = server.cli("app", "update", record["app_key"], "--sign-scheme", "md5")
    assert refused.returncode == 2 and "md5" in refused.stderr
    deadline = time.monotonic() + 5
    while get(server, "/api/App/QQ/UserImage", {"app_key": record["app_key"], "qq": NUMBER,
                                                "output": "0"})["ret"] != 400:
        assert time.monotonic() < deadline, "the server did not take the new scheme"
        time.sleep(0.05)
