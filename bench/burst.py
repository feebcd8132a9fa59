"""N requests at the same moment: N connections opened first, then every request written."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class BurstResult:
    answered: int        # answers with status 200
    statuses: dict[int, int]
    slowest_ms: float


async def _burst(host: str, port: int, path: str, count: int, timeout: float) -> BurstResult:
    connections = await asyncio.gather(*(asyncio.open_connection(host, port)
                                         for _ in range(count)))
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Connection: close\r\n\r\n").encode("ascii")
    for _, writer in connections:  # all queued before the first drain lets the loop run
        writer.write(request)
    started = time.perf_counter()
    await asyncio.gather(*(writer.drain() for _, writer in connections))

    async def answer(reader: asyncio.StreamReader) -> tuple[int, float]:
        data = await reader.read()  # until the server closes (Connection: close)
        parts = data.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return status, (time.perf_counter() - started) * 1000

    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(answer(reader) for reader, _ in connections)), timeout)
    finally:
        for _, writer in connections:
            writer.close()
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return BurstResult(statuses.get(200, 0), statuses, max(ms for _, ms in answers))


def burst(url: str, path: str, count: int = 200, timeout: float = 60.0) -> BurstResult:
    """`count` concurrent GETs of `path` on `url` (http://host:port)."""
    host, _, port = url.removeprefix("http://").partition(":")
    return asyncio.run(_burst(host, int(port), path, count, timeout))
