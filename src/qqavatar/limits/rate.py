"""Calls per second per app, with the `limits` library.

A moving window: at most N calls in any one-second span (a fixed window would
let 2N through around a second boundary). The storage is a `limits` storage
URI (`QQAVATAR_RATE_LIMIT_STORAGE`): `memory://` counts per process; a shared
storage such as `redis://host:6379` makes the limit hold across servers. Unset,
it is Redis when `QQAVATAR_REDIS_URL` is set, else memory.

A shared storage may fail (Redis down, a network cut): then the limiter counts in
memory, per process, for the moment (a rate limit must never fail the call), logs
the switch once, and tries the shared storage again `retry_after` seconds later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from time import monotonic

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

log = logging.getLogger(__name__)

NAMESPACE = "qqavatar-rate"
TIMEOUT = 0.25  # s per connect and per round trip to a shared storage (QQAVATAR_REDIS_TIMEOUT)


@functools.lru_cache(maxsize=256)
def _per_second(calls: int) -> RateLimitItem:
    return RateLimitItemPerSecond(calls, namespace=NAMESPACE)


def storage_uri(rate_limit_storage: str | None, redis_url: str | None) -> str:
    """The storage to use: the one set explicitly, else Redis when there is one, else memory."""
    return rate_limit_storage or redis_url or "memory://"


def open_storage(uri: str, *, timeout: float = TIMEOUT) -> Storage:
    """The async variant of the storage named by `uri` (`memory://`, `redis://…`)."""
    scheme = uri if uri.startswith("async+") else f"async+{uri}"
    options: dict[str, float | str] = {}
    if scheme.startswith(("async+redis", "async+rediss")):
        options["implementation"] = "redispy"  # the redis package we already depend on
        options["socket_connect_timeout"] = options["socket_timeout"] = timeout
    storage = storage_from_string(scheme, **options)
    if not isinstance(storage, Storage):  # pragma: no cover - async+ always gives async
        raise ValueError(f"not an async rate-limit storage: {uri}")
    return storage


class RateLimiter:
    def __init__(self, storage: Storage, *, timeout: float = TIMEOUT, retry_after: float = 1.0,
                 clock: Callable[[], float] = monotonic) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._local = (MovingWindowRateLimiter(MemoryStorage())
                       if not isinstance(storage, MemoryStorage) else self._limiter)
        self._timeout = timeout
        self._retry_after = retry_after
        self._clock = clock
        self._retry_at: float | None = None  # set while the shared storage is failing
        base = storage.base_exceptions
        self._failures: tuple[type[Exception], ...] = (
            *(base if isinstance(base, tuple) else (base,)), StorageError, OSError, TimeoutError)

    async def allow(self, key: str, per_second: int) -> bool:
        """Count one call under `key` (an app, or an app's viewer); False when that would
        exceed `per_second`."""
        return await self.count(_per_second(per_second), key)

    async def count(self, item: RateLimitItem, key: str) -> bool:
        """Count one hit of `item` under `key`; False (and nothing counted) over its limit."""
        return await self._ask(self._hit, item, key)

    async def within(self, item: RateLimitItem, key: str) -> bool:
        """Is `key` still within `item`'s limit? Counts nothing."""
        return await self._ask(self._test, item, key)

    @staticmethod
    async def _hit(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> bool:
        return await limiter.hit(item, key)

    @staticmethod
    async def _test(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> bool:
        return await limiter.test(item, key)

    async def _ask(self, ask: Callable[[MovingWindowRateLimiter, RateLimitItem, str],
                                       Awaitable[bool]],
                   item: RateLimitItem, key: str) -> bool:
        if self._limiter is self._local:
            return await ask(self._limiter, item, key)
        if self._retry_at is not None and self._clock() < self._retry_at:
            return await ask(self._local, item, key)
        try:
            async with asyncio.timeout(2 * self._timeout):  # connect + one round trip
                allowed = await ask(self._limiter, item, key)
        except self._failures as exc:  # the storage's own errors: never fail the call for them
            if self._retry_at is None:
                log.warning("rate limit: shared storage failed (%s); limiting per process "
                            "until it is back", type(exc).__name__)
            self._retry_at = self._clock() + self._retry_after
            return await ask(self._local, item, key)
        if self._retry_at is not None:
            log.info("rate limit: shared storage works again")
            self._retry_at = None
        return allowed
