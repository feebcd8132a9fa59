"""The worker's one connection to Redis (`QQAVATAR_REDIS_URL`), built to be lost.

Redis makes several servers act as one (a shared avatar tier, cross-host single-flight,
exact quotas), but no request may fail because Redis is down. So every use goes through
`RedisLink.run(op, fallback)`: the operation gets a short timeout, and any failure marks the
link down. While down, `run` answers `fallback` at once, without touching the network, and
after `retry_after` seconds the next call tries again: the first success brings the link
back. Going down and coming back are each logged once, and `state` is what `/readyz` shows.

Under concurrency a loss is seen by many operations at once, so three rules keep the state
from flapping: only an operation started after the link went down can bring it back; one
that fails having started before the link came back does not take it down again (neither
is news); and going down drops the pooled connections, so that after Redis returns no
operation trips over a socket to the old, dead process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")
LinkState = Literal["ok", "down"]


class RedisLink:
    def __init__(self, url: str, *, timeout: float = 0.25, retry_after: float = 1.0,
                 clock: Callable[[], float] = monotonic) -> None:
        self.client: Redis = Redis.from_url(url, socket_connect_timeout=timeout,
                                            socket_timeout=timeout)
        self.timeout = timeout
        self.retry_after = retry_after
        self._clock = clock
        self._down_since: float | None = None
        self._up_since = float("-inf")  # when it last came back
        self._retry_at = 0.0

    @property
    def state(self) -> LinkState:
        return "ok" if self._down_since is None else "down"

    @property
    def usable(self) -> bool:
        """False while down and not yet due for another try."""
        return self._down_since is None or self._clock() >= self._retry_at

    async def run(self, op: Callable[[Redis], Awaitable[T]], fallback: T) -> T:
        """`op(client)`, or `fallback` when Redis is down or fails now (never raises for Redis)."""
        if not self.usable:
            return fallback
        started = self._clock()
        try:
            async with asyncio.timeout(self.timeout * 2):  # connect + one round trip
                result = await op(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            await self._failed(exc, started)
            return fallback
        except Exception as exc:
            log.exception("redis: unexpected error; treated as Redis being down")
            await self._failed(exc, started)
            return fallback
        down_since = self._down_since
        if down_since is not None and started >= down_since:
            log.warning("redis: reachable again after %.1f s; shared state back on",
                        self._clock() - down_since)
            self._down_since, self._up_since = None, self._clock()
        return result

    async def _failed(self, exc: BaseException, started: float) -> None:
        now = self._clock()
        if self._down_since is None:
            if started < self._up_since:
                return  # began before the link came back: a stale socket, not news
            self._down_since = now
            log.warning("redis: unreachable (%s); serving from memory and upstream, "
                        "retrying every %g s", type(exc).__name__, self.retry_after)
            with contextlib.suppress(RedisError, OSError):
                # Idle ones only: tearing down a socket another operation is using (even
                # one still connecting) breaks that operation inside the client library.
                await self.client.connection_pool.disconnect(inuse_connections=False)
        self._retry_at = now + self.retry_after

    async def aclose(self) -> None:
        await self.client.aclose()
