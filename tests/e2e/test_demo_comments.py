"""The demo comment page in headless Chromium: every avatar loads through a private link,
and nothing in the page names a QQ number or an app_key (issue 7)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from qqavatar.web.demo import DEMO_NUMBERS
from tests.browser import chromium_page
from tests.server_fixture import RunningServer


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory,
                fake_qlogo: Any) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("demo"), fake_qlogo.url,
                            {"QQAVATAR_DEMO": "1"})
    yield running
    running.stop()


def secrets_of(server: RunningServer) -> list[str]:
    """The demo app's key and secret (`serve` made it), plain and base64."""
    # The banner's line, in text (a terminal) or as a JSON record's message (a log).
    key = re.search(r"\bapp_key +([0-9A-F]{32})\b", server.output())
    assert key, server.output()
    shown = json.loads(server.cli("app", "show", key[1], "--json").stdout)
    found: list[str] = []
    for value in (shown["app_key"], shown["app_secret"]):
        encoded = base64.b64encode(value.encode()).decode()
        found += [value, value.lower(), encoded, encoded.rstrip("=")]
    return found


def number_spellings(number: str) -> list[str]:
    raw = number.encode()
    spellings = [number, format(int(number), "x"), format(int(number), "X")]
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        spellings += [encoded.decode(), encoded.decode().rstrip("=")]
    return spellings


def test_every_avatar_loads_and_nothing_leaks(demo_server: RunningServer) -> None:
    with chromium_page() as page:
        response = page.goto(demo_server.url + "/demo/comments", wait_until="load")
        assert response is not None and response.status == 200
        source = response.text()
        page.wait_for_function("[...document.images].every(img => img.complete)")
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(img => ({src: img.currentSrc, width: img.naturalWidth}))")
        rendered = page.content()
    assert len(images) == len(DEMO_NUMBERS)
    for image in images:
        assert image["src"].startswith(demo_server.url + "/a/"), image
        assert image["width"] == 100, image  # loaded, and decoded at the size asked for
    assert len({image["src"] for image in images}) == len(DEMO_NUMBERS)
    for text in (source, rendered):
        for number in DEMO_NUMBERS:
            for spelling in number_spellings(number):
                assert spelling not in text, spelling
        for secret in secrets_of(demo_server):
            assert secret not in text


def test_the_page_is_the_same_for_every_visit(demo_server: RunningServer) -> None:
    first = demo_server.client.get("/demo/comments")
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert demo_server.client.get("/demo/comments").text == first.text  # links are stable
