"""CLI start-up times: `python bench/cli_timing.py [--runs N] [--src DIR]`.

Times, end to end in a fresh process each run, `qqavatar --help`, every command's
`--help`, and `qqavatar get` of an avatar the server already has in its cache (a
`serve --demo` on a free port, warmed by one `get` first). Targets (issue 18): any
`--help` under 0.25 s, the cached `get` under 0.4 s. Prints the median and the fastest
of `--runs` runs; the median is what the target is checked against.

`--src DIR` times the CLI of another checkout's `src` (e.g. `git archive OLD src | tar -x
-C /tmp/old`) against the same server, for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import Proc, free_port

REPO = Path(__file__).resolve().parent.parent
HELP_TARGET, GET_TARGET = 0.25, 0.4
HELPS = [(), ("get",), ("fetch",), ("app",), ("app", "list"), ("stats",), ("config",),
         ("doctor",), ("serve",), ("demo",)]
NUMBER = "376741929"


def environment(src: Path, data_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("QQAVATAR_")}
    return {**env, "PYTHONPATH": str(src), "QQAVATAR_DATA_DIR": str(data_dir)}


@dataclass
class Times:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system of the process


def timed(command: list[str], env: dict[str, str], runs: int) -> Times:
    times = Times()
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
        times.wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr.decode()}")
    return times


@contextmanager
def demo_server(data_dir: Path) -> Iterator[tuple[str, str]]:
    """A `serve --demo` of this checkout: (its URL, the first app's key)."""
    env = environment(REPO / "src", data_dir)
    port = free_port()
    server = Proc("qqavatar", [sys.executable, "-m", "qqavatar", "serve", "--demo", "--port",
                               str(port)], log_dir=data_dir, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(url + "/", timeout=60)
        listed = subprocess.run([sys.executable, "-m", "qqavatar", "app", "list", "--json"],
                                env=env, capture_output=True, text=True, check=True)
        yield url, json.loads(listed.stdout)[0]["app_key"]
    finally:
        server.stop()


def measure(src: Path, runs: int) -> list[tuple[str, Times, float]]:
    """(command, its times, its target) for each command timed."""
    rows: list[tuple[str, Times, float]] = []
    with tempfile.TemporaryDirectory(prefix="qqavatar-cli-timing-") as tmp:
        env = environment(src, Path(tmp) / "cli")
        rows.append(("python -c pass (the floor)", timed([sys.executable, "-c", "pass"], env,
                                                         runs), HELP_TARGET))
        listing = subprocess.run([sys.executable, "-m", "qqavatar", "--help"], env=env,
                                 capture_output=True, text=True, check=True).stdout
        for words in HELPS:
            if words and f"  {words[0]} " not in listing:
                continue  # an older checkout without this command
            command = [sys.executable, "-m", "qqavatar", *words, "--help"]
            rows.append((" ".join(["qqavatar", *words, "--help"]),
                         timed(command, env, runs), HELP_TARGET))
        with demo_server(Path(tmp)) as (url, app_key):
            get = [sys.executable, "-m", "qqavatar", "get", NUMBER, "--url", url,
                   "--app-key", app_key, "-o", str(Path(tmp) / "avatar")]
            timed(get, env, 1)  # the server fetches it from the fake qlogo once: now cached
            rows.append((f"qqavatar get {NUMBER} (cached)", timed(get, env, runs),
                         GET_TARGET))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/cli_timing.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per command (7)")
    parser.add_argument("--src", type=Path, default=REPO / "src",
                        help="the src directory whose CLI is timed (this checkout's)")
    args = parser.parse_args(argv)
    try:
        rows = measure(args.src.resolve(), args.runs)
    except (RuntimeError, subprocess.CalledProcessError) as exc:  # a command failed
        print(exc, file=sys.stderr)
        return 2
    print(f"{'command':<40} {'median':>7} {'fastest':>8} {'cpu':>7} {'target':>7}")
    met = True
    for name, times, target in rows:
        median = statistics.median(times.wall)
        met = met and median < target
        print(f"{name:<40} {median:>6.3f}s {min(times.wall):>7.3f}s "
              f"{statistics.median(times.cpu):>6.3f}s {target:>6.2f}s"
              f"{'' if median < target else '  MISSED'}")
    print("wall time per run (median, fastest); cpu: median user + system time of the process")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
