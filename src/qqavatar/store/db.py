"""Engines, migrations, and the store's outage boundary.

Operators write plain URLs (`sqlite:///…`, `postgresql://…`); the async driver
is an implementation detail, so `make_engine` picks it.

Every store method reaches the database through `connect` or `begin`, which turn the
driver's "the database is away" errors into `StoreUnavailable`: callers above the store
catch that one exception and never need to know SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Async drivers for URLs given without an explicit `+driver`.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",  # Heroku-style alias
}

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT = 5.0  # seconds

# Any constant works; it only has to be the same for every qqavatar process.
_PG_MIGRATION_LOCK = 0x71_71_61_76  # "qqav"


def async_url(url: str) -> URL:
    """`url` with the async driver filled in; an explicit `+driver` is kept."""
    parsed = make_url(url)
    if "+" not in parsed.drivername and parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a `sqlite:///…` URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """An async engine for `url`; `engine_kwargs` go to `create_async_engine`."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql+asyncpg":
            # asyncpg waits 60 s for an unreachable server; nothing of ours should wait that long.
            connect_args = engine_kwargs.setdefault("connect_args", {})
            connect_args.setdefault("timeout", PG_CONNECT_TIMEOUT)
        return create_async_engine(parsed, **engine_kwargs)
    file = sqlite_file(parsed)
    if file is not None:
        _create_private(file)
    engine = create_async_engine(parsed, **engine_kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def _create_private(database: Path) -> None:
    """The SQLite file's directory (0700) and the file (0600), whatever the umask, when they
    do not exist yet: the file holds app secrets and member password hashes. SQLite gives
    its -wal and -shm files the database file's mode."""
    directory = database.parent
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
    try:
        fd = os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)  # the umask applies to os.open's mode; not to fchmod
    os.close(fd)  # an empty file is an empty SQLite database


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The CLI writes while servers read: WAL lets readers and one writer run
    # together, and busy_timeout makes a second writer wait instead of failing.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")  # off by default in SQLite
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # Leaving the rollback journal needs an exclusive lock, and SQLite answers "database
    # is locked" at once, without its busy handler, while another connection holds a
    # write lock: workers starting together on a new database, one of them migrating.
    # Retry, sleeping on the event loop, for as long as busy_timeout would have waited.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        await_only(asyncio.sleep(0.02))


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped in this package."""
    from alembic.config import Config  # Alembic costs ~0.5 s to import: only when migrating

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema to the newest revision; a no-op when it is current.

    Safe to run from several processes at once: the upgrade holds a database
    lock, so a second process waits and then finds nothing to do.
    """
    if await _current_revisions(engine) == script_heads():
        return  # the usual start: nothing to do, and no need to import Alembic
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_head)


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


@cache
def script_heads() -> frozenset[str]:
    """The newest revision of each branch, read from the migration files' headers (the
    revisions no other one names as its `down_revision`)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            raise RuntimeError(f"migration {path.name}: no revision/down_revision header")
        revisions.add(revision.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions - parents)


async def _current_revisions(engine: AsyncEngine) -> frozenset[str]:
    async with engine.connect() as connection:
        return await current_revisions(connection)


async def current_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database says it is at; empty when it has no schema yet."""
    try:
        rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no such table: a new database
        return frozenset()
    return frozenset(str(row[0]) for row in rows)


async def select_one(connection: AsyncConnection) -> None:
    """One round trip (readiness, `qqavatar doctor`); failures raise as the driver's own,
    not as `StoreUnavailable`: those checks report the driver's reason."""
    await connection.execute(text("SELECT 1"))


def _upgrade_head(connection: Connection) -> None:
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    elif backend == "sqlite":
        # The sqlite3 module opens transactions lazily (not before DDL);
        # take the write lock up front so concurrent upgrades serialise.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")  # features add their own branches off 0001


_DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


class StoreUnavailable(Exception):
    """The database cannot be reached (down, unreachable, connection dropped): callers answer
    "try again later" instead of "internal error". `reason` names the driver's exception,
    for logs."""

    def __init__(self, cause: BaseException) -> None:
        self.reason = type(cause).__name__
        super().__init__(f"database unavailable: {self.reason}")


def _is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database is away rather than a bug or a bad statement."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    if isinstance(exc, (OSError, TimeoutError)):  # a driver's socket error, not wrapped
        return any(str(frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES)
                   for frame, _ in traceback.walk_tb(exc.__traceback__))
    return False


class _OutageBoundary:
    """Re-raises an outage error leaving the block as `StoreUnavailable`; others pass."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, Exception) and _is_outage(exc):
            raise StoreUnavailable(exc) from exc


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """`engine.connect()` behind the outage boundary (reads)."""
    with _OutageBoundary():
        async with engine.connect() as connection:
            yield connection


@asynccontextmanager
async def begin(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """`engine.begin()` behind the outage boundary: one transaction, committed on leaving."""
    with _OutageBoundary():
        async with engine.begin() as connection:
            yield connection
