"""Soak: `python -m bench.soak [--minutes 10]` — mixed load on a real server for a while.

Starts the fake qlogo and a qqavatar server (granian, one worker, SQLite) on loopback ports
and drives them at a steady `--rate` with a mix of calls (`MIX`): avatar hits and misses as
images and as JSON, signed calls, member calls (session checks, avatars with a session, the
odd login) and bad input (a bad number, a wrong sign, an unknown service, a missing
parameter). Every answer is checked against what that call must get; anything else (an
HTTP 500, a ret 5xx, a transport error) is an error.

Per window (`--window`, a minute by default) it samples the server's RSS and open file
descriptors (the whole process tree) and the latency percentiles of the window's calls,
prints one table row, and at the end a verdict. It exits 1 when:

- any call got an unexpected answer;
- RSS at the end of the last window exceeds RSS at the end of the first by more than
  `--rss-growth` MiB (default 32; the avatar cache is capped at 4 MiB so that a full cache
  is not mistaken for a leak, and misses cycle through a fixed pool of numbers);
- p99 of the last window exceeds `--p99-drift` (default 2) times p99 of the first, with
  `P99_FLOOR_MS` of headroom so a 2 ms → 5 ms wobble on a shared machine is not a drift;
- FDs at the end exceed FDs at the end of the first window by more than `FD_SLACK`.

`--minutes 0.15 --window 3` is the smoke run of tests/bench/test_soak_smoke.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as a script: make `bench` and the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.procs import Proc
from bench.targets import first_app, start_fake, start_qqavatar
from qqavatar.protocol.sign import compute_sign

MIB = 1024**2
P99_FLOOR_MS = 20.0
FD_SLACK = 8
CONCURRENCY = 8
MISS_POOL = 20_000   # distinct numbers the misses cycle through
POPULAR = 50         # numbers the hits come from


@dataclass(frozen=True)
class Call:
    kind: str
    params: dict[str, str]
    expect: Callable[[httpx.Response], bool]


def json_ret(ret: int, err_code: int | None = None) -> Callable[[httpx.Response], bool]:
    def check(reply: httpx.Response) -> bool:
        if reply.status_code != 200 or not reply.headers.get("content-type", "").startswith(
                "application/json"):
            return False
        body = reply.json()
        return bool(body["ret"] == ret and (err_code is None or
                                           body["data"]["err_code"] == err_code))
    return check


def image(reply: httpx.Response) -> bool:
    return reply.status_code == 200 and reply.headers.get("content-type", "").startswith("image/")


@dataclass
class Session:
    app_key: str
    secret: str
    uuid: str = ""
    token: str = ""


def make_call(rng: random.Random, s: Session) -> Call:
    """One call of the mix; the weights are the share of each kind."""
    kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    popular = str(10_001 + rng.randrange(POPULAR))
    base = {"s": "App.QQ.UserImage", "app_key": s.app_key}
    if kind == "image hit":
        return Call(kind, {**base, "qq": popular, "size": "100"}, image)
    if kind == "json hit":
        return Call(kind, {**base, "qq": popular, "size": "40", "output": "0"}, json_ret(200, 0))
    if kind == "miss":
        qq = str(100_001 + rng.randrange(MISS_POOL))
        output = rng.choice(("0", "1"))
        return Call(kind, {**base, "qq": qq, "size": rng.choice(("40", "100")), "output": output},
                    json_ret(200, 0) if output == "0" else image)
    if kind == "group":
        return Call(kind, {"s": "App.QQ.GroupImage", "app_key": s.app_key,
                           "group": str(200_001 + rng.randrange(MISS_POOL)), "output": "0"},
                    json_ret(200, 0))
    if kind == "signed":
        params = {**base, "qq": popular, "size": "40", "output": "0"}
        return Call(kind, {**params, "sign": compute_sign(params, s.secret)}, json_ret(200, 0))
    if kind == "member check":
        return Call(kind, {"s": "App.User.Check", "app_key": s.app_key, "uuid": s.uuid,
                           "token": s.token}, json_ret(200, 0))
    if kind == "member avatar":
        return Call(kind, {**base, "qq": popular, "output": "0", "uuid": s.uuid,
                           "token": s.token}, json_ret(200, 0))
    if kind == "login":
        return Call(kind, {"s": "App.User.Login", "app_key": s.app_key, "username": "soak",
                           "password": hashlib.md5(b"soak").hexdigest()}, json_ret(200, 0))
    bad = rng.choice([
        ({**base, "qq": "0123", "output": "0"}, 400),                      # a bad number
        ({**base, "qq": popular, "sign": "0" * 32, "output": "0"}, 409),   # a wrong sign
        ({"s": "App.QQ.Nothing", "app_key": s.app_key}, 404),              # no such service
        ({**base, "output": "0"}, 400),                                    # no qq
        ({**base, "app_key": "F" * 32, "qq": popular, "output": "0"}, 406),  # no such app
    ])
    return Call("bad input", bad[0], json_ret(bad[1]))


MIX = {"image hit": 30, "json hit": 15, "miss": 15, "group": 5, "signed": 10,
       "member check": 5, "member avatar": 5, "login": 1, "bad input": 14}


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)  # ms
    kinds: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class Row:
    index: int
    requests: int
    errors: int
    p50: float
    p90: float
    p99: float
    rss: int
    fds: int


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def fds_of(proc: Proc) -> int:
    total = 0
    for pid in proc.tree():
        with contextlib.suppress(OSError):  # gone meanwhile
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


async def drive(url: str, session: Session, *, seconds: float, window: float, rate: float,
                proc: Proc, seed: int, on_row: Callable[[Row], None]
                ) -> tuple[list[Row], list[str]]:
    """`CONCURRENCY` clients share one pace of `rate` calls per second for `seconds`; a
    sampler closes a `Row` every `window` seconds. A server slower than the pace gets fewer
    calls (closed loop), never a growing backlog."""
    rng = random.Random(seed)
    current = Window()
    rows: list[Row] = []
    errors: list[str] = []
    started = time.monotonic()
    ends = started + seconds
    interval = 1 / rate
    next_slot = started

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal next_slot
        while (now := time.monotonic()) < ends:
            slot = max(next_slot, now)  # a late client does not earn a burst
            next_slot = slot + interval
            await asyncio.sleep(slot - now)
            call = make_call(rng, session)
            sent = time.monotonic()
            try:
                reply = await client.get("/?" + urlencode(call.params))
                ok = call.expect(reply)
                why = f"HTTP {reply.status_code} {reply.text[:200]}"
            except httpx.HTTPError as exc:
                ok, why = False, repr(exc)
            into = current  # the window the answer arrived in
            into.latencies.append((time.monotonic() - sent) * 1000)
            into.kinds[call.kind] += 1
            if not ok:
                into.errors.append(f"{call.kind} {call.params}: {why}")

    async def sampler() -> None:
        nonlocal current
        for index in range(1, max(1, round(seconds / window)) + 1):
            await asyncio.sleep(max(0.0, started + index * window - time.monotonic()))
            closed, current = current, Window()
            row = Row(index, len(closed.latencies), len(closed.errors),
                      percentile(closed.latencies, 0.5), percentile(closed.latencies, 0.9),
                      percentile(closed.latencies, 0.99), proc.rss_bytes(), fds_of(proc))
            rows.append(row)
            errors.extend(closed.errors)
            on_row(row)

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(sampler(), *(client_loop(client) for _ in range(CONCURRENCY)))
    errors.extend(current.errors)  # answers that came after the last row
    return rows, errors


def verdict(rows: list[Row], errors: list[str], *, rss_growth_mib: float,
            p99_drift: float) -> list[str]:
    """What is wrong, one line each; empty when the soak held."""
    first, last = rows[0], rows[-1]
    problems = []
    if errors:
        problems.append(f"{len(errors)} unexpected answers, e.g. {errors[0]}")
    if last.rss - first.rss > rss_growth_mib * MIB:
        problems.append(f"RSS grew {(last.rss - first.rss) / MIB:.1f} MiB from the first window "
                        f"to the last (bound {rss_growth_mib:g} MiB)")
    if last.p99 > max(first.p99 * p99_drift, first.p99 + P99_FLOOR_MS):
        problems.append(f"p99 drifted from {first.p99:.1f} ms to {last.p99:.1f} ms "
                        f"(bound ×{p99_drift:g}, or +{P99_FLOOR_MS:g} ms)")
    if last.fds - first.fds > FD_SLACK:
        problems.append(f"FDs grew from {first.fds} to {last.fds} (bound +{FD_SLACK})")
    return problems


def print_row(row: Row) -> None:
    print(f"{row.index:>6}  {row.requests:>8}  {row.errors:>6}  {row.p50:>7.1f}  {row.p90:>7.1f}"
          f"  {row.p99:>7.1f}  {row.rss / MIB:>7.1f}  {row.fds:>4}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds per sample row (default 60)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="calls per second (default 100: a busy but not saturated server "
                             "on a small, shared machine)")
    parser.add_argument("--rss-growth", type=float, default=32.0, help="MiB (default 32)")
    parser.add_argument("--p99-drift", type=float, default=2.0, help="factor (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the server's data and logs go (default: a temporary dir)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.window <= 0 or args.rate <= 0:
        parser.error("--minutes, --window and --rate must be positive")
    return args


def register(url: str, session: Session) -> None:
    """A member for the member calls: registered and logged in once, before the clock starts."""
    password = hashlib.md5(b"soak").hexdigest()
    with httpx.Client(base_url=url, timeout=30) as client:
        common = {"app_key": session.app_key, "username": "soak", "password": password}
        client.get("/", params={"s": "App.User.Register", **common})
        login = client.get("/", params={"s": "App.User.Login", **common}).json()
        session.uuid, session.token = login["data"]["uuid"], login["data"]["token"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qqavatar-soak-") as temp:
        work = args.work_dir or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        fake = start_fake(work, None)
        server: Proc | None = None
        try:
            fake.proc.wait_http(fake.url + "/_fake/stats")
            server, url = start_qqavatar(work, f"soak-{os.getpid()}", fake, server="granian",
                                         workers=1, cpu=None, cache_max_bytes="4MiB",
                                         upstream_timeout="2", negative_ttl="0")
            app_key, secret = first_app(server)
            server.wait_http(url + "/")
            session = Session(app_key, secret)
            register(url, session)
            print(f"soak: {args.minutes:g} min at {args.rate:g} calls/s against {url} "
                  f"(windows of {args.window:g} s)", flush=True)
            print(f"{'window':>6}  {'requests':>8}  {'errors':>6}  {'p50 ms':>7}  {'p90 ms':>7}"
                  f"  {'p99 ms':>7}  {'RSS MiB':>7}  {'FDs':>4}", flush=True)
            rows, errors = asyncio.run(drive(
                url, session, seconds=args.minutes * 60, window=args.window, rate=args.rate,
                proc=server, seed=args.seed, on_row=print_row))
            if not server.alive():
                errors.append(f"the server died: {server.output()}")
        finally:
            if server is not None:
                server.stop()
            fake.proc.stop()
    problems = verdict(rows, errors, rss_growth_mib=args.rss_growth, p99_drift=args.p99_drift)
    for error in errors[:10]:
        print(f"  unexpected: {error}")
    print("soak: held" if not problems else "soak: FAILED\n  " + "\n  ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
