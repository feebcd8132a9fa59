"""`qqavatar app …` through click's runner and as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qqavatar.cli import apps as cli_apps

KEY = re.compile(r"^[0-9A-F]{32}$")
SECRET = re.compile(r"^[A-Za-z0-9]{64}$")
FIELDS = ["app_key", "app_secret", "name", "sign_required", "created_at", "updated_at",
          "daily_quota", "monthly_quota", "rate_limit", "ip_allow", "domains", "sign_scheme"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"  # does not exist yet: the CLI must create it
    monkeypatch.setenv("QQAVATAR_DATA_DIR", str(data))
    monkeypatch.delenv("QQAVATAR_DATABASE_URL", raising=False)
    return data


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli_apps.app, list(args), input=input)


def create(name: str, *extra: str) -> dict[str, object]:
    result = run("create", name, "--json", *extra)
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_create_json_on_empty_data_dir(data_dir: Path) -> None:
    result = run("create", "demo", "--json")
    assert result.exit_code == 0, result.output
    app = json.loads(result.stdout)  # exactly one JSON value on stdout
    assert list(app) == FIELDS
    assert KEY.match(str(app["app_key"]))
    assert SECRET.match(str(app["app_secret"]))
    assert (app["name"], app["sign_required"]) == ("demo", False)
    assert (data_dir / "qqavatar.db").is_file()


def test_create_text(data_dir: Path) -> None:
    result = run("create", "My site", "--sign-required")
    assert result.exit_code == 0, result.output
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert KEY.match(fields["app_key"])
    assert SECRET.match(fields["app_secret"])
    assert fields["name"] == "My site"
    assert fields["sign_required"] == "yes"
    assert fields["created_at"].endswith(" UTC")
    assert "Keep app_secret private" in result.stderr


@pytest.mark.parametrize(
    ("name", "message"), [("  ", "must not be empty"), ("x" * 101, "at most 100")]
)
def test_create_rejects_bad_names(data_dir: Path, name: str, message: str) -> None:
    result = run("create", name)
    assert result.exit_code == 2
    assert "Invalid value for NAME" in result.stderr.replace("'", "")
    assert message in result.stderr
    assert json.loads(run("list", "--json").stdout) == []


def test_list(data_dir: Path) -> None:
    empty = run("list")
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert "No apps yet" in empty.stderr
    assert json.loads(run("list", "--json").stdout) == []

    # Same second, so listed by name; "first" < "second" either way.
    first, second = create("first"), create("second", "--sign-required")
    table = run("list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["APP_KEY", "SIGN", "CREATED", "NAME"]
    assert lines[1].startswith(f"{first['app_key']}  no ")
    assert lines[1].endswith("  first")
    assert lines[2].startswith(f"{second['app_key']}  yes")
    assert lines[2].endswith("  second")
    for app in (first, second):
        assert str(app["app_secret"]) not in table.stdout

    listed = json.loads(run("list", "--json").stdout)
    assert [app["app_key"] for app in listed] == [first["app_key"], second["app_key"]]
    assert all("app_secret" not in app for app in listed)


def test_show(data_dir: Path) -> None:
    app = create("demo")
    shown = run("show", str(app["app_key"]), "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == app
    text = run("show", str(app["app_key"]).lower())  # keys are case-insensitive here
    assert text.exit_code == 0
    assert f"app_secret     {app['app_secret']}" in text.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["show", "0" * 32],
        ["update", "0" * 32, "--name", "x"],
        ["delete", "0" * 32, "--yes"],
        ["delete", "nonsense"],
    ],
)
def test_unknown_app_key(data_dir: Path, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: no app with app_key" in result.stderr


def test_update(data_dir: Path) -> None:
    app = create("old")
    key = str(app["app_key"])

    renamed = json.loads(run("update", key, "--name", "new", "--sign-required", "--json").stdout)
    assert (renamed["name"], renamed["sign_required"]) == ("new", True)
    assert renamed["app_secret"] == app["app_secret"]

    rotated = json.loads(
        run("update", key, "--rotate-secret", "--no-sign-required", "--json").stdout
    )
    assert SECRET.match(rotated["app_secret"])
    assert rotated["app_secret"] != app["app_secret"]
    assert (rotated["name"], rotated["sign_required"]) == ("new", False)
    assert json.loads(run("show", key, "--json").stdout) == rotated

    text = run("update", key, "--name", "newer")
    assert text.exit_code == 0
    assert "name           newer" in text.stdout


def test_update_needs_a_change(data_dir: Path) -> None:
    key = str(create("x")["app_key"])
    result = run("update", key)
    assert result.exit_code == 2
    assert "nothing to change" in result.stderr


def test_update_rejects_bad_name(data_dir: Path) -> None:
    key = str(create("x")["app_key"])
    result = run("update", key, "--name", "")
    assert result.exit_code == 2
    assert "Invalid value for --name: app name must not be empty" in result.stderr.replace("'", "")


def test_delete_with_yes(data_dir: Path) -> None:
    app = create("doomed")
    result = run("delete", str(app["app_key"]), "--yes")
    assert result.exit_code == 0
    assert result.stdout == f"Deleted app {app['app_key']} (doomed).\n"
    assert run("show", str(app["app_key"])).exit_code == 1


def test_delete_refuses_without_terminal(data_dir: Path) -> None:
    key = str(create("kept")["app_key"])
    result = run("delete", key, input="y\n")  # piped "y" is not a confirmation
    assert result.exit_code == 1
    assert "stdin is not a terminal; pass --yes" in result.stderr
    assert run("show", key).exit_code == 0


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_delete_asks_on_a_terminal(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool
) -> None:
    monkeypatch.setattr(cli_apps, "stdin_is_interactive", lambda: True)
    key = str(create("maybe")["app_key"])
    result = run("delete", key, input=answer)
    assert f"Delete app {key} (maybe)? [y/N]" in result.stderr
    assert result.exit_code == (0 if deleted else 1)
    assert (run("show", key).exit_code == 1) is deleted


def test_database_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("QQAVATAR_DATABASE_URL", f"sqlite:///{blocker}/sub/q.db")
    result = run("list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: database error: ")
    assert "Traceback" not in result.stderr


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QQAVATAR_")}
    return env | {"QQAVATAR_DATA_DIR": str(data_dir)}


def test_real_process(tmp_path: Path) -> None:
    # The console entry point as operators run it, in a fresh process.
    env = _env(tmp_path / "data")
    base = [sys.executable, "-m", "qqavatar.cli", "app"]
    created = subprocess.run(
        [*base, "create", "demo", "--json"], env=env, capture_output=True, text=True, check=True
    )
    app = json.loads(created.stdout)
    assert list(app) == FIELDS
    assert app["name"] == "demo"

    script = Path(sys.executable).with_name("qqavatar")  # the installed console script
    if script.exists():
        shown = subprocess.run(
            [str(script), "app", "show", app["app_key"], "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(shown.stdout) == app

    missing = subprocess.run([*base, "show", "0" * 32], env=env, capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: no app with app_key {'0' * 32}"

    refused = subprocess.run(
        [*base, "delete", app["app_key"]],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 1
    assert "pass --yes" in refused.stderr
