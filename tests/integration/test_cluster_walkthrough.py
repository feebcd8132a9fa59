"""docs/deployment.md, "From nothing to a two-server cluster", executed (issue 19, point 5).

The page's blocks marked `<!-- walkthrough: NAME -->` run as written, in order, each in
`bash -eu -o pipefail` after the page's own `site` block; only that block's variables are
set (a fresh PostgreSQL database, a Redis of the test's own, two ports on this machine, a
scratch settings directory, an nginx prefix). The `serve` block runs twice (hosts A and B),
`nginx -t` checks the generated site inside the test's nginx (a `nginx` on PATH that points
at its prefix), and the `check` block must show a signed call through nginx, a cross-server
cache hit and `qqavatar stats` adding both servers' calls up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_deploy import NGINX_MAIN, nginx_binary
from tests.postgres_fixture import as_env, fresh_database
from tests.redis_fixture import RedisProcess
from tests.server_fixture import free_port, wait_until_listening

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deployment.md"
BLOCK = re.compile(r"<!-- walkthrough: (\w+) -->\n```sh\n(.*?)\n```", re.DOTALL)
STEPS = ["site", "settings", "serve", "app", "nginx", "check"]

def page_blocks() -> dict[str, str]:
    found = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert [name for name, _ in found] == STEPS, "the walk-through's marked blocks changed"
    return dict(found)


def test_the_page_marks_its_blocks() -> None:
    blocks = page_blocks()
    # The settings TOML holds no secret; secrets.env is loaded where the CLI runs.
    assert "secret_key" not in blocks["settings"] and "admin_token" not in blocks["settings"]
    for step in ("serve", "app", "check"):
        assert blocks[step].startswith('set -a; . "$CONF_DIR/secrets.env"; set +a\n'), step


@dataclass
class Walk:
    blocks: dict[str, str]
    env: dict[str, str]
    cwd: Path

    def run(self, step: str, extra: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        script = self.blocks["site"] + "\n" + self.blocks[step]
        done = subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", script],
                              env={**self.env, **(extra or {})}, cwd=self.cwd,
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{step}: {done.stdout}\n{done.stderr}"
        return done

    def start(self, step: str, extra: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        script = self.blocks["site"] + "\n" + self.blocks[step]
        with open(log, "wb") as out:
            return subprocess.Popen(["bash", "-eu", "-o", "pipefail", "-c", script],
                                    env={**self.env, **extra}, cwd=self.cwd, stdout=out,
                                    stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def walk(tmp_path: Path, fake_qlogo: Any) -> Iterator[Walk]:
    nginx = nginx_binary()
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(root=prefix, user=user))
    shim = tmp_path / "bin"
    shim.mkdir()
    # `nginx -t` of the page, run against the test's nginx prefix rather than /etc/nginx.
    (shim / "nginx").write_text(
        f'#!/bin/sh\nexec {nginx} -p {prefix} -c {prefix / "nginx.conf"} "$@"\n')
    (shim / "nginx").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    with fresh_database() as url:
        redis = RedisProcess(tmp_path)
        try:
            env = {name: value for name, value in os.environ.items()
                   if not name.startswith("QQAVATAR_")}  # only what the page loads
            env |= {
                "PATH": f"{shim}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
                        + os.environ.get("PATH", ""),
                "CONF_DIR": str(tmp_path / "etc"),
                "CLI": str(Path(sys.executable).parent / "qqavatar"),
                "DATABASE_URL": as_env(url),
                "REDIS_URL": redis.url,
                "SERVER_A": f"127.0.0.1:{free_port()}",
                "SERVER_B": f"127.0.0.1:{free_port()}",
                "PROXIES": "127.0.0.1/32",
                "NGINX_LISTEN": f"127.0.0.1:{free_port()}",
                "NGINX_SITE": str(prefix / "qqavatar.conf"),
                "DEPLOY": str(ROOT / "deploy"),
                # Not the real qlogo: the session's fake (environment wins over the TOML).
                "QQAVATAR_UPSTREAM_USER_URL": fake_qlogo.url + "/g?b=qq&nk={qq}&s={size}",
                "QQAVATAR_UPSTREAM_GROUP_URL": fake_qlogo.url + "/gh/{group}/{group}/{size}/",
                "QQAVATAR_UPSTREAM_TIMEOUT": "5",
            }
            env["PUBLIC_URL"] = f"http://{env['NGINX_LISTEN']}"
            yield Walk(page_blocks(), env, work)
        finally:
            redis.stop()


# The signed call (through nginx, on either host), one call on each host, and the one
# answered call of `_wait_for_app` on each host.
CALLS = 3 + 2


def _wait_for_app(base: str, app_key: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    params = {"s": "App.QQ.UserImage", "app_key": app_key, "qq": "10001", "output": "0",
              "size": "40"}
    while httpx.get(base + "/", params=params, timeout=10).json()["ret"] == 406:
        assert time.monotonic() < deadline, f"{base} never loaded the app"
        time.sleep(0.1)


def test_the_walkthrough_builds_a_serving_cluster(walk: Walk, tmp_path: Path) -> None:
    walk.run("settings")
    etc = Path(walk.env["CONF_DIR"])
    assert (etc / "secrets.env").stat().st_mode & 0o077 == 0  # 0600
    assert "SECRET" not in (etc / "qqavatar.toml").read_text().upper()

    servers: list[subprocess.Popen[bytes]] = []
    nginx: subprocess.Popen[bytes] | None = None
    try:
        for host, address in (("host-a", walk.env["SERVER_A"]), ("host-b", walk.env["SERVER_B"])):
            log = tmp_path / f"{host}.log"
            servers.append(walk.start("serve", {
                "LISTEN": address, "QQAVATAR_SERVER_NAME": host,
                "QQAVATAR_DATA_DIR": str(tmp_path / host)}, log))
            wait_until_listening(f"http://{address}/healthz", servers[-1])
        banner = (tmp_path / "host-a.log").read_text()
        assert "PASSWORD" not in banner and "created the first app 'default' in the shared" \
            in banner
        assert all(json.loads(line) for line in banner.splitlines()[:5])  # log_format json

        walk.run("app")
        blog = json.loads((walk.cwd / "blog.json").read_text())
        for address in (walk.env["SERVER_A"], walk.env["SERVER_B"]):
            _wait_for_app(f"http://{address}", blog["app_key"])

        checked = walk.run("nginx")
        assert "test is successful" in checked.stderr, checked.stderr
        nginx = subprocess.Popen(["nginx"], env=walk.env, stderr=subprocess.DEVNULL)
        wait_until_listening(walk.env["PUBLIC_URL"] + "/healthz", nginx)

        done = walk.run("check")
        assert (walk.cwd / "signed.jpg").read_bytes()[:4] in (b"\xff\xd8\xff\xe0", b"\x89PNG")
        headers = [line.strip().lower() for line in done.stdout.splitlines()
                   if line.lower().startswith("x-")]
        # Host A fetched the avatar, host B found it in Redis; each named itself.
        assert [sorted(headers[:2]), sorted(headers[2:])] == [
            ["x-cache: miss", "x-served-by: host-a"],
            ["x-cache: hit", "x-served-by: host-b"]], done.stdout
        rows = json.loads(done.stdout[done.stdout.index("["):])
        calls = sum(row["calls"] for row in rows)
        deadline = time.monotonic() + 15
        while calls < CALLS and time.monotonic() < deadline:  # a loaded machine writes late
            time.sleep(1)
            again = subprocess.run([walk.env["CLI"], "stats", "--app", blog["app_key"],
                                    "--json"], env={**walk.env, **_loaded(etc)}, cwd=walk.cwd,
                                   capture_output=True, text=True, timeout=60, check=True)
            rows = json.loads(again.stdout)
            calls = sum(row["calls"] for row in rows)
        assert calls == CALLS, rows
        assert sum(row["cache_hits"] for row in rows) >= 1, rows
    finally:
        if nginx is not None:
            _stop(nginx)
        for proc in servers:
            _stop(proc)


def _loaded(etc: Path) -> dict[str, str]:
    """What the page's `set -a; . secrets.env; set +a` and QQAVATAR_CONFIG give a shell."""
    values = dict(line.split("=", 1) for line in (etc / "secrets.env").read_text().splitlines())
    return values | {"QQAVATAR_CONFIG": str(etc / "qqavatar.toml")}
