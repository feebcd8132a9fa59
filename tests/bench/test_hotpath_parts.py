"""`python -m bench.hotpath --parts`: every part of a new URL's answer is timed and summed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PART = re.compile(r"^(.+?)\s+(\d+\.\d+) µs$")


def test_parts_are_timed_and_added_up() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    done = subprocess.run([sys.executable, "-m", "bench.hotpath", "--parts", "--calls", "300",
                           "--rounds", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    timed = {match[1]: float(match[2]) for line in done.stdout.splitlines()
             if (match := PART.match(line))}
    total = timed.pop("sum")
    for part in ("query string read (parse_query)", "rules checked (parse_all)",
                 "cached avatar looked up", "observer StatsRecorder", "observer RequestMetrics",
                 "guard QuotaGuard"):
        assert timed[part] > 0, (part, done.stdout)
    assert abs(sum(timed.values()) - total) < 0.01 * len(timed) + 1e-9, done.stdout
