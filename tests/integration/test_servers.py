"""`qqavatar serve --server granian` (RSGI, the default) and `--server uvicorn` (ASGI) answer
alike: the RSGI path re-implements the ASGI app's HTTP edge, and these requests pin it down.

Both servers run on one data directory (so one set of apps) against the same fake qlogo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_fixture import RunningServer

# Set by the servers themselves, or different on every answer. `connection`: both close a
# connection whose too-large body was refused unread, and only granian says so in a header.
_VARYING = frozenset({"connection", "date", "server", "x-request-id"})
_MAX_AGE = re.compile(r"max-age=\d+")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory,
         fake_qlogo: Any) -> Generator[tuple[RunningServer, RunningServer], None, None]:
    data = tmp_path_factory.mktemp("servers")
    granian = RunningServer(data / "granian", fake_qlogo.url)
    # The second server uses the first one's database: the same apps on both.
    uvicorn = RunningServer(data / "uvicorn", fake_qlogo.url,
                            {"QQAVATAR_DATABASE_URL": granian.database_url},
                            args=("--server", "uvicorn"))
    yield granian, uvicorn
    uvicorn.stop()
    granian.stop()


@pytest.fixture(scope="module")
def key(pair: tuple[RunningServer, RunningServer]) -> str:
    granian, uvicorn = pair
    record = granian.create_app("servers")
    granian.wait_for_app(record["app_key"])
    uvicorn.wait_for_app(record["app_key"])
    return str(record["app_key"])


def _headers(reply: httpx.Response) -> dict[str, str]:
    return {name: _MAX_AGE.sub("max-age=N", value) for name, value in reply.headers.items()
            if name not in _VARYING}


def _body(reply: httpx.Response) -> bytes:
    """The body, with the envelope's clock fields (`_t`, `_auth`) cut out."""
    return re.sub(rb',"_t":\d+(,"_auth":"[0-9a-f]{32}")?', b"", reply.content)


def both(pair: tuple[RunningServer, RunningServer], method: str, url: str,
         **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
    first, second = (server.client.request(method, url, **kwargs) for server in pair)
    assert first.status_code == second.status_code, (first.text[:300], second.text[:300])
    assert _headers(first) == _headers(second)
    assert _body(first) == _body(second)
    return first, second


def test_images_head_and_revalidation(pair: tuple[RunningServer, RunningServer], key: str) -> None:
    params = {"s": "App.QQ.UserImage", "app_key": key, "qq": "10001", "size": "40"}
    image, _ = both(pair, "GET", "/", params=params)
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert int(image.headers["content-length"]) == len(image.content) > 0
    head, _ = both(pair, "HEAD", "/", params=params)
    assert head.content == b"" and head.headers["content-length"] == image.headers["content-length"]
    etag = image.headers["etag"]
    unchanged, _ = both(pair, "GET", "/", params=params, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    both(pair, "GET", "/api/App/QQ/GroupImage", params={"app_key": key, "group": "123456785"})
    both(pair, "GET", "/api/App/QQ/User%49mage", params={"app_key": key, "qq": "10002"})


def test_json_envelopes(pair: tuple[RunningServer, RunningServer], key: str) -> None:
    params = {"s": "App.QQ.UserImage", "app_key": key, "qq": "123456785", "output": "0"}
    envelope, _ = both(pair, "GET", "/", params=params)
    assert envelope.json()["ret"] == 200
    both(pair, "GET", "/", params=params | {"return_data": "1"})
    both(pair, "GET", "/", params=params | {"callback": "show"})
    both(pair, "GET", "/")  # App.Site.Index
    both(pair, "GET", "/", params={"s": "App.No.Such"})
    both(pair, "GET", "/", params={"s": "App.QQ.UserImage", "app_key": key, "qq": "12"})
    both(pair, "GET", "/", params={"s": "App.QQ.UserImage", "app_key": key, "qq": "10001",
                                   "sign": "0" * 32})
    both(pair, "GET", "/?" + "&".join(f"p{index}=1" for index in range(300)))


def test_the_same_url_again(pair: tuple[RunningServer, RunningServer], key: str) -> None:
    """granian gives a repeated URL its kept answer (web/replies.py); uvicorn never does."""
    for extra in ({"size": "40"}, {"size": "640", "output": "0"},
                  {"output": "0", "callback": "show"}, {"output": "0", "return_data": "1"}):
        params = {"s": "App.QQ.UserImage", "app_key": key, "qq": "10006"} | extra
        for _ in range(4):
            first, _ = both(pair, "GET", "/", params=params)
            assert first.headers["x-cache"] in ("MISS", "HIT")
        assert first.headers["x-cache"] == "HIT"
        both(pair, "HEAD", "/", params=params)
        both(pair, "GET", "/", params=params, headers={"If-None-Match": '"other"'})


def test_bodies(pair: tuple[RunningServer, RunningServer], key: str) -> None:
    url = "/?s=App.QQ.UserImage"
    both(pair, "POST", url, data={"app_key": key, "qq": "10003", "output": "0"})
    both(pair, "POST", url, files={"app_key": (None, key), "qq": (None, "10004"),
                                   "output": (None, "0")})
    both(pair, "POST", "/api/App/QQ/UserImage",
         content=json.dumps({"app_key": key, "qq": 10005, "output": False}),
         headers={"Content-Type": "application/json"})
    both(pair, "POST", url, content=b"{not json", headers={"Content-Type": "application/json"})
    both(pair, "POST", url, content=b"x" * (1024 * 1024 + 1),
         headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_methods_pages_and_request_ids(pair: tuple[RunningServer, RunningServer]) -> None:
    refused, _ = both(pair, "PUT", "/")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST, HEAD"
    both(pair, "GET", "/no/such/page")
    for server in pair:
        kept = server.client.get("/", headers={"X-Request-Id": "trace-42"})
        assert kept.headers["x-request-id"] == "trace-42"
        fresh = server.client.get("/", headers={"X-Request-Id": "not sane!"})
        assert fresh.headers["x-request-id"] not in ("", "not sane!")
        page = server.client.get("/no/such/page", headers={"X-Request-Id": "page-1"})
        assert page.headers["x-request-id"] == "page-1"


def test_several_granian_workers(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path, fake_qlogo.url, args=("--workers", "2"))
    try:
        workers = _spawned_children(server.proc.pid)
        assert len(workers) == 2, workers
        record = server.create_app("two workers")
        server.wait_for_app(record["app_key"])
        for number in ("10001", "10002", "10003", "10004"):
            reply = server.client.get("/", params={"s": "App.QQ.UserImage", "qq": number,
                                                   "app_key": record["app_key"]})
            assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
    finally:
        assert server.stop() in (0, -15)
    assert server.output().count("Finished server process") == 2


def _spawned_children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
                found.append(int(child))
    return found
