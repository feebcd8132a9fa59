"""The avatar settings: alternates, policy values, and the service built from them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from qqavatar.avatars import AvatarService
from qqavatar.avatars.disk import disk_bound
from qqavatar.config import ConfigError
from qqavatar.settings import DEFAULT_USER_ALTERNATES, DEFAULT_USER_URL, Settings

MIRROR = "http://mirror.example/g?b=qq&nk={qq}&s={size}"
HEADIMG = "http://mirror.example/headimg_dl?dst_uin={qq}&spec={size}"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QQAVATAR_UPSTREAM_USER_URL", "QQAVATAR_UPSTREAM_USER_URLS", "QQAVATAR_CONFIG",
                 "QQAVATAR_DISK_CACHE_DIR", "QQAVATAR_DISK_CACHE_MAX_BYTES",
                 "QQAVATAR_CACHE_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert (settings.negative_ttl, settings.stale_ttl, settings.stale_if_error_ttl) == (
        30, 86400, 604800)
    assert (settings.circuit_threshold, settings.circuit_cooldown) == (10, 30.0)
    assert settings.disk_cache_dir is None and settings.disk_cache_max_bytes is None
    # The disk tier is on by default, in the data dir.
    assert settings.disk_cache_path == settings.data_dir / "avatars"
    assert settings.cache_max_bytes == 256 * 1024**2


@pytest.mark.parametrize("raw", ["off", "OFF", " Off "])
def test_off_turns_the_disk_tier_off(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("QQAVATAR_DISK_CACHE_DIR", raw)
    settings = Settings()
    assert settings.disk_cache_path is None
    assert AvatarService.from_settings(settings).disk is None


def test_the_disk_bound_is_1_gib_or_half_the_free_space(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    assert disk_bound(tmp_path / "not" / "made" / "yet", None) == min(1024**3, free // 2)
    assert disk_bound(tmp_path, 5000) == 5000  # a configured bound is the operator's


def test_the_default_service_has_a_disk_tier_in_the_data_dir(tmp_path: Path) -> None:
    svc = AvatarService.from_settings(Settings(data_dir=tmp_path))
    try:
        assert svc.disk is not None and svc.disk.directory == tmp_path / "avatars"
        assert svc.disk.max_bytes == disk_bound(tmp_path, None)
    finally:
        asyncio.run(svc.aclose())


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
