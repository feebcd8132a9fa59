"""Kept answers (web/replies.py, Gateway.replay): the same URL again gets exactly the answer
the full path would give, is counted as a call, and never outlives what it came from.

The RSGI application runs in-process (SQLite in a temporary directory, a real fake qlogo
in a thread); a request is a scope object with the attributes granian's has, and the
answer is what the application hands to `response_bytes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from qqavatar.apicall import ApiReply, Kept
from qqavatar.fakeqlogo import RunningFake, serve_in_thread
from qqavatar.protocol.envelope import envelope
from qqavatar.protocol.sign import compute_sign
from qqavatar.settings import Settings
from qqavatar.stats.recorder import CACHE_HITS, CALLS
from qqavatar.store.apps import AppRecord, AppRegistry
from qqavatar.web.app import QQAvatarApp
from qqavatar.web.replies import KeptReplies
from qqavatar.web.rsgi import QQAvatarRSGI

pytestmark = pytest.mark.anyio

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Scope:
    query_string: str
    path: str = "/"
    method: str = "GET"
    proto: str = "http"
    scheme: str = "http"
    client: str = "127.0.0.1:40000"
    server: str = "127.0.0.1:8000"
    headers: dict[str, str] = field(default_factory=lambda: {"host": "127.0.0.1"})


class Proto:
    answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)


class Clock:
    """The gateway's wall clock (`_t`), set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    rsgi: QQAvatarRSGI
    fake: RunningFake
    app: AppRecord
    clock: Clock

    @property
    def registry(self) -> AppRegistry:
        runtime = self.rsgi.app.runtime
        assert runtime is not None and isinstance(runtime.apps, AppRegistry)
        return runtime.apps

    async def get(self, headers: dict[str, str] | None = None, **params: str) -> Answer:
        scope = Scope(urlencode(params), headers={"host": "127.0.0.1", **(headers or {})})
        proto = Proto()
        await self.rsgi.__rsgi__(scope, proto)
        assert proto.answer is not None
        status, header_list, body = proto.answer
        names = [name.lower() for name, _ in header_list]
        assert len(names) == len(set(names)), header_list  # no header twice
        return status, {name.lower(): value for name, value in header_list}, body

    def avatar(self, **params: str) -> dict[str, str]:
        return {"s": "App.QQ.UserImage", "app_key": self.app.app_key, "qq": "10001",
                "size": "40", **params}

    async def change(self, **limits: Any) -> AppRecord:
        record = await self.registry._store.update(self.app.app_key, **limits)
        assert record is not None
        await self.registry.load()
        return record

    def calls_counted(self) -> int:
        runtime = self.rsgi.app.runtime
        assert runtime is not None and runtime.quotas is not None
        return runtime.quotas.usage(self.app.app_key)[0]


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture
async def server(tmp_path: Path, fake: RunningFake) -> AsyncIterator[Server]:
    settings = Settings(data_dir=tmp_path, upstream_user_url=fake.user_url,
                        upstream_group_url=fake.group_url, log_level="warning")
    rsgi = QQAvatarRSGI(QQAvatarApp(settings))
    await rsgi.app.startup()
    gateway = rsgi.app.gateway
    assert gateway is not None
    clock = Clock(1_790_000_000.25)
    gateway.clock = clock
    runtime = rsgi.app.runtime
    assert runtime is not None and isinstance(runtime.apps, AppRegistry)
    app = await runtime.apps._store.create("kept")
    assert runtime.links is not None
    await runtime.links.load()  # gives the new app its link key (a change of the apps too)
    await runtime.apps.load()
    try:
        yield Server(rsgi, fake, app, clock)
    finally:
        await rsgi.app.shutdown()


def _kept(server: Server) -> KeptReplies:
    assert server.rsgi.kept is not None
    return server.rsgi.kept


def _same(first: Answer, second: Answer) -> None:
    """Equal answers but for the request id."""
    assert first[0] == second[0]
    assert {k: v for k, v in first[1].items() if k != "x-request-id"} == \
        {k: v for k, v in second[1].items() if k != "x-request-id"}
    assert first[1]["x-request-id"] != second[1]["x-request-id"]
    assert first[2] == second[2]


async def test_the_same_url_gets_the_same_answer_and_is_counted(server: Server) -> None:
    for params in (server.avatar(), server.avatar(size="640", output="0"),
                   server.avatar(size="100", callback="cb", output="0")):
        miss = await server.get(**params)
        assert miss[1]["x-cache"] == "MISS"
        first = await server.get(**params)  # the full path: a HIT, now kept
        assert first[1]["x-cache"] == "HIT"
        replies = [await server.get(**params) for _ in range(3)]
        for reply in replies:
            _same(first, reply)
    assert len(_kept(server)) == 3
    assert server.fake.stats()["requests"] == 3  # each size once
    assert server.calls_counted() == 15
    runtime = server.rsgi.app.runtime
    assert runtime is not None and runtime.stats is not None
    batch = runtime.stats.recorder.take()
    assert sum(counts[CALLS] for counts in batch.counts.values()) == 15
    assert sum(counts[CACHE_HITS] for counts in batch.counts.values()) == 12


async def test_a_kept_answer_carries_the_clients_request_id(server: Server) -> None:
    params = server.avatar()
    for _ in range(2):
        await server.get(**params)
    assert len(_kept(server)) == 1
    traced = await server.get(headers={"x-request-id": "trace-42"}, **params)
    assert traced[1]["x-request-id"] == "trace-42"
    insane = await server.get(headers={"x-request-id": "not sane!"}, **params)
    assert insane[1]["x-request-id"] not in ("", "not sane!")


async def test_a_new_second_gets_a_new_envelope(server: Server) -> None:
    params = server.avatar(output="0")
    await server.get(**params)
    first = (await server.get(**params))[2]
    assert json.loads(first)["_t"] == 1_790_000_000
    assert (await server.get(**params))[2] == first
    server.clock.now += 1
    later = (await server.get(**params))[2]
    data = first[len(b'{"ret":200,"data":'):first.index(b',"msg":')]
    assert later == envelope(200, data, "", 1_790_000_001, server.app.app_secret)


async def test_a_changed_app_takes_the_full_path(server: Server) -> None:
    signed = server.avatar()
    signed["sign"] = compute_sign(signed, server.app.app_secret)
    for _ in range(3):
        assert (await server.get(**signed))[0] == 200
    await server.change(rotate_secret=True)
    status, _, body = await server.get(**signed)
    assert (status, json.loads(body)["ret"]) == (409, 409)  # the old sign no longer holds

    plain = server.avatar()
    for _ in range(3):
        assert (await server.get(**plain))[0] == 200
    await server.change(daily_quota=server.calls_counted() + 2)
    answers = [(await server.get(**plain))[0] for _ in range(4)]
    assert answers == [200, 200, 413, 413]

    await server.change(daily_quota=0, ip_allow=["10.0.0.0/8"])
    assert (await server.get(**plain))[0] == 402

    await server.change(ip_allow=[])
    assert (await server.get(**plain))[0] == 200
    assert await server.registry._store.delete(server.app.app_key)
    await server.registry.load()
    status, _, body = await server.get(**plain)
    assert (status, json.loads(body)["ret"]) == (406, 406)


async def test_an_avatar_gone_from_the_cache_is_fetched_again(server: Server) -> None:
    params = server.avatar()
    for _ in range(3):
        await server.get(**params)
    runtime = server.rsgi.app.runtime
    assert runtime is not None and runtime.avatars.disk is not None
    await runtime.avatars.disk.flush()  # the disk tier writes in the background
    runtime.avatars.cache.clear()
    answer = await server.get(**params)
    assert answer[1]["x-cache"] == "HIT"  # read back from the disk tier, not kept
    assert server.fake.stats()["requests"] == 1
    runtime.avatars.cache.clear()
    runtime.avatars.disk.discard(("user", params["qq"], int(params.get("size", 100)), ""))
    await runtime.avatars.disk.flush()
    answer = await server.get(**params)
    assert answer[1]["x-cache"] == "MISS"
    assert server.fake.stats()["requests"] == 2


async def test_max_age_counts_down_as_on_the_full_path(server: Server) -> None:
    params = server.avatar()
    await server.get(**params)
    first = await server.get(**params)
    kept = _kept(server).get("/?" + urlencode(params))
    assert kept is not None
    max_age = int(first[1]["cache-control"].removeprefix("public, max-age="))
    assert max_age > 1
    _same(first, await server.get(**params))
    await asyncio.sleep(max(0.0, kept[0].source.until - time.monotonic()) + 0.01)
    later = await server.get(**params)
    assert later[1]["cache-control"] == f"public, max-age={max_age - 1}"


async def test_conditional_requests_are_answered_by_the_full_path(server: Server) -> None:
    params = server.avatar()
    await server.get(**params)
    first = await server.get(**params)
    etag = first[1]["etag"]
    status, headers, body = await server.get(headers={"if-none-match": etag}, **params)
    assert (status, body, headers["etag"]) == (304, b"", etag)
    since = first[1]["last-modified"]
    assert (await server.get(headers={"if-modified-since": since}, **params))[0] == 304
    _same(first, await server.get(**params))


async def test_calls_with_a_session_are_never_kept(server: Server) -> None:
    password = hashlib.md5(b"secret").hexdigest()
    members = {"app_key": server.app.app_key, "username": "kept", "password": password}
    await server.get(s="App.User.Register", **members)
    login = json.loads((await server.get(s="App.User.Login", **members))[2])["data"]
    session = server.avatar(uuid=login["uuid"], token=login["token"])
    for _ in range(3):
        assert (await server.get(**session))[0] == 200
    assert len(_kept(server)) == 0
    await server.get(s="App.User.Logout", app_key=server.app.app_key, uuid=login["uuid"],
                     token=login["token"])
    status, _, body = await server.get(**session)
    assert (status, json.loads(body)["ret"]) == (401, 401)


async def test_errors_and_misses_are_never_kept(server: Server) -> None:
    await server.get(**server.avatar(qq="1"))  # 400: not a QQ number
    await server.get(**server.avatar(qq="10002"))  # a miss
    await server.get(**server.avatar(app_key="0" * 32))  # 406
    assert len(_kept(server)) == 0


async def test_no_kept_answers_with_the_access_log(tmp_path: Path) -> None:
    rsgi = QQAvatarRSGI(QQAvatarApp(Settings(data_dir=tmp_path, access_log=True)))
    assert rsgi.kept is None


def _reply(kept: Kept | None, second: int, body: bytes) -> ApiReply:
    kept = kept or Kept(call=None, source=None, outcome=None, second=second)  # type: ignore[arg-type]
    kept.second = second
    return ApiReply(200, "image/png", body, kept=kept)


def test_kept_replies_are_bounded() -> None:
    replies = KeptReplies(max_entries=3, max_bytes=100)
    for index in range(5):
        replies.put(f"k{index}", _reply(None, 7, b"x" * 10), [])
    assert len(replies) == 3  # entries past the bound are not kept
    assert replies.get("k3") is None
    replies.put("k0", _reply(None, 7, b"x" * 20), [])  # replacing one is allowed
    assert replies.get("k0") is not None and replies.get("k0")[3] == b"x" * 20  # type: ignore[index]
    replies.put("k1", _reply(None, 7, b"x" * 80), [])  # over the byte bound: dropped
    assert replies.get("k1") is None and len(replies) == 2
    replies.put("new", _reply(None, 8, b"y"), [])  # a new second starts afresh
    assert len(replies) == 1 and replies.get("k0") is None
