"""The avatar settings: alternates, policy values, and the service built from them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qqavatar.avatars import AvatarService
from qqavatar.config import ConfigError
from qqavatar.settings import DEFAULT_USER_ALTERNATES, DEFAULT_USER_URL, Settings

MIRROR = "http://mirror.example/g?b=qq&nk={qq}&s={size}"
HEADIMG = "http://mirror.example/headimg_dl?dst_uin={qq}&spec={size}"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QQAVATAR_UPSTREAM_USER_URL", "QQAVATAR_UPSTREAM_USER_URLS", "QQAVATAR_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert (settings.negative_ttl, settings.stale_ttl, settings.stale_if_error_ttl) == (
        30, 86400, 604800)
    assert (settings.circuit_threshold, settings.circuit_cooldown) == (10, 30.0)
    assert settings.disk_cache_dir is None and settings.disk_cache_max_bytes == 1024**3


def test_tencent_primary_gets_tencent_alternates() -> None:
    settings = Settings()
    assert settings.upstream_user_url == DEFAULT_USER_URL
    assert settings.upstream_user_alternates == list(DEFAULT_USER_ALTERNATES)
    assert any("headimg_dl?dst_uin={qq}&spec={size}" in url for url in DEFAULT_USER_ALTERNATES)


def test_a_custom_primary_gets_no_alternates_unless_configured() -> None:
    assert Settings(upstream_user_url=MIRROR).upstream_user_alternates == []


@pytest.mark.parametrize("raw", [f"{MIRROR},{HEADIMG}", f" {MIRROR} , {HEADIMG} ,",
                                 f'["{MIRROR}", "{HEADIMG}"]'])
def test_alternates_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("QQAVATAR_UPSTREAM_USER_URLS", raw)
    settings = Settings()
    assert settings.upstream_user_urls == [MIRROR, HEADIMG]
    assert settings.upstream_user_alternates == [MIRROR, HEADIMG]
    # The primary stays first and is not tried twice.
    assert Settings(upstream_user_url=MIRROR).upstream_user_alternates == [HEADIMG]


def test_an_empty_list_turns_the_alternates_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QQAVATAR_UPSTREAM_USER_URLS", "")
    assert Settings().upstream_user_alternates == []


@pytest.mark.parametrize(("raw", "message"), [
    ("ftp://x/{qq}", "not an http(s) URL template"),
    ("http://x/{uin}", "bad URL template"),
    ("[not json", "not a JSON list"),
])
def test_bad_alternates_are_a_config_error(monkeypatch: pytest.MonkeyPatch, raw: str,
                                           message: str) -> None:
    monkeypatch.setenv("QQAVATAR_UPSTREAM_USER_URLS", raw)
    with pytest.raises(ConfigError) as refused:
        Settings()
    assert "QQAVATAR_UPSTREAM_USER_URLS" in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.parametrize(("name", "value"), [("QQAVATAR_CIRCUIT_THRESHOLD", "0"),
                                             ("QQAVATAR_NEGATIVE_TTL", "-1"),
                                             ("QQAVATAR_CIRCUIT_COOLDOWN", "0")])
def test_out_of_range_policy_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                                value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Settings()


def test_the_service_follows_the_settings(tmp_path: Path) -> None:
    settings = Settings(upstream_user_url=MIRROR, upstream_user_urls=[HEADIMG],
                        disk_cache_dir=tmp_path, disk_cache_max_bytes=1000, negative_ttl=5,
                        stale_ttl=7, circuit_threshold=3)
    svc = AvatarService.from_settings(settings)
    try:
        assert svc.urls("user", "10001", 40) == [
            "http://mirror.example/g?b=qq&nk=10001&s=40",
            "http://mirror.example/headimg_dl?dst_uin=10001&spec=40"]
        assert svc.url("group", "10001", 40) == "https://p.qlogo.cn/gh/10001/10001/40/"
        assert svc.disk is not None and svc.disk.max_bytes == 1000
        assert (svc.negative.ttl, svc.stale_ttl) == (5, 7)
        assert svc.circuit_state == "closed"
    finally:
        asyncio.run(svc.aclose())
