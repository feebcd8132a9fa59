"""The Python SDK (`qqavatar.client`) against a real server and the fake qlogo."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from qqavatar.client import (
    AsyncClient,
    AuthMismatch,
    BadRequest,
    BadSignature,
    BusinessError,
    Client,
    ClientError,
    EncodedImage,
    Image,
    QQAvatarError,
    SessionExpired,
    TransportError,
    UnknownApp,
    UpstreamUnavailable,
)
from tests.relay_fixture import Relay
from tests.server_fixture import RunningServer, free_port

P = "客户端非法请求："
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG"


@pytest.fixture(scope="module")
def signed_app(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("signed", sign_required=True)
    server.wait_for_app(record["app_key"])
    return record


@pytest.fixture(scope="module")
def relay(server: RunningServer) -> Generator[Relay, None, None]:
    running = Relay(server.url)
    yield running
    running.stop()


def client(server: RunningServer | Relay, app: dict[str, Any], secret: str | None = "",
           **options: Any) -> Client:
    """A client for `app`, signing with its secret unless told otherwise."""
    return Client(server.url, app["app_key"], app["app_secret"] if secret == "" else secret,
                  **{"backoff": 0.01, **options})


def upstream_bytes(fake_qlogo: Any, kind: str, number: str, size: int) -> bytes:
    path = f"/g?b=qq&nk={number}&s={size}" if kind == "user" else f"/gh/{number}/{number}/{size}/"
    return httpx.get(fake_qlogo.url + path).content


# --- images and base64 ---------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "number", "magic", "media", "is_default"), [
    ("user", "31001", JPEG, "image/jpeg", False),
    ("user", "31005", PNG, "image/png", False),
    ("user", "31000", JPEG, "image/jpeg", True),
    ("group", "31002", JPEG, "image/jpeg", False),
    ("group", "31006", PNG, "image/png", False),
])
def test_image_is_the_avatar_with_its_metadata(server: RunningServer, app: dict[str, Any],
                                               fake_qlogo: Any, kind: str, number: str,
                                               magic: bytes, media: str, is_default: bool) -> None:
    with client(server, app) as sdk:
        fetch = sdk.user_image if kind == "user" else sdk.group_image
        image = fetch(int(number), size=140)
    assert isinstance(image, Image)
    assert image.content == upstream_bytes(fake_qlogo, kind, number, 140)
    assert image.content.startswith(magic)
    assert (image.kind, image.number, image.size) == (kind, number, 140)
    assert image.content_type == media
    assert image.extension == ("jpg" if media == "image/jpeg" else "png")
    assert image.is_default is is_default
    assert image.etag is not None and image.etag.startswith('"')
    assert "bytes=" in repr(image) and str(image.content[:8]) not in repr(image)


@pytest.mark.parametrize(("kind", "number"), [("user", "32003"), ("user", "32000"),
                                              ("group", "32007")])
def test_base64_round_trip(server: RunningServer, app: dict[str, Any], kind: str,
                           number: str) -> None:
    with client(server, app) as sdk:
        if kind == "user":
            encoded, image = sdk.user_image_base64(number, 40), sdk.user_image(number, 40)
        else:
            encoded, image = sdk.group_image_base64(number, 40), sdk.group_image(number, 40)
    assert isinstance(encoded, EncodedImage)
    assert encoded.content == image.content
    assert encoded.content_type == image.content_type
    assert encoded.is_default is image.is_default is number.endswith("0")
    assert encoded.data["err_code"] == 0 and encoded.data["img"] == encoded.base64
    assert encoded.data_uri.startswith(f"data:{image.content_type};base64,")
    assert encoded.t > 1_600_000_000


def test_async_client_same_answers(server: RunningServer, app: dict[str, Any]) -> None:
    async def run() -> tuple[list[Image], EncodedImage]:
        async with AsyncClient(server.url, app["app_key"], app["app_secret"]) as sdk:
            images = await asyncio.gather(*(sdk.user_image(n, 100) for n in
                                            ("33001", "33002", "33005")))
            return list(images), await sdk.group_image_base64(33009, 100)

    images, encoded = asyncio.run(run())
    with client(server, app) as sdk:
        assert [i.content for i in images] == [sdk.user_image(n).content
                                               for n in ("33001", "33002", "33005")]
        assert encoded.content == sdk.group_image(33009).content


# --- signing and _auth -----------------------------------------------------------------------

def test_signed_app_needs_the_secret(server: RunningServer, signed_app: dict[str, Any]) -> None:
    with client(server, signed_app) as sdk:
        assert sdk.user_image(34001).content.startswith(JPEG)
        assert sdk.group_image_base64(34005).content.startswith(PNG)
    with client(server, signed_app, secret=None) as unsigned:
        with pytest.raises(BadRequest) as refused:
            unsigned.user_image_base64(34001)
        assert refused.value.ret == 400
        assert refused.value.msg == P + "缺少必要参数sign"
        assert refused.value.authentic is None  # nothing to check it with
        with pytest.raises(BadRequest) as image_mode:  # output=1: a real HTTP 400
            unsigned.user_image(34001)
        assert image_mode.value.http_status == 400


def test_wrong_secret_is_a_bad_signature(server: RunningServer, signed_app: dict[str, Any],
                                         app: dict[str, Any]) -> None:
    # A sent sign is checked even when the app does not require one.
    for record in (signed_app, app):
        with client(server, record, secret="x" * 64) as sdk, \
                pytest.raises(BadSignature) as refused:
            sdk.user_image_base64(34001)
        assert (refused.value.ret, refused.value.msg) == (409, P + "签名错误")
        assert refused.value.authentic is False  # its _auth is under the real secret


def test_auth_holds_over_the_exact_data_bytes(server: RunningServer, app: dict[str, Any],
                                              relay: Relay) -> None:
    """base64 is full of '/', which PHP writes as '\\/': a re-encoding would not verify."""
    raw = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                         "qq": "35001", "output": "0"}).content
    assert b"\\/" in raw
    relay.reset()
    with client(relay, app) as sdk:
        assert sdk.user_image_base64(35001).content.startswith(JPEG)
    assert relay.requests == 1


@pytest.mark.parametrize(("old", "new"), [
    (b'"is_default":false', b'"is_default":true'),  # a value changed
    (b'"err_msg":""', b'"err_msg" : ""'),           # same JSON, other bytes
    (b',"_auth":"', b',"_auth_":"'),                # _auth removed
])
def test_altered_answer_is_an_auth_mismatch(app: dict[str, Any], relay: Relay,
                                            old: bytes, new: bytes) -> None:
    relay.reset("tamper", (old, new))
    with client(relay, app) as sdk, pytest.raises(AuthMismatch):
        sdk.user_image_base64(35001)
    assert relay.tampered == 1
    # Without a secret nothing is checked: the altered answer goes through.
    with client(relay, app, secret=None) as trusting:
        trusting.user_image_base64(35001)
    assert relay.tampered == 2


def test_altered_failure_is_an_auth_mismatch_and_not_retried(
        app: dict[str, Any], relay: Relay, fake_qlogo: Any) -> None:
    fake_qlogo.fault("error500", numbers=["35003"])
    relay.reset("tamper", (b'"err_code":-3', b'"err_code":-1'))
    with client(relay, app) as sdk, pytest.raises(AuthMismatch):
        sdk.user_image(35003)
    assert relay.requests == 1


# --- typed errors -------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "args", "message"), [
    ("user_image_base64", ("abc",), P + "qq应该是5到12位数字, 但现在qq = abc"),
    ("user_image", ("0123456",), P + "qq应该是5到12位数字, 但现在qq = 0123456"),
    ("group_image_base64", ("12345", 50), P + "参数size应该为：40/100/140/640，但现在size = 50"),
    ("group_image", ("12345", 50), P + "参数size应该为：40/100/140/640，但现在size = 50"),
])
def test_bad_parameters_are_bad_requests(server: RunningServer, app: dict[str, Any], relay: Relay,
                                         call: str, args: tuple[Any, ...], message: str) -> None:
    relay.reset()
    with client(relay, app, retries=5) as sdk, pytest.raises(BadRequest) as refused:
        getattr(sdk, call)(*args)
    assert (refused.value.ret, refused.value.msg) == (400, message)
    assert refused.value.authentic is True
    assert refused.value.http_status == (400 if call.endswith("_image") else 200)
    assert relay.requests == 1  # 4xx: never retried


def test_unknown_app(server: RunningServer) -> None:
    for secret in (None, "s" * 64):
        with Client(server.url, "F" * 32, secret) as sdk, pytest.raises(UnknownApp) as refused:
            sdk.user_image(36001)
        assert refused.value.ret == 406
        assert refused.value.msg == P + "非法app_key，请核对你所在的接口域名"
        assert isinstance(refused.value, ClientError) and refused.value.authentic is None


# --- retries ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "http_status"), [("user_image", 502),
                                                   ("user_image_base64", 200)])
def test_system_failures_are_retried(server: RunningServer, app: dict[str, Any], fake_qlogo: Any,
                                     call: str, http_status: int) -> None:
    number = "37003" if call == "user_image" else "37004"
    fake_qlogo.fault("error500", numbers=[number])
    before = fake_qlogo.count("user", number, 100)
    with client(server, app) as sdk, pytest.raises(UpstreamUnavailable) as failed:
        getattr(sdk, call)(number)
    assert (failed.value.err_code, failed.value.err_msg) == (-3, "头像服务器返回了无效的图片")
    assert failed.value.http_status == http_status
    assert fake_qlogo.count("user", number, 100) - before == 3  # 1 + retries=2

    with client(server, app, retries=0) as once, pytest.raises(UpstreamUnavailable):
        getattr(once, call)(number)
    assert fake_qlogo.count("user", number, 100) - before == 4


def test_retry_recovers_when_the_upstream_does(server: RunningServer, app: dict[str, Any],
                                               fake_qlogo: Any) -> None:
    """A fault that clears between attempts: the caller sees only the avatar."""
    fake_qlogo.fault("error500", numbers=["37013"])

    async def run() -> Image:
        async with AsyncClient(server.url, app["app_key"], app["app_secret"], retries=4,
                               backoff=0.2) as sdk:
            fetching = asyncio.ensure_future(sdk.user_image(37013))
            while fake_qlogo.count("user", "37013", 100) == 0:
                await asyncio.sleep(0.01)
            fake_qlogo.fault("none")
            return await fetching

    assert asyncio.run(run()).content.startswith(JPEG)
    assert fake_qlogo.count("user", "37013", 100) >= 2


def test_dropped_connections_are_retried(app: dict[str, Any], relay: Relay) -> None:
    relay.reset("drop")
    with client(relay, app) as sdk, pytest.raises(TransportError):
        sdk.user_image(38001)
    assert relay.requests == 3


def test_nobody_listening(app: dict[str, Any]) -> None:
    with Client(f"http://127.0.0.1:{free_port()}", app["app_key"], retries=1,
                backoff=0.01) as sdk, pytest.raises(TransportError) as failed:
        sdk.user_image(38001)
    assert failed.value.maybe_sent is False
    assert isinstance(failed.value, QQAvatarError)


def test_client_never_shows_its_secret(app: dict[str, Any], server: RunningServer) -> None:
    with client(server, app) as sdk:
        text = repr(sdk)
    assert app["app_secret"] not in text and app["app_key"] not in text


# --- members (App.User.*) ------------------------------------------------------------------

def test_member_lifecycle(server: RunningServer, signed_app: dict[str, Any]) -> None:
    """Signed POSTs: register, login, call as the member, check, logout."""
    with client(server, signed_app) as sdk:
        uuid = sdk.register("alice", "correct horse")
        assert len(uuid) == 32 and uuid == uuid.upper()
        with pytest.raises(BusinessError) as taken:
            sdk.register("alice", "another")
        assert (taken.value.err_code, taken.value.err_msg) == (1, "注册失败，该账号已被注册")
        with pytest.raises(BusinessError) as wrong:
            sdk.login("alice", "wrong")
        assert (wrong.value.err_code, wrong.value.err_msg) == (1, "登录失败，账号不存在或密码错误")
        with pytest.raises(BusinessError) as unknown:
            sdk.login("nobody", "x")
        assert (unknown.value.err_code, unknown.value.err_msg) == (1, "登录失败，账号不存在或密码错误")

        session = sdk.login("alice", "correct horse")
        assert session.uuid == uuid and len(session.token) == 64
        assert sdk.check(session) is True
        sdk.session = session
        assert sdk.user_image(39001).content.startswith(JPEG)  # uuid/token sent, and hold
        sdk.logout()
        assert sdk.session is None
        assert sdk.check(session) is False
        with pytest.raises(BusinessError) as again:
            sdk.logout(session)
        assert again.value.err_msg == "用户未登录，或登录态已过期"

        sdk.session = session  # a session that no longer holds: every call is refused
        with pytest.raises(SessionExpired) as expired:
            sdk.user_image_base64(39001)
        assert (expired.value.ret, expired.value.msg) == (401, P + "登录会话已过期，请重新登录")
        with pytest.raises(ValueError):
            Client(server.url, "k").check()


def test_async_member_calls(server: RunningServer, app: dict[str, Any]) -> None:
    async def run() -> tuple[bool, bool]:
        async with AsyncClient(server.url, app["app_key"], app["app_secret"]) as sdk:
            await sdk.register("bob", "pw")
            sdk.session = await sdk.login("bob", "pw")
            await sdk.group_image(39005)
            held = await sdk.check()
            await sdk.logout()
            return held, await sdk.check(await sdk.login("bob", "pw"))

    assert asyncio.run(run()) == (True, True)
