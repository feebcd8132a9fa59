"""The replay window of the stronger sign (protocol/sign.py, HMAC_SHA256): a nonce once.

A call signed under the stronger scheme names a `nonce`; the same app's nonce is refused
(ret 409) for as long as its timestamp could still pass (twice the sign's window). Seen
nonces live in Redis when configured (every server refuses a call another one took) and
always in this process's memory too, which answers alone while Redis is down. Memory is
bounded: past `max_entries` the oldest nonces are forgotten first. The admission guard
(limits/guard.py) asks it first, so a replay counts nowhere.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..protocol import errors
from ..protocol.sign import WINDOW
from ..redislink import RedisLink

PREFIX = "qqavatar-nonce:"
_DOWN = object()  # Redis could not answer


class NonceStore:
    def __init__(self, redis: RedisLink | None = None, *, ttl: int = 2 * WINDOW,
                 max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key → forget at (clock)

    async def check(self, app_key: str, nonce: str) -> None:
        """Refuse (ret 409) a nonce this app has used within the window."""
        if not await self.first_use(f"{app_key}:{nonce}"):
            raise errors.client_error(409, "请求重复：该nonce已使用过，请每次请求生成新的nonce")

    async def first_use(self, key: str) -> bool:
        first_here = self._remember(key)
        if self.redis is None:
            return first_here

        async def claim(client: Any) -> Any:
            return await client.set(PREFIX + key, b"1", nx=True, ex=self.ttl)

        shared = await self.redis.run(claim, _DOWN)
        return first_here and (shared is _DOWN or shared is True)

    def _remember(self, key: str) -> bool:
        now = self.clock()
        seen = self._seen
        while seen and next(iter(seen.values())) <= now:
            seen.popitem(last=False)
        if key in seen:
            return False
        seen[key] = now + self.ttl
        while len(seen) > self.max_entries:
            seen.popitem(last=False)
        return True
