"""Two real servers acting as one (issue 6): one fresh PostgreSQL database, one Redis of
the module's own (killed and restarted by a test), the session's fake qlogo.

- 100 concurrent misses for one avatar, spread over both servers: one upstream request.
- Redis killed and restarted while both servers answer a stream of requests: no request
  fails, and afterwards the shared tier is used again (fetched on one, a HIT on the other).

(Shared counters and quotas: tests/integration/test_scale_out_counters.py.)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.postgres_fixture import as_env, fresh_database
from tests.redis_fixture import RedisProcess
from tests.server_fixture import RunningServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SIZE = 100  # App.QQ.UserImage's default size


class Cluster:
    def __init__(self, one: RunningServer, two: RunningServer, redis: RedisProcess,
                 app_key: str) -> None:
        self.servers = (one, two)
        self.redis = redis
        self.app_key = app_key

    def params(self, number: str) -> dict[str, str]:
        return {"s": "App.QQ.UserImage", "app_key": self.app_key, "qq": number}

    def shared_lookups(self, result: str) -> float:
        """`qqavatar_shared_cache_lookups_total{result}` added up over both servers."""
        total = 0.0
        for server in self.servers:
            for family in text_string_to_metric_families(server.client.get("/metrics").text):
                for sample in family.samples:
                    if sample.name == "qqavatar_shared_cache_lookups_total" \
                            and sample.labels == {"result": result}:
                        total += sample.value
        return total


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Generator[Cluster, None, None]:
    with fresh_database() as url:
        tmp = tmp_path_factory.mktemp("scale-out")
        redis = RedisProcess(tmp)
        env = {"QQAVATAR_DATABASE_URL": as_env(url),
               "QQAVATAR_REDIS_URL": redis.url,
               # Every request here is a miss: on a loaded machine the fake (in the test's own
               # process) can take longer than the fixture's 1 s to answer; that is not this
               # test's subject.
               "QQAVATAR_UPSTREAM_TIMEOUT": "5"}
        servers: list[RunningServer] = []
        try:
            # The app first (the CLI migrates the fresh database), then both servers at once:
            # each loads it at startup, and their start-up times overlap.
            created = subprocess.run(
                [sys.executable, "-m", "qqavatar", "app", "create", "scale-out", "--json"],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False)
            assert created.returncode == 0, created.stderr
            app_key = json.loads(created.stdout)["app_key"]
            with ThreadPoolExecutor(2) as pool:
                servers += pool.map(lambda label: RunningServer(tmp / label, fake_qlogo.url, env),
                                    ("one", "two"))
            for server in servers:
                server.wait_for_app(app_key)
            yield Cluster(servers[0], servers[1], redis, app_key)
        finally:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(RunningServer.stop, servers))
            redis.stop()


def fresh_number() -> str:
    return f"{10_000_000 + secrets.randbelow(10**8)}{1 + secrets.randbelow(9)}"  # not a default


def requests_made(fake_qlogo: Any, number: str) -> int:
    return int(fake_qlogo.count("user", number, SIZE))


def test_a_hundred_misses_over_two_servers_make_one_upstream_request(
        cluster: Cluster, fake_qlogo: Any) -> None:
    number = fresh_number()
    fake_qlogo.fault("slow", delay_ms=300, numbers=[number])  # all of them arrive meanwhile
    shared_before = cluster.shared_lookups("joined") + cluster.shared_lookups("hit")

    async def hundred() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            return await asyncio.gather(*(
                client.get(cluster.servers[i % 2].url + "/", params=cluster.params(number))
                for i in range(100)))

    replies = asyncio.run(hundred())
    assert [reply.status_code for reply in replies] == [200] * 100
    assert len({reply.content for reply in replies}) == 1
    assert requests_made(fake_qlogo, number) == 1
    # one server fetched; the other got it through Redis: it waited for that fetch
    # (joined) or, arriving after it, found the copy (hit): once, for its one local flight
    assert cluster.shared_lookups("joined") + cluster.shared_lookups("hit") - shared_before == 1


def test_redis_killed_and_restarted_under_load_fails_no_request(
        cluster: Cluster, fake_qlogo: Any) -> None:
    statuses: list[int] = []
    failures: list[str] = []

    def outage() -> None:
        time.sleep(0.3)
        cluster.redis.stop()
        time.sleep(0.7)
        cluster.redis.start()

    async def load() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            async def worker(w: int) -> None:
                number = ""
                for i in range(16):  # ~2 s of requests at this concurrency
                    # a new avatar on one server, then the same on the other: each request
                    # needs Redis (a miss to share, a copy to read), none is a memory hit
                    if i % 2 == 0:
                        number = fresh_number()
                    server = cluster.servers[(w + i) % 2]
                    reply = await client.get(server.url + "/", params=cluster.params(number))
                    image = reply.headers.get("content-type", "").startswith("image/")
                    statuses.append(reply.status_code if image else -1)
                    if not image or reply.status_code != 200:
                        failures.append(f"{reply.status_code} {reply.content[:300]!r}")
                    await asyncio.sleep(0.05)

            await asyncio.gather(*(worker(w) for w in range(16)))

    killer = threading.Thread(target=outage)
    killer.start()
    try:
        asyncio.run(load())
    finally:
        killer.join()
    assert len(statuses) == 16 * 16
    assert statuses == [200] * len(statuses), f"not every request got an avatar: {failures}"

    # Redis is back (fresh, empty): /readyz pings through each server's link, which
    # brings the link back as soon as its retry is due
    for server in cluster.servers:
        deadline = time.monotonic() + 10
        while server.client.get("/readyz").json()["checks"]["redis"] != "ok":
            assert time.monotonic() < deadline, "the server never used Redis again"
            time.sleep(0.2)
        log = server.output()  # both really lost it meanwhile, and said so once
        assert log.count("redis: unreachable") == 1, log[-3000:]
        assert log.count("redis: reachable again") == 1

    number = fresh_number()
    one, two = cluster.servers
    first = one.client.get("/", params=cluster.params(number))
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
    second = two.client.get("/", params=cluster.params(number))
    assert (second.status_code, second.headers["x-cache"]) == (200, "HIT")
    assert second.content == first.content
    assert requests_made(fake_qlogo, number) == 1

