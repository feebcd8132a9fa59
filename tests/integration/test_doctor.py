"""`qqavatar doctor` against real PostgreSQL, Redis and the fake qlogo, and against broken
configurations: the rows it prints and its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_fixture import as_env, fresh_database
from tests.server_fixture import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "doctor-test-admin-token-0123456789"


@pytest.fixture()
def base_env(tmp_path: Path, fake_qlogo: Any) -> dict[str, str]:
    """A configuration of the test's own: no QQAVATAR_* setting of the caller's leaks in."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    return {
        **env,
        "QQAVATAR_DATA_DIR": str(tmp_path / "data"),
        "QQAVATAR_UPSTREAM_USER_URL": fake_qlogo.user_url,
        "QQAVATAR_UPSTREAM_GROUP_URL": fake_qlogo.group_url,
        "QQAVATAR_UPSTREAM_TIMEOUT": "2",
    }


def doctor(env: dict[str, str], *args: str, cwd: Path | None = None,
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qqavatar", "doctor", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def rows(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0), done.stdout
    return {row["part"]: row for row in report["checks"]}


@pytest.fixture()
def postgres() -> Iterator[str]:
    with fresh_database() as url:
        yield as_env(url)


@pytest.mark.postgres
@pytest.mark.redis
def test_every_part_answers(base_env: dict[str, str], postgres: str, tmp_path: Path,
                            fake_qlogo: Any) -> None:
    env = {**base_env, "QQAVATAR_DATABASE_URL": postgres, "QQAVATAR_REDIS_URL": REDIS_URL,
           "QQAVATAR_DISK_CACHE_DIR": str(tmp_path / "disk"), "QQAVATAR_ADMIN_TOKEN": TOKEN,
           "QQAVATAR_PUBLIC_URL": "https://avatar.example.com/",
           "QQAVATAR_TRUSTED_PROXIES": "10.0.0.0/8"}
    migrated = subprocess.run([sys.executable, "-m", "qqavatar", "app", "list"], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert migrated.returncode == 0, migrated.stderr
    fetched_before = fake_qlogo.count("user", "376741929", 100)

    done = doctor(env, "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    found = rows(done)
    if found["redis"]["status"] != "ok":  # a failure under QQAVATAR_STRICT=1
        pytest.skip(f"Redis is not running on 127.0.0.1:6379: {found['redis']['detail']}")
    assert found["database"]["status"] == "ok"
    assert "schema at head" in found["database"]["detail"]
    assert found["database"]["detail"].startswith("postgresql://postgres@127.0.0.1")
    assert found["redis"]["status"] == "ok"
    assert "PONG in" in found["redis"]["detail"]
    for part in ("upstream (users)", "upstream (groups)"):
        assert found[part]["status"] == "ok"
        assert fake_qlogo.url in found[part]["detail"]
        assert " bytes in " in found[part]["detail"] and found[part]["detail"].endswith(" ms")
    assert found["disk tier"]["status"] == "ok"
    assert str(tmp_path / "disk") in found["disk tier"]["detail"]
    assert " bytes free " in found["disk tier"]["detail"]
    assert found["admin token"] == {"part": "admin token", "status": "ok",
                                    "detail": "set in QQAVATAR_ADMIN_TOKEN (not shown)"}
    assert found["public URL"]["detail"] == "https://avatar.example.com"
    assert found["trusted proxies"]["detail"] == "10.0.0.0/8"
    assert TOKEN not in done.stdout + done.stderr
    assert fake_qlogo.count("user", "376741929", 100) == fetched_before + 1  # a real fetch
    assert not (tmp_path / "data" / "qqavatar.db").exists()  # PostgreSQL, not the default


def test_table_on_a_fresh_data_dir_creates_nothing(base_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    env = {**base_env, "COLUMNS": "200"}

    done = doctor(env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines()
             if line.count("│") >= 4}
    assert set(lines) >= {"database", "redis", "upstream (users)", "upstream (groups)",
                          "disk tier", "admin token", "public URL", "trusted proxies"}
    assert "no file yet, created on first start" in lines["database"]
    assert "│ off " in lines["redis"] and "not configured" in lines["redis"]
    assert "│ ok " in lines["upstream (users)"]
    assert "│ off " in lines["admin token"] and "dashboard off" in lines["admin token"]
    assert "│ ok " in lines["disk tier"] and str(tmp_path / "data" / "avatars") in done.stdout
    assert "configuration file: none" in done.stdout
    assert not (tmp_path / "data").exists()  # read-only: no database file, no directory


def test_a_dead_redis_is_a_warning_not_a_failure(base_env: dict[str, str]) -> None:
    port = free_port()  # nothing listens there
    env = {**base_env, "QQAVATAR_REDIS_URL": f"redis://:s3cret-pass@127.0.0.1:{port}/0"}

    done = doctor(env, "--json", "--timeout", "2")

    assert done.returncode == 0, done.stdout + done.stderr
    redis = rows(done)["redis"]
    assert redis["status"] == "warn"
    assert f"127.0.0.1:{port}" in redis["detail"]
    assert "degraded" in redis["detail"]
    assert "s3cret-pass" not in done.stdout


def test_an_unreadable_redis_url_is_not_shown(base_env: dict[str, str]) -> None:
    done = doctor({**base_env, "QQAVATAR_REDIS_URL": "redis//:hunter4@127.0.0.1:6379/0"},
                  "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    redis = rows(done)["redis"]
    assert redis["status"] == "warn" and redis["detail"].startswith("(unreadable URL, not shown)")
    assert "hunter4" not in done.stdout


def test_a_bad_database_url_fails_with_status_1(base_env: dict[str, str]) -> None:
    port = free_port()
    env = {**base_env,
           "QQAVATAR_DATABASE_URL": f"postgresql://someone:hunter2@127.0.0.1:{port}/nothing"}

    done = doctor(env, "--json", "--timeout", "3")

    assert done.returncode == 1, done.stdout + done.stderr
    database = rows(done)["database"]
    assert database["status"] == "FAIL"
    assert database["detail"].startswith(f"postgresql://someone:****@127.0.0.1:{port}/nothing: ")
    assert "hunter2" not in done.stdout
    assert rows(done)["upstream (users)"]["status"] == "ok"  # the rest is still checked


@pytest.mark.parametrize("url", ["not a url", "postgresql//someone:hunter3@127.0.0.1/x"])
def test_an_unreadable_database_url_is_a_failed_row_that_hides_it(
        base_env: dict[str, str], url: str) -> None:
    done = doctor({**base_env, "QQAVATAR_DATABASE_URL": url}, "--json")

    assert done.returncode == 1, done.stdout + done.stderr
    database = rows(done)["database"]
    assert database["status"] == "FAIL"
    assert "cannot read this URL" in database["detail"]
    assert url not in done.stdout and "hunter3" not in done.stdout
    assert "Traceback" not in done.stderr


def test_an_upstream_that_does_not_answer_fails_with_status_1(base_env: dict[str, str]) -> None:
    port = free_port()
    env = {**base_env,
           "QQAVATAR_UPSTREAM_GROUP_URL": f"http://127.0.0.1:{port}/gh/{{group}}/{{size}}/"}

    done = doctor(env, "--json")

    assert done.returncode == 1, done.stdout + done.stderr
    found = rows(done)
    assert found["upstream (groups)"]["status"] == "FAIL"
    assert f"127.0.0.1:{port}" in found["upstream (groups)"]["detail"]
    assert found["upstream (users)"]["status"] == "ok"


def test_a_dead_alternate_is_a_warning_and_its_token_is_masked(
        base_env: dict[str, str], fake_qlogo: Any) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{port}/g?nk={{qq}}&s={{size}}&token=alt-secret-77"
    env = {**base_env, "QQAVATAR_UPSTREAM_USER_URLS": f"{fake_qlogo.user_url},{dead}"}

    done = doctor(env, "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    found = rows(done)
    assert found["upstream (users)"]["status"] == "ok"
    alternate = found["upstream (users, alternate 1)"]
    assert alternate["status"] == "warn"
    assert f"127.0.0.1:{port}" in alternate["detail"] and "token=****: " in alternate["detail"]
    assert "ConnectError" in alternate["detail"]  # the reason survives the mask
    assert "alt-secret-77" not in done.stdout


def test_a_disk_tier_that_is_not_writable_is_a_warning(base_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = Path("/proc/qqavatar-doctor")  # not writable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    done = doctor({**base_env, "QQAVATAR_DISK_CACHE_DIR": str(locked / "tier")}, "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    disk = rows(done)["disk tier"]
    assert disk["status"] == "warn"
    assert "not writable" in disk["detail"]


def test_the_token_serve_made_is_found_and_a_short_one_is_named(
        base_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin-token").write_text(TOKEN)
    made = rows(doctor(base_env, "--json"))["admin token"]
    assert made == {"part": "admin token", "status": "ok",
                    "detail": f"set in {data / 'admin-token'} (not shown)"}

    done = doctor({**base_env, "QQAVATAR_ADMIN_TOKEN": "short-token-9"}, "--json")

    assert done.returncode == 0  # the dashboard is off, the API serves on
    short = rows(done)["admin token"]
    assert short["status"] == "warn" and "13 characters" in short["detail"]
    assert "short-token-9" not in done.stdout and TOKEN not in done.stdout


def test_a_bad_setting_stops_it_with_status_2(base_env: dict[str, str]) -> None:
    done = doctor({**base_env, "QQAVATAR_UPSTREAM_TIMEOUT": "soon"})

    assert done.returncode == 2
    assert "QQAVATAR_UPSTREAM_TIMEOUT" in done.stderr
