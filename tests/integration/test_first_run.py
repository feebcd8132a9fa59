"""An operator's first start (issue 18 item 1): `serve` on a terminal without an admin token
makes one in the data dir (0600) and prints a one-time sign-in link; an explicit token
wins; off a terminal nothing is made; logs never carry the token.

The terminal is a real pseudo-terminal on the server's stdout; its stderr (the log) goes
to a file, as under a service manager that keeps the console.
"""

from __future__ import annotations

import os
import pty
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.server_fixture import RunningServer, database_for, free_port, wait_until_listening

LINK = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+/admin/login\?code=[A-Za-z0-9_-]{43})"
                  r"(?![A-Za-z0-9_-])")


class TerminalServer:
    """`qqavatar serve` with a pseudo-terminal as stdout, read as it is written."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        master, terminal = pty.openpty()
        self._master = master
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "qqavatar", "serve", "--port", str(self.port)],
                env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=log)
        os.close(terminal)
        self._screen = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until_listening(self.url + "/", self.proc)

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # the server closed the terminal
                return
            if not chunk:
                return
            self._screen += chunk

    @property
    def screen(self) -> str:
        return self._screen.decode("utf-8", "replace")

    def link(self) -> str:
        deadline = time.monotonic() + 10
        while (match := LINK.search(self.screen)) is None:
            assert time.monotonic() < deadline, self.screen
            time.sleep(0.05)
        return match.group(1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        os.close(self._master)


def environment(data_dir: Path, fake_qlogo: Any, **extra: str) -> dict[str, str]:
    """A server's environment without the caller's QQAVATAR_* settings; on the PostgreSQL
    pass, the data dir's own database (as RunningServer's)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    database = database_for(data_dir)
    if database is not None:
        env["QQAVATAR_DATABASE_URL"] = database
    return {**env, "QQAVATAR_DATA_DIR": str(data_dir),
            "QQAVATAR_UPSTREAM_USER_URL": fake_qlogo.url + "/g?b=qq&nk={qq}&s={size}",
            "QQAVATAR_UPSTREAM_GROUP_URL": fake_qlogo.url + "/gh/{group}/{group}/{size}/",
            **extra}


@contextmanager
def on_a_terminal(data_dir: Path, env: dict[str, str]) -> Iterator[TerminalServer]:
    server = TerminalServer(data_dir, env)
    try:
        yield server
    finally:
        server.stop()


def bearer(url: str, token: str) -> int:
    return httpx.get(url + "/admin/api/apps", headers={"Authorization": f"Bearer {token}"},
                     timeout=10).status_code


def test_first_start_on_a_terminal_makes_a_token_and_a_one_time_link(
        tmp_path: Path, fake_qlogo: Any) -> None:
    data_dir = tmp_path / "data"
    env = environment(data_dir, fake_qlogo)
    with on_a_terminal(data_dir, env) as server:
        link = server.link()
        token_file = data_dir / "admin-token"
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert bearer(server.url, token) == 200  # the server uses it

        with httpx.Client(timeout=10) as browser:
            signed = browser.get(link)
            assert signed.status_code == 303 and signed.headers["location"] == "/admin"
            assert browser.get(server.url + "/admin").status_code == 200
        with httpx.Client(timeout=10) as someone_else:  # the link works once
            again = someone_else.get(link)
            assert again.status_code == 401 and "used already" in again.text
            assert "set-cookie" not in again.headers
            assert someone_else.get(server.url + "/admin").status_code == 303
        first_link = link
        assert token not in server.screen
    log = server.log()
    assert log.strip() and token not in log

    # the next start uses the same token and prints a new link; the old one stays dead
    with on_a_terminal(data_dir, env) as server:
        link = server.link()
        assert link != first_link and token_file.read_text().strip() == token
        stale = server.url + "/admin/login?" + first_link.partition("?")[2]  # new port
        assert httpx.get(stale, timeout=10).status_code == 401
        assert httpx.get(link, timeout=10).status_code == 303
        assert bearer(server.url, token) == 200
    assert token not in server.log() and token not in server.screen


def test_an_explicit_token_wins(tmp_path: Path, fake_qlogo: Any) -> None:
    data_dir = tmp_path / "data"
    explicit = "explicit-admin-token-" + "e" * 20
    with on_a_terminal(data_dir, environment(data_dir, fake_qlogo)) as server:
        server.link()
    made = (data_dir / "admin-token").read_text().strip()
    env = environment(data_dir, fake_qlogo, QQAVATAR_ADMIN_TOKEN=explicit)
    with on_a_terminal(data_dir, env) as server:
        time.sleep(0.5)  # the banner is written before the server listens
        assert "sign in with QQAVATAR_ADMIN_TOKEN" in server.screen
        assert LINK.search(server.screen) is None
        assert bearer(server.url, explicit) == 200
        assert bearer(server.url, made) == 401
    assert explicit not in server.log() + server.screen

    fresh = tmp_path / "fresh"
    with on_a_terminal(fresh, environment(fresh, fake_qlogo,
                                          QQAVATAR_ADMIN_TOKEN=explicit)) as server:
        assert bearer(server.url, explicit) == 200
    assert not (fresh / "admin-token").exists()


def test_off_a_terminal_nothing_is_made(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "data", fake_qlogo.url)
    try:
        page = server.client.get("/admin")
        assert page.status_code == 404 and "The dashboard is off" in page.text
    finally:
        server.stop()
    assert "dashboard: off (set QQAVATAR_ADMIN_TOKEN" in server.output()
    assert not (tmp_path / "data" / "admin-token").exists()


def test_a_wrong_code_signs_nobody_in(tmp_path: Path, fake_qlogo: Any) -> None:
    data_dir = tmp_path / "data"
    with on_a_terminal(data_dir, environment(data_dir, fake_qlogo)) as server:
        link = server.link()
        for code in ("", "A" * 43, "é\x00%ff", "1" * 5000):  # four: the fifth would hold us
            wrong = httpx.get(server.url + "/admin/login", params={"code": code}, timeout=10)
            assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        looked_at = httpx.head(link, timeout=10)  # a link preview, say
        assert looked_at.status_code == 200 and "set-cookie" not in looked_at.headers
        assert httpx.get(link, timeout=10).status_code == 303  # the real one still works
    assert "Traceback" not in server.log()
