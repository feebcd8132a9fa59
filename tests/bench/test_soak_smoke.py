"""The soak (bench/soak.py) in a 9-second run, and its verdict on made-up windows.

The real soak is `python -m bench.soak` (10 minutes, outside the test run); this keeps it
from rotting: a server and the fake start, the whole mix is answered as expected, a row per
window comes out, and the verdict catches errors, RSS growth, p99 drift and FD growth.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bench.soak import MIB, P99_FLOOR_MS, Row, verdict

REPO = Path(__file__).resolve().parents[2]


def test_a_short_soak_holds(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    done = subprocess.run(
        # No latency verdict in 9 seconds on a shared machine (a timed assertion: a neighbour's
        # build moves p99 by tens of ms); the drift rule is tested on made-up windows below.
        [sys.executable, "-m", "bench.soak", "--minutes", "0.15", "--window", "3",
         "--p99-drift", "1000", "--work-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [int(row[0]) for row in rows] == [1, 2, 3], done.stdout
    for row in rows:
        requests, errors, rss, fds = int(row[1]), int(row[2]), float(row[6]), int(row[7])
        assert requests > 0 and errors == 0 and rss > 10 and fds > 0, row
    assert done.stdout.rstrip().endswith("soak: held")


def row(index: int, *, p99: float = 10.0, rss: int = 100 * MIB, fds: int = 50) -> Row:
    return Row(index, 1000, 0, p99 / 4, p99 / 2, p99, rss, fds)


def test_the_verdict() -> None:
    steady = [row(1), row(2, p99=12, rss=110 * MIB, fds=52)]
    assert verdict(steady, [], rss_growth_mib=32, p99_drift=2) == []
    [problem] = verdict(steady, ["login {...}: HTTP 500"], rss_growth_mib=32, p99_drift=2)
    assert problem.startswith("1 unexpected answers")
    [problem] = verdict([row(1), row(2, rss=140 * MIB)], [], rss_growth_mib=32, p99_drift=2)
    assert "RSS grew 40.0 MiB" in problem
    [problem] = verdict([row(1, p99=40), row(2, p99=81)], [], rss_growth_mib=32, p99_drift=2)
    assert "p99 drifted from 40.0 ms to 81.0 ms" in problem
    # a small p99 may wobble by the floor without counting as drift
    assert verdict([row(1, p99=2), row(2, p99=1 + P99_FLOOR_MS)], [], rss_growth_mib=32,
                   p99_drift=2) == []
    [problem] = verdict([row(1), row(2, fds=70)], [], rss_growth_mib=32, p99_drift=2)
    assert "FDs grew from 50 to 70" in problem
