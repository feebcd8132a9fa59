"""Run the benchmark: `python bench/run.py [--quick] [--scenario NAME …] [--target NAME …]`.

Starts the fake qlogo, qqavatar and the references (nginx, the floor, Flask) on
loopback ports, drives them with wrk, and writes docs/benchmarks.md, .png and .json
(or into --out-dir). Installs nothing: it says what is missing and how to get it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench import report
from bench.harness import SCENARIOS, Bench, Options, Results
from bench.targets import REPO, TARGETS
from bench.tools import machine_info, missing_tools


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: 1 round of 1 s per target, 2 000 avatars for memory")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="run only these scenarios (repeatable; default: all)")
    parser.add_argument("--target", action="append", choices=TARGETS,
                        help="run only these targets (repeatable; qqavatar always runs)")
    parser.add_argument("--server", choices=("granian", "uvicorn"), default="granian",
                        help="qqavatar's --server, and so the floor's (default: granian)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, help="hit scenarios: rounds per target (3)")
    parser.add_argument("--duration", type=float, help="seconds per measured wrk run (10)")
    parser.add_argument("--connections", type=int, help="wrk connections for hits (50)")
    parser.add_argument("--avatars", type=int, help="memory: distinct avatars (200000)")
    parser.add_argument("--mix-numbers", type=int, action="append",
                        help="mix: how many QQ numbers to draw from (repeatable; 10000 and "
                             "100000; restart uses the first)")
    parser.add_argument("--server-cpu", type=int, default=0, help="core of the servers (0)")
    parser.add_argument("--load-cpu", type=int, default=1, help="core of wrk and the fake (1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs",
                        help="where benchmarks.md/.png/.json go (default: docs/)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    options = Options(server=args.server, workers=args.workers)
    if args.quick:
        options = replace(options, rounds=1, warmup=0.0, memory_avatars=2_000,
                          memory_max_seconds=60.0, quick=True, mix_numbers=(300,),
                          mix_load=replace(options.mix_load, duration=1.0),
                          hit_load=replace(options.hit_load, duration=1.0),
                          miss_load=replace(options.miss_load, duration=1.0))
    hit = options.hit_load
    if args.duration:
        hit = replace(hit, duration=args.duration)
        options = replace(options, miss_load=replace(options.miss_load, duration=args.duration))
    if args.connections:
        hit = replace(hit, connections=args.connections)
    options = replace(options, hit_load=hit)
    if args.rounds:
        options = replace(options, rounds=args.rounds)
    if args.avatars:
        options = replace(options, memory_avatars=args.avatars)
    if args.mix_numbers:
        options = replace(options, mix_numbers=tuple(args.mix_numbers))
    if args.duration:
        options = replace(options, mix_load=replace(options.mix_load, duration=args.duration))
    if args.scenario:
        options = replace(options, scenarios=tuple(args.scenario))
    if args.target:
        options = replace(options, targets=tuple(dict.fromkeys(["qqavatar", *args.target])))
    cores = os.cpu_count() or 1
    if args.no_pin or cores < 2:
        options = replace(options, server_cpu=None, load_cpu=None)
    else:
        options = replace(options, server_cpu=args.server_cpu % cores,
                          load_cpu=args.load_cpu % cores)
    return options


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_tools()
    if missing:
        print("The benchmark needs tools that are not installed:", file=sys.stderr)
        for item in missing:
            print(f"  - {item.what}: {item.fix}", file=sys.stderr)
        return 2
    options = options_from(args)
    if options.server_cpu is None:
        print("note: fewer than 2 cores or --no-pin: servers and wrk are not pinned",
              file=sys.stderr)

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.monotonic()
    results = Results(options=asdict(options), machine=machine_info())
    work = Path(tempfile.mkdtemp(prefix="qqavatar-bench-"))
    bench = Bench(options, work, log)
    try:
        bench.run(results)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
        print(f"benchmark failed: {exc}\n(logs in {work})", file=sys.stderr)
        return 1
    finally:
        bench.stop()
    md, png, raw = report.write(results, args.out_dir)
    log(f"wrote {md}, {png.name} and {raw.name} in {time.monotonic() - started:.0f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"work dir kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
