"""The `mix` and `restart` scenarios (issue 17): traffic shaped like a real site's.

- QQ numbers drawn Zipf(1.0) from N (10 000, then 100 000), sizes 40/40/100/100/100/140/640,
  one call in five `output=0`. Only numbers with an avatar of their own are drawn: qlogo
  sends its default image with `no-cache`, which nginx would never keep (the fake follows
  qlogo: numbers ending in 0 have none).
- Every (number, size) is warmed first, on qqavatar and nginx side by side (so the fake
  makes each image once); then `wrk -t1 -c32 -d10s` replays a list of URLs drawn in advance
  (a Lua script reads it; the same draw for every target).
- qqavatar runs on its defaults (memory tier + disk tier in its data dir), a process of its
  own, so its RSS growth over the warm-up is the memory the cached avatars cost; nginx is
  the harness's `proxy_cache` (1 GiB disk zone). For nginx an `output=0` call asks for the
  image: it has no JSON.
- restart: qqavatar stopped and started again on the same data dir, the same replay; the
  upstream requests it made are what a restart costs.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

SIZES = (40, 40, 100, 100, 100, 140, 640)
JSON_EVERY = 5         # one call in five asks for output=0
FIRST_NUMBER = 300_000_001
SEED = 17
URLS = 300_000         # drawn per list; wrk goes round it again if it asks for more
WARM_CONNECTIONS = 16


@dataclass(frozen=True)
class Call:
    number: str
    size: int
    json: bool


def number_of(rank: int) -> str:
    """The rank-th number (from 0) with an avatar of its own: its last digit is not 0."""
    return str(FIRST_NUMBER + rank // 9 * 10 + rank % 9)


def draw(numbers: int, count: int = URLS, seed: int = SEED) -> list[Call]:
    """`count` calls: numbers Zipf(1.0) over `numbers` ranks, sizes and output=0 as above."""
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, numbers + 1)))
    total = cumulative[-1]
    calls = []
    for _ in range(count):
        rank = min(bisect.bisect_left(cumulative, rng.random() * total), numbers - 1)
        calls.append(Call(number_of(rank), rng.choice(SIZES), rng.randrange(JSON_EVERY) == 0))
    return calls


def keys(numbers: int) -> list[tuple[str, int]]:
    """Every (number, size) of the load: what the warm-up asks for."""
    return [(number_of(rank), size) for rank in range(numbers) for size in sorted(set(SIZES))]


def qqavatar_path(app_key: str) -> Callable[[Call], str]:
    prefix = "/?" + urlencode({"s": "App.QQ.UserImage", "app_key": app_key})

    def path(call: Call) -> str:
        return f"{prefix}&qq={call.number}&size={call.size}" + ("&output=0" if call.json else "")
    return path


def nginx_path(call: Call) -> str:
    return f"/g?b=qq&nk={call.number}&s={call.size}"


def write_paths(file: Path, calls: Sequence[Call], path: Callable[[Call], str]) -> Path:
    file.write_text("".join(path(call) + "\n" for call in calls))
    return file


@dataclass
class Warmed:
    requests: int
    body_bytes: int        # the image bytes of every (number, size): what a cache holds
    failures: list[str]


async def _warm(targets: list[tuple[str, Callable[[Call], str]]],
                pairs: list[tuple[str, int]]) -> list[Warmed]:
    results = [Warmed(0, 0, []) for _ in targets]
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for pair in pairs:
        queue.put_nowait(pair)
    limits = httpx.Limits(max_connections=WARM_CONNECTIONS)
    clients = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for url, _ in targets]

    async def worker() -> None:
        while not queue.empty():
            number, size = queue.get_nowait()
            call = Call(number, size, False)
            # One target after the other for the same image: the fake makes it once.
            for index, (client, (_, path)) in enumerate(zip(clients, targets, strict=True)):
                reply = await client.get(path(call))
                result = results[index]
                result.requests += 1
                result.body_bytes += len(reply.content)
                if reply.status_code != 200 and len(result.failures) < 5:
                    result.failures.append(f"{path(call)}: {reply.status_code}")

    try:
        await asyncio.gather(*(worker() for _ in range(WARM_CONNECTIONS)))
    finally:
        for client in clients:
            await client.aclose()
    return results


def warm(targets: list[tuple[str, Callable[[Call], str]]],
         pairs: list[tuple[str, int]]) -> list[Warmed]:
    """Ask every target for every (number, size) once, as images."""
    return asyncio.run(_warm(targets, pairs))


_GAUGE = re.compile(r"^(qqavatar_cache_entries|qqavatar_cache_bytes)(?:\{[^}]*\})? (\S+)$",
                    re.MULTILINE)


def cache_gauges(url: str) -> dict[str, float]:
    """The memory tier's entries and accounted bytes, from `/metrics`."""
    text = httpx.get(url + "/metrics", timeout=30).text
    found: dict[str, float] = {}
    for name, value in _GAUGE.findall(text):
        found[name] = found.get(name, 0.0) + float(value)
    return found
