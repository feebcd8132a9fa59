"""The request edge on both servers (granian/RSGI and uvicorn/ASGI), on raw sockets where the
wire matters: merged slashes, the unknown path's envelope, chunked bodies read without a
wait per chunk, `Connection: close` whenever the connection ends, and the pages' body bounds.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qqavatar.web.pagebody import MAX_PAGE_BODY_BYTES, MAX_PAGE_FIELDS
from qqavatar.web.request import MAX_BODY_READS
from tests.adversarial.test_resource_bounds import closes, exchange, status
from tests.server_fixture import RunningServer

CLIENT_TIMEOUT = 2.0


def _serve(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: Any,
           server: str) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    running = RunningServer(tmp_path_factory.mktemp(server), fake_qlogo.url,
                            {"QQAVATAR_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT),
                             "QQAVATAR_ADMIN_TOKEN": "t" * 40},
                            args=("--server", server))
    app = running.create_app("edges")
    running.wait_for_app(app["app_key"])
    yield running, app
    running.stop()


@pytest.fixture(scope="module")
def granian(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    yield from _serve(tmp_path_factory, fake_qlogo, "granian")


@pytest.fixture(scope="module")
def uvicorn(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    yield from _serve(tmp_path_factory, fake_qlogo, "uvicorn")


@pytest.fixture(params=["granian", "uvicorn"])
def either(request: pytest.FixtureRequest) -> tuple[RunningServer, dict[str, Any]]:
    served: tuple[RunningServer, dict[str, Any]] = request.getfixturevalue(request.param)
    return served


def avatar(app: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"app_key": app["app_key"], "qq": "10001", "size": "40", **extra}


# --- issue 14: runs of slashes are one slash --------------------------------------------------

@pytest.mark.parametrize("path", ["//", "///", "//api//App/QQ/UserImage", "/api//App//QQ/UserImage"])
@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_runs_of_slashes_are_one_slash(either: tuple[RunningServer, dict[str, Any]],
                                       path: str, method: str) -> None:
    server, app = either
    query = {"s": "App.QQ.UserImage"} if path.rstrip("/") == "" else {}
    fields = avatar(app, output="0")
    url = server.url + path  # absolute: a relative `//api` would name a host
    if method == "POST":
        response = server.client.post(url, params=query, data=fields)
    else:
        response = server.client.request(method, url, params={**query, **fields})
    assert response.status_code == 200, response.text
    if method != "HEAD":
        assert response.json()["ret"] == 200 and response.json()["data"]["size"] == 40


def test_the_php_sdk_url_answers_the_same_bytes(either: tuple[RunningServer, dict[str, Any]]
                                                ) -> None:
    """YesApi's PHP SDK posts a multipart body to `//?s=…`: the image is the one `/?s=…` gives."""
    server, app = either
    files = {name: (None, value) for name, value in
             {"s": "App.QQ.UserImage", **avatar(app)}.items()}
    merged = server.client.post(server.url + "//?s=App.QQ.UserImage", files=files)
    plain = server.client.post("/?s=App.QQ.UserImage", files=files)
    assert merged.headers["content-type"].startswith("image/")
    assert merged.content == plain.content


def test_an_unknown_path_is_a_404_envelope(either: tuple[RunningServer, dict[str, Any]]) -> None:
    server, _ = either
    for path in ("/favicon.ico", "/api/App/QQ/UserImage/Extra", "//nope//"):
        response = server.client.get(server.url + path, params={"s": "App.QQ.UserImage"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json;charset=utf-8"
        reply = response.json()
        shown = path if "//" not in path else "/nope/"
        assert (reply["ret"], reply["data"], reply["msg"]) == \
            (404, {}, f"客户端非法请求：路径{shown}不存在")
    assert server.client.head("/favicon.ico").status_code == 404


# --- issue 21.3: chunked bodies read without a wait per chunk ---------------------------------

def test_many_tiny_chunks_sent_at_once_are_not_a_slow_client(
        either: tuple[RunningServer, dict[str, Any]], request: pytest.FixtureRequest) -> None:
    """300 000 one-byte chunks, all on the socket at once, took granian one round trip each
    and got a false `请求体未在…秒内发送完毕`. uvicorn reads what is buffered at once and
    answers the call; granian hands a chunked body over a wire chunk per await, so past
    `MAX_BODY_READS` it refuses the body in words (the client's fault is its fragmentation,
    not its speed) instead of spending a worker on it."""
    server, app = either
    query = "&".join(f"{name}={value}" for name, value in avatar(app, output="0").items())
    head = (f"POST /?s=App.QQ.UserImage&{query} HTTP/1.1\r\nHost: x\r\n"
            "Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "\r\n").encode()
    answer, _ = exchange(server, head + b"1\r\na\r\n" * 300_000 + b"0\r\n\r\n")
    reply = json.loads(answer.partition(b"\r\n\r\n")[2])
    if request.node.callspec.params["either"] == "granian":
        assert reply["msg"] == f"客户端非法请求：请求体不能超过{MAX_BODY_READS}个分块"
        assert closes(answer)
    else:
        assert reply["ret"] == 200, reply


def test_a_chunked_body_in_few_chunks_is_read(either: tuple[RunningServer, dict[str, Any]]
                                              ) -> None:
    server, app = either
    body = json.dumps(avatar(app, output="0")).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    answer, _ = exchange(server, b"POST /?s=App.QQ.UserImage HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["ret"] == 200


# --- issue 21.4: an answer after which the connection closes says so --------------------------

def _answer_then_reuse(server: RunningServer, request: bytes) -> tuple[bytes, bool]:
    """Send `request`, read its answer, then send a call down the same connection: the first
    answer's head, and whether the second call was answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # the server may close before taking all of it
            sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                break
            head += chunk
        # Its body: every answer here is small and complete within one more read at most.
        time.sleep(0.05)
        try:
            sock.sendall(b"GET /?s=App.Site.Index HTTP/1.1\r\nHost: x\r\n\r\n")
            again = b""
            while b"App.Site.Index" not in again and b'"ret":200' not in again:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                again += chunk
            reused = b'"ret":200' in again
        except OSError:
            reused = False
    return head, reused


@pytest.mark.parametrize(("method", "path"), [("PUT", "/"), ("GET", "/?s=App.Site.Index"),
                                              ("POST", "/no/such/page"), ("POST", "/docs")])
def test_a_large_unread_body_closes_the_connection_and_says_so(
        either: tuple[RunningServer, dict[str, Any]], method: str, path: str) -> None:
    server, _ = either
    size = 500_000
    raw = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
           "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode() + b"a" * size
    for _ in range(8):  # it failed about 1 time in 8
        head, reused = _answer_then_reuse(server, raw)
        assert status(head) in (200, 404, 405, 413), head[:200]
        assert closes(head) or reused, head[:300]


def test_a_pooled_client_survives_refused_puts(either: tuple[RunningServer, dict[str, Any]]
                                               ) -> None:
    server, app = either
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for _ in range(10):
            assert http.put("/", content=b"a" * 200_000).status_code == 405
            reply = http.get("/", params={"s": "App.QQ.UserImage", **avatar(app, output="0")})
            assert reply.json()["ret"] == 200


# --- issue 15.3: page bodies are bounded ------------------------------------------------------

def test_a_3_mb_sign_in_form_is_refused_unread(either: tuple[RunningServer, dict[str, Any]]
                                               ) -> None:
    server, _ = either
    head = (f"POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Length: {3 * 1024 * 1024}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode()
    answer, _ = exchange(server, head)  # the headers alone: the answer needs none of the body
    assert status(answer) == 413 and closes(answer), answer[:300]
    assert f"请求体不能超过{MAX_PAGE_BODY_BYTES}字节".encode() in answer


def test_a_chunked_page_body_is_cut_at_the_cap(either: tuple[RunningServer, dict[str, Any]]
                                               ) -> None:
    server, _ = either
    chunk = b"a" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
    answer, _ = exchange(server, b"POST /admin/login HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert status(answer) == 413 and closes(answer), answer[:300]


def test_a_page_body_dribbled_is_cut_at_the_client_timeout(
        either: tuple[RunningServer, dict[str, Any]]) -> None:
    server, _ = either
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT + 5) as sock:
        sock.sendall(b"POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=")
        answer = sock.recv(65536)  # nothing more is sent: the server answers at its timeout
    assert status(answer) == 408 and closes(answer), answer[:300]


def test_page_forms_have_a_field_cap_and_no_files(either: tuple[RunningServer, dict[str, Any]]
                                                  ) -> None:
    server, _ = either
    many = {f"f{i}": "1" for i in range(MAX_PAGE_FIELDS + 1)}
    refused = server.client.post("/admin/login", data=many)
    assert (refused.status_code, refused.text) == \
        (400, f"客户端非法请求：表单字段不能超过{MAX_PAGE_FIELDS}个")
    upload = server.client.post("/admin/login", data={"token": "x"}, files={"f": b"x"})
    assert (upload.status_code, upload.text) == (400, "客户端非法请求：页面不接受文件")
    # A sign-in form within the bounds reaches the page (a wrong token: refused by it).
    assert server.client.post("/admin/login", data={"token": "wrong"}).status_code in (401, 429)
