"""One server per client module (tests/conftest.py `server`), with an app that must sign."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server_fixture import RunningServer


@pytest.fixture(scope="module")
def signed_app(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("client", sign_required=True)
    server.wait_for_app(record["app_key"])
    return record
