"""SPEC §1–5 through a real server on a loopback port, against the fake qlogo."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import io
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from PIL import Image

from qqavatar.protocol.sign import compute_sign
from tests.server_fixture import RunningServer

P = "客户端非法请求："
JSON_TYPE = "application/json;charset=utf-8"


def call(server: RunningServer, app: dict[str, Any], **params: str) -> httpx.Response:
    return server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                          **params})


def envelope(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == JSON_TYPE
    decoded: dict[str, Any] = json.loads(response.content)
    return decoded


def assert_auth(response: httpx.Response, secret: str) -> None:
    """_auth = md5(the exact data bytes in the body + _t + secret)."""
    body = response.content
    start = body.index(b',"data":') + len(b',"data":')
    end = body.rindex(b',"msg":')
    decoded = json.loads(body)
    expected = hashlib.md5(body[start:end] + str(decoded["_t"]).encode() + secret.encode())
    assert decoded["_auth"] == expected.hexdigest()


# --- §1 endpoints and URL styles ---------------------------------------------------------------

def test_site_index_at_root(server: RunningServer) -> None:
    reply = envelope(server.client.get("/"))
    assert reply["ret"] == 200
    assert reply["data"]["name"] == "qqavatar"
    assert {"App.QQ.UserImage", "App.QQ.GroupImage"} <= set(reply["data"]["services"])
    assert list(reply) == ["ret", "data", "msg", "_t"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/?s=App.QQ.UserImage", {}),
        ("GET", "/api/App/QQ/UserImage", {}),
        ("POST", "/?s=App.QQ.UserImage", {}),
        ("POST", "/api/App/QQ/UserImage", {}),
        ("GET", "/?service=App.QQ.UserImage&s=App.Nope.Nope", {}),  # service wins over s
        ("GET", "/?s=app.qq.userimage", {}),                          # case-insensitive
        ("GET", "/?s=QQ.UserImage", {}),                              # two-part name
        ("GET", "/api/QQ/UserImage", {}),
    ],
)
def test_url_styles(server: RunningServer, app: dict[str, Any], method: str, path: str,
                    kwargs: dict[str, Any]) -> None:
    params = urlencode({"app_key": app["app_key"], "qq": "10001", "output": "0"})
    response = server.client.request(method, path + ("&" if "?" in path else "?") + params)
    reply = envelope(response)
    assert reply["ret"] == 200, reply
    assert base64.b64decode(reply["data"]["img"])[:3] == b"\xff\xd8\xff"  # JPEG


def test_group_image_both_styles(server: RunningServer, app: dict[str, Any]) -> None:
    query = urlencode({"app_key": app["app_key"], "group": "20005"})
    for path in ("/?s=App.QQ.GroupImage&", "/api/App/QQ/GroupImage?"):
        response = server.client.get(path + query)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (100, 100)


def test_post_bodies_merge_and_body_wins(server: RunningServer, app: dict[str, Any]) -> None:
    query = {"s": "App.QQ.UserImage", "qq": "99999", "output": "0"}
    fields = {"app_key": app["app_key"], "qq": "10002", "size": "40"}
    urlencoded = server.client.post("/", params=query, data=fields)
    multipart = server.client.post("/", params=query, data=fields, files={"ignored": b"x"})
    as_json = server.client.post("/", params=query, json={**fields, "size": 40})
    for response in (urlencoded, multipart, as_json):
        reply = envelope(response)
        assert reply["ret"] == 200, reply
        image = Image.open(io.BytesIO(base64.b64decode(reply["data"]["img"])))
        assert image.size == (40, 40)
    stats = server.client.get("/", params={**query, "app_key": app["app_key"], "qq": "10002"})
    assert stats.status_code == 200


def test_a_body_that_is_neither_json_nor_a_form_is_ignored(server: RunningServer) -> None:
    """PhalApi reads a body that does not decode as a JSON object, under a Content-Type that
    is no form, as no parameters: the call is the query's alone (here: no app_key)."""
    response = server.client.post("/?s=App.QQ.UserImage&qq=10001&output=0",
                                  content=b"{nope",
                                  headers={"content-type": "application/json"})
    reply = envelope(response)
    assert (response.status_code, reply["ret"], reply["msg"]) == (200, 400, P + "缺少必要参数app_key")


def test_unknown_service(server: RunningServer) -> None:
    for path in ("/?s=App.X.Y", "/api/App/X/Y", "/?s=X.Y"):
        reply = envelope(server.client.get(path))
        assert (reply["ret"], reply["msg"], reply["data"]) == (404, P + "接口服务App.X.Y不存在", {})


def test_an_unknown_path_is_404_with_the_error_envelope(server: RunningServer) -> None:
    for path in ("/favicon.ico", "/api/App/QQ/UserImage/More"):
        response = server.client.get(path)
        reply = envelope(response)
        assert (response.status_code, reply["ret"], reply["msg"], reply["data"]) == \
            (404, 404, P + f"路径{path}不存在", {})


# --- §2 parameters -----------------------------------------------------------------------------

KEY = "0123456789ABCDEF0123456789ABCDEF"


@pytest.mark.parametrize(
    ("params", "ret", "msg"),
    [
        ({}, 400, "缺少必要参数app_key"),
        ({"app_key": "A" * 31}, 400, "app_key.len应该大于或等于32, 但现在app_key.len = 31"),
        ({"app_key": "A" * 33}, 400, "app_key.len应该小于等于32, 但现在app_key.len = 33"),
        ({"app_key": KEY}, 400, "缺少必要参数qq"),
        ({"app_key": KEY, "qq": "10001", "size": "50"}, 400,
         "参数size应该为：40/100/140/640，但现在size = 50"),
        ({"app_key": KEY, "qq": "abc"}, 400, "qq应该是5到12位数字, 但现在qq = abc"),
        ({"app_key": KEY, "qq": "x" * 40}, 400, "qq应该是5到12位数字, 但现在qq = " + "x" * 32),
        ({"app_key": KEY, "qq": "10001", "uuid": "U"}, 400, "uuid需要和token一起传递"),
        ({"app_key": KEY, "qq": "10001", "token": "T"}, 400, "uuid需要和token一起传递"),
        ({"app_key": KEY, "qq": "10001"}, 406, "非法app_key，请核对你所在的接口域名"),
    ],
)
def test_rule_failures(server: RunningServer, params: dict[str, str], ret: int, msg: str) -> None:
    json_mode = server.client.get("/", params={"s": "App.QQ.UserImage", "output": "0", **params})
    reply = envelope(json_mode)
    assert (json_mode.status_code, reply["ret"], reply["msg"], reply["data"]) == (200, ret, P + msg, {})
    image_mode = server.client.get("/", params={"s": "App.QQ.UserImage", **params})
    assert image_mode.status_code == ret  # so that <img onerror> fires
    assert envelope(image_mode)["msg"] == P + msg


def test_group_rule_uses_its_name(server: RunningServer) -> None:
    reply = envelope(server.client.get("/", params={"s": "App.QQ.GroupImage", "app_key": KEY}))
    assert reply["msg"] == P + "缺少必要参数group"


def test_size_loose_and_output_boolean(server: RunningServer, app: dict[str, Any]) -> None:
    for size in ("640", "640.0", " 140"):
        response = call(server, app, qq="10003", size=size)
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.content)).size[0] == int(float(size))
    for output in ("0", "false", "no", "", "off", "-1"):
        assert envelope(call(server, app, qq="10003", output=output))["ret"] == 200
    for output in ("1", "true", "YES", "ok", "success", "on", "2"):
        assert call(server, app, qq="10003", output=output).headers["content-type"] == "image/jpeg"


# --- §3 responses -----------------------------------------------------------------------------

def test_json_answer(server: RunningServer, app: dict[str, Any]) -> None:
    response = call(server, app, qq="10004", size="140", output="0")
    reply = envelope(response)
    assert list(reply) == ["ret", "data", "msg", "_t", "_auth"]
    assert list(reply["data"]) == ["err_code", "err_msg", "img", "is_default", "content_type", "size"]
    assert (reply["ret"], reply["msg"], reply["data"]["err_code"], reply["data"]["err_msg"]) == (
        200, "", 0, "")
    assert reply["data"]["is_default"] is False
    assert reply["data"]["content_type"] == "image/jpeg"
    assert b"image\\/jpeg" in response.content  # PHP-style slashes on the wire
    assert "/" not in response.text.split('"img":"')[1].split('"')[0].replace("\\/", "")
    image_bytes = base64.b64decode(reply["data"]["img"])
    assert image_bytes == call(server, app, qq="10004", size="140").content
    assert abs(reply["_t"] - __import__("time").time()) < 5
    assert_auth(response, app["app_secret"])


def test_default_avatar_is_flagged(server: RunningServer, app: dict[str, Any]) -> None:
    reply = envelope(call(server, app, qq="10010", output="0"))
    assert reply["data"]["is_default"] is True
    response = call(server, app, qq="10010")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/")


def test_png_avatar(server: RunningServer, app: dict[str, Any]) -> None:
    response = call(server, app, qq="10005")
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_error_envelope_has_auth_when_app_known(server: RunningServer, app: dict[str, Any]) -> None:
    response = call(server, app, qq="abc", output="0")
    reply = envelope(response)
    assert reply["ret"] == 400 and "_auth" in reply
    assert_auth(response, app["app_secret"])
    assert "_auth" not in envelope(server.client.get("/", params={"s": "App.QQ.UserImage",
                                                                   "app_key": KEY, "qq": "abc"}))


def test_return_data(server: RunningServer, app: dict[str, Any]) -> None:
    response = call(server, app, qq="10006", output="0", return_data="1")
    data = envelope(response)
    assert list(data) == ["err_code", "err_msg", "img", "is_default", "content_type", "size"]
    assert envelope(call(server, app, qq="bad", output="0", return_data="1")) == {}


def test_jsonp(server: RunningServer, app: dict[str, Any]) -> None:
    response = call(server, app, qq="10006", output="0", callback="my.cb_1")
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.content.startswith(b"my.cb_1({") and response.content.endswith(b"})")
    reply = json.loads(response.content[len("my.cb_1("):-1])
    assert reply["ret"] == 200


@pytest.mark.parametrize("callback", ["alert(1)//", "a-b", "</script>", "1x", ""])
def test_bad_callback_is_400_plain_json(server: RunningServer, app: dict[str, Any],
                                        callback: str) -> None:
    response = call(server, app, qq="10006", output="0", callback=callback)
    reply = envelope(response)
    assert reply["ret"] == 400
    assert reply["msg"].startswith(P + "参数callback格式不正确")


def test_callback_is_signed_like_any_parameter(tmp_path_factory: pytest.TempPathFactory,
                                               server: RunningServer) -> None:
    signed = server.create_app("signed-jsonp", sign_required=True)
    server.wait_for_app(signed["app_key"])
    params = {"s": "App.QQ.UserImage", "app_key": signed["app_key"], "qq": "10001",
              "output": "0", "callback": "cb"}
    good = server.client.get("/", params={**params, "sign": compute_sign(params, signed["app_secret"])})
    assert good.content.startswith(b"cb(") and json.loads(good.content[3:-1])["ret"] == 200
    no_cb = {key: value for key, value in params.items() if key != "callback"}
    reused = server.client.get("/", params={**params, "sign": compute_sign(no_cb, signed["app_secret"])})
    assert json.loads(reused.content[3:-1])["ret"] == 409


def test_image_mode_headers_and_304(server: RunningServer, app: dict[str, Any]) -> None:
    response = call(server, app, qq="10007", size="640")
    assert response.status_code == 200
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) >= 34
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert int(response.headers["cache-control"].split("=")[1]) > 0
    again = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                           "qq": "10007", "size": "640"},
                              headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    listed = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                            "qq": "10007", "size": "640"},
                               headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    other = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                           "qq": "10007", "size": "640"},
                              headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content == response.content


def test_head_has_no_body(server: RunningServer, app: dict[str, Any]) -> None:
    response = server.client.head("/", params={"s": "App.QQ.UserImage",
                                               "app_key": app["app_key"], "qq": "10007"})
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) > 0


def test_other_methods_refused(server: RunningServer) -> None:
    response = server.client.request("DELETE", "/?s=App.QQ.UserImage")
    assert response.status_code == 405 and "GET" in response.headers["allow"]


# --- §4 apps and signatures -------------------------------------------------------------------

@pytest.fixture(scope="module")
def signed_app(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("signed", sign_required=True)
    server.wait_for_app(record["app_key"])
    return record


def test_sign_required(server: RunningServer, signed_app: dict[str, Any]) -> None:
    params = {"s": "App.QQ.UserImage", "app_key": signed_app["app_key"], "qq": "10001", "output": "0"}
    missing = envelope(server.client.get("/", params=params))
    assert (missing["ret"], missing["msg"]) == (400, P + "缺少必要参数sign")
    wrong = envelope(server.client.get("/", params={**params, "sign": "0" * 32}))
    assert (wrong["ret"], wrong["msg"]) == (409, P + "签名错误")
    assert "_auth" in wrong
    sign = compute_sign(params, signed_app["app_secret"])
    assert envelope(server.client.get("/", params={**params, "sign": sign}))["ret"] == 200
    assert envelope(server.client.get("/", params={**params, "sign": sign.lower()}))["ret"] == 200
    new_style = {key: value for key, value in params.items() if key != "s"}
    sign_new = compute_sign(new_style, signed_app["app_secret"])
    reply = envelope(server.client.get("/api/App/QQ/UserImage", params={**new_style, "sign": sign_new}))
    assert reply["ret"] == 200
    tampered = envelope(server.client.get("/", params={**params, "qq": "10002", "sign": sign}))
    assert tampered["ret"] == 409


def test_sign_over_post_body(server: RunningServer, signed_app: dict[str, Any]) -> None:
    fields = {"app_key": signed_app["app_key"], "qq": "10001", "output": "0", "size": "40"}
    query = {"s": "App.QQ.UserImage"}
    sign = compute_sign({**query, **fields}, signed_app["app_secret"])
    response = server.client.post("/", params=query, data={**fields, "sign": sign})
    assert envelope(response)["ret"] == 200


def test_sign_checked_even_when_not_required(server: RunningServer, app: dict[str, Any]) -> None:
    params = {"s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001", "output": "0"}
    assert envelope(server.client.get("/", params={**params, "sign": "BAD"}))["ret"] == 409
    good = compute_sign(params, app["app_secret"])
    assert envelope(server.client.get("/", params={**params, "sign": good}))["ret"] == 200


# --- §5 avatars ------------------------------------------------------------------------------

def test_concurrent_misses_make_one_upstream_request(server: RunningServer, app: dict[str, Any],
                                                     fake_qlogo: Any) -> None:
    fake_qlogo.fault("slow", delay_ms=300, numbers=["10000123"])
    before = fake_qlogo.stats()["by_key"].get("user:10000123:100", 0)

    def one(_: int) -> bytes:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            response = client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                               "qq": "10000123"})
            assert response.status_code == 200
            return response.content

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        bodies = set(pool.map(one, range(50)))
    assert len(bodies) == 1
    assert fake_qlogo.stats()["by_key"]["user:10000123:100"] - before == 1


@pytest.mark.parametrize(
    ("number", "mode", "err_code", "status"),
    [("300001", "error500", -3, 502), ("300002", "html", -3, 502),
     ("300003", "notimage", -3, 502), ("300004", "huge", -4, 502),
     ("300005", "hang", -2, 504), ("300006", "reset", -1, 502)],
)
def test_upstream_failures(server: RunningServer, app: dict[str, Any], fake_qlogo: Any,
                           number: str, mode: str, err_code: int, status: int) -> None:
    fake_qlogo.fault(mode, numbers=[number])
    response = call(server, app, qq=number, output="0")
    reply = envelope(response)
    assert reply["ret"] == 200
    assert reply["data"]["err_code"] == err_code
    assert reply["data"]["err_msg"] and not reply["data"]["err_msg"].isascii()
    assert_auth(response, app["app_secret"])
    image_mode = call(server, app, qq=number)
    assert image_mode.status_code == status
    assert envelope(image_mode)["data"]["err_code"] == err_code
    # never cached as an avatar: once the upstream heals, the next call fetches and succeeds
    fake_qlogo.fault("none")
    healed = call(server, app, qq=number)
    assert healed.status_code == 200 and healed.headers["content-type"].startswith("image/")


def test_cached_avatar_needs_no_upstream(server: RunningServer, app: dict[str, Any],
                                         fake_qlogo: Any) -> None:
    first = call(server, app, qq="10000456", size="40")
    before = fake_qlogo.stats()["requests"]
    for _ in range(5):
        assert call(server, app, qq="10000456", size="40").content == first.content
    assert fake_qlogo.stats()["requests"] == before


# --- apps appear and disappear while the server runs ------------------------------------------

def test_app_created_with_cli_is_usable_within_2s(server: RunningServer) -> None:
    record = server.create_app("late")
    assert len(record["app_key"]) == 32 and record["app_key"] == record["app_key"].upper()
    assert server.wait_for_app(record["app_key"], timeout=2.0) <= 2.0
    done = server.cli("app", "delete", record["app_key"], "--yes")
    assert done.returncode == 0, done.stderr
    params = {"s": "App.QQ.UserImage", "app_key": record["app_key"], "qq": "10001", "output": "0"}
    for _ in range(40):
        if envelope(server.client.get("/", params=params))["ret"] == 406:
            break
        __import__("time").sleep(0.05)
    assert envelope(server.client.get("/", params=params))["ret"] == 406
