"""Quotas exact across servers through Redis: QuotaBooks ("servers") on one database and one
redis-server of the test's own, which the tests kill and start again."""

from __future__ import annotations

import asyncio
import calendar
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.limits.quota import EXPIRY_MARGIN, QuotaBook, period_ends, periods_at
from qqavatar.limits.redis_quota import SharedQuotas, quota_key
from qqavatar.redislink import RedisLink
from qqavatar.store.db import migrate
from qqavatar.store.quota import QuotaStore
from qqavatar.store.testing import EngineFactory
from tests.redis_fixture import RedisProcess

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

# The books' clock stands still at the start (Redis expires keys on its own, real clock).
NOW = time.time()
DAY, MONTH = periods_at(NOW)


@pytest.fixture(scope="module")
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path_factory.mktemp("redis"))
    yield process
    process.stop()


@pytest.fixture
def redis(redis_process: RedisProcess) -> RedisProcess:
    if redis_process.proc is None:  # a test that killed it failed before starting it again
        redis_process.start()
    return redis_process


@pytest.fixture
async def engine(engines: EngineFactory) -> AsyncEngine:
    engine = engines()
    await migrate(engine)
    return engine


class Servers:
    """Quota books that stand for servers: each with its own Redis link and engine."""

    def __init__(self, engines: EngineFactory, redis: RedisProcess) -> None:
        self._engines = engines
        self._redis = redis
        self.links: list[RedisLink] = []
        self.books: list[QuotaBook] = []

    async def add(self) -> QuotaBook:
        # Retried at once (no waits in tests); a generous timeout, as this machine may be
        # loaded: a timed-out call is checked on local counts, which is not what these test.
        link = RedisLink(self._redis.url, timeout=2.0, retry_after=0.0)
        book = QuotaBook(QuotaStore(self._engines()), clock=lambda: NOW,
                         shared=SharedQuotas(link))
        await book.load()
        self.links.append(link)
        self.books.append(book)
        return book

    async def close(self) -> None:
        for link in self.links:
            await link.aclose()


@pytest.fixture
async def servers(engine: AsyncEngine, engines: EngineFactory,
                  redis: RedisProcess) -> AsyncIterator[Servers]:
    running = Servers(engines, redis)
    yield running
    await running.close()


def unique_app(request: pytest.FixtureRequest) -> str:
    """A fresh app key (32 hex digits, as stored): one Redis serves the whole module."""
    return secrets.token_hex(16).upper()


async def test_a_quota_holds_exactly_across_servers_under_concurrency(
        servers: Servers, engine: AsyncEngine, request: pytest.FixtureRequest) -> None:
    app = unique_app(request)
    first, second = await servers.add(), await servers.add()
    # 90 calls at once, alternating between the servers, before either has flushed.
    calls = [book.admit(app, 30, None) for _ in range(45) for book in (first, second)]
    admitted = await asyncio.gather(*calls)
    assert sum(admitted) == 30
    assert first.usage(app)[0] + second.usage(app)[0] == 30
    await first.flush()
    await second.flush()
    assert (await QuotaStore(engine).totals([DAY]))[(app, DAY)] == 30


async def test_the_month_is_shared_too(servers: Servers, engine: AsyncEngine,
                                       request: pytest.FixtureRequest) -> None:
    app = unique_app(request)
    first, second = await servers.add(), await servers.add()
    assert [await book.admit(app, None, 3) for book in (first, second, first, second)] == [
        True, True, True, False]
    assert first.usage(app) == (2, 2)  # each server counts what it admitted, for the database
    assert second.usage(app) == (1, 1)
    await first.flush()
    await second.flush()
    assert (await QuotaStore(engine).totals([MONTH]))[(app, MONTH)] == 3

async def test_a_redis_restart_does_not_reset_the_quota(
        servers: Servers, redis: RedisProcess, request: pytest.FixtureRequest) -> None:
    app = unique_app(request)
    first, second = await servers.add(), await servers.add()
    assert all([await first.admit(app, 8, None) for _ in range(5)])
    await first.flush()
    await second.flush()  # the second server learns the 5 from the database
    redis.stop()
    redis.start()  # empty: Redis keeps nothing on disk here
    admitted = [await book.admit(app, 8, None) for book in (second, first) for _ in range(3)]
    assert admitted == [True, True, True, False, False, False]
    assert int(await servers.links[0].client.get(quota_key(app, DAY)) or 0) == 8


async def test_while_redis_is_down_each_server_counts_alone_and_redis_catches_up(
        servers: Servers, redis: RedisProcess, request: pytest.FixtureRequest,
        caplog: pytest.LogCaptureFixture) -> None:
    app = unique_app(request)
    first, second = await servers.add(), await servers.add()
    assert await first.admit(app, 10, None)
    redis.stop()
    with caplog.at_level(logging.INFO, logger="qqavatar.limits.quota"):
        # No error for the caller: the book answers on its own counts.
        assert [await first.admit(app, 10, None) for _ in range(3)] == [True] * 3
        assert first.usage(app)[0] == 4
        redis.start()
        await first.flush()
        await second.flush()  # knows the 4 from the database now
        # Redis came back empty; the first call raises it to the caller's count (4), not 0.
        assert await second.admit(app, 10, None)
        assert int(await servers.links[0].client.get(quota_key(app, DAY)) or 0) == 5
        assert await first.admit(app, 10, None)  # the first server is back on Redis too
        assert int(await servers.links[0].client.get(quota_key(app, DAY)) or 0) == 6
    messages = [record.getMessage() for record in caplog.records]
    assert sum("Redis unavailable" in message for message in messages) == 1
    assert sum("counting in Redis again" in message for message in messages) == 1


async def test_an_app_without_quota_costs_no_redis_key_but_is_counted(
        servers: Servers, request: pytest.FixtureRequest) -> None:
    app = unique_app(request)
    book = await servers.add()
    assert all([await book.admit(app, None, None) for _ in range(4)])
    assert book.usage(app) == (4, 4)
    assert await servers.links[0].client.exists(quota_key(app, DAY), quota_key(app, MONTH)) == 0
    # A quota set later applies to the calls so far: Redis starts from the book's count.
    assert [await book.admit(app, 6, None) for _ in range(3)] == [True, True, False]


async def test_shared_counters_expire_after_their_period(
        servers: Servers, request: pytest.FixtureRequest) -> None:
    app = unique_app(request)
    book = await servers.add()
    assert await book.admit(app, 5, 50)
    client = servers.links[0].client
    day_end, month_end = period_ends(NOW)
    assert await client.expiretime(quota_key(app, DAY)) == day_end + EXPIRY_MARGIN
    assert await client.expiretime(quota_key(app, MONTH)) == month_end + EXPIRY_MARGIN


async def test_what_redis_last_said_holds_while_it_is_down(
        servers: Servers, redis: RedisProcess, request: pytest.FixtureRequest) -> None:
    app = unique_app(request)
    first, second = await servers.add(), await servers.add()
    assert [await first.admit(app, 4, None) for _ in range(3)] == [True] * 3
    assert await second.admit(app, 4, None)  # Redis: 4 of 4; the database knows of none yet
    assert second.usage(app) == (1, 1)
    redis.stop()
    try:
        # No sync since: the second server refuses on what Redis said, without trying it.
        assert not await second.admit(app, 4, None)
        assert servers.links[1].state == "ok"
        # The first server learnt 3 from Redis and has called it no more: it falls back to
        # its own count (3) and admits one more, not knowing the second server's call. The
        # bound while Redis is down: what the others admitted since they last heard from it.
        assert await first.admit(app, 4, None)
        assert not await first.admit(app, 4, None)
    finally:
        redis.start()


def test_period_ends_are_midnights_in_china() -> None:
    noon = calendar.timegm((2026, 11, 10, 4, 0, 0))  # 12:00 in UTC+8
    assert period_ends(noon) == (calendar.timegm((2026, 11, 10, 16, 0, 0)),
                                 calendar.timegm((2026, 11, 30, 16, 0, 0)))


def test_period_ends_roll_over_the_month_and_the_year() -> None:
    new_years_eve = calendar.timegm((2026, 12, 31, 15, 59, 59))  # 23:59:59 in UTC+8
    assert period_ends(new_years_eve) == (calendar.timegm((2026, 12, 31, 16, 0, 0)),) * 2
    assert periods_at(new_years_eve + 1) == ("D2027-01-01", "M2027-01")

