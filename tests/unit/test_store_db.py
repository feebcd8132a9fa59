"""Engines and migrations."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from qqavatar.store import db
from qqavatar.store.db import alembic_config, async_url, make_engine, migrate, script_heads
from qqavatar.store.schema import metadata
from qqavatar.store.testing import EngineFactory

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:////data/q.db", "sqlite+aiosqlite:////data/q.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite+pysqlite:///x.db", "sqlite+pysqlite:///x.db"),
    ],
)
def test_async_url(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


async def test_sqlite_creates_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "q.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert path.parent.is_dir()
        assert journal == "wal"
        assert timeout == 5000
    finally:
        await engine.dispose()


async def test_sqlite_waits_for_a_writer_before_switching_to_wal(tmp_path: Path) -> None:
    # A new database in rollback mode with another worker's migration holding its write
    # lock: SQLite refuses the switch to WAL at once, without its busy handler (CI saw
    # "database is locked" from workers migrating together). The connect must wait.
    path = tmp_path / "q.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (a)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    asyncio.get_running_loop().call_later(0.3, writer.execute, "COMMIT")
    engine = make_engine(f"sqlite:///{path}")
    started = time.monotonic()
    try:
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert journal == "wal"
        assert time.monotonic() - started >= 0.25  # it waited for the COMMIT
    finally:
        await engine.dispose()
        writer.close()


def _head() -> set[str]:
    """Every branch's head: features add their own branches off 0001."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert heads
    return heads


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _schema_diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migrate_creates_schema_matching_metadata(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_current) == _head()
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"apps", "meta", "alembic_version"} <= tables
        # The hand-written migration and schema.py describe the same tables.
        assert await connection.run_sync(_schema_diff) == []
        row = (await connection.execute(text("SELECT value FROM meta"))).scalar_one()
        assert row == 0


async def test_migrate_twice_is_a_no_op(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE meta SET value = 7"))
    await migrate(engine)
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT value FROM meta"))).scalar_one() == 7
        assert await connection.run_sync(_current) == _head()


async def test_concurrent_migrations_serialise(engines: EngineFactory) -> None:
    # Several workers starting at once on an empty database.
    await asyncio.gather(*(migrate(engines()) for _ in range(3)))
    engine = engines()
    async with engine.connect() as connection:
        assert await connection.run_sync(_current) == _head()
        assert (await connection.execute(text("SELECT count(*) FROM meta"))).scalar_one() == 1


def test_heads_read_from_the_files_match_alembics() -> None:
    # migrate() skips Alembic when the database is at these heads: they must be Alembic's own.
    assert script_heads() == _head()


async def test_a_postgresql_server_that_never_answers_is_given_up_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A listener that accepts and says nothing, as a hung database host looks to a client.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    monkeypatch.setattr(db, "PG_CONNECT_TIMEOUT", 0.5)
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/none")
    started = time.monotonic()
    try:
        with pytest.raises((TimeoutError, OSError)):
            async with engine.connect():
                pass
        assert time.monotonic() - started < 5  # asyncpg alone would wait 60 s
    finally:
        await engine.dispose()
        silent.close()
