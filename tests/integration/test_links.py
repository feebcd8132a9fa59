"""Private avatar links through a real server, against the fake qlogo (issue 7)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from qqavatar.protocol.sign import compute_sign
from tests.server_fixture import RunningServer

P = "客户端非法请求："
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
LINK_PATH = re.compile(r"/a/[A-Za-z0-9_-]+")


def make_link(server: RunningServer, app: dict[str, Any], service: str = "UserImageLink",
              **params: str) -> str:
    reply = server.client.get(f"/api/App/QQ/{service}",
                              params={"app_key": app["app_key"], **params}).json()
    assert reply["ret"] == 200, reply
    url: str = reply["data"]["url"]
    return url


def path_of(url: str) -> str:
    return urlsplit(url).path


def number_spellings(number: str) -> list[str]:
    """The number as decimal and hex, and base64 of its decimal text (all four variants)."""
    raw = number.encode()
    spellings = [number, format(int(number), "x"), format(int(number), "X")]
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        spellings += [encoded.decode(), encoded.decode().rstrip("=")]
    return spellings


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, (response.request.url, response.status_code)
    assert response.text == "Not Found"
    assert response.headers["cache-control"] == "no-store"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until `condition()` holds; fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - start


# --- the services ------------------------------------------------------------------------------

def test_user_image_link_answer(server: RunningServer, app: dict[str, Any]) -> None:
    response = server.client.get("/", params={"s": "App.QQ.UserImageLink",
                                              "app_key": app["app_key"], "qq": "376741929"})
    body = response.content
    reply = json.loads(body)
    assert reply["ret"] == 200
    assert list(reply["data"]) == ["err_code", "err_msg", "url"]
    assert reply["data"]["err_code"] == 0 and reply["data"]["err_msg"] == ""
    assert re.fullmatch(re.escape(server.url) + LINK_PATH.pattern, reply["data"]["url"])
    assert b'"url":"http:\\/\\/' in body  # PHP's json_encode escapes "/"
    data = body[body.index(b',"data":') + 8:body.rindex(b',"msg":')]
    expected = hashlib.md5(data + str(reply["_t"]).encode() + app["app_secret"].encode())
    assert reply["_auth"] == expected.hexdigest()


def test_link_services_are_listed(server: RunningServer) -> None:
    services = server.client.get("/").json()["data"]["services"]
    assert {"App.QQ.UserImageLink", "App.QQ.GroupImageLink"} <= set(services)


@pytest.mark.parametrize(("params", "msg"), [
    ({}, P + "缺少必要参数qq"),
    ({"qq": "0123"}, P + "qq应该是5到12位数字, 但现在qq = 0123"),
    ({"qq": "10001", "size": "50"}, P + "参数size应该为：40/100/140/640，但现在size = 50"),
])
def test_link_rules(server: RunningServer, app: dict[str, Any], params: dict[str, str],
                    msg: str) -> None:
    reply = server.client.get("/api/App/QQ/UserImageLink",
                              params={"app_key": app["app_key"], **params}).json()
    assert (reply["ret"], reply["msg"]) == (400, msg)


def test_link_needs_a_known_app(server: RunningServer) -> None:
    reply = server.client.get("/api/App/QQ/GroupImageLink",
                              params={"app_key": "0" * 32, "group": "123456789"}).json()
    assert (reply["ret"], reply["msg"]) == (406, P + "非法app_key，请核对你所在的接口域名")


def test_link_is_signed_like_every_service(server: RunningServer) -> None:
    signed = server.create_app("signed", sign_required=True)
    server.wait_for_app(signed["app_key"])
    params = {"s": "App.QQ.UserImageLink", "app_key": signed["app_key"], "qq": "376741929"}
    reply = server.client.get("/", params=params).json()
    assert (reply["ret"], reply["msg"]) == (400, P + "缺少必要参数sign")
    bad = server.client.get("/", params={**params, "sign": "0" * 32}).json()
    assert (bad["ret"], bad["msg"]) == (409, P + "签名错误")
    good = server.client.get("/", params={**params,
                                          "sign": compute_sign(params, signed["app_secret"])})
    assert good.json()["ret"] == 200
    assert httpx.get(good.json()["data"]["url"]).status_code == 200


def test_public_base_never_follows_the_host_header(server: RunningServer,
                                                  app: dict[str, Any]) -> None:
    """Without QQAVATAR_PUBLIC_URL or QQAVATAR_ALLOWED_HOSTS the base is the address the
    connection reached, whatever Host the request sends (docs/security.md)."""
    params = {"app_key": app["app_key"], "qq": "376741929"}
    for host in ("avatar.example.com:8443", "evil.example/x?", app["app_key"] + "x012345678"):
        reply = server.client.get("/api/App/QQ/UserImageLink", params=params,
                                  headers={"Host": host}).json()
        assert reply["ret"] == 200, reply
        assert reply["data"]["url"].startswith(server.url + "/a/")


def test_allowed_hosts(tmp_path: Path, fake_qlogo: Any) -> None:
    running = RunningServer(tmp_path, fake_qlogo.url, {
        "QQAVATAR_ALLOWED_HOSTS": "avatar.example.com,cdn.example.com:8443"})
    try:
        record = running.create_app("hosts")
        running.wait_for_app(record["app_key"])
        params = {"app_key": record["app_key"], "qq": "376741929"}
        for host, base in [("cdn.example.com:8443", "http://cdn.example.com:8443/a/"),
                           ("evil.example", "http://avatar.example.com/a/"),
                           ("127.0.0.1", "http://avatar.example.com/a/")]:
            reply = running.client.get("/api/App/QQ/UserImageLink", params=params,
                                       headers={"Host": host}).json()
            assert reply["data"]["url"].startswith(base), (host, reply)
    finally:
        running.stop()


def test_two_workers_behind_a_proxy(tmp_path: Path, fake_qlogo: Any) -> None:
    """QQAVATAR_PUBLIC_URL sets the base; every worker opens every link, and a rotation
    reaches every worker."""
    running = RunningServer(tmp_path, fake_qlogo.url,
                            {"QQAVATAR_PUBLIC_URL": "https://avatar.example.com/qq/"},
                            args=("--workers", "2"))
    try:
        record = running.create_app("behind-proxy")
        running.wait_for_app(record["app_key"])
        url = make_link(running, record, qq="376741929")
        assert url.startswith("https://avatar.example.com/qq/a/")
        # Behind the proxy the path reaches the server without the prefix. A new
        # connection each time, so both workers answer.
        path = url.removeprefix("https://avatar.example.com/qq")
        for _ in range(12):
            assert httpx.get(running.url + path).status_code == 200
        done = running.cli("app", "rotate-link-key", record["app_key"])
        assert done.returncode == 0, done.stderr
        wait_for(lambda: all(httpx.get(running.url + path).status_code == 404
                             for _ in range(12)), timeout=5.0)
    finally:
        running.stop()


# --- what a link gives ---------------------------------------------------------------------

def test_link_serves_the_avatar_with_http_caching(server: RunningServer,
                                                  app: dict[str, Any]) -> None:
    url = make_link(server, app, qq="376741929", size="140")
    direct = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                            "qq": "376741929", "size": "140"})
    viewed = httpx.get(url)
    assert viewed.status_code == 200
    assert viewed.content == direct.content
    assert viewed.headers["content-type"] == "image/png"  # …9 is a PNG in the fake
    assert viewed.headers["etag"] == direct.headers["etag"]
    cache_control = viewed.headers["cache-control"]
    match = re.fullmatch(r"public, max-age=(\d+)", cache_control)
    assert match is not None and 0 < int(match.group(1)) <= 86400, cache_control
    again = httpx.get(url, headers={"If-None-Match": viewed.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == viewed.headers["etag"]
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b""


def test_group_links_and_default_avatars(server: RunningServer, app: dict[str, Any]) -> None:
    group = httpx.get(make_link(server, app, "GroupImageLink", group="123456784", size="40"))
    user = httpx.get(make_link(server, app, qq="123456784", size="40"))
    assert group.status_code == user.status_code == 200
    assert group.headers["content-type"] == "image/jpeg"
    assert group.content != user.content  # the same number, a group's and a user's avatar
    default = httpx.get(make_link(server, app, qq="1234567890"))
    assert default.status_code == 200 and default.headers["x-avatar-default"] == "1"


def test_same_request_same_link(server: RunningServer, app: dict[str, Any]) -> None:
    first = make_link(server, app, qq="376741929")
    assert make_link(server, app, qq="376741929") == first
    assert make_link(server, app, qq="376741929", size="100") == first  # the default, spelled
    posted = server.client.post("/?s=App.QQ.UserImageLink",
                                json={"app_key": app["app_key"], "qq": 376741929}).json()
    assert posted["data"]["url"] == first
    assert make_link(server, app, qq="376741929", size="40") != first
    assert make_link(server, app, "GroupImageLink", group="376741929") != first


def test_two_apps_two_links(server: RunningServer, app: dict[str, Any]) -> None:
    other = server.create_app("other blog")
    server.wait_for_app(other["app_key"])
    mine, theirs = make_link(server, app, qq="376741929"), make_link(server, other, qq="376741929")
    assert mine != theirs
    assert httpx.get(mine).content == httpx.get(theirs).content
    # Two apps' links share nothing that would tie them together.
    assert path_of(mine)[3:15] != path_of(theirs)[3:15]


@pytest.mark.parametrize("number", ["10001", "376741929", "2851776554", "123456789012"])
def test_links_name_neither_the_number_nor_the_app_key(server: RunningServer, app: dict[str, Any],
                                                       number: str) -> None:
    for service, param in (("UserImageLink", "qq"), ("GroupImageLink", "group")):
        path = path_of(make_link(server, app, service, **{param: number}))
        for spelling in number_spellings(number):
            assert spelling not in path, (service, spelling)
        key = app["app_key"]
        key_b64 = base64.b64encode(key.encode()).decode()
        for spelling in (key, key.lower(), key_b64, key_b64.rstrip("=")):
            assert spelling not in path


def test_upstream_failure_through_a_link_names_no_number(server: RunningServer,
                                                         app: dict[str, Any],
                                                         fake_qlogo: Any) -> None:
    url = make_link(server, app, qq="88888884", size="640")
    fake_qlogo.fault("error500", numbers=["88888884"])
    failed = httpx.get(url)
    assert failed.status_code in (502, 504)  # 504 when a loaded machine hits the 1 s timeout
    assert "88888884" not in failed.text
    assert app["app_key"] not in failed.text


# --- what must not open --------------------------------------------------------------------

def test_every_changed_character_is_404(server: RunningServer, app: dict[str, Any]) -> None:
    path = path_of(make_link(server, app, qq="376741929"))
    token = path.removeprefix("/a/")
    assert server.client.get(path).status_code == 200
    for position, char in enumerate(token):
        replacement = TOKEN_ALPHABET[(TOKEN_ALPHABET.index(char) + 1) % 64]
        assert_not_found(server.client.get("/a/" + token[:position] + replacement
                                           + token[position + 1:]))


def test_truncated_and_extended_tokens_are_404(server: RunningServer, app: dict[str, Any]) -> None:
    token = path_of(make_link(server, app, qq="376741929")).removeprefix("/a/")
    for cut in range(1, len(token)):
        assert_not_found(server.client.get("/a/" + token[:cut]))
    for extra in ("A", "AA", "AAAA", "=", "%3D%3D"):
        assert_not_found(server.client.get("/a/" + token + extra))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".", ".png.jpg", "/"])
def test_another_extension_is_404(server: RunningServer, app: dict[str, Any], suffix: str) -> None:
    path = path_of(make_link(server, app, qq="376741929"))
    assert_not_found(server.client.get(path + suffix))


@pytest.mark.parametrize("path", ["/a/", "/a/x", "/a/" + "A" * 119, "/a/%00", "/a/..%2F..%2Fetc"])
def test_garbage_is_404(server: RunningServer, path: str) -> None:
    assert_not_found(server.client.get(path))


def test_rotating_the_link_key_kills_old_links(server: RunningServer) -> None:
    record = server.create_app("rotating")
    server.wait_for_app(record["app_key"])
    old = make_link(server, record, qq="376741929")
    assert httpx.get(old).status_code == 200
    done = server.cli("app", "rotate-link-key", record["app_key"].lower(), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"app_key": record["app_key"], "link_key_rotated": True}
    wait_for(lambda: httpx.get(old).status_code == 404)  # servers poll every 0.5 s
    assert_not_found(httpx.get(old))
    new = make_link(server, record, qq="376741929")
    assert new != old
    assert httpx.get(new).status_code == 200


def test_rotating_an_unknown_app_fails(server: RunningServer) -> None:
    done = server.cli("app", "rotate-link-key", "0" * 32)
    assert done.returncode == 1
    assert "no app with app_key " + "0" * 32 in done.stderr


def test_deleting_the_app_kills_its_links(server: RunningServer) -> None:
    record = server.create_app("deleted")
    server.wait_for_app(record["app_key"])
    link = make_link(server, record, qq="376741929")
    assert httpx.get(link).status_code == 200
    done = server.cli("app", "delete", record["app_key"], "--yes")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: httpx.get(link).status_code == 404)
    assert_not_found(httpx.get(link))


# --- views are calls of the owning app -----------------------------------------------------

def test_views_appear_in_the_apps_statistics(server: RunningServer) -> None:
    record = server.create_app("counted")
    server.wait_for_app(record["app_key"])
    link = make_link(server, record, qq="376741929")
    etag = httpx.get(link).headers["etag"]
    httpx.get(link)
    httpx.get(link, headers={"If-None-Match": etag})

    def counted() -> dict[str, Any]:
        done = server.cli("stats", "--app", record["app_key"], "--json")
        assert done.returncode == 0, done.stderr
        return {row["service"]: row for row in json.loads(done.stdout)}

    # wait_for_app made one call of App.QQ.UserImage itself; three views come on top.
    # Counts reach the database within a second; the CLI itself takes a while to start.
    wait_for(lambda: counted().get("App.QQ.UserImage", {}).get("calls") == 4, timeout=30.0)
    rows = counted()
    assert rows["App.QQ.UserImage"]["by_ret"] == {"200": 4}
    assert rows["App.QQ.UserImageLink"]["calls"] == 1


@pytest.fixture
def quota_app(server: RunningServer) -> Generator[dict[str, Any], None, None]:
    record = server.create_app("quota")
    done = server.cli("app", "update", record["app_key"], "--daily-quota", "3")
    assert done.returncode == 0, done.stderr
    server.wait_for_app(record["app_key"])  # one call of the quota
    # The server may have loaded the app between `create` and `update`; two more polls
    # (0.5 s each) make sure it holds the quota too before the test counts calls.
    time.sleep(1.1)
    yield record


def test_views_count_against_the_quota(server: RunningServer, quota_app: dict[str, Any]) -> None:
    link = make_link(server, quota_app, qq="376741929")  # the second call
    assert httpx.get(link).status_code == 200                # the third
    refused = httpx.get(link)
    assert refused.status_code == 413
    assert json.loads(refused.content)["msg"] == P + "接口调用次数已用完"
    assert quota_app["app_key"] not in refused.text


def test_demo_page_is_off_outside_demo_mode(server: RunningServer) -> None:
    # It would spend the oldest app's quota on every visit: demo servers only.
    assert server.client.get("/demo/comments").status_code == 404


# --- format and default travel in the link -------------------------------------------------

def test_format_is_the_links_extension(server: RunningServer, app: dict[str, Any]) -> None:
    url = make_link(server, app, qq="376741929", format="webp")
    assert url.endswith(".webp")
    viewed = httpx.get(url)
    assert viewed.status_code == 200 and viewed.headers["content-type"] == "image/webp"
    assert viewed.content[8:12] == b"WEBP"
    token_path = path_of(url).removesuffix(".webp")
    for other in ("", ".png", ".jpeg", ".WEBP", ".webp.webp"):
        assert_not_found(server.client.get(token_path + other))
    assert make_link(server, app, qq="376741929", format="png") != url


def test_default_parameter_in_links(server: RunningServer, app: dict[str, Any]) -> None:
    # Spelling out the default gives the same link as leaving it out.
    assert make_link(server, app, qq="1234567890", default="qq") == \
        make_link(server, app, qq="1234567890")
    refused = httpx.get(make_link(server, app, qq="1234567890", default="404"))
    assert refused.status_code == 404  # the avatar service's answer: no avatar of its own
    assert "1234567890" not in refused.text
    drawn = httpx.get(make_link(server, app, qq="1234567890", default="identicon"))
    assert drawn.status_code == 200 and drawn.headers["content-type"].startswith("image/")
