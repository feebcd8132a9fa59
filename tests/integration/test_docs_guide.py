"""What docs/guide.md tells a caller or operator to run, run: the limit commands of "Members
and limits" set and clear what the page says, and the signing code of "Signing and `_auth`"
gives the sign of its worked example."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from tests.docpages import DOCS, command_lines, fenced_blocks, section
from tests.integration.test_config_cli import qqavatar

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
