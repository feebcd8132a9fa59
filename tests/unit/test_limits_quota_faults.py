"""The quota book when PostgreSQL goes away (a TCP relay cut in front of the real one): the
counts are kept, and the last flush at shutdown waits a little for the database to return."""

from __future__ import annotations

import asyncio
import calendar
import secrets
import time
from collections.abc import Iterator

import pytest

from qqavatar.limits.quota import QuotaBook, periods_at
from qqavatar.store.db import make_engine, migrate
from qqavatar.store.quota import QuotaStore
from tests.postgres_fixture import as_env, fresh_database
from tests.tcp_relay import TcpRelay

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield as_env(url)


async def test_counts_survive_an_outage_and_the_last_flush_waits_for_the_database(
        database_url: str) -> None:
    direct = make_engine(database_url)
    await migrate(direct)
    target = direct.url
    relay = TcpRelay(target.host or "127.0.0.1", target.port or 5432)
    through = make_engine(target.set(host="127.0.0.1", port=relay.port))
    app = secrets.token_hex(16).upper()
    day, _ = periods_at(time.time())
    try:
        book = QuotaBook(QuotaStore(through), flush_interval=0.2)
        await book.start()
        assert all([book.reserve(app, 10, None) for _ in range(3)])
        relay.cut()
        assert all([book.reserve(app, 10, None) for _ in range(2)])  # no database needed
        await asyncio.sleep(0.5)  # flushes fail meanwhile; the counts stay pending
        assert book.usage(app)[0] == 5
        stopping = asyncio.create_task(book.stop())
        await asyncio.sleep(0.15)
        assert not stopping.done()  # still trying
        relay.restore()
        await asyncio.wait_for(stopping, 5)
        assert (await QuotaStore(direct).totals([day]))[(app, day)] == 5
    finally:
        relay.close()
        await through.dispose()
        await direct.dispose()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_failed_flush_before_midnight_stores_its_calls_in_their_day(
        database_url: str) -> None:
    direct = make_engine(database_url)
    await migrate(direct)
    target = direct.url
    relay = TcpRelay(target.host or "127.0.0.1", target.port or 5432)
    through = make_engine(target.set(host="127.0.0.1", port=relay.port))
    app = secrets.token_hex(16).upper()
    clock = Clock(calendar.timegm((2026, 11, 28, 15, 59, 59)))  # 23:59:59 on 28 Nov, UTC+8
    try:
        book = QuotaBook(QuotaStore(through), clock=clock)
        await book.load()
        book.count(app)
        book.count(app)
        relay.cut()
        with pytest.raises(Exception):  # noqa: B017 (whatever the driver raises for it)
            await book.flush()
        clock.now += 1  # the next flush runs on the 29th
        book.count(app)
        relay.restore()
        await book.flush()
        totals = await QuotaStore(direct).totals(["D2026-11-28", "D2026-11-29", "M2026-11"])
        assert {key: calls for key, calls in totals.items() if key[0] == app} == {(app, "D2026-11-28"): 2, (app, "D2026-11-29"): 1,
                          (app, "M2026-11"): 3}
        assert book.usage(app) == (1, 3)
    finally:
        relay.close()
        await through.dispose()
        await direct.dispose()
