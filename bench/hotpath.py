"""CPU per cached hit, in-process: qqavatar's RSGI handler next to the floor's, side by side.

    python -m bench.hotpath [--calls 20000] [--rounds 7] [--profile SCENARIO] [--json]
    python -m bench.hotpath --parts [--calls 100000] [--rounds 5]

Starts a full `QQAvatarApp` (every feature, SQLite in a temporary directory, a fake qlogo
in a thread for the warm-up fetches), then calls `QQAvatarRSGI.__rsgi__` directly with a
scope and a protocol object that only record the answer — no sockets, no granian. The floor
(`bench.refs.floor.FloorRSGI`) replays the very answer qqavatar gave. Rounds alternate
between scenarios and the best round of each counts, so a busy shared machine slows both
sides alike instead of skewing the ratio.

A repeated URL is answered from its kept answer (web/replies.py); the `full path` column
is the same call with kept answers off: what any call costs that no kept answer serves
(the first of its URL in a second, apps with limits, sessions).

What this measures is the Python work per call on top of the server; under wrk, granian's
own cost (about 40% of a worker's CPU in py-spy) is added to both sides, so the ratio there
is closer to 1 than the one printed here. `--profile NAME` prints cProfile's top functions
for one scenario instead.

On a shared machine whose timings swing by half from run to run, count instructions instead:
`--only NAME` (`full:NAME` with kept answers off, `floor:NAME`) makes `--calls` calls and
nothing else, so under `PYTHONHASHSEED=0 valgrind --tool=callgrind` the difference between a
run of 10 500 calls and one of 500, over 10 000, is the instructions one call costs (the
start-up's cancel out). docs/benchmarks.md compares two commits that way.

`--parts` times alone each part of the work that the answer to a URL no kept answer holds
cannot skip; their sum is what the full path would cost with nothing joining them, the
bound below which no rewrite of the full path can go (docs/benchmarks.md, issue 17).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.refs.floor import FloorRSGI
from qqavatar.avatars.headers import image_headers
from qqavatar.fakeqlogo import serve_in_thread
from qqavatar.gateway import rules_of
from qqavatar.logs import new_request_id
from qqavatar.protocol.params import parse_all
from qqavatar.protocol.sign import compute_sign
from qqavatar.settings import Settings
from qqavatar.store.apps import AppRegistry, AppStore
from qqavatar.web.app import QQAvatarApp
from qqavatar.web.request import parse_query
from qqavatar.web.rsgi import QQAvatarRSGI

Handler = Callable[[Any, Any], Awaitable[None]]
SCENARIOS = ("image40", "json640", "signed40")


class Headers(dict[str, str]):
    """Stands in for granian's RSGIHeaders (`get`, `keys`, `items`, `in`)."""


@dataclass(slots=True)
class Scope:
    path: str
    query_string: str
    method: str = "GET"
    proto: str = "http"
    scheme: str = "http"
    client: str = "127.0.0.1:40000"
    server: str = "127.0.0.1:8000"
    headers: Headers = field(default_factory=lambda: Headers({"host": "127.0.0.1"}))


class Proto:
    """Keeps the last answer; `response_bytes` is all a cached hit calls."""

    answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in params.items())


async def _setup(work: Path, fake_url: str) -> tuple[QQAvatarRSGI, dict[str, Scope]]:
    settings = Settings(data_dir=work, upstream_user_url=fake_url + "/g?b=qq&nk={qq}&s={size}",
                        upstream_group_url=fake_url + "/gh/{group}/{group}/{size}/",
                        log_level="warning")
    rsgi = QQAvatarRSGI(QQAvatarApp(settings))
    await rsgi.app.startup()
    runtime = rsgi.app.runtime
    assert runtime is not None
    registry = runtime.apps
    assert isinstance(registry, AppRegistry)
    store: AppStore = registry._store
    plain = await store.create("bench")
    signed = await store.create("bench-signed", sign_required=True)
    await registry.load()
    base = {"s": "App.QQ.UserImage", "app_key": plain.app_key, "qq": "10001"}
    signed_params = {"s": "App.QQ.UserImage", "app_key": signed.app_key, "qq": "10001",
                     "size": "40"}
    signed_params["sign"] = compute_sign(signed_params, signed.app_secret)
    scopes = {
        "image40": Scope("/", _query({**base, "size": "40"})),
        "json640": Scope("/", _query({**base, "size": "640", "output": "0"})),
        "signed40": Scope("/", _query(signed_params)),
    }
    return rsgi, scopes


async def _time(handler: Handler, scope: Scope, proto: Proto, calls: int) -> float:
    # This thread's CPU time: time the machine gave to other processes is not counted.
    started = time.thread_time()
    for _ in range(calls):
        await handler(scope, proto)
    return (time.thread_time() - started) / calls


async def _run(args: argparse.Namespace) -> int:
    fake = serve_in_thread()
    with tempfile.TemporaryDirectory(prefix="qqavatar-hotpath-") as tmp:
        rsgi, scopes = await _setup(Path(tmp), fake.url)
        try:
            floors: dict[str, tuple[FloorRSGI, Scope]] = {}
            for name, scope in scopes.items():
                proto = Proto()
                for _ in range(2):  # the first call fetches, the second is a hit
                    await rsgi.__rsgi__(scope, proto)
                assert proto.answer is not None and proto.answer[0] == 200, (name, proto.answer)
                status, headers, body = proto.answer
                if not any(n == "X-Cache" and v == "HIT" for n, v in headers):
                    print(f"{name}: not a cached hit: {headers}", file=sys.stderr)
                    return 1
                floor = FloorRSGI("")
                floor.answers = {f"/{name}": (status, headers, body)}
                floors[name] = (floor, Scope(f"/{name}", ""))
            if args.profile:
                return await _profile(rsgi, scopes[args.profile], args.calls)
            if args.parts:
                return await _parts(rsgi, scopes["image40"], args.calls, args.rounds)
            if args.only:  # for instruction counts (callgrind), see the docstring
                kind, _, name = args.only.rpartition(":")
                floor, floor_scope = floors[name]
                if kind == "full":  # the same call with kept answers off
                    rsgi.kept = None
                handler, used = ((floor.__rsgi__, floor_scope) if kind == "floor"
                                 else (rsgi.__rsgi__, scopes[name]))
                await _time(handler, used, Proto(), args.calls)
                return 0
            best: dict[str, float] = {}
            kept = rsgi.kept
            for _ in range(args.rounds):
                for name, scope in scopes.items():
                    for label, handler, used in (
                            (name, rsgi.__rsgi__, scope),
                            (f"full:{name}", rsgi.__rsgi__, scope),
                            (f"floor:{name}", floors[name][0].__rsgi__, floors[name][1])):
                        # The full path: what a request costs that no kept answer serves.
                        rsgi.kept = None if label.startswith("full:") else kept
                        seconds = await _time(handler, used, Proto(), args.calls)
                        best[label] = min(best.get(label, seconds), seconds)
            rsgi.kept = kept
            if args.json:
                print(json.dumps({name: {"kept_us": best[name] * 1e6,
                                         "full_us": best[f"full:{name}"] * 1e6,
                                         "floor_us": best[f"floor:{name}"] * 1e6}
                                  for name in scopes}))
                return 0
            print(f"{'scenario':<10} {'CPU µs/call':>11} {'full path':>9} {'floor µs':>9} "
                  f"{'× floor':>8}")
            for name in scopes:
                ours, full, floor_time = (best[name], best[f"full:{name}"],
                                          best[f"floor:{name}"])
                print(f"{name:<10} {ours * 1e6:11.2f} {full * 1e6:9.2f} {floor_time * 1e6:9.2f} "
                      f"{floor_time / ours:8.3f}")
            return 0
        finally:
            await rsgi.app.shutdown()
            fake.stop()


async def _parts(rsgi: QQAvatarRSGI, scope: Scope, calls: int, rounds: int) -> int:
    """The work no answer to a new URL can skip, each part timed alone: reading the query,
    the rules, the app, the cached avatar, the headers, a request id, each observer (the
    counts behind /metrics and the stats) and each guard (the app's quota and sessions).
    Their sum is what the full path would cost with no layer between them."""
    runtime, kept_replies = rsgi.app.runtime, rsgi.kept
    assert runtime is not None and kept_replies is not None and rsgi.app.gateway is not None
    entry = kept_replies.get(scope.path + "?" + scope.query_string)  # the warm-up's answer
    assert entry is not None, "the warm-up call was not kept"
    call, outcome = entry[0].call, entry[0].outcome
    params = parse_query(scope.query_string)
    rules = rules_of(call.service)
    assert rules is not None and call.app is not None
    values = parse_all(params, rules)
    assert values is not None
    kind, number, size = call.service.avatar_kind, values["qq"], values["size"]
    found = runtime.avatars.cached(kind, number, size)
    assert found is not None
    app_key, apps, avatars = call.app.app_key, runtime.apps, runtime.avatars
    parts: list[tuple[str, Callable[[], object]]] = [
        ("query string read (parse_query)", lambda: parse_query(scope.query_string)),
        ("rules checked (parse_all)", lambda: parse_all(params, rules)),
        ("app looked up", lambda: apps.get(app_key)),
        ("cached avatar looked up", lambda: avatars.cached(kind, number, size)),
        ("image headers made", lambda: image_headers(found, 100, "HIT")),
        ("request id made", new_request_id),
    ]
    parts += [(f"observer {type(getattr(observer, '__self__', observer)).__name__}",
               partial(observer, outcome)) for observer in rsgi.app.gateway.observers]
    guards = [(f"guard {type(guard).__name__}", guard) for guard in rsgi.app.gateway.guards]
    total = 0.0
    for label, part in parts:
        best = min(_timed(part, calls) for _ in range(rounds))
        total += best
        print(f"{label:<40} {best * 1e6:6.2f} µs")
    for label, guard in guards:
        best = min([await _timed_guard(guard, call, calls) for _ in range(rounds)])
        total += best
        print(f"{label:<40} {best * 1e6:6.2f} µs")
    print(f"{'sum':<40} {total * 1e6:6.2f} µs")
    return 0


def _timed(part: Callable[[], object], calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        part()
    return (time.thread_time() - started) / calls


async def _timed_guard(guard: Callable[[Any], Awaitable[None]], call: Any, calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        await guard(call)
    return (time.thread_time() - started) / calls


async def _profile(rsgi: QQAvatarRSGI, scope: Scope, calls: int) -> int:
    proto = Proto()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        await rsgi.__rsgi__(scope, proto)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    print(out.getvalue())
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per timed batch")
    parser.add_argument("--rounds", type=int, default=7, help="batches per scenario; best counts")
    parser.add_argument("--profile", choices=SCENARIOS,
                        help="print cProfile's top functions for one scenario instead")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--parts", action="store_true",
                        help="time alone each part of the work a new URL's answer cannot skip")
    kinds = ("full", "floor")
    parser.add_argument("--only", choices=(*SCENARIOS, *(f"{kind}:{name}" for kind in kinds
                                                         for name in SCENARIOS)),
                        help="run --calls calls of one scenario once, untimed (for callgrind)")
    sys.exit(asyncio.run(_run(parser.parse_args())))


if __name__ == "__main__":
    main()
