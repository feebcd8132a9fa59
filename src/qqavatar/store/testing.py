"""Throwaway databases for tests (ours and anyone's who builds on the store).

Tests run against a SQLite file, and also against the database in
`QQAVATAR_TEST_DATABASE_URL` when that is set (e.g. a local PostgreSQL).
There each test gets its own schema, dropped afterwards, so runs never see
each other's tables, even in parallel.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.store.db import make_engine

TEST_DATABASE_URL_ENV = "QQAVATAR_TEST_DATABASE_URL"

EngineFactory = Callable[[], AsyncEngine]


def database_urls() -> list[str]:
    """URLs to run store tests against: SQLite always, plus the one from the environment.

    `sqlite://` here stands for a fresh file in the test's directory (see
    `isolated_database`): an in-memory database is not shared between engines.
    """
    extra = os.environ.get(TEST_DATABASE_URL_ENV)
    return ["sqlite://", extra] if extra else ["sqlite://"]


@asynccontextmanager
async def isolated_database(url: str, *, tmp_dir: Path) -> AsyncIterator[EngineFactory]:
    """Yield a factory of engines that all see one fresh, empty database.

    A SQLite URL without a file means a new file in `tmp_dir`.

    Every engine made is disposed on exit; a PostgreSQL schema is dropped.
    """
    engines: list[AsyncEngine] = []
    schema: str | None = None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        url = parsed.set(database=str(tmp_dir / "test.db")).render_as_string()
    if make_url(url).get_backend_name() == "postgresql":
        schema = f"qqavatar_test_{secrets.token_hex(6)}"
        async with _admin_engine(url) as admin, admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def factory() -> AsyncEngine:
        if schema is None:
            engine = make_engine(url)
        else:
            # asyncpg takes search_path as a server setting, not in the URL.
            settings = {"server_settings": {"search_path": schema}}
            engine = make_engine(url, connect_args=settings)
        engines.append(engine)
        return engine

    try:
        yield factory
    finally:
        for engine in engines:
            await engine.dispose()
        if schema is not None:
            async with _admin_engine(url) as admin, admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@asynccontextmanager
async def _admin_engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def create_database(url: str) -> str:
    """Create a fresh, empty PostgreSQL database on the server of `url`; its URL.

    For tests that run whole servers (one database each) against the PostgreSQL in
    `QQAVATAR_DATABASE_URL`; `drop_database` removes it."""
    name = f"qqavatar_t_{secrets.token_hex(6)}"
    _admin_statement(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of `url`, closing whatever connections still use it."""
    name = make_url(url).database
    _admin_statement(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_statement(url: str, statement: str) -> None:
    import asyncio

    admin_url = make_url(url).set(database="postgres").render_as_string(hide_password=False)

    async def run() -> None:
        engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")  # no transaction around it
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())
