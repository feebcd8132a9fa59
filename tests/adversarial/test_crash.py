"""Crash safety: kill -9 in the middle of heavy writes, restart on the same data; SIGTERM drains.

The crash: for a couple of seconds a real server takes avatar calls from several clients
(stats and quota counting, flushed every 0.5 s and 1 s), member registrations (a KDF and an
insert each), while `qqavatar app create` runs in other processes. Then the server, its
worker and the running CLI are SIGKILLed at once, and a new server starts on the same
database. What must hold afterwards:

- the database is sound: SQLite `integrity_check` is ok and no foreign key dangles;
- no half-written row: every member and app row has all its fields;
- every acknowledged write is there and works: each member whose Register got ret 200 and
  err_code 0 logs in with its password; each app whose `app create` printed it answers
  signed calls with the secret printed;
- counters lose at most what was counted since their last flush: every call answered more
  than `interval + FLUSH_SLACK` seconds before the kill is counted, and nothing is counted
  that was never sent.

The drain: calls waiting on a slow upstream when SIGTERM comes all get their full answers,
new connections are refused meanwhile, and the server exits cleanly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import make_url

from qqavatar.protocol.sign import compute_sign
from qqavatar.store.db import make_engine
from qqavatar.store.testing import create_database, drop_database
from tests.integration.test_stats import first_app_key, kill_9
from tests.server_fixture import RunningServer

STATS_INTERVAL = 0.5   # qqavatar.stats.collector.FLUSH_INTERVAL
QUOTA_INTERVAL = 1.0   # QuotaBook's flush_interval
# A flush is a database write that takes time of its own on a busy machine: calls answered
# during the last flush before the kill may be lost with it.
FLUSH_SLACK = 0.5
LOAD_SECONDS = 2.5
AVATAR_CLIENTS = 4
REGISTER_CLIENTS = 1  # each Register costs a scrypt; so does each Login after the restart


def postgres_url() -> str:
    return os.environ.get("QQAVATAR_TEST_DATABASE_URL",
                          "postgresql://postgres@127.0.0.1:5432/test")


def md5(text_: str) -> str:
    return hashlib.md5(text_.encode()).hexdigest()


@dataclass
class Workload:
    """Drives the writes and remembers what the server acknowledged, and when."""

    server: RunningServer
    app_key: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0                                            # calls started, naming the app
    answered: list[float] = field(default_factory=list)      # when each answer arrived
    ok_answered: list[float] = field(default_factory=list)   # … of those with ret 200
    members: dict[str, str] = field(default_factory=dict)    # registered: username → uuid
    apps: list[dict[str, Any]] = field(default_factory=list) # printed by `app create`
    cli: subprocess.Popen[str] | None = None                 # the `app create` running now
    errors: list[str] = field(default_factory=list)

    def _call(self, client: httpx.Client, params: dict[str, str]) -> dict[str, Any] | None:
        with self.lock:
            self.sent += 1
        try:
            body: dict[str, Any] = client.get("/", params={**params, "app_key": self.app_key}).json()
        except httpx.TransportError:
            return None  # the kill came first
        now = time.monotonic()
        with self.lock:
            self.answered.append(now)
            if body["ret"] == 200:
                self.ok_answered.append(now)
            else:
                self.errors.append(f"ret {body['ret']}: {body.get('msg')}")
        return body

    def avatars(self, worker: int) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as client:
            for n in range(100_000):
                if self.stop.is_set():
                    return
                qq = str(10_001 + (worker * 7919 + n) % 200)  # hits and misses
                self._call(client, {"s": "App.QQ.UserImage", "qq": qq, "output": "0"})

    def registrations(self, worker: int) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as client:
            for n in range(100_000):
                if self.stop.is_set():
                    return
                name = f"crash{worker}x{n}"
                body = self._call(client, {"s": "App.User.Register", "username": name,
                                           "password": md5(name)})
                if body is not None and body["ret"] == 200 and body["data"]["err_code"] == 0:
                    with self.lock:
                        self.members[name] = body["data"]["uuid"]

    def app_creations(self) -> None:
        for n in range(1000):
            if self.stop.is_set():
                return
            proc = subprocess.Popen(
                [sys.executable, "-m", "qqavatar", "app", "create", f"crash-{n}", "--json",
                 "--sign-required"],
                env=self.server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with self.lock:
                self.cli = proc
            out, _ = proc.communicate(timeout=60)
            if proc.returncode == 0:
                self.apps.append(json.loads(out))

    def kill_cli(self) -> None:
        with self.lock:
            if self.cli is not None and self.cli.poll() is None:
                self.cli.kill()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self.avatars, args=(i,)) for i in range(AVATAR_CLIENTS)]
        threads += [threading.Thread(target=self.registrations, args=(i,))
                    for i in range(REGISTER_CLIENTS)]
        threads.insert(0, threading.Thread(target=self.app_creations))  # the slowest first
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self.stop.set()
            self.kill_cli()
            for thread in threads:
                thread.join(timeout=60)

    def answered_before(self, moment: float, *, ok_only: bool = False) -> int:
        times = self.ok_answered if ok_only else self.answered
        return sum(1 for t in times if t <= moment)

    def seconds_lost(self, killed_at: float, counted: int, *, ok_only: bool = False) -> float:
        """How long before the kill the uncounted answers began: the loss as time."""
        times = sorted(self.ok_answered if ok_only else self.answered)
        lost = len(times) - counted
        return killed_at - times[-lost] if 0 < lost <= len(times) else 0.0


def read_rows(url: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return [tuple(row) for row in await connection.execute(text(sql), params)]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def counted(url: str, app_key: str) -> tuple[int, int]:
    """(calls in the statistics, calls in today's quota) of one app."""
    [(stats,)] = read_rows(url, "SELECT COALESCE(SUM(calls), 0) FROM stats_daily "
                                "WHERE app_key = :key", key=app_key)
    [(quota,)] = read_rows(url, "SELECT COALESCE(SUM(calls), 0) FROM quota_usage "
                                "WHERE app_key = :key AND period LIKE 'D%'", key=app_key)
    return int(stats), int(quota)


def crash_and_restart(data_dir: Path, fake: Any, database_url: str) -> None:
    env = {"QQAVATAR_DATABASE_URL": database_url}  # this very database, whatever the suite's
    server = RunningServer(data_dir, fake.url, env)
    killed_at = 0.0
    try:
        work = Workload(server, first_app_key(server))
        with work.running():
            # At least LOAD_SECONDS, and until one `app create` is through (a CLI start
            # takes seconds on a busy machine); bounded.
            started = time.monotonic()
            while time.monotonic() - started < LOAD_SECONDS or not work.apps:
                assert time.monotonic() - started < 40, "no app created in 40 s"
                time.sleep(0.05)
            kill_9(server.proc.pid)
            killed_at = time.monotonic()  # nothing is answered after this
            work.kill_cli()
        server.proc.wait(timeout=10)
    finally:
        server.stop()
    assert not work.errors, work.errors[:5]
    assert len(work.members) >= 2 and work.answered_before(killed_at) >= 50, \
        (len(work.members), len(work.answered))  # the kill did come during heavy writes

    if database_url.startswith("sqlite"):  # before anything opens it again
        database = make_url(database_url).database
        with contextlib.closing(sqlite3.connect(str(database))) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []

    # No half-written rows.
    assert read_rows(database_url, "SELECT uuid FROM members WHERE username = '' OR "
                     "password_hash = '' OR uuid = '' OR created_at <= 0") == []
    assert read_rows(database_url, "SELECT app_key FROM apps WHERE app_secret = '' OR "
                     "name = '' OR created_at <= 0") == []

    # Counters: nothing counted that was never sent; nothing answered before the last flush lost.
    stats, quota = counted(database_url, work.app_key)
    stats_floor = work.answered_before(killed_at - STATS_INTERVAL - FLUSH_SLACK)
    quota_floor = work.answered_before(killed_at - QUOTA_INTERVAL - FLUSH_SLACK, ok_only=True)
    report = (f"sent {work.sent}, answered {len(work.answered)}; stats {stats} (floor "
              f"{stats_floor}, lost the last "
              f"{work.seconds_lost(killed_at, stats):.2f} s), quota {quota} (floor "
              f"{quota_floor}, lost the last "
              f"{work.seconds_lost(killed_at, quota, ok_only=True):.2f} s)")
    assert stats_floor <= stats <= work.sent, report
    assert quota_floor <= quota <= work.sent, report
    print(f'{report}; members {len(work.members)}, apps {len(work.apps)}')

    again = RunningServer(data_dir, fake.url, env)
    try:
        for name, uuid in work.members.items():
            login = again.client.get("/", params={
                "s": "App.User.Login", "app_key": work.app_key, "username": name,
                "password": md5(name)}).json()
            assert (login["ret"], login["data"]["err_code"], login["data"]["uuid"]) == \
                (200, 0, uuid), (name, login)
        listed = {key for (key,) in read_rows(database_url, "SELECT app_key FROM apps")}
        for app in work.apps:
            assert app["app_key"] in listed
            again.wait_for_app(app["app_key"])
            params = {"s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001",
                      "output": "0"}
            signed = {**params, "sign": compute_sign(params, app["app_secret"])}
            assert again.client.get("/", params=signed).json()["ret"] == 200, app["name"]
        # The restarted server counts on from what was stored.
        assert again.client.get("/", params={"s": "App.QQ.UserImage", "app_key": work.app_key,
                                             "qq": "10001", "output": "0"}).json()["ret"] == 200
    finally:
        again.stop()
    # The restarted server counted on from what was stored: the logins and the one call.
    assert counted(database_url, work.app_key)[0] == stats + len(work.members) + 1


def test_kill_9_during_heavy_writes_on_sqlite(tmp_path: Path, fake_qlogo: Any) -> None:
    crash_and_restart(tmp_path, fake_qlogo, f"sqlite:///{tmp_path / 'qqavatar.db'}")


@pytest.mark.postgres
def test_kill_9_during_heavy_writes_on_postgresql(tmp_path: Path, fake_qlogo: Any) -> None:
    url = make_url(postgres_url())
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1).close()
    except OSError:
        pytest.skip("PostgreSQL is not running")
    database = create_database(postgres_url())
    try:
        crash_and_restart(tmp_path, fake_qlogo, database)
    finally:
        drop_database(database)


# --- SIGTERM ---------------------------------------------------------------------------------

IN_FLIGHT = 8
UPSTREAM_DELAY_MS = 2000


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_drains_in_flight_calls(tmp_path: Path, fake_qlogo: Any) -> None:
    """On granian, the default server. (uvicorn drains as well, then re-raises SIGTERM, so
    its exit status is -15 rather than 0: see tests/integration/test_stats.py.)"""
    server = RunningServer(tmp_path, fake_qlogo.url, {"QQAVATAR_UPSTREAM_TIMEOUT": "5"})
    try:
        key = first_app_key(server)
        numbers = [str(31_001 + i) for i in range(IN_FLIGHT)]
        fake_qlogo.fault("slow", delay_ms=UPSTREAM_DELAY_MS, numbers=numbers)
        before = fake_qlogo.stats()["requests"]
        answers: dict[str, httpx.Response | Exception] = {}

        def call(qq: str) -> None:
            try:
                answers[qq] = httpx.get(server.url + "/", timeout=20, params={
                    "s": "App.QQ.UserImage", "app_key": key, "qq": qq, "output": "0"})
            except httpx.HTTPError as exc:
                answers[qq] = exc

        callers = [threading.Thread(target=call, args=(qq,)) for qq in numbers]
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 10
        while fake_qlogo.stats()["requests"] - before < IN_FLIGHT:  # all waiting upstream
            assert time.monotonic() < deadline, "the calls never reached the upstream"
            time.sleep(0.02)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)

        # New connections are refused while the old calls are still waiting.
        while not refused(server.port):
            assert time.monotonic() - signalled < 1.5, "still accepting after SIGTERM"
            time.sleep(0.02)
        assert all(caller.is_alive() for caller in callers)

        for caller in callers:
            caller.join(timeout=20)
        for qq in numbers:
            answer = answers[qq]
            assert isinstance(answer, httpx.Response), (qq, answer)
            body = answer.json()
            assert (body["ret"], body["data"]["err_code"]) == (200, 0), body
            Image.open(io.BytesIO(base64.b64decode(body["data"]["img"]))).load()  # all of it
        assert server.proc.wait(timeout=15) == 0
    finally:
        server.stop()
