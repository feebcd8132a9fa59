"""The store's outage boundary: a database that cannot be reached surfaces as
`StoreUnavailable` (what callers above the store catch); any other error passes unchanged."""

from __future__ import annotations

import socket
from pathlib import Path

import click
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from qqavatar.cli.database import run_with_engine
from qqavatar.store import db
from qqavatar.store.apps import AppStore
from qqavatar.store.db import StoreUnavailable, make_engine, migrate
from qqavatar.store.members import MemberStore
from qqavatar.store.quota import QuotaStore
from qqavatar.store.schema import APPS_VERSION, meta
from qqavatar.store.testing import EngineFactory

pytestmark = pytest.mark.anyio


def closed_port() -> int:
    """A local port nothing listens on (taken and given back)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_database_that_cannot_be_reached_is_store_unavailable() -> None:
    # The driver's own socket error (connection refused), raised below SQLAlchemy.
    engine = make_engine(f"postgresql://qqavatar@127.0.0.1:{closed_port()}/qqavatar")
    try:
        for work in (AppStore(engine).list(), MemberStore(engine).find("A" * 32, "someone"),
                     QuotaStore(engine).add({("A" * 32, "d20261205"): 1})):
            with pytest.raises(StoreUnavailable) as caught:
                await work
            assert caught.value.reason == "ConnectionRefusedError"  # what the logs name
            assert "database unavailable" in str(caught.value)
    finally:
        await engine.dispose()


async def test_other_errors_pass_the_boundary_unchanged(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    with pytest.raises(IntegrityError):  # a bad statement is not an outage
        async with db.begin(engine) as connection:
            await connection.execute(insert(meta).values(key=APPS_VERSION, value=1))
    with pytest.raises(ValueError, match="a bug"):
        async with db.connect(engine):
            raise ValueError("a bug")
    async with db.connect(engine) as connection:  # and the store still answers
        assert (await connection.exec_driver_sql("SELECT 1")).scalar() == 1


def test_a_cli_command_that_finds_no_database_ends_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QQAVATAR_DATABASE_URL", f"sqlite:///{tmp_path / 'q.db'}")
    away = make_engine(f"postgresql://qqavatar@127.0.0.1:{closed_port()}/qqavatar")
    with pytest.raises(click.ClickException) as caught:  # not a traceback
        run_with_engine(lambda _engine: AppStore(away).list())
    assert caught.value.message.startswith("database error: ")
    assert "\n" not in caught.value.message
