"""The YesApi sign's weakness and the stronger per-app scheme (issue 15, finding 12)."""

from __future__ import annotations

import secrets

import pytest

from qqavatar.client.calls import Core, encoded_image, register
from qqavatar.limits.nonces import NonceStore
from qqavatar.protocol.errors import ApiError
from qqavatar.protocol.sign import (
    WINDOW,
    canonical_text,
    check_strong_sign,
    compute_sign,
    compute_strong_sign,
    verify_sign,
)
from qqavatar.redislink import RedisLink
from tests.unit.test_limits_rate import redis_is_up

pytestmark = pytest.mark.anyio

SECRET = "s3cret" * 8
SERVICE = "App.QQ.UserImage"
NOW = 1_764_331_200
NUMBER_TEXT = "376741929"
# The collision: YesApi joins bare values, so these two share one sign.
ASKED = {"app_key": "K" * 32, "qq": "376741929", "return_data": "1"}
COLLIDING = {"app_key": "K" * 32, "qq": "37674192", "return_data": "91", "zz": ""}


def strong(params: dict[str, str], service: str = SERVICE, *, at: int = NOW,
           nonce: str | None = None) -> dict[str, str]:
    signed = {**params, "timestamp": str(at), "nonce": nonce or secrets.token_urlsafe(18)}
    signed["sign"] = compute_strong_sign(service, signed, SECRET)
    return signed


def refusal(params: dict[str, str], service: str = SERVICE, now: float = NOW) -> str | None:
    try:
        check_strong_sign(service, params, SECRET, params.get("sign"), now)
    except ApiError as error:
        return error.msg
    return None


def test_the_yesapi_sign_accepts_the_collision() -> None:
    sign = compute_sign(ASKED, SECRET)
    assert verify_sign(COLLIDING, SECRET, sign)


def test_the_strong_sign_refuses_the_collision() -> None:
    signed = strong(ASKED)
    assert refusal(signed) is None
    forged = {**COLLIDING, **{name: signed[name] for name in ("timestamp", "nonce", "sign")}}
    assert refusal(forged) == "客户端非法请求：签名错误"
    assert canonical_text(SERVICE, ASKED) != canonical_text(SERVICE, COLLIDING)


def test_the_strong_sign_covers_the_service() -> None:
    signed = strong(ASKED)
    assert refusal(signed, "App.QQ.GroupImage") == "客户端非法请求：签名错误"


@pytest.mark.parametrize("skew", [WINDOW + 1, -WINDOW - 1, 10 * WINDOW])
def test_an_expired_timestamp_is_refused(skew: int) -> None:
    message = refusal(strong(ASKED, at=NOW - skew))
    assert message is not None and message.startswith("客户端非法请求：签名已过期")


@pytest.mark.parametrize("skew", [0, WINDOW, -WINDOW])
def test_a_timestamp_within_the_window_passes(skew: int) -> None:
    assert refusal(strong(ASKED, at=NOW - skew)) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"sign": None}, "客户端非法请求：缺少必要参数sign"),
    ({"timestamp": None}, "客户端非法请求：缺少必要参数timestamp"),
    ({"nonce": None}, "客户端非法请求：缺少必要参数nonce"),
    ({"timestamp": "9" * 40}, "客户端非法请求：参数timestamp应该是Unix时间戳（秒）"),
    ({"timestamp": "-5"}, "客户端非法请求：参数timestamp应该是Unix时间戳（秒）"),
    ({"nonce": "short"}, "客户端非法请求：参数nonce应该是16到64位字母、数字、-或_"),
    ({"nonce": "x" * 15 + "\n"}, "客户端非法请求：参数nonce应该是16到64位字母、数字、-或_"),
])
def test_malformed_strong_requests(change: dict[str, str | None], message: str) -> None:
    signed: dict[str, str] = strong(ASKED)
    for name, value in change.items():
        if value is None:
            signed.pop(name)
        else:
            signed[name] = value
    assert refusal(signed) == message


def test_separators_keep_names_and_values_apart() -> None:
    texts = {canonical_text(SERVICE, params) for params in (
        {"a": "1&b=2"}, {"a": "1", "b": "2"}, {"a=1&b": "2"}, {"a": "1\nb=2"})}
    assert len(texts) == 4
    # `s`/`service` name the service on its own line; the sign itself is not signed.
    assert canonical_text(SERVICE, {"qq": "1", "s": "x", "service": "y", "sign": "z"}) == \
        canonical_text(SERVICE, {"qq": "1"})


async def test_a_nonce_is_taken_once() -> None:
    now = [0.0]
    store = NonceStore(ttl=2 * WINDOW, clock=lambda: now[0])
    assert await store.first_use("app:n1")
    assert not await store.first_use("app:n1")
    assert await store.first_use("other:n1")  # per app
    now[0] = 2 * WINDOW + 1  # past any timestamp it could carry: forgotten
    assert await store.first_use("app:n1")


async def test_memory_is_bounded() -> None:
    store = NonceStore(max_entries=3)
    for index in range(5):
        assert await store.first_use(f"app:{index}")
    assert len(store._seen) == 3


@pytest.mark.redis
async def test_redis_shares_nonces_between_servers() -> None:
    if not redis_is_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    first = NonceStore(RedisLink("redis://127.0.0.1:6379/0"))
    second = NonceStore(RedisLink("redis://127.0.0.1:6379/0"))
    try:
        key = "app:" + secrets.token_urlsafe(18)
        assert await first.first_use(key)
        assert not await second.first_use(key)  # another server saw it first
    finally:
        for store in (first, second):
            assert store.redis is not None
            await store.redis.aclose()


def test_the_sdk_signs_each_attempt_afresh() -> None:
    core = Core("K" * 32, SECRET, sign_scheme="hmac-sha256", clock=lambda: NOW)
    first, second = (core.prepare(encoded_image("user", NUMBER_TEXT, 40)) for _ in range(2))
    assert first.query["nonce"] != second.query["nonce"]  # a retry is not a replay
    for prepared in (first, second):
        params = prepared.query
        assert params["timestamp"] == str(NOW)
        check_strong_sign(SERVICE, params, SECRET, params["sign"], NOW)
    posted = core.prepare(register("alice", "pw"))  # credentials in the body, `s` in the URL
    assert posted.form is not None and set(posted.query) == {"s"}
    check_strong_sign("App.User.Register", posted.form, SECRET, posted.form["sign"], NOW)
    with pytest.raises(ValueError, match="sign_scheme"):
        Core("K" * 32, SECRET, sign_scheme="md5")
    with pytest.raises(ValueError, match="needs the app_secret"):
        Core("K" * 32, None, sign_scheme="hmac-sha256")
