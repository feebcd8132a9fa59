"""The SDK's pure parts: envelopes and `_auth`, error mapping, signing, retry policy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqavatar.cli.batch import read_numbers, write_atomically
from qqavatar.client import (
    ApiError,
    AuthMismatch,
    BadRequest,
    BadSignature,
    BusinessError,
    ClientError,
    IpForbidden,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServerError,
    ServiceError,
    Session,
    SessionExpired,
    TransportError,
    UnknownApp,
    UnknownService,
    UpstreamUnavailable,
    calls,
)
from qqavatar.client.calls import Answer, Core
from qqavatar.client.envelope import members, parse_envelope, verify_auth
from qqavatar.client.http import transport_error
from qqavatar.client.retry import RetryPolicy
from qqavatar.protocol.envelope import envelope
from qqavatar.protocol.phpjson import dumps
from qqavatar.protocol.sign import compute_sign

SECRET = "S" * 64
KEY = "0123456789ABCDEF0123456789ABCDEF"
JSON = {"content-type": "application/json;charset=utf-8"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)


def body(ret: int, data: dict[str, Any], msg: str = "", secret: str | None = SECRET) -> bytes:
    return envelope(ret, dumps(data), msg, 1700000000, secret)


# --- envelopes and _auth -----------------------------------------------------------------------

@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4), st.text(max_size=20))
def test_auth_holds_for_anything_the_server_writes(data: dict[str, Any], msg: str) -> None:
    parsed = parse_envelope(body(200, data, msg))
    assert parsed.data_json == dumps(data)
    assert (parsed.ret, parsed.msg, parsed.t) == (200, msg, 1700000000)
    assert verify_auth(parsed, SECRET) is True
    with pytest.raises(AuthMismatch):
        verify_auth(parsed, SECRET + "x")


def test_auth_is_over_the_bytes_not_a_reencoding() -> None:
    data = {"img": "/9j/4A+", "note": "é\u2028", "n": 1}
    raw = body(200, data)
    assert b"\\/9j\\/" in raw and "é".encode() in raw and b"\\u2028" in raw
    assert verify_auth(parse_envelope(raw), SECRET) is True
    reencoded = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    with pytest.raises(AuthMismatch) as mismatch:
        verify_auth(parse_envelope(reencoded), SECRET)
    assert mismatch.value.received == json.loads(raw)["_auth"]


def test_members_keep_spans_through_whitespace() -> None:
    text = ' { "ret" : 200 ,\n "data" : {"a": [1, "x"]} , "msg":"é" } '
    found = members(text)
    value, start, end = found["data"]
    assert value == {"a": [1, "x"]} and text[start:end] == '{"a": [1, "x"]}'
    assert members("{}") == {}


@pytest.mark.parametrize("raw", [b"", b"<html>", b"[1]", b'{"ret":"200"}', b'{"ret":200} x',
                                 b'{"ret":200,}', b"\xff\xfe", b'{"data":{}}'])
def test_what_is_not_an_envelope(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(raw)


def test_php_empty_array_data_and_missing_auth() -> None:
    parsed = parse_envelope(b'{"ret":406,"data":[],"msg":"no","_t":1}')
    assert parsed.data == {} and parsed.data_json == b"[]" and parsed.auth is None
    assert verify_auth(parsed, SECRET) is None  # a refusal before the app was known
    with pytest.raises(AuthMismatch, match="no _auth"):
        verify_auth(parse_envelope(b'{"ret":200,"data":{},"msg":"","_t":1}'), SECRET)


# --- answers to exceptions -------------------------------------------------------------------

ENVELOPE_CALL = calls.encoded_image("user", "10001", 100)
IMAGE_CALL = calls.image("user", "10001", 100)


def finish(answer: Answer, call: calls.Call[Any] = ENVELOPE_CALL, secret: str | None = SECRET
           ) -> Any:
    return Core(KEY, secret).finish(call, answer)


@pytest.mark.parametrize(("ret", "kind"), [
    (400, BadRequest), (401, SessionExpired), (402, IpForbidden), (404, UnknownService),
    (406, UnknownApp), (408, RateLimited), (409, BadSignature), (413, QuotaExceeded),
    (418, ClientError), (500, ServerError), (503, ServerError), (302, ApiError),
])
def test_ret_to_exception(ret: int, kind: type[ApiError]) -> None:
    for status in (200, ret):  # HTTP 200 (YesApi) or mirrored / image mode
        with pytest.raises(kind) as raised:
            finish(Answer(status, JSON, body(ret, {}, "客户端非法请求：x")))
        assert type(raised.value) is kind
        assert (raised.value.ret, raised.value.msg) == (ret, "客户端非法请求：x")
        assert (raised.value.http_status, raised.value.authentic) == (status, True)


def test_refusal_under_another_secret_is_raised_as_itself() -> None:
    with pytest.raises(BadSignature) as raised:
        finish(Answer(200, JSON, body(409, {}, "签名错误", secret="other")))
    assert raised.value.authentic is False


@pytest.mark.parametrize(("err_code", "kind"), [(-1, UpstreamUnavailable),
                                                (-4, UpstreamUnavailable), (1, BusinessError)])
def test_err_code_to_exception(err_code: int, kind: type[Exception]) -> None:
    data = {"err_code": err_code, "err_msg": "头像服务器连接失败", "img": ""}
    with pytest.raises(kind) as raised:
        finish(Answer(502, JSON, body(200, data)), IMAGE_CALL)
    error = raised.value
    assert isinstance(error, ServiceError) and type(error) is kind
    assert (error.ret, error.err_code, error.err_msg) == (200, err_code, "头像服务器连接失败")
    assert error.http_status == 502 and error.data["img"] == ""


def test_success_must_authenticate() -> None:
    data = {"err_code": 0, "err_msg": "", "img": "iVBORw0KGgo="}
    assert finish(Answer(200, JSON, body(200, data))).content_type == "image/png"  # sniffed
    with pytest.raises(AuthMismatch):
        finish(Answer(200, JSON, body(200, data, secret="other")))
    with pytest.raises(AuthMismatch):  # an unauthentic failure is not retried as one
        finish(Answer(200, JSON, body(200, {"err_code": -1, "err_msg": ""}, secret="other")))
    assert finish(Answer(200, JSON, body(200, data, secret="other")), secret=None).base64


@pytest.mark.parametrize(("status", "media", "kind"), [
    (502, "text/html", ServerError), (200, "text/html", ProtocolError),
    (404, "text/plain", ProtocolError), (200, "image/png", ProtocolError),
])
def test_answers_that_are_not_yesapi(status: int, media: str, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        finish(Answer(status, {"content-type": media}, b"<html>"))


def test_an_envelope_where_an_image_was_expected() -> None:
    with pytest.raises(ProtocolError, match="expected image"):
        finish(Answer(200, JSON, body(200, {"err_code": 0})), IMAGE_CALL)


def test_image_answer() -> None:
    headers = httpx.Headers({"Content-Type": "image/jpeg", "ETag": '"abc"',
                             "X-Avatar-Default": "1", "X-Avatar-Size": "100", "X-Cache": "HIT"})
    image = finish(Answer(200, headers, b"\xff\xd8\xff"), calls.image("group", 12345, 640))
    assert (image.kind, image.number, image.size, image.etag, image.cache) == \
        ("group", "12345", 100, '"abc"', "HIT")
    assert image.is_default and image.extension == "jpg"


# --- requests ----------------------------------------------------------------------------------

def test_signed_get_carries_everything_it_signs() -> None:
    prepared = Core(KEY, SECRET).prepare(calls.image("user", 376741929, 40))
    assert prepared.method == "GET" and prepared.form is None
    sign = prepared.query.pop("sign")
    assert prepared.query == {"s": "App.QQ.UserImage", "app_key": KEY, "qq": "376741929",
                              "size": "40"}
    assert sign == compute_sign(prepared.query, SECRET)


def test_unsigned_without_secret() -> None:
    assert "sign" not in Core(KEY, None).prepare(calls.image("user", 10001, 40)).query


def test_session_goes_with_calls_but_not_with_login() -> None:
    core = Core(KEY, SECRET, Session("U" * 32, "T" * 64))
    assert core.prepare(calls.encoded_image("user", 10001, 40)).query["uuid"] == "U" * 32
    login = core.prepare(calls.login("bob", "secret"))
    assert login.method == "POST" and login.query == {"s": "App.User.Login"}
    assert login.form is not None and "uuid" not in login.form
    assert login.form["password"] == hashlib.md5(b"secret").hexdigest()
    assert login.form["sign"] == compute_sign({"s": "App.User.Login", **{
        k: v for k, v in login.form.items() if k != "sign"}}, SECRET)


def test_member_answers() -> None:
    session = finish(Answer(200, JSON, body(200, {"err_code": 0, "uuid": "U", "token": "T"})),
                     calls.login("bob", "pw"))
    assert session == Session("U", "T") and "T" not in repr(session)
    stale = body(200, {"err_code": 1, "err_msg": "用户未登录，或登录态已过期"})
    assert finish(Answer(200, JSON, stale), calls.check(session)) is False
    with pytest.raises(BusinessError):
        finish(Answer(200, JSON, stale), calls.logout(session))


# --- retries -----------------------------------------------------------------------------------

def test_what_is_retried() -> None:
    policy = RetryPolicy()
    get, post = calls.image("user", 1, 40), calls.register("bob", "pw")
    assert policy.should_retry(UpstreamUnavailable(-1, "x"), get)
    assert not policy.should_retry(BusinessError(1, "x"), get)
    assert not policy.should_retry(BadRequest(400, "x"), get)
    assert not policy.should_retry(ServerError(500, "x"), get)
    assert not policy.should_retry(AuthMismatch("x"), get)
    maybe_sent = transport_error(httpx.ReadTimeout("slow"))
    never_sent = transport_error(httpx.ConnectError("refused"))
    assert isinstance(maybe_sent, TransportError) and maybe_sent.maybe_sent
    assert policy.should_retry(maybe_sent, get) and not policy.should_retry(maybe_sent, post)
    assert policy.should_retry(never_sent, post)


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (10, 3.0)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


# --- the fetch list and files -------------------------------------------------------------------

def test_number_list() -> None:
    found = read_numbers(["# header", "", "12345", "  67890  # bob", "12345", "abc", "01234",
                          "123456789012", "1234567890123"])
    assert [e.number for e in found.entries] == ["12345", "67890", "123456789012"]
    assert [(e.number, e.line) for e, _ in found.invalid] == [("abc", 6), ("01234", 7),
                                                              ("1234567890123", 9)]
    assert found.duplicates == 1


def test_write_atomically(tmp_path: Path) -> None:
    target = tmp_path / "12345_100.jpg"
    (tmp_path / ".12345_100.old.part").write_bytes(b"half")
    write_atomically(target, b"image")
    assert target.read_bytes() == b"image"
    assert [p.name for p in tmp_path.iterdir()] == ["12345_100.jpg"]
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "inside").touch()
    with pytest.raises(OSError):  # a directory is in the way: no temporary file stays
        write_atomically(taken, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["12345_100.jpg", "taken"]
