"""A real server with the access log on, in the text format: client text with CR/LF cannot
forge a log line, and a secret parameter spelled with percent-escapes is still masked."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server_fixture import RunningServer

FORGED = "2099-01-01%2000:00:00,000%20INFO%20%20qqavatar.gateway%20forged"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: Any) -> Iterator[RunningServer]:
    server = RunningServer(tmp_path_factory.mktemp("logged"), fake_qlogo.url, {
        "QQAVATAR_ACCESS_LOG": "1", "QQAVATAR_LOG_FORMAT": "text"})
    yield server
    server.stop()


def test_cr_lf_in_paths_and_service_names_stays_on_one_line(logged: RunningServer) -> None:
    for path in (f"/%0D%0A{FORGED}", f"/api/App.QQ.UserImage%0D%0A{FORGED}",
                 f"/docs/%E2%80%A8{FORGED}"):
        assert logged.client.get(path).status_code < 500
    logged.client.get("/", params={"s": f"App.QQ.UserImage\r\n{FORGED}", "qq": "10001"})
    output = logged_so_far(logged)
    lines = output.splitlines()
    assert not any(line.startswith("2099") for line in lines), output
    assert "\\x0d\\x0a2099-01-01 00:00:00,000 INFO  qqavatar.gateway forged" in output
    assert "\\u2028" in output


def test_a_percent_encoded_sign_is_masked(logged: RunningServer) -> None:
    logged.client.get("/?s=App.QQ.UserImage&qq=10001&%73ign=C0FFEE0123&%73%69gn=BADC0DE456"
                      "&app%5Fsecret=5EC2E7")
    logged.client.get("/%73ign=FACADE789")
    output = logged_so_far(logged)
    for secret in ("C0FFEE0123", "BADC0DE456", "5EC2E7", "FACADE789"):
        assert secret not in output
    assert "&sign=****&sign=****&app_secret=**** " in output and "GET /sign=**** 404" in output


def logged_so_far(server: RunningServer) -> str:
    """The server's log once the access lines of the requests made so far are in it: one
    more request with a unique marker, then wait for its line (one worker logs in order)."""
    marker = f"mark={secrets.token_hex(8)}"
    server.client.get(f"/?{marker}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        output = server.output()
        if marker in output:
            return output
        time.sleep(0.05)
    raise AssertionError(f"no access line for {marker} within 10 s:\n{server.output()}")
