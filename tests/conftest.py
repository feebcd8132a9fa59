"""Shared test setup.

Tests that need PostgreSQL, Redis or php-cli skip when it is missing; with
QQAVATAR_STRICT=1 (CI sets it) every skip is turned into a failure, so a
missing service can never pass unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

STRICT = os.environ.get("QQAVATAR_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under QQAVATAR_STRICT=1 (CI): {reason}"
