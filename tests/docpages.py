"""Reading the doc pages in tests: their sections and fenced code blocks, so that a command
a page tells the operator to run is the command a test runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCED = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def section(page: Path, heading: str) -> str:
    """The text under `## heading` up to the next heading of that level or higher."""
    text = page.read_text(encoding="utf-8")
    # Headings are looked for outside code blocks (a `# comment` there is no heading).
    blanked = _FENCED.sub(lambda block: re.sub(r"[^\n]", " ", block.group(0)), text)
    match = re.search(rf"^(#+) {re.escape(heading)}[ \t]*$", blanked, re.MULTILINE)
    assert match, f"{page.name} has no heading {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(blanked, match.end())
    return text[match.end():end.start() if end else len(text)]


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks in `text`, in order."""
    return [body for lang, body in _FENCED.findall(text) if lang == language]


def command_lines(text: str) -> list[str]:
    """The commands of the ```sh blocks in `text`: one a line, comments cut off."""
    lines = []
    for block in fenced_blocks(text, "sh"):
        for line in block.replace("\\\n", " ").splitlines():  # a trailing \ joins lines
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                lines.append(re.sub(r"\s+", " ", command))
    return lines


DOCUMENTED_URL = "http://127.0.0.1:8000"  # the server address the pages write
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # what a JPEG or PNG file starts with


def run_shell(line: str, cwd: Path, env: dict[str, str] | None = None,
              url: str | None = None) -> str:
    """One command line of a page as a shell runs it; its stdout. The checkout's
    `.venv/bin/python` is this test's Python, `url` stands for the documented address, and
    the runner's own QQAVATAR_* settings are left out (`env` adds what the test needs)."""
    line = line.replace(".venv/bin/python", sys.executable)
    if url is not None:
        line = line.replace(DOCUMENTED_URL, url)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QQAVATAR_")}
    done = subprocess.run(["sh", "-c", line], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, errors="replace", timeout=120)
    assert done.returncode == 0, f"{line}\n{done.stderr}"
    return done.stdout
