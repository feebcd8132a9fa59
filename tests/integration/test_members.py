"""SPEC §6 members through a real server: App.User.* and the session guard."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from tests.server_fixture import RunningServer

P = "客户端非法请求："
SESSION_EXPIRED = P + "登录会话已过期，请重新登录"
NOT_LOGGED_IN = "用户未登录，或登录态已过期"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def api(server: RunningServer, app: dict[str, Any], service: str, **params: str) -> dict[str, Any]:
    reply: dict[str, Any] = server.client.post(
        "/", params={"s": service}, data={"app_key": app["app_key"], **params}).json()
    return reply


def new_name() -> str:
    return "member_" + secrets.token_hex(4)


def register_and_login(server: RunningServer, app: dict[str, Any],
                       password: str = "pa55word") -> tuple[str, str, str]:
    name = new_name()
    registered = api(server, app, "App.User.Register", username=name, password=md5(password))
    assert registered["data"]["err_code"] == 0, registered
    login = api(server, app, "App.User.Login", username=name, password=md5(password))
    assert login["ret"] == 200 and login["data"]["err_code"] == 0, login
    return name, login["data"]["uuid"], login["data"]["token"]


def avatar(server: RunningServer, app: dict[str, Any], **params: str) -> dict[str, Any]:
    return api(server, app, "App.QQ.UserImage", qq="10001", output="0", **params)


def test_register_login_check_logout(server: RunningServer, app: dict[str, Any]) -> None:
    name = new_name()
    registered = api(server, app, "App.User.Register", username=name, password=md5("secret"))
    assert registered["ret"] == 200
    assert registered["data"]["err_code"] == 0 and registered["data"]["err_msg"] == ""
    assert re.fullmatch(r"[0-9A-F]{32}", registered["data"]["uuid"])

    login = api(server, app, "App.User.Login", username=name, password=md5("secret"))
    assert list(login["data"]) == ["err_code", "err_msg", "uuid", "token"]
    uuid, token = login["data"]["uuid"], login["data"]["token"]
    assert uuid == registered["data"]["uuid"]
    assert re.fullmatch(r"[0-9A-F]{64}", token)

    check = api(server, app, "App.User.Check", uuid=uuid, token=token)
    assert check["data"] == {"err_code": 0, "err_msg": "", "is_login": True}
    assert avatar(server, app, uuid=uuid, token=token)["ret"] == 200

    logout = api(server, app, "App.User.Logout", uuid=uuid, token=token)
    assert logout["data"] == {"err_code": 0, "err_msg": ""}
    # At once on this server, although the pair was just used (and cached) by the guard.
    assert avatar(server, app, uuid=uuid, token=token)["msg"] == SESSION_EXPIRED
    check = api(server, app, "App.User.Check", uuid=uuid, token=token)
    assert check["ret"] == 200
    assert check["data"] == {"err_code": 1, "err_msg": NOT_LOGGED_IN, "is_login": False}
    again = api(server, app, "App.User.Logout", uuid=uuid, token=token)
    assert again["data"] == {"err_code": 1, "err_msg": NOT_LOGGED_IN}

    # A new login gives a new session; the old token stays dead.
    relogin = api(server, app, "App.User.Login", username=name, password=md5("secret"))
    assert relogin["data"]["uuid"] == uuid and relogin["data"]["token"] != token
    assert avatar(server, app, uuid=uuid, token=relogin["data"]["token"])["ret"] == 200


def test_login_failures(server: RunningServer, app: dict[str, Any]) -> None:
    name, _, _ = register_and_login(server, app, "right")
    unknown = api(server, app, "App.User.Login", username=new_name(), password=md5("right"))
    assert unknown["ret"] == 200
    # One answer for both: it must not tell which names exist (docs/security.md).
    assert unknown["data"] == {"err_code": 1, "err_msg": "登录失败，账号不存在或密码错误",
                               "uuid": "", "token": ""}
    wrong = api(server, app, "App.User.Login", username=name, password=md5("wrong"))
    assert wrong["data"] == unknown["data"]
    # Names are one account whatever their case; the md5 may be upper- or lowercase.
    relaxed = api(server, app, "App.User.Login", username=name.upper(),
                  password=md5("right").upper())
    assert relaxed["data"]["err_code"] == 0


def test_register_a_taken_name(server: RunningServer, app: dict[str, Any]) -> None:
    name, _, _ = register_and_login(server, app)
    taken = api(server, app, "App.User.Register", username=name.upper(), password=md5("x"))
    assert taken["ret"] == 200
    assert taken["data"] == {"err_code": 1, "err_msg": "注册失败，该账号已被注册", "uuid": ""}


def test_members_belong_to_one_app(server: RunningServer, app: dict[str, Any]) -> None:
    other = server.create_app("other members")
    server.wait_for_app(other["app_key"])
    name, uuid, token = register_and_login(server, app)
    # The same name is free in another app, and a session does not cross apps.
    assert api(server, other, "App.User.Register", username=name,
               password=md5("x"))["data"]["err_code"] == 0
    assert avatar(server, other, uuid=uuid, token=token)["msg"] == SESSION_EXPIRED
    assert api(server, other, "App.User.Check", uuid=uuid,
               token=token)["data"]["err_code"] == 1
    assert api(server, other, "App.User.Logout", uuid=uuid,
               token=token)["data"]["err_code"] == 1
    assert avatar(server, app, uuid=uuid, token=token)["ret"] == 200  # untouched at home


@pytest.mark.parametrize(
    ("uuid", "token"),
    [
        ("0" * 32, "0" * 64),                   # well formed, never issued
        ("not-a-uuid", "not-a-token"),
        ("", ""),
    ],
)
def test_a_pair_that_does_not_hold_is_401(server: RunningServer, app: dict[str, Any],
                                          uuid: str, token: str) -> None:
    reply = avatar(server, app, uuid=uuid, token=token)
    assert (reply["ret"], reply["msg"], reply["data"]) == (401, SESSION_EXPIRED, {})
    image = server.client.get("/api/App/QQ/UserImage", params={
        "app_key": app["app_key"], "qq": "10001", "uuid": uuid, "token": token})
    assert image.status_code == 401 and image.json()["msg"] == SESSION_EXPIRED
    # Check and Logout take the pair as their subject: an answer, not ret 401.
    for service in ("App.User.Check", "App.User.Logout"):
        answer = api(server, app, service, uuid=uuid, token=token)
        assert answer["ret"] == 200
        assert (answer["data"]["err_code"], answer["data"]["err_msg"]) == (1, NOT_LOGGED_IN)


def test_a_real_uuid_with_a_wrong_token_is_401(server: RunningServer,
                                              app: dict[str, Any]) -> None:
    _, uuid, token = register_and_login(server, app)
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert avatar(server, app, uuid=uuid, token=wrong)["ret"] == 401
    assert avatar(server, app, uuid="0" * 32, token=token)["ret"] == 401  # someone else's token
    assert avatar(server, app, uuid=uuid.lower(), token=token.lower())["ret"] == 200


def test_a_stale_session_does_not_block_login_or_register(server: RunningServer,
                                                          app: dict[str, Any]) -> None:
    # SDKs may send the last uuid/token with every call, Login included.
    name, uuid, token = register_and_login(server, app, "pw")
    api(server, app, "App.User.Logout", uuid=uuid, token=token)
    login = api(server, app, "App.User.Login", username=name, password=md5("pw"),
                uuid=uuid, token=token)
    assert login["data"]["err_code"] == 0
    fresh = api(server, app, "App.User.Register", username=new_name(), password=md5("pw"),
                uuid=uuid, token=token)
    assert fresh["data"]["err_code"] == 0


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        ({"password": md5("x")}, P + "缺少必要参数username"),
        ({"username": "someone"}, P + "缺少必要参数password"),
        ({"username": "", "password": md5("x")},
         P + "username.len应该大于或等于1, 但现在username.len = 0"),
        ({"username": "x" * 51, "password": md5("x")},
         P + "username.len应该小于等于50, 但现在username.len = 51"),
        ({"username": " padded", "password": md5("x")},
         P + "参数username格式不正确, 但现在username =  padded"),
        ({"username": "tab\there", "password": md5("x")},
         P + "参数username格式不正确, 但现在username = tab\there"),
        ({"username": "someone", "password": "my raw password"},
         P + "参数password应该是32位十六进制的md5值（md5(原始密码)），请勿传递明文密码"),
        ({"username": "someone", "password": md5("x") + "0"},
         P + "参数password应该是32位十六进制的md5值（md5(原始密码)），请勿传递明文密码"),
    ],
)
@pytest.mark.parametrize("service", ["App.User.Register", "App.User.Login"])
def test_credential_rules(server: RunningServer, app: dict[str, Any], service: str,
                          params: dict[str, str], msg: str) -> None:
    reply = api(server, app, service, **params)
    assert (reply["ret"], reply["msg"]) == (400, msg)
    assert "my raw password" not in str(reply)  # never echoed


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        ({}, P + "缺少必要参数uuid"),
        ({"uuid": "A" * 32}, P + "uuid需要和token一起传递"),
        ({"token": "A" * 64}, P + "uuid需要和token一起传递"),
    ],
)
@pytest.mark.parametrize("service", ["App.User.Check", "App.User.Logout"])
def test_session_rules(server: RunningServer, app: dict[str, Any], service: str,
                       params: dict[str, str], msg: str) -> None:
    reply = api(server, app, service, **params)
    assert (reply["ret"], reply["msg"]) == (400, msg)


def test_secrets_are_not_stored_in_clear(server: RunningServer, app: dict[str, Any]) -> None:
    _, uuid, token = register_and_login(server, app, "hunter2")
    [(stored,)] = server.query("SELECT password_hash FROM members WHERE uuid = :uuid", uuid=uuid)
    session_rows = server.query("SELECT * FROM sessions WHERE uuid = :uuid", uuid=uuid)
    dump = server.dump()
    assert stored.startswith("scrypt$16384$8$1$")
    for secret in ("hunter2", md5("hunter2"), md5("hunter2").upper(), token, token.lower()):
        assert secret not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in {row[0] for row in session_rows}


def test_sessions_expire_after_the_token_ttl(tmp_path: Path, fake_qlogo: Any) -> None:
    running = RunningServer(tmp_path, fake_qlogo.url, {"QQAVATAR_TOKEN_TTL": "1"})
    try:
        app = running.create_app("short sessions")
        running.wait_for_app(app["app_key"])
        _, uuid, token = register_and_login(running, app)
        logged_in = time.monotonic()
        check = api(running, app, "App.User.Check", uuid=uuid, token=token)
        answered = avatar(running, app, uuid=uuid, token=token)
        if time.monotonic() - logged_in < 0.9:  # a session holds at least the TTL (1 s)
            assert check["data"]["err_code"] == 0
            assert answered["ret"] == 200
        time.sleep(max(0.0, logged_in + 2.1 - time.monotonic()))  # and at most TTL + 1 s
        assert avatar(running, app, uuid=uuid, token=token)["msg"] == SESSION_EXPIRED
        check = api(running, app, "App.User.Check", uuid=uuid, token=token)
        assert (check["data"]["err_code"], check["data"]["err_msg"]) == (1, NOT_LOGGED_IN)
        assert api(running, app, "App.User.Logout", uuid=uuid,
                   token=token)["data"]["err_code"] == 1
    finally:
        running.stop()
