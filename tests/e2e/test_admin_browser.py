"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright.

Sign in, see the charts drawn, create an app through the page and call the API with its
key, change its limits through the page and see the API enforce them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.browser import chromium_page
from tests.server_fixture import RunningServer

TOKEN = "browser-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory,
                 fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    running = RunningServer(tmp_path_factory.mktemp("browser"), fake_qlogo.url,
                            {"QQAVATAR_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_page() as opened:
        yield opened


def call(server: RunningServer, key: str, qq: str) -> dict[str, Any]:
    reply = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": key, "qq": qq,
                                           "output": "0"})
    body: dict[str, Any] = reply.json()
    return body


def test_sign_in_see_charts_create_an_app_and_limit_it(admin_server: RunningServer,
                                                       page: Any) -> None:
    # Some traffic first, so that the charts have bars and points to draw.
    first = re.search(r"app_key\s+([0-9A-F]{32})", admin_server.output())
    assert first
    for qq in ("40001", "40001", "40002", "40003", "40003"):
        assert call(admin_server, first.group(1), qq)["ret"] == 200

    page.goto(admin_server.url + "/admin")
    assert page.url.endswith("/admin/login")
    page.fill("#token", "not the token")
    page.click("#login-form button[type=submit]")
    assert page.locator("#error").inner_text() == "Wrong token."
    page.fill("#token", TOKEN)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/admin")

    # Four charts, each an SVG the browser laid out with something drawn in it.
    charts = page.locator("svg.chart")
    assert charts.count() == 4
    for index in range(4):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50
    tallest_bar = page.eval_on_selector_all(
        "svg.chart rect.bar", "bars => Math.max(...bars.map(b => b.getBBox().height))")
    assert tallest_bar > 10
    assert page.locator("svg.chart circle.point").count() >= 4  # hit ratio + 3 percentiles
    assert page.locator(f'#apps tr[data-app-key="{first.group(1)}"]').count() == 1

    # Create an app through the page, read its key, use it.
    page.fill("#create-app #name", "made in the browser")
    page.click("#create-app button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/apps/[0-9A-F]{32}\?done=created$"))
    key = page.locator("#app-key").inner_text()
    assert re.fullmatch(r"[0-9A-F]{32}", key)
    assert re.fullmatch(r"[A-Za-z0-9]{64}", page.locator("#app-secret").inner_text())
    admin_server.wait_for_app(key)
    assert call(admin_server, key, "40005")["ret"] == 200

    # Change its limits through the page: a daily quota of what it has used plus one.
    page.reload()  # the page flushes the server's counts first: calls-today is exact
    used = int(page.locator("#calls-today").inner_text())
    assert page.locator("#quota-today").inner_text() == f"none ({used} counted)"
    page.fill("#daily_quota", str(used + 1))
    page.click("#app-settings button[type=submit]")
    page.wait_for_url(re.compile(r".*\?done=saved$"))
    assert page.locator("#quota-today").inner_text() == f"{used} of {used + 1} used"
    for _ in range(100):  # the servers apply a change within a second
        if call(admin_server, key, "40006")["ret"] != 200:
            break
        time.sleep(0.05)
    assert call(admin_server, key, "40006")["msg"] == "客户端非法请求：接口调用次数已用完"

    # Rotate the secret through the page.
    before = page.locator("#app-secret").inner_text()
    page.click("#rotate-secret button[type=submit]")
    page.wait_for_url(re.compile(r".*\?done=rotated$"))
    assert page.locator("#app-secret").inner_text() != before
