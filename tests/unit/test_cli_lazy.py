"""The CLI loads a command's module only when that command runs or shows its help."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from qqavatar.cli import LAZY_COMMANDS, load_command, main

# What the server, the database layer and the HTTP client bring in: none of it is
# needed to print help.
HEAVY = ("starlette", "sqlalchemy", "PIL", "httpx", "pydantic", "uvicorn", "granian", "jinja2",
         "asyncio", "rich")

PROBE = """
import json, sys
from qqavatar.cli import main
try:
    main(sys.argv[1:], prog_name="qqavatar")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(*args: str) -> set[str]:
    """Top-level packages in sys.modules after `qqavatar ARGS` ran in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=60, check=True)
    modules = json.loads(done.stdout.splitlines()[-1])
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("args", [
    ("--help",),
    ("get", "--help"),
    ("fetch", "--help"),
    ("app", "--help"),
    ("app", "list", "--help"),
    ("stats", "--help"),
    ("config", "--help"),
    ("doctor", "--help"),
    ("serve", "--help"),
    ("--version",),
])
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    assert loaded_after(*args).isdisjoint(HEAVY), sorted(loaded_after(*args) & set(HEAVY))


def test_the_probe_sees_heavy_imports_when_a_command_needs_them() -> None:
    # `config` reads the settings (pydantic): the probe sees what a command really loads.
    assert "pydantic" in loaded_after("config")


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_listed_help_line_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.help is not None
    first_paragraph = " ".join(command.help.split("\n\n")[0].split())
    assert LAZY_COMMANDS[name].summary == first_paragraph


def test_group_help_lists_every_command_with_its_line() -> None:
    ctx = click.Context(main, info_name="qqavatar")
    text = main.get_help(ctx)
    for name in [*LAZY_COMMANDS, "serve", "demo"]:
        assert f"  {name} " in text
    assert "Download one avatar." in text
    assert "Start the API server." in text


def test_a_lazy_command_runs_as_itself() -> None:
    assert isinstance(main.get_command(click.Context(main), "get"), click.Command)
    assert main.get_command(click.Context(main), "get") is load_command("get")
    assert main.get_command(click.Context(main), "no-such-command") is None
