"""Calls per second per app, with the `limits` library.

A moving window: at most N calls in any one-second span (a fixed window would
let 2N through around a second boundary). The storage is a `limits` storage
URI (`QQAVATAR_RATE_LIMIT_STORAGE`): `memory://` counts per process; a shared
storage such as `redis://host:6379` makes the limit hold across servers.
"""

from __future__ import annotations

import functools

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

NAMESPACE = "qqavatar-rate"


@functools.lru_cache(maxsize=256)
def _per_second(calls: int) -> RateLimitItem:
    return RateLimitItemPerSecond(calls, namespace=NAMESPACE)


def open_storage(uri: str) -> Storage:
    """The async variant of the storage named by `uri` (`memory://`, `redis://…`)."""
    scheme = uri if uri.startswith("async+") else f"async+{uri}"
    options = {}
    if scheme.startswith(("async+redis", "async+rediss")):
        options["implementation"] = "redispy"  # the redis package we already depend on
    storage = storage_from_string(scheme, **options)
    if not isinstance(storage, Storage):  # pragma: no cover - async+ always gives async
        raise ValueError(f"not an async rate-limit storage: {uri}")
    return storage


class RateLimiter:
    def __init__(self, storage: Storage) -> None:
        self._limiter = MovingWindowRateLimiter(storage)

    async def allow(self, app_key: str, per_second: int) -> bool:
        """Count one call of the app; False when that would exceed `per_second`."""
        return await self._limiter.hit(_per_second(per_second), app_key)
