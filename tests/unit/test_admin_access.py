"""The dashboard's pure parts: the sign-in back-off's window and bound, the token's sources
and minimum, and the one-time sign-in code (files in a temporary data dir)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from qqavatar.settings import Settings
from qqavatar.web.admin import access
from qqavatar.web.admin.throttle import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_back_off_holds_an_address_until_its_oldest_failure_is_a_window_old() -> None:
    clock = Clock()
    throttle = SignInThrottle(failures=5, window=60, clock=clock)
    for _ in range(4):
        throttle.failed("a")
        clock.now += 1
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") == 56  # the first failure (t=1000) expires at t=1060
    assert throttle.retry_after("b") == 0
    clock.now = 1060.0
    assert throttle.retry_after("a") == 0  # four left in the window
    throttle.failed("a")
    assert throttle.retry_after("a") == 1


def test_the_back_off_table_is_bounded() -> None:
    clock = Clock()
    throttle = SignInThrottle(failures=1, window=60, max_clients=3, clock=clock)
    for client in ("a", "b", "c", "d"):
        throttle.failed(client)
    assert throttle.retry_after("a") == 0  # forgotten: the least recently failed
    assert all(throttle.retry_after(client) == 60 for client in ("b", "c", "d"))


def test_token_sources_and_minimum(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert access.configured_token(settings) is None
    made = access.make_token(settings)
    assert len(made) >= access.MIN_TOKEN_LENGTH
    assert stat.S_IMODE((tmp_path / "admin-token").stat().st_mode) == 0o600
    assert access.configured_token(settings) == made
    assert access.make_token(settings) == made  # never replaced once there
    explicit = "e" * 32
    assert access.configured_token(Settings(data_dir=tmp_path, admin_token=explicit)) == explicit
    short = Settings(data_dir=tmp_path, admin_token="e" * 31)
    with pytest.raises(access.TokenTooShort, match="31 characters"):
        access.configured_token(short)
    assert access.dashboard_token(short) is None


def test_a_sign_in_code_works_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    code = access.issue_sign_in_code(settings)
    assert stat.S_IMODE((tmp_path / "admin-sign-in").stat().st_mode) == 0o600
    assert code not in (tmp_path / "admin-sign-in").read_text()  # only its hash is kept
    assert not access.redeem_sign_in_code(settings, code + "x")
    assert access.redeem_sign_in_code(settings, code)
    assert not access.redeem_sign_in_code(settings, code)
    first = access.issue_sign_in_code(settings)
    second = access.issue_sign_in_code(settings)
    assert not access.redeem_sign_in_code(settings, first)  # a new code replaces the last
    assert access.redeem_sign_in_code(settings, second)
    assert list(tmp_path.iterdir()) == []  # nothing claimed is left behind
    stale = access.issue_sign_in_code(settings)
    issued = time.time() - access.CODE_SECONDS - 1
    os.utime(tmp_path / "admin-sign-in", (issued, issued))
    assert not access.redeem_sign_in_code(settings, stale)  # older than an hour
