"""The house rules that tools check: ruff on the code and tests, mypy --strict on the package
(pyproject.toml holds both configurations). A finding fails the suite, so it cannot pile up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "--no-cache", "src", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_nothing_in_the_package() -> None:
    done = run("mypy", "--cache-dir", str(ROOT / ".mypy_cache"), "src")
    assert done.returncode == 0, done.stdout + done.stderr
