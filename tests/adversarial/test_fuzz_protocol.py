"""Bad input, fuzzed: whatever arrives, the answer is a well-formed envelope — never a 500.

Property-based (hypothesis) over the pure protocol layer and over a real server.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qqavatar.catalog import COMMON_RULES, GROUP_IMAGE, SERVICES, USER_IMAGE
from qqavatar.protocol.envelope import envelope
from qqavatar.protocol.errors import CLIENT_PREFIX, ApiError
from qqavatar.protocol.params import parse
from qqavatar.protocol.sign import compute_sign, verify_sign
from tests.server_fixture import RunningServer

NAMES = st.sampled_from(["app_key", "qq", "group", "size", "output", "return_data", "callback",
                         "uuid", "token", "sign", "s", "service", "x", "", "9", "10", "qq[]"])
VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "0", "1", "40", "640", "10001", "１２３４５", "1e3", " 40", "true",
                     "\x00", "\u2028", "a/b", '"}', "<script>", "%ff", "\ud800x"]),
    st.text(min_size=1000, max_size=3000),
)
PARAMS = st.dictionaries(NAMES, VALUES, max_size=8)
# Past Python's 4 300-digit limit on int() of a digit string (issue 20: `size` was a 500).
LONG_DIGITS = st.builds(lambda digit, n: digit * n, st.sampled_from("0123456789"),
                        st.integers(min_value=4300, max_value=12000))
# Every parameter any service reads, and the service names themselves.
EVERY_NAME = sorted({rule.name for service in SERVICES.values()
                     for rule in (*COMMON_RULES, *service.rules)} | {"s", "service"})


@given(PARAMS)
@settings(max_examples=400, deadline=None)
def test_rules_only_ever_raise_client_errors(params: dict[str, str]) -> None:
    for rules in (COMMON_RULES, USER_IMAGE.rules, GROUP_IMAGE.rules):
        try:
            parse(params, rules)
        except ApiError as error:
            assert error.ret == 400
            assert error.msg.startswith(CLIENT_PREFIX)
            assert len(error.msg) < 200  # echoed values are cut
            body = envelope(error.ret, b"{}", error.msg, 1, "secret")
            expected = re.sub("[\ud800-\udfff]", "\ufffd", error.msg)  # lone surrogates
            assert json.loads(body)["msg"] == expected


@given(st.sampled_from(EVERY_NAME), LONG_DIGITS)
@settings(max_examples=200, deadline=None)
def test_long_digit_strings_in_every_parameter_of_every_service(name: str, digits: str) -> None:
    for service in SERVICES.values():
        for rules in (COMMON_RULES, service.rules):
            try:
                parse({name: digits}, rules)
            except ApiError as error:
                assert error.ret == 400 and error.msg.startswith(CLIENT_PREFIX)
                assert len(error.msg) < 200


@given(PARAMS, st.text(max_size=70))
@settings(max_examples=300, deadline=None)
def test_signature_is_a_function_of_the_parameters(params: dict[str, str], secret: str) -> None:
    sign = compute_sign(params, secret)
    assert len(sign) == 32 and sign == sign.upper()
    assert verify_sign({**params, "sign": sign}, secret, sign)
    assert verify_sign(params, secret, sign.lower())
    changed = {**params, "zz_added": "1"}
    assert not verify_sign(changed, secret, sign)


# --- through a real server -------------------------------------------------------------------

RAW_BYTES = st.binary(max_size=200)


def _assert_well_formed(response: httpx.Response) -> dict[str, Any] | None:
    assert response.status_code < 500 or response.status_code in (502, 504), response.text[:300]
    assert b"Traceback" not in response.content
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("image/"):
        return None
    if content_type.startswith("text/plain"):  # plain 404/405 outside the API
        assert response.status_code in (404, 405)
        return None
    text = response.content
    if content_type.startswith("text/javascript"):
        text = text[text.index(b"(") + 1:-1]
    decoded: dict[str, Any] = json.loads(text)
    if "ret" in decoded:
        assert decoded["ret"] in (200, 400, 401, 402, 404, 405, 406, 408, 409, 413)
        assert isinstance(decoded["msg"], str) and isinstance(decoded["_t"], int)
        if decoded["ret"] != 200:
            assert decoded["msg"].startswith(CLIENT_PREFIX)
    return decoded


@pytest.fixture(scope="module")
def http(server: RunningServer) -> httpx.Client:
    return server.client


@given(st.lists(st.tuples(RAW_BYTES, RAW_BYTES), max_size=6))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_query_string(http: httpx.Client, app: dict[str, Any], pairs: list[tuple[bytes, bytes]]) -> None:
    query = "&".join(quote_from_bytes(k) + "=" + quote_from_bytes(v) for k, v in pairs)
    for prefix in ("/?s=App.QQ.UserImage&", "/api/App/QQ/GroupImage?", "/?"):
        response = http.get(prefix + f"app_key={app['app_key']}&" + query)
        _assert_well_formed(response)


@given(RAW_BYTES, st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=xyz", "multipart/form-data",
                                   "text/plain", "", "application/json; charset=gbk"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_body(http: httpx.Client, app: dict[str, Any], body: bytes, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = http.post(f"/?s=App.QQ.UserImage&output=0&app_key={app['app_key']}",
                         content=body, headers=headers)
    _assert_well_formed(response)


@given(st.dictionaries(st.text(max_size=20), st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
    max_size=6))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_json_object(http: httpx.Client, app: dict[str, Any], payload: dict[str, Any]) -> None:
    response = http.post("/?s=App.QQ.UserImage&output=0",
                         json={"app_key": app["app_key"], **payload})
    _assert_well_formed(response)


@given(st.sampled_from(EVERY_NAME), LONG_DIGITS,
       st.sampled_from(sorted(service.name for service in SERVICES.values())),
       st.sampled_from(["query", "form", "json text", "json number"]))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_long_digit_strings_in_every_parameter_through_the_server(
        http: httpx.Client, app: dict[str, Any], name: str, digits: str, service: str,
        carried: str) -> None:
    base = {"s": service, "app_key": app["app_key"], "qq": "10001", "group": "10001",
            "output": "0"}
    if carried == "query":
        response = http.get("/", params={**base, name: digits})
    elif carried == "form":
        response = http.post("/", data={**base, name: digits})
    else:  # a JSON string, or the digits as a JSON number (PHP: a float, INF past its range)
        body = json.dumps({**base, name: digits}) if carried == "json text" else \
            json.dumps(base)[:-1] + f', "{name}": {digits}}}'
        response = http.post("/", content=body.encode(), headers={"content-type": "text/plain"})
    _assert_well_formed(response)


def test_repeated_keys_last_wins_and_sign_agrees(http: httpx.Client, server: RunningServer) -> None:
    signed = server.create_app("fuzz-signed", sign_required=True)
    server.wait_for_app(signed["app_key"])
    params = {"s": "App.QQ.UserImage", "app_key": signed["app_key"], "qq": "10001", "output": "0"}
    sign = compute_sign(params, signed["app_secret"])
    query = "&".join(f"{k}={v}" for k, v in params.items())
    reply = http.get(f"/?qq=99999&{query}&sign={sign}").json()  # the first qq is overridden
    assert reply["ret"] == 200
    reply = http.get(f"/?{query}&qq=99999&sign={sign}").json()  # the last qq wins: sign is wrong
    assert reply["ret"] == 409


def test_body_and_query_both_carry_params(http: httpx.Client, app: dict[str, Any]) -> None:
    reply = http.post(f"/?s=App.QQ.UserImage&output=0&app_key={app['app_key']}&qq=bad",
                      data={"qq": "10001"}).json()
    assert reply["ret"] == 200


@pytest.mark.parametrize("path", [
    "/api/../../etc/passwd", "/api/App/QQ/UserImage/../../x", "/api/App%2FQQ%2FUserImage",
    "/api/App/QQ/User.Image", "/api//QQ/UserImage", "/api/App/QQ/UserImage/extra/part",
])
def test_path_traversal_and_odd_paths(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    _assert_well_formed(response)
    assert response.status_code in (200, 400, 404)  # %2F decodes to a real service path


def test_huge_values_and_many_params(http: httpx.Client, app: dict[str, Any]) -> None:
    big = http.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                "qq": "1" * 5000, "output": "0"})
    reply = _assert_well_formed(big)
    assert reply is not None and reply["ret"] == 400 and len(reply["msg"]) < 200
    many = "&".join(f"p{i}=1" for i in range(1000))
    reply = _assert_well_formed(http.get(f"/?s=App.QQ.UserImage&{many}"))
    assert reply is not None and reply["ret"] == 400
    huge_body = http.post("/?s=App.QQ.UserImage", content=b"a=" + b"x" * (2 * 1024 * 1024),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    reply = _assert_well_formed(huge_body)
    assert reply is not None and reply["ret"] == 400


@pytest.mark.parametrize("callback", ["alert(1);//", "a\r\nSet-Cookie: x=1", "x</script>",
                                      "constructor.constructor('x')()", "a" * 65])
def test_jsonp_callbacks_cannot_inject(http: httpx.Client, app: dict[str, Any], callback: str) -> None:
    response = http.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                     "qq": "10001", "output": "0", "callback": callback})
    assert response.headers["content-type"].startswith("application/json")
    assert "set-cookie" not in response.headers
    assert response.json()["ret"] == 400


@pytest.mark.parametrize("number", ["１２３４５", "١٢٣٤٥", "12345\n", "12345%00", "1e10", "0x1F4A5",
                                    "12345/../1", "12345?x=1", "12345#", "+12345"])
def test_only_ascii_digits_reach_the_upstream(http: httpx.Client, app: dict[str, Any],
                                             fake_qlogo: Any, number: str) -> None:
    before = fake_qlogo.stats()["requests"]
    reply = http.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                  "qq": number, "output": "0"}).json()
    assert reply["ret"] == 400
    assert fake_qlogo.stats()["requests"] == before
