"""bench/cli_timing.py in one run per command, so it does not rot: every row comes out with
its times, and `get` really fetched the avatar. No time is asserted (the targets are the
script's business, on a quiet machine)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(?P<name>.+?)\s+(?P<median>\d+\.\d{3})s\s+(?P<fastest>\d+\.\d{3})s\s+"
                 r"(?P<cpu>\d+\.\d{3})s\s+(?P<target>\d+\.\d{2})s(?:\s+MISSED)?$")


def test_one_run_of_every_command(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    done = subprocess.run([sys.executable, "bench/cli_timing.py", "--runs", "1"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: a target missed, 2: a run failed
    rows = {match["name"]: match for line in done.stdout.splitlines()
            if (match := ROW.match(line)) is not None}
    assert "qqavatar --help" in rows and "qqavatar doctor --help" in rows, done.stdout
    assert "qqavatar get 376741929 (cached)" in rows, done.stdout
    assert all(float(row["cpu"]) > 0 for row in rows.values()), done.stdout
    assert len(rows) == 12, done.stdout  # the floor, 10 helps, the cached get
