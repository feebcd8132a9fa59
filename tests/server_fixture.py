"""A real qqavatar server in a subprocess on a loopback port, for integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from qqavatar.store.db import make_engine
from qqavatar.store.schema import metadata
from qqavatar.store.testing import create_database, drop_database

# The suite on PostgreSQL (QQAVATAR_DATABASE_URL=postgresql://… in the environment): each
# data directory gets a fresh database of its own there, as it would get its own SQLite file,
# so a server restarted on the same directory finds its data again. Dropped at the session's
# end (tests/conftest.py).
_DATABASE_FILE = ".test-database-url"
created_databases: list[str] = []


def database_for(data_dir: Path) -> str | None:
    shared = os.environ.get("QQAVATAR_DATABASE_URL", "")
    if not shared.startswith("postgresql"):
        return None
    remembered = data_dir / _DATABASE_FILE
    if remembered.exists():
        return remembered.read_text()
    url = create_database(shared)
    created_databases.append(url)
    data_dir.mkdir(parents=True, exist_ok=True)
    remembered.write_text(url)
    return url


def drop_created_databases() -> None:
    while created_databases:
        drop_database(created_databases.pop())


async def _query(url: str, statements: list[tuple[str, dict[str, Any]]]
                 ) -> list[list[tuple[Any, ...]]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return [[tuple(row) for row in await connection.execute(text(sql), params)]
                    for sql, params in statements]
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    # Generous: two imports of the whole app (server, then worker) take 15 s on a loaded box.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


class RunningServer:
    def __init__(self, data_dir: Path, upstream: str, extra_env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), global_args: tuple[str, ...] = ()) -> None:
        """`args` follow `serve`; `global_args` precede it (`--config FILE`)."""
        self.data_dir = data_dir
        self.workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "QQAVATAR_DATA_DIR": str(data_dir),
            "QQAVATAR_UPSTREAM_USER_URL": upstream + "/g?b=qq&nk={qq}&s={size}",
            "QQAVATAR_UPSTREAM_GROUP_URL": upstream + "/gh/{group}/{group}/{size}/",
            "QQAVATAR_UPSTREAM_TIMEOUT": "1",
            # Tests that inject a fault, then clear it, expect the next call to reach the
            # upstream again: no remembered failures unless a test asks for them (the
            # negative cache has its own tests, tests/integration/test_avatar_policy.py).
            "QQAVATAR_NEGATIVE_TTL": "0",
            **(extra_env or {}),
        }
        if "QQAVATAR_DATABASE_URL" not in (extra_env or {}):
            database = database_for(data_dir)
            if database is not None:
                self.env["QQAVATAR_DATABASE_URL"] = database
        self.log_path = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qqavatar", *global_args, "serve", "--port", str(self.port),
             *args],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_until_listening(self.url + "/", self.proc)
        self.client = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def database_url(self) -> str:
        """The database this server uses: its own PostgreSQL one, or the SQLite file."""
        return self.env.get("QQAVATAR_DATABASE_URL") or f"sqlite:///{self.data_dir / 'qqavatar.db'}"

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of one SQL statement (`:name` parameters) on the server's database."""
        return asyncio.run(_query(self.database_url, [(sql, params)]))[0]

    def dump(self) -> str:
        """Every row of every table of ours, as text: to look for what must not be stored."""
        statements = [(f"SELECT * FROM {table}", {}) for table in metadata.tables]
        return "\n".join(repr(row) for rows in asyncio.run(_query(self.database_url, statements))
                         for row in rows)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qqavatar", *args], env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)

    def create_app(self, name: str = "test", *, sign_required: bool = False) -> dict[str, Any]:
        args = ["app", "create", name, "--json"] + (["--sign-required"] if sign_required else [])
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        record: dict[str, Any] = json.loads(done.stdout)
        return record

    def wait_for_app(self, app_key: str, timeout: float = 2.0) -> float:
        """Seconds until the server knows the app (ret != 406); fails after `timeout`."""
        start = time.monotonic()
        while True:
            reply = self.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app_key,
                                                 "qq": "10001", "output": "0"}).json()
            if reply["ret"] != 406:
                seen = time.monotonic() - start
                if self.workers > 1:  # one worker knows it; the others within one 0.5 s poll
                    time.sleep(1.1)
                return seen
            if time.monotonic() - start > timeout:
                raise AssertionError(f"app {app_key} unknown to the server after {timeout}s")
            time.sleep(0.05)

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
