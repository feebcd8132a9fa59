"""The README's curl commands ("Calling it", "Private avatar links"), run as written against a
real server (its address for `http://127.0.0.1:8000`, an app's key for `$KEY`): images where
the page writes a file, answers with the fields its sample answers show everywhere else."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.docpages import IMAGE_MAGIC, ROOT, command_lines, fenced_blocks, run_shell, section
from tests.server_fixture import RunningServer

README = ROOT / "README.md"


def curl_lines(heading: str) -> list[str]:
    lines = [line for line in command_lines(section(README, heading)) if line.startswith("curl")]
    assert lines, f"README's {heading!r} has no curl command"
    return lines


def sample_fields(heading: str) -> set[str]:
    """The field names of the sample answers shown as comments in the section's sh blocks."""
    comments = [line for block in fenced_blocks(section(README, heading), "sh")
                for line in block.splitlines() if re.match(r"#\s+[{\"]", line)]
    return set(re.findall(r'"(\w+)":', "\n".join(comments)))


def answer_of(stdout: str) -> dict[str, Any]:
    """An envelope, a bare data object (return_data=1) or a JSONP call's argument."""
    jsonp = re.fullmatch(r"(\w+)\((.*)\)", stdout, re.DOTALL)
    decoded: dict[str, Any] = json.loads(jsonp.group(2) if jsonp else stdout)
    return decoded


@pytest.fixture(scope="module", autouse=True)
def _curl() -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (Debian: apt-get install curl)")


@pytest.mark.parametrize("heading", ["Calling it", "Private avatar links"])
def test_the_readmes_curl_commands_answer_as_shown(heading: str, server: RunningServer,
                                                   app: dict[str, Any], tmp_path: Path) -> None:
    fields: set[str] = set()
    for line in curl_lines(heading):
        stdout = run_shell(line, tmp_path, {"KEY": app["app_key"]}, server.url)
        written = re.search(r"-o (\S+)", line)
        if written:
            assert (tmp_path / written.group(1)).read_bytes().startswith(IMAGE_MAGIC), line
            continue
        answer = answer_of(stdout)
        if "ret" in answer:
            assert answer["ret"] == 200, (line, answer)
        data = answer.get("data", answer)
        if data:  # App.Site.Index's data has no err_code
            assert data.get("err_code", 0) == 0, (line, answer)
        fields |= set(answer) | set(data)
    shown = sample_fields(heading)
    assert shown and shown <= fields, f"fields the README shows but no answer had: {shown - fields}"
