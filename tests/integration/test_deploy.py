"""The deployment files in deploy/ work as docs/deployment.md says: the systemd unit passes
`systemd-analyze verify`, and deploy/nginx.conf, run in a real nginx in front of a real
server, passes calls through with the client's address for IP allow-lists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_fixture import RunningServer, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CLIENT = "203.0.113.7"  # a documentation address, as the original client behind nginx


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    qqavatar = Path(sys.executable).parent / "qqavatar"  # the console script of this venv
    unit = (DEPLOY / "qqavatar.service").read_text()
    # verify checks that ExecStart exists and the user is known: point them at this machine.
    unit = unit.replace("/opt/qqavatar/venv/bin/qqavatar", str(qqavatar))
    unit = unit.replace("User=qqavatar", "User=root").replace("Group=qqavatar", "Group=root")
    path = tmp_path / "qqavatar.service"
    path.write_text(unit)
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "qqavatar.service" not in done.stderr, done.stderr  # no unknown keys or bad values


_NGINX_MAIN = """\
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/qqavatar.conf;
}}
"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Generator[tuple[RunningServer, str], None, None]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx is None:
        pytest.skip("nginx is not installed")
    server = RunningServer(tmp_path_factory.mktemp("behind-nginx"), fake_qlogo.url,
                           {"QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32"})
    root = tmp_path_factory.mktemp("nginx")
    (root / "tmp").mkdir()
    port = free_port()
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{server.port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    assert str(server.port) in site and str(port) in site, "deploy/nginx.conf changed shape"
    (root / "qqavatar.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(_NGINX_MAIN.format(root=root, user=user))
    proc = subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf")],
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read()!r}"
                                       if proc.stderr else "nginx did not start") from None
                time.sleep(0.05)
        yield server, url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.stop()


def test_nginx_passes_calls_through_with_the_clients_address(
        proxied: tuple[RunningServer, str]) -> None:
    server, url = proxied
    app = server.create_app("behind nginx")
    key = app["app_key"]
    assert server.cli("app", "update", key, "--ip-allow", f"{CLIENT}/32").returncode == 0
    params = {"s": "App.QQ.UserImage", "app_key": key, "qq": "10001", "output": "0"}

    deadline = time.monotonic() + 5  # the server sees the new app and its allow-list
    while True:
        direct = server.client.get("/", params=params).json()  # 127.0.0.1 itself: not allowed
        if direct["ret"] == 402 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert direct["ret"] == 402, direct
    through = httpx.get(url + "/", params=params, headers={"X-Forwarded-For": CLIENT},
                        timeout=10).json()
    assert through["ret"] == 200, through  # nginx appended 127.0.0.1, a trusted proxy
    assert through["data"]["err_code"] == 0
    spoofed = httpx.get(url + "/", params=params, timeout=10).json()  # no header: nginx's own
    assert spoofed["ret"] == 402, spoofed


def test_nginx_limits_bodies_and_keeps_operator_pages_reachable_inside(
        proxied: tuple[RunningServer, str]) -> None:
    _, url = proxied
    big = httpx.post(url + "/?s=App.QQ.UserImage", content=b"x" * (65 * 1024),
                     headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert big.status_code == 413  # client_max_body_size 64k, refused by nginx
    metrics = httpx.get(url + "/metrics", timeout=10)  # 127.0.0.1 is on the internal allow-list
    assert metrics.status_code == 200 and "qqavatar_requests_total" in metrics.text
