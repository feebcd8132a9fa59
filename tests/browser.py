"""Headless Chromium for end-to-end tests: Debian's `chromium`, driven by Playwright.

Playwright drives the browser the machine has (`executable_path`); its own browser
downloads (`playwright install`) are never used, so tests work offline. Without
`chromium` or the `playwright` package the test is skipped, which QQAVATAR_STRICT=1
(CI, where `.ci/run` installs both) turns into a failure.

    with chromium_page() as page:
        page.goto(url)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


def chromium_path() -> str:
    """The Chromium executable (QQAVATAR_CHROMIUM overrides); skips the test if missing."""
    path = os.environ.get("QQAVATAR_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@contextmanager
def chromium_page(timeout_ms: float = 15_000) -> Iterator[Page]:
    """A fresh page in a fresh headless Chromium, closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
