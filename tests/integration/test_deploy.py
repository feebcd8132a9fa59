"""The deployment files in deploy/ work as docs/deployment.md says: the systemd unit passes
`systemd-analyze verify` and listens for nginx on other hosts; deploy/nginx.conf, its TLS
line included, passes `nginx -t` on Debian's nginx, and run in a real nginx in front of a
real server passes calls through with the client's address for IP allow-lists, leaves bodies
the server would judge to the server (its ret 400 envelope, not nginx's HTML 413), and
every answer names the server that gave it. Plus the start-up banner on a shared database
(JSON lines with JSON logs, no password) and the fake qlogo's --help.
(The page's walk-through itself: tests/integration/test_cluster_walkthrough.py.)"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres_fixture import as_env, fresh_database
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


def test_systemd_unit_listens_for_nginx_on_other_hosts() -> None:
    unit = (DEPLOY / "qqavatar.service").read_text()
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "--host 0.0.0.0" in start, start  # the page puts nginx on other hosts
    assert "EnvironmentFile=-/etc/qqavatar/secrets.env" in unit
    assert "StateDirectoryMode=0700" in unit  # the data dir holds secrets (issue 15, 6)


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx is None:
        pytest.skip("nginx is not installed")
    return nginx


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "avatar.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_nginx_accepts_the_shipped_file_and_its_tls_line(tmp_path: Path) -> None:
    """`nginx -t` on the file as shipped, and with its TLS comment turned into the config."""
    nginx = nginx_binary()
    site = (DEPLOY / "nginx.conf").read_text()
    tls = re.search(r"^ *# (listen 443 ssl http2;) ssl_certificate \S+; ssl_certificate_key",
                    site, re.MULTILINE)
    assert tls, "the TLS comment changed shape"
    cert, key = _self_signed(tmp_path)
    with_tls = site.replace("listen 80;", f"{tls[1]} ssl_certificate {cert}; "
                                          f"ssl_certificate_key {key};")
    for name, text in (("plain", site), ("tls", with_tls)):
        root = tmp_path / name
        (root / "tmp").mkdir(parents=True)
        (root / "qqavatar.conf").write_text(text)
        user = "user root;\n" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(NGINX_MAIN.format(root=root, user=user))
        done = subprocess.run([nginx, "-t", "-p", str(root), "-c", str(root / "nginx.conf")],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "test is successful" in done.stderr, (name, done.stderr)


NGINX_MAIN = """\
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
    nginx = nginx_binary()
    server = RunningServer(tmp_path_factory.mktemp("behind-nginx"), fake_qlogo.url,
                           {"QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32",
                            "QQAVATAR_SERVER_NAME": "host-a"})
    root = tmp_path_factory.mktemp("nginx")
    (root / "tmp").mkdir()
    port = free_port()
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{server.port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    assert str(server.port) in site and str(port) in site, "deploy/nginx.conf changed shape"
    (root / "qqavatar.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(NGINX_MAIN.format(root=root, user=user))
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


def test_nginx_leaves_bodies_to_the_server_and_keeps_operator_pages_inside(
        proxied: tuple[RunningServer, str]) -> None:
    server, url = proxied
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # A body the server takes (exactly its 1 MiB cap) reaches it: its answer, not a 413.
    body = b"qq=10001&output=0&pad=" + b"x" * (1024 * 1024 - 22)
    assert len(body) == 1024 * 1024
    fits = httpx.post(url + "/?s=App.QQ.UserImage", content=body, headers=form, timeout=30)
    assert fits.headers["x-served-by"] == "host-a", fits.text[:200]
    assert "1048576" not in fits.json()["msg"], fits.text  # read, not refused for its size
    # A bigger one: the envelope the server gives it, as README promises (not nginx's HTML).
    too_big = b"x" * (1536 * 1024)
    direct = server.client.post("/?s=App.QQ.UserImage", content=too_big, headers=form)
    through = httpx.post(url + "/?s=App.QQ.UserImage", content=too_big, headers=form,
                         timeout=30)
    assert through.headers["content-type"] == direct.headers["content-type"], through.text[:200]
    assert through.status_code == direct.status_code == 200
    mine, theirs = through.json(), direct.json()
    assert abs(mine.pop("_t") - theirs.pop("_t")) <= 5
    assert mine == theirs and mine["ret"] == 400, (mine, theirs)
    metrics = httpx.get(url + "/metrics", timeout=10)  # 127.0.0.1 is on the internal allow-list
    assert metrics.status_code == 200 and "qqavatar_requests_total" in metrics.text
    assert metrics.headers["x-served-by"] == "host-a"  # the page: scrape each host


def test_every_answer_names_its_server(proxied: tuple[RunningServer, str]) -> None:
    server, _ = proxied
    for path in ("/", "/?s=App.QQ.UserImage", "/?s=App.QQ.UserImage", "/healthz", "/docs",
                 "/no-such-page"):
        answer = server.client.get(path)  # the repeated call is a kept answer
        assert answer.headers.get("x-served-by") == "host-a", (path, answer.headers)


@pytest.mark.postgres
def test_banner_on_a_shared_database(tmp_path: Path, fake_qlogo: Any) -> None:
    """JSON logs: every banner line is a JSON object; the URL's password is masked; the
    first app made on a shared database is announced as such."""
    with fresh_database() as url:
        password = "pw-" + os.urandom(6).hex()  # the test server trusts: any password works
        server = RunningServer(tmp_path / "banner", fake_qlogo.url, {
            "QQAVATAR_DATABASE_URL": as_env(url.set(password=password)),
            "QQAVATAR_LOG_FORMAT": "json"})
        try:
            output = server.output()
        finally:
            server.stop()
    assert password not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # all JSON
    messages = [line["message"] for line in lines if line["logger"] == "qqavatar.serve"]
    assert f"database: postgresql://{url.username}:****@" in "\n".join(messages), messages
    assert any(m.startswith("created the first app 'default' in the shared database")
               for m in messages), messages


def test_fake_qlogo_help_says_what_it_serves() -> None:
    done = subprocess.run([sys.executable, "-m", "qqavatar.fakeqlogo", "--help"],
                          capture_output=True, text=True, timeout=60, check=True)
    for url in ("/g?b=qq&nk=<qq>&s=<size>", "/gh/<group>/<group>/<size>/",
                "/headimg_dl?dst_uin=<qq>&spec=<size>", "QQAVATAR_UPSTREAM_USER_URL"):
        assert url in done.stdout, done.stdout
