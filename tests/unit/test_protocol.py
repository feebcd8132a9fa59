"""The YesApi contract without a server: JSON bytes, formatters, messages, signatures, envelope."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqavatar.catalog import COMMON_RULES, USER_IMAGE, canonical_name, resolve
from qqavatar.protocol import errors
from qqavatar.protocol.envelope import auth, envelope, is_valid_callback, jsonp
from qqavatar.protocol.errors import ApiError
from qqavatar.protocol.params import (
    NESTED,
    Bool,
    Enum,
    Number,
    RuleSet,
    Str,
    parse,
    parse_all,
    parse_bool,
    php_number,
)
from qqavatar.protocol.phpjson import dumps
from qqavatar.protocol.sign import compute_sign, verify_sign

P = "客户端非法请求："


# --- PHP json_encode(JSON_UNESCAPED_UNICODE) ------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1, "b": "x"}, b'{"a":1,"b":"x"}'),                       # no spaces
        ("a/b", b'"a\\/b"'),                                              # slash escaped
        ("中文", '"中文"'.encode()),                                     # UTF-8, not \u
        ("\u2028\u2029", b'"\\u2028\\u2029"'),                            # line terminators
        ("\n\r\t\b\f", b'"\\n\\r\\t\\b\\f"'),                             # short escapes
        ("\x00\x01\x1f", b'"\\u0000\\u0001\\u001f"'),                     # lowercase \u00XX
        ("\x7f", b'"\x7f"'),                                              # DEL is not escaped
        ('"\\', b'"\\"\\\\"'),                                            # quote, backslash
        ({}, b"{}"),
        ([], b"[]"),
        ([1, True, False, None], b"[1,true,false,null]"),
        ("😀", '"😀"'.encode()),                                          # astral: raw UTF-8
        ({"k": {"n": [1, "/"]}}, b'{"k":{"n":[1,"\\/"]}}'),
        ("\ud800", '"\ufffd"'.encode()),                                  # lone surrogate
    ],
)
def test_php_json(value: object, expected: bytes) -> None:
    assert dumps(value) == expected


def test_php_json_refuses_floats() -> None:
    with pytest.raises(TypeError):
        dumps({"x": 1.5})


def test_php_json_round_trips() -> None:
    value = {"msg": "客户端非法请求：a/b\u2028\n", "n": -3, "list": ["x", None]}
    assert json.loads(dumps(value)) == value


# --- formatters and their messages -----------------------------------------------------------

def test_default_only_when_absent() -> None:
    rules = (Enum("size", default=100, options=(40, 100, 140, 640)), Bool("output", default=True))
    assert parse({}, rules) == {"size": 100, "output": True}
    assert parse({"output": ""}, rules)["output"] is False
    with pytest.raises(ApiError) as caught:
        parse({"size": ""}, rules)
    assert caught.value.msg == P + "参数size应该为：40/100/140/640，但现在size = "


def test_missing_required() -> None:
    with pytest.raises(ApiError) as caught:
        parse({}, (Number("qq", required=True),))
    assert (caught.value.ret, caught.value.msg) == (400, P + "缺少必要参数qq")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("A" * 31, "app_key.len应该大于或等于32, 但现在app_key.len = 31"),
        ("A" * 33, "app_key.len应该小于等于32, 但现在app_key.len = 33"),
        ("", "app_key.len应该大于或等于32, 但现在app_key.len = 0"),
        ("中" * 10, "app_key.len应该大于或等于32, 但现在app_key.len = 30"),  # bytes (strlen)
        ("中" * 31, "app_key.len应该小于等于32, 但现在app_key.len = 93"),
    ],
)
def test_app_key_length(key: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse({"app_key": key}, COMMON_RULES)
    assert (caught.value.ret, caught.value.msg) == (400, P + message)


def test_app_key_exact_length_passes() -> None:
    assert parse({"app_key": "中" * 10 + "AB"}, COMMON_RULES)["app_key"] == "中" * 10 + "AB"


@pytest.mark.parametrize("raw", ["40", "40.0", " 40", "40 ", "4e1", "+40", "040"])
def test_enum_loose_match(raw: str) -> None:
    assert parse({"size": raw}, USER_IMAGE.rules[1:2]) == {"size": 40}


@pytest.mark.parametrize("raw", ["50", "abc", "40abc", "0x28", "", "４０", "40\x00"])
def test_enum_rejects(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse({"size": raw}, USER_IMAGE.rules[1:2])
    assert caught.value.msg == P + f"参数size应该为：40/100/140/640，但现在size = {raw}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True), ("2", True), ("0.5", True), ("0", False), ("-1", False), ("0.0", False),
        ("true", True), ("TRUE", True), ("ok", True), ("Success", True), ("on", True),
        ("yes", True), ("false", False), ("no", False), ("", False), ("off", False),
        ("y", False), ("1abc", False),
    ],
)
def test_boolean(raw: str, expected: bool) -> None:
    assert parse_bool(raw) is expected


@pytest.mark.parametrize("raw", ["10000", "123456789012", "376741929"])
def test_number_accepts(raw: str) -> None:
    assert parse({"qq": raw}, (Number("qq", required=True),)) == {"qq": raw}


@pytest.mark.parametrize(
    "raw",
    ["abc", "1234", "1234567890123", "01234", "12345\n", "１２３４５", "١٢٣٤٥", "12 345", "", "-12345"],
)
def test_number_rejects(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse({"qq": raw}, (Number("qq", required=True),))
    assert caught.value.msg == P + f"qq应该是5到12位数字, 但现在qq = {raw}"


def test_number_echo_is_cut_to_32_chars_and_stays_valid_json() -> None:
    raw = '"}<script>' + "x" * 100
    with pytest.raises(ApiError) as caught:
        parse({"qq": raw}, (Number("qq", required=True),))
    assert caught.value.msg == P + f"qq应该是5到12位数字, 但现在qq = {raw[:32]}"
    body = envelope(400, b"{}", caught.value.msg, 1, None)
    assert json.loads(body)["msg"] == caught.value.msg


def test_string_bounds_message_for_other_names() -> None:
    with pytest.raises(ApiError) as caught:
        parse({"x": "ab"}, (Str("x", min_len=3),))
    assert caught.value.msg == P + "x.len应该大于或等于3, 但现在x.len = 2"


def test_php_number() -> None:
    assert php_number("1e3") == 1000.0
    assert php_number(".5") == 0.5
    assert php_number("1.") == 1.0
    assert php_number("") is None
    assert php_number(".") is None
    assert php_number("1_000") is None
    assert php_number("inf") is None
    assert php_number("nan") is None


# --- all rules at once (the gateway's usual call) against rule by rule -------------------------

_NAMES = ("app_key", "sign", "uuid", "token", "return_data", "callback", "qq", "size", "output",
          "format", "default", "s", "other")
_VALUES = ("", "0", "1", "40", "640", "40.0", " 40", "abc", "x" * 32, "12345", "10001",
           "0123456", "jpeg", "JPEG", "404", "identicon", "true", "cb_1", "a b", NESTED)


@given(st.dictionaries(st.sampled_from(_NAMES), st.sampled_from(_VALUES)))
def test_parse_all_gives_what_parse_gives_or_leaves_the_failure_to_it(
        params: dict[str, str]) -> None:
    rules = (*COMMON_RULES, *USER_IMAGE.rules)
    try:
        expected = parse(params, rules)
    except ApiError:
        expected = None
    assert parse_all(params, RuleSet(rules)) == expected


def test_a_rule_set_names_each_parameter_once() -> None:
    with pytest.raises(ValueError, match="two rules"):
        RuleSet((Str("uuid"), Str("uuid", required=True)))


# --- the error catalogue ---------------------------------------------------------------------

def test_error_texts() -> None:
    assert errors.uuid_without_token().msg == P + "uuid需要和token一起传递"
    assert (errors.unknown_service("App.X.Y").ret, errors.unknown_service("App.X.Y").msg) == (
        404, P + "接口服务App.X.Y不存在")
    assert (errors.unknown_app().ret, errors.unknown_app().msg) == (
        406, P + "非法app_key，请核对你所在的接口域名")
    assert (errors.bad_sign().ret, errors.bad_sign().msg) == (409, P + "签名错误")
    assert (errors.session_expired().ret, errors.session_expired().msg) == (
        401, P + "登录会话已过期，请重新登录")
    assert errors.server_error("x").msg == "服务器运行错误: x"
    assert errors.server_error("x").ret == 500


# --- service names ---------------------------------------------------------------------------

def test_service_resolution() -> None:
    assert resolve("App.QQ.UserImage") is USER_IMAGE
    assert resolve("app.qq.userimage") is USER_IMAGE
    assert resolve("QQ.UserImage") is USER_IMAGE
    assert canonical_name("X.Y") == "App.X.Y"
    with pytest.raises(ApiError) as caught:
        resolve("X.Y")
    assert caught.value.msg == P + "接口服务App.X.Y不存在"
    with pytest.raises(ApiError):
        resolve("UserImage")


# --- signatures ------------------------------------------------------------------------------

SECRET = "s3cr3t"


def test_sign_matches_the_documented_python() -> None:
    params = {"s": "App.QQ.UserImage", "app_key": "A" * 32, "qq": "10001", "size": "40"}
    expected = hashlib.md5(
        ("".join(params[k] for k in sorted(params)) + SECRET).encode()).hexdigest().upper()
    assert compute_sign(params, SECRET) == expected
    assert compute_sign({**params, "sign": "whatever"}, SECRET) == expected
    assert verify_sign(params, SECRET, expected)
    assert verify_sign(params, SECRET, expected.lower())
    assert not verify_sign(params, SECRET, expected[:-1] + ("0" if expected[-1] != "0" else "1"))
    assert not verify_sign({**params, "qq": "10002"}, SECRET, expected)  # replay on changed params
    assert not verify_sign(params, SECRET, "")


def test_sign_with_unicode_and_empty_values() -> None:
    params = {"b": "", "a": "中文"}
    assert compute_sign(params, SECRET) == hashlib.md5(("中文" + SECRET).encode()).hexdigest().upper()


def test_sign_orders_numeric_keys_like_php_ksort() -> None:
    # PHP: integer keys compare numerically, so 9 comes before 10 (byte order would say "10" < "9").
    params = {"10": "ten", "9": "nine", "a": "A"}
    expected = hashlib.md5(("nine" + "ten" + "A" + SECRET).encode()).hexdigest().upper()
    assert compute_sign(params, SECRET) == expected


# --- envelope, _auth, JSONP -------------------------------------------------------------------

def test_envelope_key_order_and_auth() -> None:
    data = dumps({"err_code": 0, "err_msg": "", "img": "a/b"})
    body = envelope(200, data, "", 1683778302, "SECRET")
    assert body.startswith(b'{"ret":200,"data":{"err_code":0,"err_msg":"","img":"a\\/b"},"msg":"","_t":1683778302,"_auth":"')
    decoded = json.loads(body)
    assert list(decoded) == ["ret", "data", "msg", "_t", "_auth"]
    assert decoded["_auth"] == hashlib.md5(data + b"1683778302SECRET").hexdigest()
    assert auth(data, 1683778302, "SECRET") == decoded["_auth"]


def test_envelope_without_known_app_has_no_auth() -> None:
    body = envelope(406, b"{}", P + "非法app_key，请核对你所在的接口域名", 5, None)
    assert body == ('{"ret":406,"data":{},"msg":"' + P + '非法app_key，请核对你所在的接口域名","_t":5}').encode()


@pytest.mark.parametrize("callback", ["cb", "$", "_x", "jQuery123_456", "a.b.c", "A" * 64])
def test_callback_accepted(callback: str) -> None:
    assert is_valid_callback(callback)


@pytest.mark.parametrize(
    "callback",
    ["", "1cb", "a-b", "alert(1)", "a b", "cb\n", "A" * 65, "a;b", "a[0]", "ｃｂ", "<script>"],
)
def test_callback_refused(callback: str) -> None:
    assert not is_valid_callback(callback)


def test_jsonp() -> None:
    assert jsonp("cb", b'{"ret":200}') == b'cb({"ret":200})'


def test_readme_worked_example() -> None:
    params = {"s": "App.QQ.UserImage", "app_key": "0123456789ABCDEF0123456789ABCDEF",
              "qq": "376741929", "size": "40"}
    assert compute_sign(params, "SECRET") == "BD75A336D0451F451F82F4DBC6CC4247"
