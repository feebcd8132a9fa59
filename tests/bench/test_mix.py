"""The mix scenario's load (bench/mix.py), and the mix and restart scenarios end to end in
--quick mode against nginx and the floor: the numbers are not checked, what they count is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench import mix
from bench.tools import missing_tools

REPO = Path(__file__).resolve().parents[2]


def test_the_drawn_load_has_the_issue_s_shape() -> None:
    calls = mix.draw(1000, count=50_000)
    assert calls == mix.draw(1000, count=50_000)  # the same list for every target and run
    by_number = Counter(call.number for call in calls)
    ranked = [count for _, count in by_number.most_common()]
    # Zipf(1.0): the first rank about twice the second, ten times the tenth.
    assert 1.6 < ranked[0] / ranked[1] < 2.5 and 7 < ranked[0] / ranked[9] < 14
    assert by_number.most_common(1)[0][0] == mix.number_of(0)
    assert all(not number.endswith("0") for number in by_number)  # each has its own avatar
    sizes = Counter(call.size for call in calls)
    assert abs(sizes[100] / len(calls) - 3 / 7) < 0.02 and abs(sizes[640] / len(calls) - 1 / 7) < 0.02
    assert abs(sum(call.json for call in calls) / len(calls) - 0.2) < 0.02
    assert len(mix.keys(1000)) == 4000 and len(set(mix.keys(1000))) == 4000


def test_quick_mix_and_restart(tmp_path: Path) -> None:
    missing = missing_tools()
    if missing:
        pytest.skip("benchmark tools missing: " + "; ".join(item.what for item in missing))
    env = {name: value for name, value in os.environ.items() if not name.startswith("QQAVATAR_")}
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--scenario", "mix", "--scenario", "restart",
         "--target", "nginx", "--target", "floor", "--mix-numbers", "100", "--out-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    raw = json.loads((tmp_path / "benchmarks.json").read_text())
    assert raw["problems"] == []
    item = raw["mix"]["100"]
    assert item["avatars"] == 400 and item["warm_upstream"] == 800  # each target once
    for name in ("qqavatar", "floor", "nginx"):
        run = item["runs"][name]
        # (the floor answers a 404 to a call whose size and output it has no answer for)
        assert run["requests"] > 0 and run["bad_status"] == 0, (name, run)
        assert run["upstream_requests"] == 0, (name, run)  # everything was warmed
    assert item["memory"]["cached"] == 400 and item["memory"]["image_bytes"] > 400 * 500
    restart = raw["restart"]
    assert restart["disk_files"] == 400  # the disk tier is on by default
    assert restart["requests"] > 0 and restart["upstream_requests"] == 0
    report = (tmp_path / "benchmarks.md").read_text()
    assert "## Mix: a real site's load (issue 17)" in report
    assert "| restart, 400 avatars warmed: upstream requests | 0 | 0 | yes |" in report
