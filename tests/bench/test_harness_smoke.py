"""The benchmark harness end to end in --quick mode, one scenario, every target.

It keeps `bench/` from rotting: the fake, qqavatar, nginx, the floor and Flask must
start, answer the scenario's URLs with cached hits, be driven by wrk, and the report,
chart and raw numbers must come out. The numbers themselves are not checked (CI
machines are busy); `python bench/run.py` without --quick is the benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tools import missing_tools

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_of_one_scenario(tmp_path: Path) -> None:
    missing = missing_tools()
    if missing:
        pytest.skip("benchmark tools missing: " + "; ".join(item.what for item in missing))
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--scenario", "image40",
         "--out-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    raw = json.loads((tmp_path / "benchmarks.json").read_text())
    runs = raw["hits"]["image40"]
    assert set(runs) == {"qqavatar", "floor", "nginx", "flask"}
    for name, target_runs in runs.items():
        (run,) = target_runs
        assert run["requests"] > 0 and run["rps"] > 0, name
        assert run["bad_status"] == 0 and run["socket_errors"] == 0, (name, run)
        assert 0 < run["p50_ms"] <= run["p99_ms"], (name, run)

    report = (tmp_path / "benchmarks.md").read_text()
    assert "Quick smoke run" in report
    assert "| cached hit, image, 40 px | qqavatar (granian) |" in report
    assert "1.00× |" in report  # nginx's own row against itself
    assert "| cached hit, image 40 px |" in report  # the target, with its verdict
    assert (tmp_path / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in done.stdout


def test_missing_tools_are_explained(tmp_path: Path) -> None:
    # With an empty PATH neither wrk, nginx nor taskset can be found: the harness says
    # what is missing and how to install it, and starts nothing.
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "bench/run.py", "--quick", "--out-dir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "apt-get install wrk" in done.stderr
    assert "`taskset` (command)" in done.stderr
    assert not (tmp_path / "benchmarks.md").exists()
