"""`qqavatar --config FILE …`, `qqavatar config` and bad configurations, as real processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SECRETS = ("hunter2-admin", "pg-pass", "redis-pass")


def qqavatar(*args: str, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QQAVATAR_")
             or k.startswith("QQAVATAR_TEST_") or k == "QQAVATAR_STRICT"}
    return subprocess.run([sys.executable, "-m", "qqavatar", *args], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_config_shows_file_and_environment_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "qqavatar.toml"
    config.write_text('cache_max_bytes = "64MiB"\ncache_ttl = 60\nadmin_token = "hunter2-admin"\n'
                      'database_url = "postgresql://qq:pg-pass@db/qq"\n')
    env = {"QQAVATAR_CACHE_TTL": "5", "QQAVATAR_REDIS_URL": "redis://:redis-pass@cache:6379/0",
           "QQAVATAR_URL": "http://consumer.example", "QQAVATAR_APP_KEY": "not-a-setting"}
    done = qqavatar("--config", "qqavatar.toml", "config", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["config_file"] == str(config)  # made absolute: workers may run elsewhere
    settings, sources = shown["settings"], shown["sources"]
    assert (settings["cache_max_bytes"], sources["cache_max_bytes"]) == (67108864, "file")
    assert (settings["cache_ttl"], sources["cache_ttl"]) == (5, "QQAVATAR_CACHE_TTL")
    assert (settings["http_status"], sources["http_status"]) == ("200", "default")
    assert settings["admin_token"] == "****"
    assert settings["database_url"] == "postgresql://qq:****@db/qq"
    assert settings["redis_url"] == "redis://:****@cache:6379/0"
    assert not any(secret in done.stdout + done.stderr for secret in SECRETS)

    # the same through QQAVATAR_CONFIG, as text
    text = qqavatar("config", env={**env, "QQAVATAR_CONFIG": str(config)})
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"# qqavatar configuration; file: {config}")
    lines = {line.split()[0] if not line.startswith("# ") else line.split()[1]: line
             for line in text.stdout.splitlines()[1:]}
    assert re.fullmatch(r"cache_max_bytes += 67108864 +# file", lines["cache_max_bytes"])
    assert lines["cache_ttl"].rstrip().endswith("# QQAVATAR_CACHE_TTL")
    assert '"****"' in lines["admin_token"]
    assert "(not set)" in lines["public_url"]
    assert not any(secret in text.stdout for secret in SECRETS)


def test_bad_configuration_stops_serve_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "qqavatar.toml"
    config.write_text("cahce_ttl = 60\n")
    done = qqavatar("--config", str(config), "serve", "--port", "1",
                    env={"QQAVATAR_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr == (f"Error: configuration: cahce_ttl in {config}: unknown setting "
                           "(did you mean cache_ttl?)\n")
    assert done.stdout == ""  # nothing started, no banner
    assert not (tmp_path / "qqavatar.db").exists()


def test_bad_value_stops_any_command(tmp_path: Path) -> None:
    done = qqavatar("app", "list", env={"QQAVATAR_DATA_DIR": str(tmp_path),
                                        "QQAVATAR_CACHE_MAX_BYTES": "lots"})
    assert done.returncode == 2
    assert done.stderr == ("Error: configuration: QQAVATAR_CACHE_MAX_BYTES: not a byte size: "
                           "'lots' (try 67108864, 64MiB or 64MB)\n")
    typo = qqavatar("config", env={"QQAVATAR_UPSTREAM_TIMOUT": "3"})
    assert typo.returncode == 2
    assert typo.stderr == ("Error: configuration: QQAVATAR_UPSTREAM_TIMOUT: unknown setting "
                           "(did you mean QQAVATAR_UPSTREAM_TIMEOUT?)\n")
    missing = qqavatar("--config", str(tmp_path / "nope.toml"), "config")
    assert missing.returncode == 2
    assert "nope.toml" in missing.stderr and "does not exist" in missing.stderr


def test_config_shows_the_cache_tiers_it_resolved_to(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = qqavatar("config", "--json", env={"QQAVATAR_DATA_DIR": str(data)})
    assert done.returncode == 0, done.stderr
    free = shutil.disk_usage(tmp_path).free
    resolved = json.loads(done.stdout)["resolved"]
    assert resolved["memory_cache_bytes"] == 256 * 1024**2
    assert resolved["disk_cache_dir"] == str(data / "avatars")  # on by default, in the data dir
    # 1 GiB, or half the free space when less (other writers move it a little meanwhile)
    assert abs(resolved["disk_cache_bytes"] - min(1024**3, free // 2)) < 64 * 1024**2

    text = qqavatar("config", env={"QQAVATAR_DISK_CACHE_DIR": "off",
                                   "QQAVATAR_CACHE_MAX_BYTES": "64MiB"})
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[-1] == ("# resolved at start: memory_cache_bytes = 67108864, "
                                            'disk_cache_dir = "off", disk_cache_bytes = 0')
