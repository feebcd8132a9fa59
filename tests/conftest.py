"""Shared test setup.

Tests that need PostgreSQL, Redis or php-cli skip when it is missing; with
QQAVATAR_STRICT=1 (CI sets it) every skip is turned into a failure, so a
missing service can never pass unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from tests.fakeqlogo_fixture import start_fake_qlogo
from tests.server_fixture import RunningServer, drop_created_databases

STRICT = os.environ.get("QQAVATAR_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under QQAVATAR_STRICT=1 (CI): {reason}"


# --- real processes: the fake qlogo and a qqavatar server ------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _drop_server_databases() -> Generator[None, None, None]:
    """The PostgreSQL databases servers got under QQAVATAR_DATABASE_URL (server_fixture.py)."""
    yield
    drop_created_databases()


@pytest.fixture(scope="session")
def fake_qlogo() -> Generator[Any, None, None]:
    fake = start_fake_qlogo()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    """A test that injects an upstream fault must not leak it into the next test."""
    yield
    if "fake_qlogo" in request.fixturenames:
        request.getfixturevalue("fake_qlogo").fault("none")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    running = RunningServer(tmp_path_factory.mktemp("server"), fake_qlogo.url)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def app(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("integration")
    server.wait_for_app(record["app_key"])
    return record
