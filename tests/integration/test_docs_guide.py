"""What docs/guide.md tells a caller or operator to run, run: the limit commands of "Members
and limits" set and clear what the page says, and the signing code of "Signing and `_auth`"
gives the sign of its worked example."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from qqavatar.client import Client, ClientError
from tests.docpages import (
    DOCS,
    DOCUMENTED_URL,
    IMAGE_MAGIC,
    command_lines,
    fenced_blocks,
    run_shell,
    section,
)
from tests.integration.test_config_cli import qqavatar
from tests.server_fixture import RunningServer

PAGE = DOCS / "guide.md"


def run(line: str, app_key: str, cwd: Path) -> str:
    argv = shlex.split(line.replace("APP_KEY", app_key))
    assert argv[0] == "qqavatar"
    done = qqavatar(*argv[1:], cwd=cwd)
    assert done.returncode == 0, f"{line}\n{done.stderr}"
    return done.stdout


def test_the_limit_commands_set_and_clear_limits(tmp_path: Path) -> None:
    set_limits, clear_some, show = command_lines(section(PAGE, "Members and limits"))
    made = qqavatar("app", "create", "limited", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    app_key = json.loads(made.stdout)["app_key"]

    run(set_limits, app_key, tmp_path)
    app: dict[str, Any] = json.loads(run(show, app_key, tmp_path))
    assert (app["daily_quota"], app["monthly_quota"], app["rate_limit"]) == (10000, 200000, 20)
    assert app["ip_allow"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert app["domains"] == ["api.example.com"] and app["sign_required"] is True

    run(clear_some, app_key, tmp_path)  # "0 or none clears a limit"
    app = json.loads(run(show, app_key, tmp_path))
    assert app["daily_quota"] is None and app["ip_allow"] == []
    assert (app["monthly_quota"], app["rate_limit"]) == (200000, 20)  # the others stay


def test_the_signing_code_gives_the_worked_examples_sign() -> None:
    text = section(PAGE, "Signing and `_auth`")
    (code, *_) = fenced_blocks(text, "python")
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the page's own function, as a reader would paste it
    pairs = dict(re.findall(r"`(s|app_key|qq|size)=([^`]+)`", text))
    assert sorted(pairs) == ["app_key", "qq", "s", "size"]
    secret = re.search(r"Worked example, secret `([^`]+)`", text)
    sign = re.search(r"`sign=([0-9A-F]{32})`", text)
    assert secret and sign
    assert namespace["yesapi_sign"](pairs, secret.group(1)) == sign.group(1)


def test_the_consumer_commands_fetch_what_the_page_says(server: RunningServer,
                                                        app: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """"Command line": the block run as one script, `qqavatar` on the PATH as installed."""
    script = "\n".join(command_lines(section(PAGE, "Command line")))
    (tmp_path / "numbers.txt").write_text("376741929\n\n# a comment\n123456\n376741929\n")
    bin_dir = str(Path(sys.executable).parent)
    env = {"KEY": app["app_key"], "SECRET": app["app_secret"],
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = run_shell(script, tmp_path, env, server.url)
    fetched = sorted(path.name.partition(".")[0] for path in (tmp_path / "avatars").iterdir())
    assert fetched == ["123456_140", "376741929_140"]  # NUMBER_SIZE.EXT, the repeat once
    for written in [tmp_path / "group.png", tmp_path / "me.jpg", *(tmp_path / "avatars").iterdir()]:
        assert written.read_bytes().startswith(IMAGE_MAGIC), written
    assert re.search(r"\bfetched 2\b", out), out[-500:]


def page_code(heading: str, server: RunningServer, app: dict[str, Any]) -> dict[str, Any]:
    """The section's first Python block run as a reader would paste it: their server's
    address for the page's, their app's key and secret for APP_KEY and APP_SECRET."""
    (code, *_) = fenced_blocks(section(PAGE, heading), "python")
    for documented in (DOCUMENTED_URL, "https://avatar.example.com"):
        code = code.replace(documented, server.url)
    namespace: dict[str, Any] = {"APP_KEY": app["app_key"], "APP_SECRET": app["app_secret"]}
    exec(code, namespace)
    return namespace


def test_the_sdk_example_runs(server: RunningServer, app: dict[str, Any], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace = page_code("Python SDK", server, app)
    assert Path(f"me.{namespace['avatar'].extension}").read_bytes().startswith(IMAGE_MAGIC)
    assert namespace["encoded"].content.startswith(IMAGE_MAGIC)
    # What the page says the refused call raises, with its ret and msg.
    shown = re.search(r"error\.ret, error\.msg +# (\d+), '([^']+)'", section(PAGE, "Python SDK"))
    assert shown
    with (Client(server.url, app["app_key"], app["app_secret"]) as client,
          pytest.raises(ClientError) as refused):
        client.user_image("0123")
    assert (refused.value.ret, refused.value.msg) == (int(shown.group(1)), shown.group(2))


def test_the_private_link_example_makes_a_link_that_shows_the_avatar(
        server: RunningServer, app: dict[str, Any]) -> None:
    link = page_code("Private avatar links", server, app)["avatar_link"]("376741929")
    assert link.startswith(server.url + "/a/") and "376741929" not in link
    shown = httpx.get(link, timeout=10)
    assert shown.status_code == 200 and shown.content.startswith(IMAGE_MAGIC)
