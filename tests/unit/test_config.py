"""Settings from the environment and a TOML file: precedence, errors, masking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qqavatar.config import ConfigError, effective, mask_url
from qqavatar.settings import Settings


@pytest.fixture(autouse=True)
def _no_settings_from_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests set what they read; the suite's own QQAVATAR_* (a CI database URL) would
    win over their files."""
    for name in list(os.environ):
        if name.startswith("QQAVATAR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "qqavatar.toml"
    monkeypatch.setenv("QQAVATAR_CONFIG", str(path))
    return path


def error_of() -> str:
    with pytest.raises(ConfigError) as caught:
        Settings()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_environment_wins_over_the_file(config_file: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('cache_max_bytes = "64MiB"\ncache_ttl = 60\nhttp_status = "mirror"\n'
                           'access_log = true\nupstream_timeout = 2.5\n')
    monkeypatch.setenv("QQAVATAR_CACHE_TTL", "5")
    settings = Settings()
    assert settings.cache_max_bytes == 64 * 1024**2
    assert settings.cache_ttl == 5
    assert settings.http_status == "mirror"
    assert settings.access_log is True
    assert settings.upstream_timeout == 2.5
    assert Settings(cache_ttl=7).cache_ttl == 7  # arguments (tests, code) win over both
    sources = {entry.name: entry.source for entry in effective(settings)}
    assert sources["cache_ttl"] == "QQAVATAR_CACHE_TTL"
    assert sources["cache_max_bytes"] == "file"
    assert sources["data_dir"] == "default"


def test_no_file_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QQAVATAR_CONFIG", raising=False)
    assert Settings().cache_ttl == 86400


def test_unknown_key_in_the_file(config_file: Path) -> None:
    config_file.write_text("cahce_ttl = 60\n")
    assert error_of() == f"cahce_ttl in {config_file}: unknown setting (did you mean cache_ttl?)"
    config_file.write_text("[server]\nport = 1\n")
    assert error_of() == f"server in {config_file}: unknown setting"
    config_file.write_text("cache_ttl = { a = 1 }\n")
    assert error_of() == f"cache_ttl in {config_file}: expected a value, found a table"


def test_unknown_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QQAVATAR_CACHE_TTLL", "5")
    assert error_of() == "QQAVATAR_CACHE_TTLL: unknown setting (did you mean QQAVATAR_CACHE_TTL?)"
    monkeypatch.delenv("QQAVATAR_CACHE_TTLL")
    monkeypatch.setenv("QQAVATAR_NOTHING_LIKE_IT", "1")
    assert error_of() == "QQAVATAR_NOTHING_LIKE_IT: unknown setting"


def test_other_programs_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # the consumer CLI's, the test suite's: they share the prefix and are not errors
    for name in ("QQAVATAR_URL", "QQAVATAR_APP_KEY", "QQAVATAR_APP_SECRET", "QQAVATAR_STRICT",
                 "QQAVATAR_TEST_DATABASE_URL", "QQAVATAR_TEST_ANYTHING", "QQAVATAR_CHROMIUM",
                 "QQAVATAR_ST_APP_KEY", "QQAVATAR_SCHEMATHESIS_SEED"):
        monkeypatch.setenv(name, "x")
    Settings()


def test_bad_values_name_their_key(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("")
    monkeypatch.setenv("QQAVATAR_CACHE_MAX_BYTES", "lots")
    assert error_of() == ("QQAVATAR_CACHE_MAX_BYTES: not a byte size: 'lots' "
                          "(try 67108864, 64MiB or 64MB)")
    monkeypatch.setenv("QQAVATAR_CACHE_MAX_BYTES", "1MiB")
    monkeypatch.setenv("QQAVATAR_UPSTREAM_TIMEOUT", "0")
    assert error_of() == "QQAVATAR_UPSTREAM_TIMEOUT: Input should be greater than 0 (got '0')"
    monkeypatch.delenv("QQAVATAR_UPSTREAM_TIMEOUT")
    config_file.write_text('cache_ttl = -1\nlog_format = "yaml"\n')
    assert error_of() == (f"cache_ttl in {config_file}: Input should be greater than or equal "
                          f"to 0 (got -1); log_format in {config_file}: Input should be 'auto', "
                          "'json' or 'text' (got 'yaml')")


def test_unreadable_files(config_file: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert error_of() == f"QQAVATAR_CONFIG: {config_file}: no such file"
    config_file.write_text("cache_ttl = \n")
    assert error_of().startswith(f"{config_file}: not valid TOML: ")
    monkeypatch.setenv("QQAVATAR_CONFIG", str(tmp_path))
    assert error_of() == f"QQAVATAR_CONFIG: {tmp_path}: is a directory, not a TOML file"


def test_effective_configuration_masks_secrets(config_file: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('admin_token = "hunter2-admin"\n'
                           'database_url = "postgresql://qq:pg-pass@db:5432/qq?sslmode=require"\n')
    monkeypatch.setenv("QQAVATAR_REDIS_URL", "redis://:redis-pass@cache:6379/0")
    monkeypatch.setenv("QQAVATAR_RATE_LIMIT_STORAGE", "redis://:limits-pass@cache:6379/1")
    shown = {entry.name: entry.value for entry in effective(Settings())}
    assert shown["rate_limit_storage"] == "redis://:****@cache:6379/1"  # any URL, any name
    assert shown["token_ttl"] == Settings().token_ttl  # a number, not a secret
    assert shown["admin_token"] == "****"
    assert shown["database_url"] == "postgresql://qq:****@db:5432/qq?sslmode=require"
    assert shown["redis_url"] == "redis://:****@cache:6379/0"
    assert shown["upstream_user_url"] == "https://q1.qlogo.cn/g?b=qq&nk={qq}&s={size}"
    assert shown["data_dir"] == "data"


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://user@host/db", "postgresql://user@host/db"),
    ("postgresql://user:secret@host/db", "postgresql://user:****@host/db"),
    ("postgresql://host/db?user=u&password=secret", "postgresql://host/db?user=u&password=****"),
    ("redis://secret@host:6379", "redis://****@host:6379"),
    ("rediss://default:secret@host/1", "rediss://default:****@host/1"),
    ("sqlite:////var/lib/qq.db", "sqlite:////var/lib/qq.db"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
