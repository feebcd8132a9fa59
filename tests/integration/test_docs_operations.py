"""The commands docs/operations.md tells an operator to run, run: the backups of either
database and their restores (an app deleted after the backup is back after the restore),
and the command that makes a dashboard token."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.docpages import DOCS, command_lines, fenced_blocks, run_shell, section
from tests.integration.test_config_cli import qqavatar
from tests.postgres_fixture import as_env, fresh_database
from tests.server_fixture import RunningServer

PAGE = DOCS / "operations.md"


def backup_commands(database: str) -> list[str]:
    """The commands of the page's Backups section that concern `database`, in order."""
    text = section(PAGE, "Backups")
    part = text[text.index(f"**{database}**"):]
    following = re.search(r"^\*\*(?!" + re.escape(database) + r")", part, re.MULTILINE)
    return command_lines(part[:following.start()] if following else part)


def make_app(cwd: Path, env: dict[str, str] | None = None) -> str:
    done = qqavatar("app", "create", "backed-up", "--json", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    app_key: str = json.loads(done.stdout)["app_key"]
    return app_key


def app_exists(app_key: str, cwd: Path, env: dict[str, str] | None = None) -> bool:
    return qqavatar("app", "show", app_key, "--json", env=env, cwd=cwd).returncode == 0


def delete_app(app_key: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    done = qqavatar("app", "delete", app_key, "--yes", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert not app_exists(app_key, cwd, env)


def test_sqlite_backup_and_restore(tmp_path: Path) -> None:
    backup, restore = backup_commands("SQLite")
    app_key = make_app(tmp_path)  # the default data dir: ./data
    assert (tmp_path / "data" / "qqavatar.db").is_file()
    run_shell(backup, tmp_path)
    assert (tmp_path / "qqavatar-backup.db").is_file()
    delete_app(app_key, tmp_path)
    run_shell(restore, tmp_path)
    assert app_exists(app_key, tmp_path)


def test_postgresql_backup_and_restore(tmp_path: Path) -> None:
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    dump, restore = backup_commands("PostgreSQL")
    with fresh_database() as url:
        env = {"QQAVATAR_DATABASE_URL": as_env(url)}
        app_key = make_app(tmp_path, env)
        run_shell(dump, tmp_path, env)
        assert (tmp_path / "qqavatar.dump").is_file()
        delete_app(app_key, tmp_path, env)
        run_shell(restore, tmp_path, env)
        assert app_exists(app_key, tmp_path, env)


def test_the_dashboard_token_command_makes_a_long_token() -> None:
    text = section(PAGE, "Statistics and the dashboard")
    match = re.search(r"python -c '(import secrets; [^']+)'", text)
    assert match, "the page gives no command for a token"
    made = subprocess.run([sys.executable, "-c", match.group(1)], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()
    assert len(made) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", made)


ADMIN_TOKEN = "docs-operations-admin-token-0123456789abcdef"


def test_the_dashboards_json_commands_answer(tmp_path: Path, fake_qlogo: Any) -> None:
    lines = [line for line in command_lines(section(PAGE, "Statistics and the dashboard"))
             if line.startswith("curl")]
    assert [re.search(r"/admin/api/(\w+)", line).group(1) for line in lines  # type: ignore[union-attr]
            ] == ["apps", "stats", "daily"]
    server = RunningServer(tmp_path / "server", fake_qlogo.url,
                           extra_env={"QQAVATAR_ADMIN_TOKEN": ADMIN_TOKEN})
    try:
        app_key = server.create_app("dashboard")["app_key"]
        server.wait_for_app(app_key)
        env = {"QQAVATAR_ADMIN_TOKEN": ADMIN_TOKEN, "KEY": app_key}
        answers = [json.loads(run_shell(line, tmp_path, env, server.url)) for line in lines]
    finally:
        server.stop()
    apps, stats, daily = answers
    assert app_key in [app["app_key"] for app in apps]  # beside the first start's own
    assert isinstance(stats, list) and all(row["app_key"] == app_key for row in stats)
    assert len(daily) == 30 and {"day", "calls", "cache_hit_ratio"} <= set(daily[-1])


def synopsis() -> list[tuple[list[str], set[str]]]:
    """Each `qqavatar …` line of the page's plain (synopsis) blocks, a continuation joined:
    its command words and the options it names."""
    entries: list[str] = []
    for block in fenced_blocks(PAGE.read_text(encoding="utf-8"), ""):
        for line in block.splitlines():
            text = line.split("  #")[0].rstrip()
            if text.startswith("qqavatar"):
                entries.append(text)
            elif text.startswith(" ") and entries:
                entries[-1] += text
    found = []
    for entry in entries:
        words = entry.split()[1:]
        command = list(itertools.takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), words))
        found.append((command, set(re.findall(r"--[a-z][a-z-]*", entry))))
    return found


def test_the_synopsis_names_real_commands_and_options(tmp_path: Path) -> None:
    entries = synopsis()
    listed = qqavatar("--help", cwd=tmp_path).stdout.partition("Commands:")[2]
    commands = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert {"serve", "app", "doctor", "stats"} <= commands
    assert commands == {command[0] for command, _ in entries if command}, "commands left out"
    for command, options in entries:
        done = qqavatar(*command, "--help", cwd=tmp_path)
        assert done.returncode == 0, f"qqavatar {' '.join(command)}: {done.stderr}"
        missing = {option for option in options if option not in done.stdout}
        assert not missing, f"qqavatar {' '.join(command)} has no {sorted(missing)}"
