"""A fresh PostgreSQL database of the test's own on the machine's server (`qqavatar_t_<hex>`),
dropped WITH (FORCE) afterwards; skips (a failure under QQAVATAR_STRICT=1) without PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL, make_url

from qqavatar.store.db import make_engine
from qqavatar.store.schema import quota_usage, stats_daily
from qqavatar.store.testing import create_database, drop_database

ADMIN_URL_ENV = "QQAVATAR_TEST_DATABASE_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> URL:
    return make_url(os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL))


def _reachable(url: URL) -> bool:
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def fresh_database() -> Iterator[URL]:
    """The URL of a new, empty database (migrations run when a server first connects)."""
    admin = admin_url()
    if not _reachable(admin):
        pytest.skip(f"PostgreSQL is not running at {admin.host}:{admin.port}")
    url = create_database(admin.render_as_string(hide_password=False))
    try:
        yield make_url(url)
    finally:
        drop_database(url)


def as_env(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def stored_calls(url: URL, app_key: str) -> Counter[tuple[str, int]]:
    """The app's calls in the statistics tables, per (service, ret), all days together."""

    async def read() -> Counter[tuple[str, int]]:
        engine = make_engine(url.render_as_string(hide_password=False))
        query = select(stats_daily.c.service, stats_daily.c.ret, stats_daily.c.calls).where(
            stats_daily.c.app_key == app_key)
        try:
            async with engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        finally:
            await engine.dispose()
        counts: Counter[tuple[str, int]] = Counter()
        for row in rows:
            counts[(row.service, int(row.ret))] += int(row.calls)
        return counts

    return asyncio.run(read())


def stored_quota_usage(url: URL) -> dict[tuple[str, str], int]:
    """The quota counts: calls per (app_key, period), e.g. (KEY, "D2026-11-28")."""

    async def read() -> dict[tuple[str, str], int]:
        engine = make_engine(url.render_as_string(hide_password=False))
        try:
            async with engine.connect() as connection:
                rows = (await connection.execute(select(quota_usage))).all()
        finally:
            await engine.dispose()
        return {(row.app_key, row.period): int(row.calls) for row in rows}

    return asyncio.run(read())
