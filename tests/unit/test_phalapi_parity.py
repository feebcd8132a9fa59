"""Requests read as PhalApi 2.x reads them (issue 20), against a real server: each numbered
point of the differential run, and each difference kept on purpose (docs/compatibility.md),
with the exact answer a client gets."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from typing import Any

import pytest
from PIL import Image

from tests.server_fixture import RunningServer

P = "客户端非法请求："
LONG = "4" * 4301  # past Python's int() limit for digit strings
CUT = LONG[:32]    # what a message echoes of it


@pytest.fixture
def call(server: RunningServer, app: dict[str, Any]) -> Any:
    def send(query: dict[str, str] | None = None, *, body: bytes | None = None,
             content_type: str | None = None, method: str = "POST") -> dict[str, Any]:
        params = {"s": "App.QQ.UserImage", "app_key": app["app_key"], **(query or {})}
        headers = {} if content_type is None else {"content-type": content_type}
        response = server.client.request(method, "/", params=params, content=body,
                                         headers=headers)
        assert response.headers["content-type"].startswith("application/json"), response
        decoded: dict[str, Any] = json.loads(response.content)
        return decoded

    return send


def answer(reply: dict[str, Any]) -> tuple[int, str]:
    return reply["ret"], reply["msg"]


# --- 1. no client text reaches a 500 -----------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("size", f"参数size应该为：40/100/140/640，但现在size = {CUT}"),
    ("qq", f"qq应该是5到12位数字, 但现在qq = {CUT}"),
    ("app_key", "app_key.len应该小于等于32, 但现在app_key.len = 4301"),
    ("default", f"参数default应该为：qq/404/identicon，但现在default = {CUT}"),
    ("callback", f"参数callback格式不正确, 但现在callback = {CUT}"),
    ("uuid", "uuid需要和token一起传递"),
    ("sign", "签名错误"),
])
def test_1_long_digit_strings_are_refused_in_words(call: Any, name: str, expected: str) -> None:
    reply = call({"qq": "10001", "output": "0", name: LONG}, method="GET")
    assert answer(reply) == (409 if name == "sign" else 400, P + expected)


def test_1_long_digit_strings_are_true(server: RunningServer, call: Any) -> None:
    """A boolean reads a numeric string as a number: 4 301 digits are > 0."""
    assert call({"qq": "10001", "output": "0", "return_data": LONG}, method="GET") \
        ["err_code"] == 0
    response = server.client.get("/", params={"s": "App.QQ.UserImage", "qq": "10001",
                                              "app_key": "A" * 32, "output": LONG})
    assert response.status_code == 406  # image mode: the HTTP status is the ret


def test_1_long_size_with_an_unknown_app_key(server: RunningServer) -> None:
    reply = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": "A" * 32,
                                           "qq": "10001", "size": LONG}).json()
    assert answer(reply) == (400, f"{P}参数size应该为：40/100/140/640，但现在size = {CUT}")


def test_1_long_numbers_in_a_json_body_are_php_floats(call: Any) -> None:
    # json_decode reads an integer past 64 bits as a float: 4 301 digits are INF.
    reply = call(body=b'{"qq": "10001", "output": 0, "size": ' + LONG.encode() + b"}")
    assert answer(reply) == (400, f"{P}参数size应该为：40/100/140/640，但现在size = INF")
    reply = call(body=b'{"output": 0, "qq": 1000100000000000000000}')
    assert answer(reply) == (400, f"{P}qq应该是5到12位数字, 但现在qq = 1.0001E+21")


# --- 2. a JSON object body whatever the Content-Type --------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", None,
                                          "application/json"])
def test_2_json_bodies_whatever_the_content_type(server: RunningServer, app: dict[str, Any],
                                                 content_type: str | None) -> None:
    body = json.dumps({"s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001",
                       "size": 40, "output": False}).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    reply = server.client.post("/", content=body, headers=headers).json()
    assert answer(reply) == (200, "") and reply["data"]["size"] == 40


def test_2_a_real_form_body_is_still_a_form(call: Any) -> None:
    reply = call(body=b"qq=10001&output=0&size=40",
                 content_type="application/x-www-form-urlencoded")
    assert answer(reply) == (200, "") and reply["data"]["size"] == 40


# --- 3. JSON null is absent ---------------------------------------------------------------------

def test_3_null_output_is_the_default_image(server: RunningServer, app: dict[str, Any]) -> None:
    response = server.client.post("/", params={"s": "App.QQ.UserImage"}, json={
        "app_key": app["app_key"], "qq": "10001", "output": None})
    assert response.headers["content-type"].startswith("image/")


def test_3_null_size_is_the_default_size(call: Any) -> None:
    reply = call({"qq": "10001", "output": "0"}, body=b'{"size": null}')
    assert answer(reply) == (200, "") and reply["data"]["size"] == 100


def test_3_null_qq_is_missing_even_over_the_query(call: Any) -> None:
    # array_merge puts null over the query's qq; isset() then says it is not there.
    reply = call({"qq": "10001", "output": "0"}, body=b'{"qq": null}')
    assert answer(reply) == (400, f"{P}缺少必要参数qq")


# --- 4. unknown keys are never read -------------------------------------------------------------

@pytest.mark.parametrize("extra", [b'{"a": 1}', b"[1]", b'{"deep": [[{"x": null}]]}'])
def test_4_nested_values_of_unknown_keys_are_never_read(call: Any, extra: bytes) -> None:
    reply = call({"qq": "10001", "output": "0"}, body=b'{"extra": ' + extra + b', "tags": [1]}')
    assert answer(reply) == (200, "")


# --- 5. a JSON body that is not an object is ignored ----------------------------------------------

@pytest.mark.parametrize("body", [b"null", b"[]", b"true", b"[1,2]", b'"abc"', b"5", b"{bad",
                                  b"{}", b'{"qq": NaN}', b'{"qq": "\\ud800"}', b"\xff{}"])
def test_5_a_body_that_is_not_an_object_is_ignored(call: Any, body: bytes) -> None:
    reply = call({"qq": "10001", "output": "0"}, body=body, content_type="application/json")
    assert answer(reply) == (200, "")


# --- 6. an empty service name --------------------------------------------------------------------

def test_6_an_empty_service_name_is_illegal(server: RunningServer) -> None:
    for params in ({"s": ""}, {"s": "App.QQ.UserImage", "service": ""}, {"service": ""}):
        reply = server.client.get("/", params=params).json()
        assert answer(reply) == (400, f"{P}非法服务："), params
    assert answer(server.client.get("/", params={"s": "App.QQ."}).json()) == \
        (400, f"{P}非法服务：App.QQ.")


# --- 7. one-part and four-part names; app_key counted in bytes -----------------------------------

def test_7_a_one_part_name_is_its_index(server: RunningServer) -> None:
    reply = server.client.get("/", params={"s": "QQ"}).json()
    assert answer(reply) == (404, f"{P}接口服务App.QQ.Index不存在")


def test_7_past_three_parts_the_rest_is_dropped(call: Any) -> None:
    reply = call({"s": "App.QQ.UserImage.Extra.More", "qq": "10001", "output": "0"})
    assert answer(reply) == (200, "")


def test_7_app_key_length_is_counted_in_bytes(server: RunningServer) -> None:
    reply = server.client.get("/", params={"s": "App.QQ.UserImage", "qq": "10001",
                                           "app_key": "中" * 11}).json()
    assert answer(reply) == (400, f"{P}app_key.len应该小于等于32, 但现在app_key.len = 33")


# --- differences kept on purpose ------------------------------------------------------------------

def test_kept_yesapi_qq_rule_text_and_echo_cut(call: Any) -> None:
    reply = call({"qq": "a" * 40, "output": "0"}, method="GET")
    assert answer(reply) == (400, f"{P}qq应该是5到12位数字, 但现在qq = {'a' * 32}")


def test_kept_qq_is_required(call: Any) -> None:
    assert answer(call({"output": "0"}, method="GET")) == (400, f"{P}缺少必要参数qq")


def test_kept_service_names_are_case_insensitive(call: Any) -> None:
    assert answer(call({"s": "app.qq.userimage", "qq": "10001", "output": "0"})) == (200, "")


def test_kept_get_rules_is_not_a_service(server: RunningServer) -> None:
    reply = server.client.get("/", params={"s": "App.QQ.getRules"}).json()
    assert answer(reply) == (404, f"{P}接口服务App.QQ.getRules不存在")


def test_kept_app_key_is_exactly_32_characters(server: RunningServer) -> None:
    reply = server.client.get("/", params={"s": "App.QQ.UserImage", "qq": "10001",
                                           "app_key": "A" * 33}).json()
    assert answer(reply) == (400, f"{P}app_key.len应该小于等于32, 但现在app_key.len = 33")


def test_kept_nested_values_of_known_parameters_are_refused(call: Any) -> None:
    reply = call({"qq": "10001", "output": "0"}, body=b'{"size": [40]}')
    assert answer(reply) == (400, f"{P}参数size不能是数组或对象")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_kept_put_and_delete_are_refused(server: RunningServer, method: str) -> None:
    response = server.client.request(method, "/?s=App.Site.Index")
    assert (response.status_code, response.text) == (405, f"Method {method} Not Allowed")
    assert response.headers["allow"] == "GET, POST, HEAD"


def test_kept_body_and_parameter_count_limits(call: Any) -> None:
    many = json.dumps({f"p{i}": "1" for i in range(257)}).encode()
    assert answer(call({"qq": "10001"}, body=many)) == (400, f"{P}参数不能超过256个")
    big = b'{"pad": "' + b"a" * (1024 * 1024) + b'"}'
    assert answer(call({"qq": "10001"}, body=big)) == (400, f"{P}请求体不能超过1048576字节")


def test_kept_bodies_of_gets_are_not_read(server: RunningServer, app: dict[str, Any]) -> None:
    response = server.client.request("GET", "/", params={
        "s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001", "size": "40"},
        content=b'{"size": 640}')
    assert Image.open(io.BytesIO(response.content)).size == (40, 40)
    assert response.headers["connection"] == "close"


def test_kept_the_api_path_names_the_service_over_s(server: RunningServer,
                                                    app: dict[str, Any]) -> None:
    reply = server.client.get("/api/App/QQ/UserImage", params={
        "s": "App.QQ.GroupImage", "app_key": app["app_key"], "qq": "10001",
        "output": "0"}).json()
    assert answer(reply) == (200, "")  # GroupImage would want its `group`


def _member(server: RunningServer, app: dict[str, Any], service: str, name: str,
            password: str) -> dict[str, Any]:
    reply: dict[str, Any] = server.client.get(f"/api/App/User/{service}", params={
        "app_key": app["app_key"], "username": name,
        "password": hashlib.md5(password.encode()).hexdigest()}).json()
    return reply


def test_kept_one_answer_for_both_login_failures(server: RunningServer,
                                                 app: dict[str, Any]) -> None:
    name = "parity-" + secrets.token_hex(6)
    assert _member(server, app, "Register", name, "right")["data"]["err_code"] == 0
    unknown = _member(server, app, "Login", "nobody-" + secrets.token_hex(6), "right")
    wrong = _member(server, app, "Login", name, "wrong")
    assert unknown["data"] == wrong["data"]  # the same bytes for both: nothing to tell
    assert (wrong["ret"], wrong["data"]["err_code"], wrong["data"]["err_msg"]) == (
        200, 1, "登录失败，账号不存在或密码错误")


def test_kept_link_urls_never_come_from_host(server: RunningServer,
                                             app: dict[str, Any]) -> None:
    reply = server.client.get("/api/App/QQ/UserImageLink", params={
        "app_key": app["app_key"], "qq": "10001"}, headers={"Host": "avatar.example.com"}).json()
    assert reply["ret"] == 200 and reply["data"]["url"].startswith(server.url + "/a/"), reply


def test_kept_per_client_failed_login_budget(server: RunningServer,
                                             app: dict[str, Any]) -> None:
    name = "parity-" + secrets.token_hex(6)
    assert _member(server, app, "Register", name, "right")["data"]["err_code"] == 0
    for _ in range(10):  # QQAVATAR_CLIENT_FAILED_LOGINS: 10 a minute per username
        assert _member(server, app, "Login", name, "wrong")["data"]["err_code"] == 1
    refused = _member(server, app, "Login", name, "right")  # even the right password
    assert answer(refused) == (408, f"{P}登录失败次数过多，请稍后再试")
