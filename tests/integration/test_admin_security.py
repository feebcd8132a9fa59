"""The dashboard against hostile clients (issue 15 items 4, 5, 11; issue 21 items 1, 2):
malformed Origins and `days`, the token's minimum length, the cookie's key, sign-in
back-off, `Secure` behind a trusted TLS proxy, the metrics token, /docs headers."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qqavatar.web.admin.access import TokenTooShort
from tests.integration.test_first_run import environment
from tests.server_fixture import RunningServer, free_port, wait_until_listening

TOKEN = "security-test-admin-token-0123456789abcdef"
METRICS_TOKEN = "metrics-token-for-the-scraper"
BAD_ORIGINS = ["http://[", "http://[zz]", "http://a]", "http://[::1", "null", "//", "x" * 5000]
BAD_DAYS = ["²", "①", "1" * 4301, "-1", "0", "99999999999999999999", "1e3", " 7", "٣",
            "7.0", "+7", "0x10", "3661"]


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory,
           fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    """Clients connect straight to it: no trusted proxies."""
    running = RunningServer(tmp_path_factory.mktemp("direct"), fake_qlogo.url,
                            {"QQAVATAR_ADMIN_TOKEN": TOKEN,
                             "QQAVATAR_METRICS_TOKEN": METRICS_TOKEN})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    """Behind a trusted proxy on 127.0.0.1: X-Forwarded-For/-Proto name the client."""
    running = RunningServer(tmp_path_factory.mktemp("proxied"), fake_qlogo.url,
                            {"QQAVATAR_ADMIN_TOKEN": TOKEN,
                             "QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32"})
    yield running
    running.stop()


@contextlib.contextmanager
def signed_in(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/admin/login", data={"token": TOKEN}).status_code == 303
        yield client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert match, page
    return match.group(1)


def no_traceback(server: RunningServer) -> None:
    output = server.output()
    assert "Traceback" not in output and '"exc":' not in output, output[-3000:]


def test_a_malformed_origin_is_refused_on_every_post(direct: RunningServer,
                                                     proxied: RunningServer) -> None:
    for number, origin in enumerate(BAD_ORIGINS):
        # each from its own address (a refused sign-in counts towards the back-off)
        login = proxied.client.post("/admin/login", data={"token": TOKEN}, headers={
            "Origin": origin, "X-Forwarded-For": f"198.51.100.{number + 100}"})
        assert login.status_code == 401 and "set-cookie" not in login.headers, origin
    no_traceback(proxied)
    key = direct.create_app("origins")["app_key"]
    with signed_in(direct) as browser:
        csrf = csrf_of(browser.get("/admin").text)
        for origin in BAD_ORIGINS:
            headers = {"Origin": origin}
            for path in ("/admin/apps", f"/admin/apps/{key}/rotate",
                         f"/admin/apps/{key}/settings"):
                reply = browser.post(path, data={"csrf": csrf, "name": "x"}, headers=headers)
                assert reply.status_code == 403, (origin, path, reply.text[:200])
            out = browser.post("/admin/logout", data={"csrf": csrf}, headers=headers)
            assert out.status_code == 303 and "set-cookie" not in out.headers, origin
        assert browser.get("/admin").status_code == 200  # still signed in
    no_traceback(direct)


def test_days_is_bounded_everywhere(direct: RunningServer) -> None:
    key = direct.create_app("days")["app_key"]
    with signed_in(direct) as browser:
        for days in BAD_DAYS:
            for path in ("/admin/api/stats", "/admin/api/daily"):
                reply = browser.get(path, params={"days": days})
                assert reply.status_code == 400, (path, days[:20], reply.text[:200])
                assert reply.json() == {"error": "days must be a whole number from 1 to 3660"}
            for path in ("/admin", f"/admin/apps/{key}"):
                page = browser.get(path, params={"days": days})
                # the page's default (30 days) is the selected choice
                assert page.status_code == 200, (path, days[:20])
                assert '<a href="?days=30" class="current">' in page.text, (path, days[:20])
        assert len(browser.get("/admin/api/daily", params={"days": "3660"}).json()) == 3660
        assert len(browser.get("/admin/api/daily", params={"days": "007"}).json()) == 7
        assert browser.get("/admin/api/stats").status_code == 200  # absent: its default
    no_traceback(direct)


def test_settings_counts_are_read_by_the_bounded_reader(direct: RunningServer) -> None:
    key = direct.create_app("counts")["app_key"]
    with signed_in(direct) as browser:
        csrf = csrf_of(browser.get("/admin").text)
        for value in ("²", "①", "9" * 4301, "-5", "1e3"):
            reply = browser.post(f"/admin/apps/{key}/settings",
                                 data={"csrf": csrf, "name": "counts", "daily_quota": value})
            assert reply.status_code == 400, value[:20]
            assert "daily quota must be a whole number" in reply.text
    no_traceback(direct)


def test_the_cookie_mac_is_keyed_by_hkdf_of_the_token(direct: RunningServer) -> None:
    with signed_in(direct) as browser:
        session = browser.cookies["qqavatar_admin"]
    body, _, mac = session.rpartition(".")
    message = f"session:{body}".encode()
    raw = hmac.new(TOKEN.encode(), message, hashlib.sha256).hexdigest()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"qqavatar admin session v1").derive(TOKEN.encode())
    assert mac != raw
    assert mac == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(direct: RunningServer,
                                                         proxied: RunningServer,
                                                         tmp_path: Path, fake_qlogo: Any) -> None:
    def cookie(server: RunningServer, headers: dict[str, str]) -> str:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            reply = client.post("/admin/login", data={"token": TOKEN}, headers=headers)
        assert reply.status_code == 303, reply.text[:200]
        return reply.headers["set-cookie"].lower()

    tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"}
    assert "; secure" in cookie(proxied, tls)
    assert "; secure" not in cookie(proxied, {"X-Forwarded-For": "198.51.100.21"})
    # an untrusted peer's header is not believed
    assert "; secure" not in cookie(direct, tls)
    # the same under uvicorn (its proxy middleware has read the headers before us)
    uvicorn = RunningServer(tmp_path, fake_qlogo.url, {
        "QQAVATAR_ADMIN_TOKEN": TOKEN, "QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32"},
        args=("--server", "uvicorn"))
    try:
        assert "; secure" in cookie(uvicorn, tls)
        assert "; secure" not in cookie(uvicorn, {"X-Forwarded-For": "198.51.100.21"})
    finally:
        uvicorn.stop()


def test_failed_sign_ins_back_off_per_client_address(proxied: RunningServer) -> None:
    def post(client_address: str, token: str) -> httpx.Response:
        return proxied.client.post("/admin/login", data={"token": token},
                                   headers={"X-Forwarded-For": client_address})

    guesser = "203.0.113.50"
    for _ in range(5):
        assert post(guesser, "wrong").status_code == 401
    held = post(guesser, "wrong")
    assert held.status_code == 429 and 1 <= int(held.headers["retry-after"]) <= 60
    assert "Too many failed sign-ins" in held.text
    # while held back, the right token does not help (guessing gets no answer either)
    assert post(guesser, TOKEN).status_code == 429
    # another address is not held back
    assert post("203.0.113.51", TOKEN).status_code == 303
    # wrong one-time sign-in codes count as failures too
    for _ in range(5):
        reply = proxied.client.get("/admin/login", params={"code": "guess"},
                                   headers={"X-Forwarded-For": "203.0.113.52"})
        assert reply.status_code == 401 and "used already" in reply.text
    assert proxied.client.get("/admin/login", params={"code": "guess"},
                              headers={"X-Forwarded-For": "203.0.113.52"}).status_code == 429


def test_metrics_and_readiness_ask_for_the_metrics_token(direct: RunningServer) -> None:
    client = direct.client
    assert client.get("/healthz").status_code == 200  # liveness stays open
    for path in ("/metrics", "/readyz"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "qqavatar_" not in refused.text
        wrong = client.get(path, headers={"Authorization": "Bearer " + METRICS_TOKEN + "x"})
        assert wrong.status_code == 401
        # the admin token is not the metrics token
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
        right = client.get(path, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status_code == 200, path
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert "qqavatar_" in scraped.text


def test_docs_pages_carry_the_dashboards_csp_and_frame_headers(direct: RunningServer) -> None:
    for path in ("/docs", "/docs/signing", "/docs/App.QQ.UserImage", "/docs/No.Such.Service"):
        page = direct.client.get(path)
        assert page.status_code in (200, 404), path
        csp = page.headers["content-security-policy"]
        for directive in ("default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'",
                          "form-action 'self'", "script-src 'self'"):
            assert directive in csp, (path, csp)
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "same-origin"


def test_serve_refuses_a_short_token_with_one_line(tmp_path: Path, fake_qlogo: Any) -> None:
    short = "x" * 31
    done = subprocess.run(
        [sys.executable, "-m", "qqavatar", "serve", "--port", str(free_port())],
        env=environment(tmp_path, fake_qlogo, QQAVATAR_ADMIN_TOKEN=short),
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and "at least 32" in errors[0] and "31 characters" in errors[0]
    assert short not in done.stdout + done.stderr


def test_serve_stops_with_one_line_on_an_unreadable_token_file(tmp_path: Path,
                                                               fake_qlogo: Any) -> None:
    (tmp_path / "admin-token").mkdir()  # not a file
    done = subprocess.run(
        [sys.executable, "-m", "qqavatar", "serve", "--port", str(free_port())],
        env=environment(tmp_path, fake_qlogo), capture_output=True, text=True, timeout=120,
        check=False)
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and "admin-token" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_server_started_otherwise_keeps_the_dashboard_off(tmp_path: Path,
                                                            fake_qlogo: Any) -> None:
    """Not through `serve` (an ASGI server pointed at the factory): off, and the log says why."""
    port = free_port()
    log_path = tmp_path / "uvicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "qqavatar.web.app:create_app",
             "--port", str(port)],
            env=environment(tmp_path, fake_qlogo, QQAVATAR_ADMIN_TOKEN="short-token"),
            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_listening(url + "/", proc)
        page = httpx.get(url + "/admin", timeout=10)
        assert page.status_code == 404 and "The dashboard is off" in page.text
        assert httpx.post(url + "/admin/login", data={"token": "short-token"},
                          timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    output = log_path.read_text(errors="replace")
    assert "admin dashboard off" in output and "at least 32" in output
    assert "short-token" not in output



MAKE_TOKEN = re.compile(r"""python3? -c (['"])(import secrets; print\(secrets\.token_urlsafe\(32\)\))\1""")


def test_the_token_command_we_give_makes_a_token_serve_takes(server: RunningServer) -> None:
    """The command on the dashboard-off page, in serve's refusal and in the docs, run."""
    root = Path(__file__).parents[2]
    docs = [path.read_text() for path in (root / "README.md", *(root / "docs").glob("*.md"))]
    off_page = server.client.get("/admin").text
    assert "The dashboard is off" in off_page
    ours = [MAKE_TOKEN.search(text) for text in (str(TokenTooShort(3)), off_page)]
    assert all(ours), ours
    commands = {match.group(2) for match in ours if match} | {
        match.group(2) for doc in docs for match in MAKE_TOKEN.finditer(doc)}
    for command in commands:
        made = subprocess.run([sys.executable, "-c", command], capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip()
        assert len(made) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", made)
