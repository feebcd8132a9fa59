"""The /admin dashboard over HTTP: off without a token, sign-in, CSRF, app management,
the JSON endpoints. (The browser test is tests/e2e/test_admin_browser.py.)"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qqavatar.protocol.sign import compute_strong_sign
from tests.server_fixture import RunningServer

TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory,
                 fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    running = RunningServer(tmp_path_factory.mktemp("admin"), fake_qlogo.url,
                            {"QQAVATAR_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


@pytest.fixture
def browser(admin_server: RunningServer) -> Generator[httpx.Client, None, None]:
    """A signed-in client (its own cookie jar)."""
    with httpx.Client(base_url=admin_server.url, timeout=10) as client:
        reply = client.post("/admin/login", data={"token": TOKEN})
        assert reply.status_code == 303 and reply.headers["location"] == "/admin"
        yield client


def app_json(client: httpx.Client, app_key: str) -> dict[str, Any]:
    apps = {app["app_key"]: app for app in client.get("/admin/api/apps").json()}
    return apps[app_key]  # type: ignore[no-any-return]


def secret_on(page: str) -> str:
    match = re.search(r'id="app-secret">([A-Za-z0-9]{64})<', page)
    assert match, page
    return match.group(1)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert match, page
    return match.group(1)


def test_without_a_token_the_dashboard_says_how_to_turn_it_on(server: RunningServer) -> None:
    for path in ("/admin", "/admin/login", "/admin/apps/" + "A" * 32):
        page = server.client.get(path)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "The dashboard is off" in page.text and "QQAVATAR_ADMIN_TOKEN" in page.text
        assert "token_urlsafe(32)" in page.text and "qqavatar serve" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
    for path in ("/admin/api/stats", "/admin/api/apps"):
        reply = server.client.get(path)
        assert reply.status_code == 404 and "QQAVATAR_ADMIN_TOKEN" in reply.json()["error"]
    assert server.client.post("/admin/login", data={"token": ""}).status_code == 404
    assert server.client.post("/admin/apps", data={"name": "x"}).status_code == 404
    assert server.client.get("/admin/login", params={"code": "x"}).status_code == 404
    # the page's stylesheet is served
    assert server.client.get("/admin/static/admin.css").status_code == 200


def anonymous(server: RunningServer) -> httpx.Client:
    """A client with an empty cookie jar."""
    return httpx.Client(base_url=server.url, timeout=10)


def test_signing_in(admin_server: RunningServer) -> None:
    client = anonymous(admin_server)
    page = client.get("/admin")
    assert page.status_code == 303 and page.headers["location"] == "/admin/login"
    assert client.get("/admin/api/stats").status_code == 401
    form = client.get("/admin/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    assert form.headers["content-security-policy"].startswith("default-src 'none'")

    wrong = client.post("/admin/login", data={"token": TOKEN + "x"})
    assert wrong.status_code == 401 and "Wrong token." in wrong.text
    assert "set-cookie" not in wrong.headers
    assert client.post("/admin/login", data={}).status_code == 401

    right = client.post("/admin/login", data={"token": TOKEN})
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin"):
        assert attribute.lower() in cookie.lower(), cookie
    session = right.cookies["qqavatar_admin"]
    assert TOKEN not in session
    with httpx.Client(base_url=admin_server.url, cookies={"qqavatar_admin": session}) as signed:
        assert signed.get("/admin").status_code == 200
        assert signed.get("/admin/api/apps").status_code == 200
    # a forged or altered session is no session
    expires, nonce, mac = session.split(".")
    for forged in (f"{int(expires) + 1}.{nonce}.{mac}", f"{expires}.{nonce}.{'0' * 64}",
                   f"{expires}.{nonce[::-1]}.{mac}", f"{expires}.{mac}", "", "garbage"):
        with httpx.Client(base_url=admin_server.url,
                          cookies={"qqavatar_admin": forged}) as other:
            assert other.get("/admin").status_code == 303, forged
            assert other.get("/admin/api/apps").status_code == 401, forged


def test_login_from_another_site_is_refused(admin_server: RunningServer) -> None:
    reply = anonymous(admin_server).post("/admin/login", data={"token": TOKEN},
                                     headers={"Origin": "https://evil.example"})
    assert reply.status_code == 401 and "set-cookie" not in reply.headers


def test_scripts_use_a_bearer_token(admin_server: RunningServer) -> None:
    client = anonymous(admin_server)
    ok = client.get("/admin/api/apps", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and isinstance(ok.json(), list)
    bad = client.get("/admin/api/apps", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    # the bearer token opens the JSON API only, not the pages
    assert client.get("/admin", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 303


def test_posts_need_the_csrf_token(admin_server: RunningServer, browser: httpx.Client) -> None:
    csrf = csrf_of(browser.get("/admin").text)
    before = len(browser.get("/admin/api/apps").json())
    assert browser.post("/admin/apps", data={"name": "no csrf"}).status_code == 403
    assert browser.post("/admin/apps", data={"name": "bad", "csrf": "0" * 64}).status_code == 403
    cross = browser.post("/admin/apps", data={"name": "cross", "csrf": csrf},
                         headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    # another session's CSRF token is no good either
    with anonymous(admin_server) as other:
        assert other.post("/admin/login", data={"token": TOKEN}).status_code == 303
        assert other.post("/admin/apps", data={"name": "x", "csrf": csrf}).status_code == 403
    assert len(browser.get("/admin/api/apps").json()) == before


def test_create_rotate_and_limit_an_app(admin_server: RunningServer,
                                        browser: httpx.Client) -> None:
    csrf = csrf_of(browser.get("/admin").text)
    created = browser.post("/admin/apps", data={"name": "from the dashboard", "csrf": csrf})
    assert created.status_code == 303
    match = re.fullmatch(r"/admin/apps/([0-9A-F]{32})\?done=created", created.headers["location"])
    assert match, created.headers["location"]
    key = match.group(1)
    page = browser.get(created.headers["location"])
    assert page.status_code == 200 and "App created." in page.text
    secret = secret_on(page.text)
    admin_server.wait_for_app(key)

    rotated = browser.post(f"/admin/apps/{key}/rotate", data={"csrf": csrf})
    assert rotated.status_code == 303
    page = browser.get(rotated.headers["location"])
    assert "New secret issued" in page.text and secret_on(page.text) != secret

    settings = {"csrf": csrf, "name": "renamed", "sign_required": "1", "daily_quota": "100",
                "monthly_quota": "", "rate_limit": "7", "ip_allow": "10.0.0.0/8\n127.0.0.1",
                "domains": "Avatar.Example.com, localhost"}
    saved = browser.post(f"/admin/apps/{key}/settings", data=settings)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
    shown = app_json(browser, key)
    assert {name: shown[name] for name in ("name", "sign_required", "daily_quota",
                                            "monthly_quota", "rate_limit", "ip_allow",
                                            "domains")} == {
        "name": "renamed", "sign_required": True, "daily_quota": 100, "monthly_quota": None,
        "rate_limit": 7, "ip_allow": ["10.0.0.0/8", "127.0.0.1/32"],
        "domains": ["avatar.example.com", "localhost"]}

    bad = browser.post(f"/admin/apps/{key}/settings",
                       data=settings | {"daily_quota": "lots", "ip_allow": "10.0.0.0/8"})
    assert bad.status_code == 400 and "daily quota must be a whole number" in bad.text
    bad = browser.post(f"/admin/apps/{key}/settings", data=settings | {"ip_allow": "nowhere"})
    assert bad.status_code == 400 and "not an IP address or CIDR network" in bad.text
    # clearing every limit
    cleared = settings | {"sign_required": "", "daily_quota": "0", "rate_limit": "",
                          "ip_allow": "", "domains": ""}
    assert browser.post(f"/admin/apps/{key}/settings", data=cleared).status_code == 303
    shown = app_json(browser, key)
    assert (shown["sign_required"], shown["daily_quota"], shown["rate_limit"],
            shown["ip_allow"], shown["domains"]) == (False, None, None, [], [])

    assert browser.get(f"/admin/apps/{'0' * 32}").status_code == 404
    assert browser.get("/admin/apps/not-a-key").status_code == 404
    unnamed = browser.post("/admin/apps", data={"name": "  ", "csrf": csrf})
    assert unnamed.status_code == 400 and "app name must not be empty" in unnamed.text


def test_dashboard_numbers_and_json(admin_server: RunningServer, browser: httpx.Client) -> None:
    csrf = csrf_of(browser.get("/admin").text)
    key = browser.post("/admin/apps", data={"name": "counted", "csrf": csrf}).headers[
        "location"].split("/")[3].split("?")[0]
    admin_server.wait_for_app(key)  # one 200 (a miss) once known, 406s before
    for qq in ("30001", "30001", "30002"):
        reply = admin_server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": key,
                                                     "qq": qq, "output": "0"})
        assert reply.json()["ret"] == 200
    apps = {app["app_key"]: app for app in browser.get("/admin/api/apps").json()}
    assert apps[key]["calls_today"] == 4 and "app_secret" not in apps[key]
    rows = browser.get("/admin/api/stats", params={"app": key, "days": "1"}).json()
    # 30001 twice: a fetch, then a hit; 30002 a fetch; the waiting call's 10001 either
    assert [(r["service"], r["calls"], r["cache_hits"] + r["upstream_fetches"]) for r in rows] \
        == [("App.QQ.UserImage", 4, 4)] and 1 <= rows[0]["cache_hits"] <= 2
    days = browser.get("/admin/api/daily", params={"days": "7"}).json()
    assert len(days) == 7 and days[-1]["calls"] >= 4
    latency = days[-1]["upstream_latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    page = browser.get(f"/admin/apps/{key}").text
    assert re.search(r'id="calls-today">4<', page)
    assert page.count("<svg") == 3
    overview = browser.get("/admin", params={"days": "7"}).text
    assert overview.count("<svg") == 4 and f'data-app-key="{key}"' in overview


def test_logout(admin_server: RunningServer, browser: httpx.Client) -> None:
    csrf = csrf_of(browser.get("/admin").text)
    out = browser.post("/admin/logout", data={"csrf": csrf})
    assert out.status_code == 303 and 'qqavatar_admin=""' in out.headers["set-cookie"]
    assert browser.get("/admin").status_code == 303


def test_stylesheet(admin_server: RunningServer) -> None:
    css = admin_server.client.get("/admin/static/admin.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert Path(__file__).exists()


def test_the_settings_form_sets_the_sign_scheme(admin_server: RunningServer,
                                                browser: httpx.Client) -> None:
    csrf = csrf_of(browser.get("/admin").text)
    key = browser.post("/admin/apps", data={"name": "scheme", "csrf": csrf}).headers[
        "location"].split("/")[3].split("?")[0]
    page = browser.get(f"/admin/apps/{key}").text
    assert '<option value="yesapi" selected>' in page
    assert '<option value="hmac-sha256">' in page
    secret = secret_on(page)
    admin_server.wait_for_app(key)
    settings = {"csrf": csrf, "name": "scheme", "daily_quota": "", "monthly_quota": "",
                "rate_limit": "", "ip_allow": "", "domains": ""}

    def call(**signed: str) -> dict[str, Any]:
        reply: dict[str, Any] = admin_server.client.get(
            "/api/App/QQ/UserImage", params={"app_key": key, "qq": "10001", "output": "0",
                                             **signed}).json()
        return reply

    # without the session's CSRF token nothing changes
    refused = browser.post(f"/admin/apps/{key}/settings",
                           data=settings | {"sign_scheme": "hmac-sha256", "csrf": "0" * 64})
    assert refused.status_code == 403
    assert app_json(browser, key)["sign_scheme"] == "yesapi"
    bad = browser.post(f"/admin/apps/{key}/settings", data=settings | {"sign_scheme": "md5"})
    assert bad.status_code == 400 and "sign scheme must be one of yesapi, hmac-sha256" in bad.text
    assert app_json(browser, key)["sign_scheme"] == "yesapi"

    saved = browser.post(f"/admin/apps/{key}/settings",
                         data=settings | {"sign_scheme": "hmac-sha256"})
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
    assert app_json(browser, key)["sign_scheme"] == "hmac-sha256"
    page = browser.get(f"/admin/apps/{key}").text
    assert '<option value="hmac-sha256" selected>' in page
    assert re.search(r'id="signing">required, hmac-sha256<', page)
    # the servers apply it: an unsigned call is refused, a strong sign answered
    deadline = time.monotonic() + 5
    while call()["ret"] == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert call()["ret"] == 400
    signed = {"timestamp": str(int(time.time())), "nonce": secrets.token_urlsafe(24)}
    signed["sign"] = compute_strong_sign(
        "App.QQ.UserImage", {"app_key": key, "qq": "10001", "output": "0", **signed}, secret)
    assert call(**signed)["ret"] == 200

    # a form without the field leaves the scheme alone; yesapi switches back
    assert browser.post(f"/admin/apps/{key}/settings", data=settings).status_code == 303
    assert app_json(browser, key)["sign_scheme"] == "hmac-sha256"
    assert browser.post(f"/admin/apps/{key}/settings",
                        data=settings | {"sign_scheme": "yesapi"}).status_code == 303
    assert app_json(browser, key)["sign_scheme"] == "yesapi"
    deadline = time.monotonic() + 5
    while call()["ret"] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert call()["ret"] == 200
