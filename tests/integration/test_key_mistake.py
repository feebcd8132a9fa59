"""An operator's key mistake must not take the cluster down (issue 19, points 1 and 2).

- Every `app` command that writes, run with a QQAVATAR_SECRET_KEY other than the database's
  or with none while rows are sealed, stops with status 2 and one line naming the key id the
  database uses, before it writes anything.
- A row sealed under another key that got in anyway (inserted directly) is skipped by the
  servers (logged once, by name) while they go on serving the other apps, a server started
  after it starts, `app list` shows it and `app delete` removes it: two real servers on one
  PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import insert, text, update

from qqavatar.cli import main
from qqavatar.secretbox import SecretBox
from qqavatar.store.apps import AppRecord, new_app_key, new_app_secret
from qqavatar.store.db import make_engine, migrate
from qqavatar.store.schema import APPS_VERSION, apps, meta
from tests.postgres_fixture import as_env, fresh_database
from tests.server_fixture import RunningServer

KEY_RIGHT = secrets.token_urlsafe(32)
KEY_WRONG = secrets.token_urlsafe(32)
RIGHT_ID, WRONG_ID = SecretBox(KEY_RIGHT).key_id, SecretBox(KEY_WRONG).key_id
# The log line naming the skipped app (logs shorten app keys, so by its name).
NOT_SERVED = (f"app 'stray' ({{}}…) is not served: its secret is sealed under key id "
              f"{WRONG_ID}, not this key's {RIGHT_ID}")


def cli(*args: str, key: str | None, stdin: str | None = None) -> Result:
    env = {"QQAVATAR_SECRET_KEY": key or ""}  # "" is unset
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def dump(database_url: str) -> list[tuple[Any, ...]]:
    async def read() -> list[tuple[Any, ...]]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text(
                    "SELECT app_key, app_secret, name, sign_required, daily_quota FROM apps "
                    "ORDER BY app_key"))
                links = await connection.execute(text(
                    "SELECT app_key, link_key FROM app_link_keys ORDER BY app_key"))
                return [tuple(row) for row in rows] + [tuple(row) for row in links]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def insert_foreign_row(database_url: str, name: str) -> str:
    """An app sealed under KEY_WRONG, written past the CLI's check (as psql would)."""
    now = int(time.time())
    record = AppRecord(app_key=new_app_key(), app_secret=new_app_secret(), name=name,
                       sign_required=False, created_at=now, updated_at=now)

    async def write() -> None:
        engine = make_engine(database_url)
        try:
            await migrate(engine)
            async with engine.begin() as connection:
                await connection.execute(insert(apps).values(**record.row(SecretBox(KEY_WRONG))))
                await connection.execute(update(meta).where(meta.c.key == APPS_VERSION)
                                         .values(value=meta.c.value + 1))
        finally:
            await engine.dispose()

    asyncio.run(write())
    return record.app_key


# --- every writing command, on SQLite -------------------------------------------------------


@pytest.fixture
def sealed_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """(database URL, app_key) of a database whose one app is sealed under KEY_RIGHT."""
    monkeypatch.setenv("QQAVATAR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("QQAVATAR_DATABASE_URL", raising=False)
    created = cli("app", "create", "sealed", "--json", key=KEY_RIGHT)
    assert created.exit_code == 0, created.output
    yield f"sqlite:///{tmp_path / 'qqavatar.db'}", json.loads(created.stdout)["app_key"]


WRITES = [
    ["app", "create", "another"],
    ["app", "update", "{key}", "--name", "renamed"],
    ["app", "update", "{key}", "--rotate-secret"],
    ["app", "update", "{key}", "--daily-quota", "5"],
    ["app", "delete", "{key}", "--yes"],
    ["app", "rotate-link-key", "{key}"],
    ["app", "encrypt-secrets"],
]


@pytest.mark.parametrize("key", [KEY_WRONG, None], ids=["wrong key", "no key"])
@pytest.mark.parametrize("command", WRITES, ids=lambda c: " ".join(c[1:3]))
def test_writes_under_another_key_are_refused(sealed_db: tuple[str, str], command: list[str],
                                              key: str | None) -> None:
    url, app_key = sealed_db
    before = dump(url)
    done = cli(*[part.format(key=app_key) for part in command], key=key)
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert RIGHT_ID in lines[0], lines[0]  # names the key the database uses
    assert dump(url) == before  # nothing written


def test_right_key_writes_and_no_key_on_a_plaintext_database(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("QQAVATAR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("QQAVATAR_DATABASE_URL", raising=False)
    plain = json.loads(cli("app", "create", "plain", "--json", key=None).stdout)
    # A first key on a plaintext database is not a mistake: the rows are sealed later.
    sealed = cli("app", "create", "sealed", "--json", key=KEY_RIGHT)
    assert sealed.exit_code == 0, sealed.output
    assert cli("app", "update", plain["app_key"], "--name", "p2", key=KEY_RIGHT).exit_code == 0
    # Now sealed rows exist: no key is a mistake.
    assert cli("app", "create", "late", key=None).exit_code == 2


# --- two servers on PostgreSQL ------------------------------------------------------------------


@pytest.mark.postgres
def test_a_foreign_row_leaves_the_cluster_serving(tmp_path: Path, fake_qlogo: Any) -> None:
    with fresh_database() as url:
        database_url = as_env(url)
        env = {"QQAVATAR_DATABASE_URL": database_url, "QQAVATAR_SECRET_KEY": KEY_RIGHT}
        base = {**os.environ, **env}
        created = subprocess.run([sys.executable, "-m", "qqavatar", "app", "create", "good",
                                  "--json"], env=base, capture_output=True, text=True,
                                 timeout=60)
        assert created.returncode == 0, created.stderr
        good = json.loads(created.stdout)["app_key"]
        one = RunningServer(tmp_path / "one", fake_qlogo.url, env)
        two: RunningServer | None = None
        try:
            # The operator's mistake: a create with another key is refused, nothing written.
            wrong = subprocess.run(
                [sys.executable, "-m", "qqavatar", "app", "create", "mistake"],
                env={**base, "QQAVATAR_SECRET_KEY": KEY_WRONG}, capture_output=True,
                text=True, timeout=60)
            assert wrong.returncode == 2, wrong.stderr
            assert RIGHT_ID in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
            assert [row[0] for row in one.query("SELECT name FROM apps")] == ["good"]

            # A row sealed under the wrong key gets in anyway.
            stray = insert_foreign_row(database_url, "stray")
            two = RunningServer(tmp_path / "two", fake_qlogo.url, env)  # starts regardless
            for server in (one, two):
                _wait_for_log(server, NOT_SERVED.format(stray[:6]))
                assert _answer(server, good)["ret"] == 200  # the others are served
                assert _answer(server, stray)["ret"] == 406  # the stray app is not
            listed = one.cli("app", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            rows = {row["app_key"]: row for row in json.loads(listed.stdout)}
            assert WRONG_ID in rows[stray]["unreadable"] and "unreadable" not in rows[good]

            deleted = one.cli("app", "delete", stray, "--yes")
            assert deleted.returncode == 0, deleted.stderr
            assert [row[0] for row in one.query("SELECT app_key FROM apps")] == [good]
            time.sleep(1.5)  # a reload or two on both servers
            for server in (one, two):
                assert _answer(server, good)["ret"] == 200
                # Skipped apps are logged once, not at every reload, and no reload failed.
                log = server.output()
                assert log.count(NOT_SERVED.format(stray[:6])) == 1, log
                assert "refresh failed" not in log, log
        finally:
            one.stop()
            if two is not None:
                two.stop()


def _answer(server: RunningServer, app_key: str) -> dict[str, Any]:
    params = {"s": "App.QQ.UserImage", "app_key": app_key, "qq": "10001", "output": "0"}
    reply: dict[str, Any] = server.client.get("/", params=params).json()
    return reply


def _wait_for_log(server: RunningServer, line: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while line not in server.output():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
