"""AppStore and AppRegistry, on SQLite and (if configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import pytest
from sqlalchemy.exc import SQLAlchemyError

from qqavatar.store.apps import AppRecord, AppRegistry, AppStore, clean_name
from qqavatar.store.db import StoreUnavailable, migrate
from qqavatar.store.testing import EngineFactory

pytestmark = pytest.mark.anyio

KEY = re.compile(r"^[0-9A-F]{32}$")
SECRET = re.compile(r"^[A-Za-z0-9]{64}$")


@pytest.fixture
async def store(engines: EngineFactory) -> AppStore:
    engine = engines()
    await migrate(engine)
    return AppStore(engine)


async def test_create_issues_key_and_secret(store: AppStore) -> None:
    before = int(time.time())
    record = await store.create("  demo  ")
    assert KEY.match(record.app_key)
    assert SECRET.match(record.app_secret)
    assert record.name == "demo"
    assert record.sign_required is False
    assert before <= record.created_at == record.updated_at <= int(time.time())
    assert await store.get(record.app_key) == record


async def test_keys_and_secrets_are_unique(store: AppStore) -> None:
    records = [await store.create(f"app {i}") for i in range(5)]
    assert len({r.app_key for r in records}) == 5
    assert len({r.app_secret for r in records}) == 5


async def test_create_with_signing(store: AppStore) -> None:
    record = await store.create("signed", sign_required=True)
    fetched = await store.get(record.app_key)
    assert fetched is not None
    assert fetched.sign_required is True


async def test_list_is_oldest_first_then_by_name(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    clock = iter([200, 100, 100])
    timed = AppStore(engine, clock=lambda: next(clock))
    for name in ("late", "b", "a"):
        await timed.create(name)
    assert [(r.created_at, r.name) for r in await timed.list()] == [
        (100, "a"),
        (100, "b"),
        (200, "late"),
    ]


async def test_get_unknown_is_none(store: AppStore) -> None:
    assert await store.get("0" * 32) is None


async def test_update_fields(store: AppStore) -> None:
    record = await store.create("old")
    renamed = await store.update(record.app_key, name=" new ", sign_required=True)
    assert renamed is not None
    assert (renamed.name, renamed.sign_required, renamed.app_secret) == (
        "new",
        True,
        record.app_secret,
    )
    assert renamed.created_at == record.created_at
    assert renamed.updated_at >= record.updated_at
    assert await store.get(record.app_key) == renamed


async def test_rotate_secret(store: AppStore) -> None:
    record = await store.create("x")
    rotated = await store.update(record.app_key, rotate_secret=True)
    assert rotated is not None
    assert SECRET.match(rotated.app_secret)
    assert rotated.app_secret != record.app_secret
    assert (rotated.name, rotated.sign_required) == (record.name, record.sign_required)


async def test_update_unknown_is_none_and_no_bump(store: AppStore) -> None:
    version = await store.version()
    assert await store.update("0" * 32, name="x") is None
    assert await store.version() == version


async def test_update_nothing_returns_app_without_bump(store: AppStore) -> None:
    record = await store.create("x")
    version = await store.version()
    assert await store.update(record.app_key) == record
    assert await store.version() == version


async def test_delete(store: AppStore) -> None:
    record = await store.create("x")
    assert await store.delete(record.app_key) is True
    assert await store.get(record.app_key) is None
    assert await store.delete(record.app_key) is False
    assert await store.list() == []


async def test_every_mutation_bumps_version(store: AppStore) -> None:
    assert await store.version() == 0
    record = await store.create("x")
    assert await store.version() == 1
    await store.update(record.app_key, name="y")
    assert await store.version() == 2
    await store.update(record.app_key, sign_required=True)
    assert await store.version() == 3
    await store.update(record.app_key, rotate_secret=True)
    assert await store.version() == 4
    await store.delete(record.app_key)
    assert await store.version() == 5
    await store.delete(record.app_key)  # nothing left to delete
    assert await store.version() == 5


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 101, "at most 100 characters, got 101"),
        ("a\nb", "control characters"),
    ],
)
async def test_invalid_names_are_rejected(store: AppStore, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await store.create(name)
    record = await store.create("ok")
    with pytest.raises(ValueError, match=message):
        await store.update(record.app_key, name=name)
    assert await store.version() == 1  # the rejected calls changed nothing


def test_name_limits() -> None:
    assert clean_name(" " + "x" * 100 + " ") == "x" * 100
    assert clean_name("日本語の名前") == "日本語の名前"


def test_public_dict() -> None:
    record = AppRecord("K" * 32, "S" * 64, "n", True, 1, 2)
    assert list(record.public_dict()) == [
        "app_key",
        "app_secret",
        "name",
        "sign_required",
        "created_at",
        "updated_at",
        "daily_quota",
        "monthly_quota",
        "rate_limit",
        "ip_allow",
        "domains",
        "sign_scheme",
    ]
    assert "app_secret" not in record.public_dict(with_secret=False)


async def _wait_for(condition: Callable[[], bool], limit: float) -> float:
    """Seconds until `condition()` holds; fails after `limit` seconds."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit, "condition not met in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_registry_follows_another_store(engines: EngineFactory) -> None:
    server_engine, cli_engine = engines(), engines()  # two engines: like two processes
    await migrate(server_engine)
    cli = AppStore(cli_engine)
    first = await cli.create("before start")
    interval = 0.1
    registry = AppRegistry(AppStore(server_engine), poll_interval=interval)
    await registry.start()
    try:
        assert registry.get(first.app_key) == first

        second = await cli.create("after start")
        # Within one poll interval, plus slack for the reload itself on a busy machine.
        assert await _wait_for(lambda: registry.get(second.app_key) == second, 2) < interval + 0.5

        updated = await cli.update(second.app_key, rotate_secret=True)
        await _wait_for(lambda: registry.get(second.app_key) == updated, 1)

        await cli.delete(first.app_key)
        await _wait_for(lambda: registry.get(first.app_key) is None, 1)
        assert len(registry) == 1
        assert registry.version == await cli.version()
    finally:
        await registry.stop()
    await registry.stop()  # stopping twice is harmless


async def _through_a_failure(store: AppStore, monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture,
                             failure: Exception) -> list[logging.LogRecord]:
    """Run a registry while `store.version` raises `failure` a few polls, then works again;
    the registry's log records ("refresh works again" checked here)."""
    registry = AppRegistry(store, poll_interval=0.02)
    await registry.start()
    try:
        real_version = store.version
        failures = 0

        async def broken_version() -> int:
            nonlocal failures
            failures += 1
            raise failure

        with caplog.at_level(logging.INFO, logger="qqavatar.store.apps"):
            monkeypatch.setattr(store, "version", broken_version)
            await _wait_for(lambda: failures >= 3, 2)
            monkeypatch.setattr(store, "version", real_version)
            record = await store.create("after outage")
            await _wait_for(lambda: registry.get(record.app_key) == record, 2)
        assert "refresh works again" in caplog.text
        return caplog.records
    finally:
        await registry.stop()


async def test_registry_survives_database_errors(
    store: AppStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    records = await _through_a_failure(store, monkeypatch, caplog,
                                       ConnectionError("database went away"))
    errors = [r for r in records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one log line per outage, not one per poll"


async def test_a_database_outage_is_one_warning_without_traceback(
    store: AppStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage is expected in a cluster's life: said once, as the other parts say it."""
    records = await _through_a_failure(store, monkeypatch, caplog,
                                       StoreUnavailable(ConnectionRefusedError()))
    said = [r for r in records if "refresh failed" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in said] == [(logging.WARNING, None)]
    assert "ConnectionRefusedError" in said[0].getMessage()


async def test_registry_start_fails_loudly_without_schema(engines: EngineFactory) -> None:
    registry = AppRegistry(AppStore(engines()))  # not migrated
    # (SQLite says "no such table" with the error it uses for an unreachable file too)
    with pytest.raises((SQLAlchemyError, StoreUnavailable)):
        await registry.start()


async def test_sign_scheme(store: AppStore) -> None:
    """YesApi's sign unless an app opts into the stronger one (docs/security.md)."""
    record = await store.create("weak")
    assert record.sign_scheme == "yesapi"
    strong = await store.create("strong", sign_scheme="hmac-sha256")
    assert (await store.get(strong.app_key)) == strong
    updated = await store.update(record.app_key, sign_scheme="hmac-sha256")
    assert updated is not None and updated.sign_scheme == "hmac-sha256"
    with pytest.raises(ValueError, match="sign scheme must be one of yesapi, hmac-sha256"):
        await store.update(record.app_key, sign_scheme="md5")

