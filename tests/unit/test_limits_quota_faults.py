"""The quota book when PostgreSQL goes away (a TCP relay cut in front of the real one): the
counts are kept, and the last flush at shutdown waits a little for the database to return."""

from __future__ import annotations

import asyncio
import calendar
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.limits.quota import QuotaBook, periods_at
from qqavatar.store.db import make_engine, migrate
from qqavatar.store.quota import QuotaStore
from tests.postgres_fixture import as_env, fresh_database
from tests.tcp_relay import TcpRelay
from tests.unit.test_store_members_limits import Clock

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield as_env(url)


@dataclass
class Relayed:
    direct: AsyncEngine   # straight to PostgreSQL
    through: AsyncEngine  # through `relay`, which the test cuts and restores
    relay: TcpRelay


@pytest.fixture
async def relayed(database_url: str) -> AsyncIterator[Relayed]:
    direct = make_engine(database_url)
    await migrate(direct)
    target = direct.url
    relay = TcpRelay(target.host or "127.0.0.1", target.port or 5432)
    through = make_engine(target.set(host="127.0.0.1", port=relay.port))
    try:
        yield Relayed(direct, through, relay)
    finally:
        relay.close()
        await through.dispose()
        await direct.dispose()


async def test_counts_survive_an_outage_and_the_last_flush_waits_for_the_database(
        relayed: Relayed) -> None:
    app = secrets.token_hex(16).upper()
    day, _ = periods_at(time.time())
    book = QuotaBook(QuotaStore(relayed.through), flush_interval=0.2)
    await book.start()
    assert all([book.reserve(app, 10, None) for _ in range(3)])
    relayed.relay.cut()
    assert all([book.reserve(app, 10, None) for _ in range(2)])  # no database needed
    await asyncio.sleep(0.5)  # flushes fail meanwhile; the counts stay pending
    assert book.usage(app)[0] == 5
    stopping = asyncio.create_task(book.stop())
    await asyncio.sleep(0.15)
    assert not stopping.done()  # still trying
    relayed.relay.restore()
    await asyncio.wait_for(stopping, 5)
    assert (await QuotaStore(relayed.direct).totals([day]))[(app, day)] == 5


async def test_a_failed_flush_before_midnight_stores_its_calls_in_their_day(
        relayed: Relayed) -> None:
    app = secrets.token_hex(16).upper()
    clock = Clock(calendar.timegm((2026, 11, 28, 15, 59, 59)))  # 23:59:59 on 28 Nov, UTC+8
    book = QuotaBook(QuotaStore(relayed.through), clock=clock)
    await book.load()
    book.count(app)
    book.count(app)
    relayed.relay.cut()
    with pytest.raises(Exception):  # noqa: B017 (whatever the driver raises for it)
        await book.flush()
    clock.now += 1  # the next flush runs on the 29th
    book.count(app)
    relayed.relay.restore()
    await book.flush()
    totals = await QuotaStore(relayed.direct).totals(["D2026-11-28", "D2026-11-29", "M2026-11"])
    assert {key: calls for key, calls in totals.items() if key[0] == app} == {
        (app, "D2026-11-28"): 2, (app, "D2026-11-29"): 1, (app, "M2026-11"): 3}
    assert book.usage(app) == (1, 3)
