"""The quota book when PostgreSQL goes away (a TCP relay cut in front of the real one): the
counts are kept, and the last flush at shutdown waits a little for the database to return."""

from __future__ import annotations

import asyncio
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
