"""`qqavatar get` and `qqavatar fetch` against a real server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qqavatar.cli import main
from qqavatar.client import Client
from tests.server_fixture import RunningServer

P = "客户端非法请求："


def env_for(server: RunningServer, app: dict[str, Any], *, secret: bool = True) -> dict[str, str]:
    env = {"QQAVATAR_URL": server.url, "QQAVATAR_APP_KEY": app["app_key"]}
    if secret:
        env["QQAVATAR_APP_SECRET"] = app["app_secret"]
    return env


def run(server: RunningServer, app: dict[str, Any], *args: str, input: str | None = None,
        cwd: Path | None = None) -> Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args), env=env_for(server, app), input=input)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, list(args), env=env_for(server, app), input=input)
    finally:
        os.chdir(old)


def avatar(server: RunningServer, app: dict[str, Any], number: str, size: int = 100,
           group: bool = False) -> bytes:
    with Client(server.url, app["app_key"], app["app_secret"]) as sdk:
        return (sdk.group_image if group else sdk.user_image)(number, size).content


# --- get -------------------------------------------------------------------------------------

def test_get_to_a_file(server: RunningServer, app: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "me.jpg"
    done = run(server, app, "get", "41001", "--size", "640", "-o", str(target))
    assert done.exit_code == 0, done.output
    assert target.read_bytes() == avatar(server, app, "41001", 640)
    assert f"{target}: image/jpeg" in done.stderr and "640px" in done.stderr
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_get_to_stdout_when_not_a_terminal(server: RunningServer, app: dict[str, Any]) -> None:
    done = run(server, app, "get", "41005", "--group", "--size", "40")
    assert done.exit_code == 0, done.stderr
    assert done.stdout_bytes == avatar(server, app, "41005", 40, group=True)
    assert done.stdout_bytes.startswith(b"\x89PNG")


def test_get_to_a_named_file_on_a_terminal(server: RunningServer, app: dict[str, Any],
                                           tmp_path: Path) -> None:
    """On a terminal, bytes never go to the screen: NUMBER_SIZE.EXT in the current directory."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "qqavatar", "get", "41000", "--size", "140"],
                              env={**os.environ, **env_for(server, app)}, cwd=tmp_path,
                              stdout=follower, stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "41000_140.jpg"
    assert written.read_bytes() == avatar(server, app, "41000", 140)
    assert "default avatar" in done.stderr.decode()


@pytest.mark.parametrize(("args", "message"), [
    (("get", "4100x"), P + "qq应该是5到12位数字, 但现在qq = 4100x"),
    (("get", "--group", "012345"), P + "group应该是5到12位数字, 但现在group = 012345"),
])
def test_get_errors_say_what_the_server_said(server: RunningServer, app: dict[str, Any],
                                             args: tuple[str, ...], message: str) -> None:
    done = run(server, app, *args)
    assert done.exit_code == 1
    assert done.stdout_bytes == b""
    assert f"Error: ret 400: {message}" in done.stderr


def test_get_options_win_over_the_environment(server: RunningServer, app: dict[str, Any]) -> None:
    done = run(server, app, "get", "41001", "--app-key", "0" * 32)
    assert done.exit_code == 1
    assert P + "非法app_key" in done.stderr
    done = run(server, app, "get", "41001", "--app-secret", "x" * 64)
    assert "ret 409: " + P + "签名错误" in done.stderr


# --- fetch -----------------------------------------------------------------------------------

def fetch(server: RunningServer, app: dict[str, Any], listing: str, out: Path,
          *args: str) -> tuple[Result, dict[str, Any]]:
    done = run(server, app, "fetch", "-", "--out", str(out), "--json", *args, input=listing)
    return done, json.loads(done.stdout)


def test_fetch_then_resume(server: RunningServer, app: dict[str, Any], tmp_path: Path) -> None:
    numbers = [str(42000 + i) for i in range(12)]
    listing = "# team avatars\n\n" + "\n".join(numbers) + "\n  42001  # again\n"
    out = tmp_path / "avatars"
    done, summary = fetch(server, app, listing, out, "--concurrency", "4", "--size", "40")
    assert done.exit_code == 0, done.stderr
    assert sorted(summary["fetched"]) == numbers
    assert (summary["skipped"], summary["failed"], summary["duplicates"]) == ([], [], 1)
    with Client(server.url, app["app_key"], app["app_secret"]) as sdk:
        for number in numbers:
            ext = "png" if number[-1] in "56789" else "jpg"
            assert (out / f"{number}_40.{ext}").read_bytes() == sdk.user_image(number, 40).content
    assert len(list(out.iterdir())) == 12  # nothing else, no .part files

    again, summary = fetch(server, app, listing, out, "--size", "40")
    assert again.exit_code == 0
    assert summary["fetched"] == [] and sorted(summary["skipped"]) == numbers

    other_size, summary = fetch(server, app, listing, out, "--size", "100")
    assert other_size.exit_code == 0
    assert sorted(summary["fetched"]) == numbers  # another size is another file


def test_fetch_groups_from_a_file(server: RunningServer, app: dict[str, Any],
                                  tmp_path: Path) -> None:
    listing = tmp_path / "groups.txt"
    listing.write_text("43001\n43005\n")
    done = run(server, app, "fetch", str(listing), "--out", str(tmp_path / "g"), "--group")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "g" / "43001_100.jpg").read_bytes() == avatar(server, app, "43001",
                                                                     group=True)
    assert (tmp_path / "g" / "43005_100.png").exists()
    assert "fetched 2, skipped 0 (already there), failed 0" in done.stdout


def test_a_partial_file_is_not_taken_for_done(server: RunningServer, app: dict[str, Any],
                                              tmp_path: Path) -> None:
    """What a killed run leaves (a hidden .part file) is fetched again and cleaned up."""
    tmp_path.joinpath(".44001_100.k3j4h5.part").write_bytes(b"\xff\xd8\xff half")
    done, summary = fetch(server, app, "44001\n", tmp_path)
    assert done.exit_code == 0 and summary["fetched"] == ["44001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["44001_100.jpg"]
    assert (tmp_path / "44001_100.jpg").read_bytes() == avatar(server, app, "44001")


def test_fetch_failure_summary(server: RunningServer, app: dict[str, Any], fake_qlogo: Any,
                               tmp_path: Path) -> None:
    fake_qlogo.fault("error500", numbers=["45003"])
    listing = "45001\nnot-a-number\n45003\n0451234\n45002\n"
    done, summary = fetch(server, app, listing, tmp_path, "--retries", "0")
    assert done.exit_code == 1
    assert sorted(summary["fetched"]) == ["45001", "45002"]
    reason = "not a QQ number (5 to 12 digits, no leading 0)"
    assert summary["failed"] == [
        {"number": "not-a-number", "reason": f"line 2: {reason}"},
        {"number": "0451234", "reason": f"line 4: {reason}"},
        {"number": "45003", "reason": "err_code -3: 头像服务器返回了无效的图片"},
    ]
    assert not list(tmp_path.glob("45003*"))

    # The same as a readable table; the next run fetches only what failed.
    fake_qlogo.fault("none")
    text = run(server, app, "fetch", "-", "--out", str(tmp_path), input="45001\n45003\nabc\n")
    assert text.exit_code == 1
    assert "fetched 1, skipped 1 (already there), failed 1" in text.stdout
    assert "abc" in text.stdout and "line 3: not a QQ number" in text.stdout


def test_fetch_stops_on_a_wrong_app(server: RunningServer, app: dict[str, Any],
                                    tmp_path: Path) -> None:
    listing = "\n".join(str(46000 + i) for i in range(50))
    done = CliRunner().invoke(main, ["fetch", "-", "--out", str(tmp_path), "--json",
                                     "--concurrency", "2"],
                              env={**env_for(server, app), "QQAVATAR_APP_SECRET": "y" * 64},
                              input=listing)
    assert done.exit_code == 1
    summary = json.loads(done.stdout)
    assert summary["stopped"] == "ret 409: " + P + "签名错误"
    assert 1 <= len(summary["failed"]) <= 2  # those already in flight
    assert summary["not_attempted"] == 50 - len(summary["failed"])
    assert list(tmp_path.iterdir()) == []
