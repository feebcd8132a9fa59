"""One benchmark run: start the targets, run the scenarios, collect the numbers.

Scenarios (issue 3):
- image40, image640, json640, signed40: cached hits, req/s and p50/p99 per target;
- fresh40: the image40 hit with a URL of its own for every request (a counter parameter the
  service ignores), so no kept answer serves it: the full path, against the floor only;
- half: qqavatar, the floor and nginx at half of qqavatar's image40 peak rate: p99 (median
  of rounds);
- miss: every request a new avatar, qlogo answering after 50 ms: latency added to it;
- cold: 200 simultaneous requests for one uncached avatar: requests qlogo saw;
- memory: qqavatar's RSS after N distinct avatars with a 64 MiB cache, and idle;
- hotpath: the Python work per cached hit in-process (`python -m bench.hotpath`), kept
  answers and the full path, next to the floor's;
- mix (issue 17, bench/mix.py): a real site's load, Zipf over 10 000 and 100 000 numbers,
  mixed sizes, one call in five JSON, qqavatar on its defaults against nginx: req/s, p99,
  upstream requests during the run, RSS per cached avatar;
- restart: the mix's qqavatar stopped and started on the same data dir, the mix replayed:
  the upstream requests a restart costs.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from . import mix as mixes
from . import nginx, wrk
from .burst import burst
from .procs import Proc, pinned
from .targets import (
    HIT_NUMBER,
    REPO,
    TARGETS,
    Fake,
    Target,
    api_paths,
    clean_env,
    first_app,
    flask_apps_path,
    mix_answer_paths,
    nginx_paths,
    record,
    start_fake,
    start_flask,
    start_floor,
    start_nginx,
    start_qqavatar,
    warm,
    write_floor_answers,
)

HIT_SCENARIOS = ("image40", "image640", "json640", "signed40", "fresh40")
SCENARIOS = (*HIT_SCENARIOS, "half", "miss", "cold", "memory", "hotpath", "mix", "restart")
MISS_DELAY_MS = 50
MEMORY_CACHE = "64MiB"
MEMORY_CACHE_BYTES = 64 * 1024 * 1024
HIT_LOAD = wrk.Load(connections=50, duration=10.0)
MISS_LOAD = wrk.Load(connections=16, duration=10.0)  # ~300 new avatars/s at 50 ms each
MIX_LOAD = wrk.Load(connections=32, duration=10.0)
MIX_NUMBERS = (10_000, 100_000)


@dataclass(frozen=True)
class Options:
    scenarios: tuple[str, ...] = SCENARIOS
    targets: tuple[str, ...] = TARGETS
    server: str = "granian"          # qqavatar's --server, and so the floor's
    workers: int = 1
    rounds: int = 3                  # hit scenarios: median of this many runs per target
    hit_load: wrk.Load = HIT_LOAD
    warmup: float = 2.0              # seconds of load before the first measured run
    miss_load: wrk.Load = MISS_LOAD
    half_period_ms: int = 20         # per-connection request period at the half rate
    cold_requests: int = 200
    memory_avatars: int = 200_000
    memory_connections: int = 32
    memory_max_seconds: float = 1800.0
    mix_numbers: tuple[int, ...] = MIX_NUMBERS
    mix_load: wrk.Load = MIX_LOAD
    server_cpu: int | None = 0
    load_cpu: int | None = 1
    quick: bool = False


@dataclass
class Results:
    options: dict[str, Any]
    machine: dict[str, str]
    hits: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    half: dict[str, dict[str, Any]] = field(default_factory=dict)
    miss: dict[str, dict[str, Any]] = field(default_factory=dict)
    cold: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    hotpath: dict[str, dict[str, float]] = field(default_factory=dict)
    mix: dict[str, dict[str, Any]] = field(default_factory=dict)  # by the count of numbers
    restart: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class MixServer:
    name: str
    proc: Proc
    url: str
    app_key: str
    numbers: int
    calls: list[mixes.Call]
    idle_rss: int
    warm_rss: int
    image_bytes: int      # the bytes of every avatar warmed
    avatars: int
    warm_seconds: float
    warm_upstream: int


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median req/s (its latencies come with it)."""
    ordered = sorted(runs, key=lambda run: run["rps"])
    return ordered[(len(ordered) - 1) // 2]


class Bench:
    def __init__(self, options: Options, work: Path, log: Callable[[str], None]) -> None:
        self.options = options
        self.work = work
        self.log = log
        self.procs: list[Proc] = []
        self.targets: dict[str, Target] = {}
        self.fake: Fake | None = None
        self.app: tuple[str, str] = ("", "")
        self._numbers = itertools.count(1)
        self._runs = itertools.count(1)
        self.problems: list[str] = []  # runs with socket errors or failed answers
        self._mixed: dict[int, MixServer] = {}  # qqavatar on defaults, warmed, by numbers

    # --- set-up -----------------------------------------------------------------------------

    def _keep(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """Start the fake and every selected target at once, then warm them and check answers."""
        opts, work = self.options, self.work
        fake = self.fake = start_fake(work, opts.load_cpu)
        self._keep(fake.proc)
        wanted = set(opts.targets)
        qq_proc, qq_url = start_qqavatar(work, "qqavatar", fake, server=opts.server,
                                         workers=opts.workers, cpu=opts.server_cpu)
        self._keep(qq_proc)
        started: dict[str, tuple[Proc, str]] = {}
        if "nginx" in wanted:
            started["nginx"] = start_nginx(work, fake, workers=opts.workers, cpu=opts.server_cpu)
        if "flask" in wanted:
            started["flask"] = start_flask(work, fake, workers=opts.workers, cpu=opts.server_cpu)
        if "floor" in wanted:
            started["floor"] = start_floor(work, server=opts.server, workers=opts.workers,
                                           cpu=opts.server_cpu)
        for proc, _ in started.values():
            self._keep(proc)

        fake.proc.wait_http(fake.url + "/_fake/stats")
        qq_proc.wait_http(qq_url + "/")
        self.app = app_key, secret = first_app(qq_proc)
        flask_apps_path(work).write_text(json.dumps({app_key: secret}))
        paths = api_paths(app_key, secret, HIT_NUMBER)
        answers = record(qq_url, paths)
        mix_answers = record(qq_url, mix_answer_paths(app_key, HIT_NUMBER)) \
            if "floor" in started else {}
        write_floor_answers(work, answers | mix_answers)
        miss = ("/?" + urlencode({"s": "App.QQ.UserImage", "app_key": app_key}) + "&qq=",
                "&size=40")
        found = {"qqavatar": Target("qqavatar", f"qqavatar ({opts.server})", qq_url, qq_proc,
                                    paths, miss)}
        if "nginx" in started:
            proc, url = started["nginx"]
            nginx.write_static(work / "nginx", base64.b64decode(str(answers["json640"]["body"])))
            found["nginx"] = Target("nginx", "nginx proxy_cache", url, proc,
                                    nginx_paths(HIT_NUMBER), ("/g?b=qq&nk=", "&s=40"))
        if "flask" in started:
            proc, url = started["flask"]
            found["flask"] = Target("flask", "Flask + gunicorn", url, proc, dict(paths), miss)
        if "floor" in started:
            proc, url = started["floor"]
            found["floor"] = Target("floor", f"floor ({opts.server})", url, proc,
                                    {name: "/" + name for name in paths})
        for name in ("qqavatar", "floor"):  # (nginx would cache each new URL apart: a miss)
            if name in found:
                base = found[name].paths["image40"]
                found[name].paths["fresh40"] = base + ("&" if "?" in base else "?") + "n="
        for name, target in found.items():
            target.proc.wait_http(target.url + "/")
            if name == "nginx":  # the proxied paths must be cache hits by now
                proxied = {scenario: path for scenario, path in target.paths.items()
                           if path != nginx.STATIC_JSON}
                warm(target.url, proxied, ("x-cache", "HIT"))
            warm(target.url, target.paths)
        # The report's order: qqavatar first, then the references.
        self.targets = {name: found[name] for name in TARGETS if name in found}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        self.procs.clear()

    # --- helpers ----------------------------------------------------------------------------

    def _wrk(self, target: Target, load: wrk.Load, name: str, lua: str | None = None,
             path: str = "/") -> wrk.WrkResult:
        run_name = f"{next(self._runs):03d}-{name}-{target.name}"
        result = wrk.run(target.url + path, load, cpu=self.options.load_cpu, work_dir=self.work,
                         name=run_name, lua=lua)
        if not result.clean:
            self.problems.append(f"{run_name}: {result.socket_errors} socket errors, "
                                 f"{result.bad_status} non-2xx/3xx answers")
        return result

    def _block(self) -> int:
        """The first number of a fresh block of avatar numbers (never asked for before)."""
        return 200_000_000 + next(self._numbers) * 10_000_000

    def _alive(self) -> Iterator[Target]:
        for target in self.targets.values():
            if not target.proc.alive():
                raise RuntimeError(f"{target.name} died:\n{target.proc.output()}")
            yield target

    # --- scenarios --------------------------------------------------------------------------

    def hits(self, scenario: str, results: Results) -> None:
        opts = self.options
        targets = [target for target in self._alive() if scenario in target.paths]
        runs: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
        warmup = wrk.Load(connections=opts.hit_load.connections, duration=opts.warmup)
        for round_index in range(opts.rounds):
            # Rotate the order each round, so no target always runs right after another.
            shift = round_index % max(1, len(targets))
            for target in targets[shift:] + targets[:shift]:
                path = target.paths[scenario]
                # fresh40: `path` ends in "n=", and every request adds a number of its own.
                lua = wrk.script(distinct=(path, "", 0)) if scenario == "fresh40" else None
                if round_index == 0 and opts.warmup > 0:
                    self._wrk(target, warmup, f"{scenario}-warmup", lua=lua, path=path)
                result = self._wrk(target, opts.hit_load, scenario, lua=lua, path=path)
                runs[target.name].append(result.as_dict())
                self.log(f"  {scenario:9} {target.name:9} {result.rps:9.0f} req/s  "
                         f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms")
        results.hits[scenario] = runs

    def half(self, results: Results) -> None:
        opts = self.options
        peak_runs = results.hits.get("image40", {}).get("qqavatar")
        if peak_runs:
            peak = median_run(peak_runs)["rps"]
        else:
            qq = self.targets["qqavatar"]
            peak = self._wrk(qq, opts.hit_load, "half-peak", path=qq.paths["image40"]).rps
        rate = peak / 2
        # Each connection sends one request every `period` ms: connections = rate × period.
        connections = max(1, round(rate * opts.half_period_ms / 1000))
        load = wrk.Load(connections=connections, duration=opts.hit_load.duration)
        lua = wrk.script(delay_ms=opts.half_period_ms)
        names = [name for name in ("qqavatar", "floor", "nginx") if name in self.targets]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for _ in range(opts.rounds):  # alternating, as the hit scenarios: the median p99 counts
            for name in names:
                target = self.targets[name]
                result = self._wrk(target, load, "half", lua=lua, path=target.paths["image40"])
                runs[name].append(result.as_dict())
                self.log(f"  half      {name:9} {result.rps:9.0f} req/s (goal {rate:.0f})  "
                         f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms")
        for name in names:
            ordered = sorted(runs[name], key=lambda run: run["p99_ms"])
            results.half[name] = {**ordered[(len(ordered) - 1) // 2], "goal_rps": rate,
                                  "peak_rps": peak, "connections": connections,
                                  "p99_runs_ms": [run["p99_ms"] for run in runs[name]]}

    def miss(self, results: Results) -> None:
        opts, fake = self.options, self.fake
        assert fake is not None
        fake.control("/_fake/fault", {"mode": "slow", "delay_ms": MISS_DELAY_MS})
        try:
            upstream = Target("upstream", "qlogo (fake) directly", fake.url, fake.proc,
                              miss=("/g?b=qq&nk=", "&s=40"))
            for target in [upstream, *self._alive()]:
                if target.miss is None:
                    continue
                prefix, suffix = target.miss
                warmup = wrk.Load(connections=opts.miss_load.connections,
                                  duration=min(opts.warmup, 1.0))
                self._wrk(target, warmup, "miss-warmup",
                          lua=wrk.script(distinct=(prefix, suffix, self._block())))
                result = self._wrk(target, opts.miss_load, "miss",
                                   lua=wrk.script(distinct=(prefix, suffix, self._block())))
                results.miss[target.name] = result.as_dict()
                results.labels.setdefault(target.name, target.label)
                self.log(f"  miss      {target.name:9} {result.rps:9.0f} req/s  "
                         f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms")
        finally:
            fake.control("/_fake/reset", {})
        base = results.miss.get("upstream")
        for name, item in results.miss.items():
            if base is not None and name != "upstream":
                item["added_p50_ms"] = item["p50_ms"] - base["p50_ms"]
                item["added_p99_ms"] = item["p99_ms"] - base["p99_ms"]

    def cold(self, results: Results) -> None:
        opts, fake = self.options, self.fake
        assert fake is not None
        for target in self._alive():
            if target.miss is None:
                continue
            number = str(self._block() + 1)
            fake.control("/_fake/fault", {"mode": "slow", "delay_ms": MISS_DELAY_MS,
                                          "numbers": [number]})
            before = fake.requests_for(number, 40)
            prefix, suffix = target.miss
            outcome = burst(target.url, prefix + number + suffix, opts.cold_requests)
            upstream = fake.requests_for(number, 40) - before
            results.cold[target.name] = {"requests": opts.cold_requests,
                                         "upstream_requests": upstream,
                                         "answered": outcome.answered,
                                         "statuses": outcome.statuses,
                                         "slowest_ms": outcome.slowest_ms}
            self.log(f"  cold      {target.name:9} {upstream} upstream request(s), "
                     f"{outcome.answered}/{opts.cold_requests} answered 200, "
                     f"slowest {outcome.slowest_ms:.0f} ms")
        fake.control("/_fake/reset", {})

    def memory(self, results: Results) -> None:
        """A qqavatar of its own (64 MiB cache), idle RSS, then N distinct avatars, RSS again."""
        opts, fake = self.options, self.fake
        assert fake is not None
        proc, url = start_qqavatar(self.work, "qqavatar-memory", fake, server=opts.server,
                                   workers=opts.workers, cpu=opts.server_cpu,
                                   cache_max_bytes=MEMORY_CACHE)
        self._keep(proc)
        proc.wait_http(url + "/")
        app_key, _ = first_app(proc)
        time.sleep(2.0)  # let start-up settle (background tasks, first polls)
        idle = proc.rss_bytes()
        prefix = "/?" + urlencode({"s": "App.QQ.UserImage", "app_key": app_key}) + "&qq="
        target = Target("qqavatar-memory", "qqavatar", url, proc)
        # wrk runs for its whole duration even when its threads stop early, so the sweep is
        # a series of short runs, each on a fresh block of numbers, until N avatars are asked.
        chunk = wrk.Load(connections=opts.memory_connections,
                         duration=max(1.0, min(5.0, opts.hit_load.duration)), timeout=30.0)
        started = time.monotonic()
        requested, bad_status = 0, 0
        while requested < opts.memory_avatars:
            if time.monotonic() - started > opts.memory_max_seconds:
                self.problems.append(f"memory: stopped after {opts.memory_max_seconds:.0f} s "
                                     f"at {requested} of {opts.memory_avatars} avatars")
                break
            result = self._wrk(target, chunk, "memory", path="/", lua=wrk.script(
                distinct=(prefix, "&size=40", self._block()),
                limit=opts.memory_avatars - requested))
            requested += result.requests
            bad_status += result.bad_status
        seconds = time.monotonic() - started
        time.sleep(1.0)
        after = proc.rss_bytes()
        results.memory = {"avatars": requested, "cache_max_bytes": MEMORY_CACHE_BYTES,
                          "idle_rss": idle, "after_rss": after, "growth": after - idle,
                          "seconds": seconds, "bad_status": bad_status,
                          "processes": len(proc.tree())}
        self.log(f"  memory    {requested} avatars in {seconds:.0f} s: RSS "
                 f"{idle / 2**20:.1f} MiB idle → {after / 2**20:.1f} MiB")
        proc.stop()
        self.procs.remove(proc)

    def hotpath(self, results: Results) -> None:
        """CPU per cached hit without sockets, on the servers' core (bench/hotpath.py)."""
        calls = 2000 if self.options.quick else 20000
        command = pinned([sys.executable, "-m", "bench.hotpath", "--json", "--calls",
                          str(calls), "--rounds", "2" if self.options.quick else "7"],
                         self.options.server_cpu)
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=600, cwd=REPO, env=clean_env())
        if done.returncode != 0:
            raise RuntimeError(f"bench.hotpath failed: {done.stderr.strip()[-2000:]}")
        results.hotpath = json.loads(done.stdout.strip().splitlines()[-1])
        for name, item in results.hotpath.items():
            self.log(f"  hotpath   {name:<9} {item['kept_us']:.2f} µs kept, "
                     f"{item['full_us']:.2f} µs full path, floor {item['floor_us']:.2f} µs")

    def _mix_server(self, numbers: int) -> MixServer:
        """A qqavatar of its own on its defaults, every (number, size) of the mix warmed on it
        (and on nginx, side by side), its RSS before and after."""
        if numbers in self._mixed:
            return self._mixed[numbers]
        opts, fake = self.options, self.fake
        assert fake is not None
        name = f"qqavatar-mix{numbers}"
        proc, url = start_qqavatar(self.work, name, fake, server=opts.server,
                                   workers=opts.workers, cpu=opts.server_cpu)
        self._keep(proc)
        proc.wait_http(url + "/")
        app_key, _ = first_app(proc)
        time.sleep(2.0)  # let start-up settle, as the memory scenario does
        idle = proc.rss_bytes()
        path = mixes.qqavatar_path(app_key)
        targets = [(url, path)]
        if "nginx" in self.targets:
            targets.append((self.targets["nginx"].url, mixes.nginx_path))
        pairs = mixes.keys(numbers)
        before, started = self._upstream_requests(), time.monotonic()
        warmed = mixes.warm(targets, pairs)
        seconds = time.monotonic() - started
        for (target_url, _), result in zip(targets, warmed, strict=True):
            if result.failures:
                self.problems.append(f"mix {numbers}: warming {target_url} failed: "
                                     + "; ".join(result.failures))
        time.sleep(1.0)
        server = MixServer(name=name, proc=proc, url=url, app_key=app_key, numbers=numbers,
                           calls=mixes.draw(numbers), idle_rss=idle, warm_rss=proc.rss_bytes(),
                           image_bytes=warmed[0].body_bytes, avatars=len(pairs),
                           warm_seconds=seconds,
                           warm_upstream=self._upstream_requests() - before)
        self.log(f"  mix       {numbers} numbers: {len(pairs)} avatars warmed in {seconds:.0f} s "
                 f"({server.warm_upstream} upstream requests), RSS {idle / 2**20:.1f} → "
                 f"{server.warm_rss / 2**20:.1f} MiB")
        self._mixed[numbers] = server
        return server

    def _upstream_requests(self) -> int:
        assert self.fake is not None
        stats = self.fake.control("/_fake/stats")
        assert isinstance(stats, dict)
        return int(stats["requests"])

    def _replay(self, target: Target, paths_file: Path, label: str) -> dict[str, Any]:
        """A warm-up pass, then the measured run of one drawn list: the run, and the
        upstream requests made during it."""
        opts = self.options
        lua = wrk.script(paths_file=paths_file)
        if opts.warmup > 0:
            self._wrk(target, replace(opts.mix_load, duration=opts.warmup), f"{label}-warmup",
                      lua=lua)
        before = self._upstream_requests()
        result = self._wrk(target, opts.mix_load, label, lua=lua)
        upstream = self._upstream_requests() - before
        self.log(f"  {label:9} {target.name:9} {result.rps:9.0f} req/s  "
                 f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                 f"{upstream} upstream")
        return {**result.as_dict(), "upstream_requests": upstream}

    def mix(self, results: Results) -> None:
        for numbers in self.options.mix_numbers:
            server = self._mix_server(numbers)
            mine = Target("qqavatar", "qqavatar (defaults)", server.url, server.proc)
            runs = {"qqavatar": self._replay(mine, self._paths(server, "qqavatar"), "mix")}
            if "floor" in self.targets:  # the same list, each call a recorded answer
                runs["floor"] = self._replay(self.targets["floor"],
                                             self._paths(server, "qqavatar"), "mix")
            if "nginx" in self.targets:
                nginx_target = self.targets["nginx"]
                runs["nginx"] = self._replay(nginx_target, self._paths(server, "nginx"), "mix")
            after = server.proc.rss_bytes()
            gauges = mixes.cache_gauges(server.url)
            cached = int(gauges.get("qqavatar_cache_entries", 0))
            results.mix[str(numbers)] = {
                "numbers": numbers, "avatars": server.avatars, "runs": runs,
                "warm_seconds": server.warm_seconds, "warm_upstream": server.warm_upstream,
                "memory": {"idle_rss": server.idle_rss, "warm_rss": server.warm_rss,
                           "after_rss": after, "cached": cached,
                           "cached_bytes": gauges.get("qqavatar_cache_bytes", 0.0),
                           "image_bytes": server.image_bytes},
            }
            if numbers != self.options.mix_numbers[0]:  # the first one serves `restart`
                server.proc.stop()
                self.procs.remove(server.proc)

    def restart(self, results: Results) -> None:
        opts, fake = self.options, self.fake
        assert fake is not None
        server = self._mix_server(opts.mix_numbers[0])
        server.proc.stop()  # SIGTERM: a graceful stop, the disk writes finish
        self.procs.remove(server.proc)
        proc, url = start_qqavatar(self.work, server.name, fake,
                                   server=opts.server, workers=opts.workers,
                                   cpu=opts.server_cpu, again=True)
        self._keep(proc)
        proc.wait_http(url + "/")
        files = sum(1 for _ in (self.work / server.name / "avatars").rglob("*.avatar"))
        target = Target("qqavatar", "qqavatar (restarted)", url, proc)
        before = self._upstream_requests()
        # No warm-up pass here: the first calls after the restart are the point.
        result = self._wrk(target, opts.mix_load, "restart",
                           lua=wrk.script(paths_file=self._paths(server, "qqavatar")))
        upstream = self._upstream_requests() - before
        results.restart = {"numbers": server.numbers, "avatars": server.avatars,
                           "disk_files": files, **result.as_dict(),
                           "upstream_requests": upstream}
        self.log(f"  restart   {result.rps:9.0f} req/s  p99 {result.p99_ms:6.2f} ms  "
                 f"{upstream} upstream requests ({files} files on disk)")

    def _paths(self, server: MixServer, target: str) -> Path:
        file = self.work / f"mix{server.numbers}-{target}.paths"
        if not file.exists():
            path = mixes.qqavatar_path(server.app_key) if target == "qqavatar" \
                else mixes.nginx_path
            mixes.write_paths(file, server.calls, path)
        return file

    # --- the run ----------------------------------------------------------------------------

    def run(self, results: Results) -> Results:
        self.problems = results.problems
        self.log(f"starting targets in {self.work}")
        self.start()
        results.labels.update({name: target.label for name, target in self.targets.items()})
        selected = self.options.scenarios
        for scenario in SCENARIOS:
            if scenario not in selected:
                continue
            self.log(f"scenario {scenario}")
            try:
                if scenario in HIT_SCENARIOS:
                    self.hits(scenario, results)
                else:
                    getattr(self, scenario)(results)
            except (RuntimeError, OSError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
                # One broken scenario must not cost the numbers of the others.
                self.problems.append(f"scenario {scenario} failed: {exc}"[:2000])
                self.log(f"  {scenario} failed: {str(exc)[:300]}")
        results.machine["load average at end"] = " ".join(
            f"{value:.2f}" for value in os.getloadavg())
        results.machine["median of"] = f"{self.options.rounds} round(s)"
        return results


def summarize(results: Results) -> dict[str, dict[str, dict[str, Any]]]:
    """Median run per hit scenario and target."""
    return {scenario: {name: median_run(runs) for name, runs in per_target.items() if runs}
            for scenario, per_target in results.hits.items()}


def spread(runs: list[dict[str, Any]]) -> float:
    """Relative spread of req/s over the rounds (max-min over median), for the report."""
    values = [run["rps"] for run in runs]
    if len(values) < 2:
        return 0.0
    return float((max(values) - min(values)) / statistics.median(values))
