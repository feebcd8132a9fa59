"""Quota counters shared by every server through Redis, so a quota holds exactly across them.

One Lua script per call checks and counts the day and the month at once (Redis runs a
script atomically, so two servers can never both take the last call). The keys hold the
calls of one app in one period, `qqavatar:quota:{APP_KEY}:D2026-11-28` (the braces keep
both keys of an app on one cluster slot), and expire an hour after their period ends.

Redis here is a cache, not the record: it may restart empty, or miss calls that a server
counted on its own while Redis was away. So each call also brings the caller's own count
(the database's totals plus its unstored calls, `QuotaBook`), and the script raises the
shared count to it first. That count never exceeds the true one, so raising to it is
always safe, and a Redis restart never resets anyone's quota to zero.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from ..redislink import RedisLink

KEY_PREFIX = "qqavatar:quota:"
NO_LIMIT = -1
# Round trips in flight at once per worker. A burst of calls would otherwise open a
# connection each, and opening dozens at once takes longer than the link's timeout
# (measured: 90 at once, 0.44 s, half of them timed out); a few warm ones keep up easily.
CONCURRENCY = 16

# KEYS: day, month. ARGV: daily limit, monthly limit (-1: none), the caller's day and month
# counts (floors), the day's and the month's expiry (Unix seconds).
_RESERVE = """
local day = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[3]))
local month = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[4]))
local daily, monthly = tonumber(ARGV[1]), tonumber(ARGV[2])
if (daily >= 0 and day >= daily) or (monthly >= 0 and month >= monthly) then
  return {0, day, month}
end
redis.call('SET', KEYS[1], day + 1, 'EXAT', ARGV[5])
redis.call('SET', KEYS[2], month + 1, 'EXAT', ARGV[6])
return {1, day + 1, month + 1}
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    admitted: bool
    day_calls: int    # the shared counts after this call (or at the refusal)
    month_calls: int


def quota_key(app_key: str, period: str) -> str:
    return f"{KEY_PREFIX}{{{app_key}}}:{period}"


class SharedQuotas:
    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._reserve = link.client.register_script(_RESERVE)  # EVALSHA; reloaded if missing
        self._slots = asyncio.Semaphore(CONCURRENCY)

    @property
    def link(self) -> RedisLink:
        return self._link

    async def reserve(self, app_key: str, periods: tuple[str, str], expire_at: tuple[int, int],
                      limits: tuple[int | None, int | None],
                      floors: tuple[int, int]) -> Reservation | None:
        """Count one call unless it would exceed a limit; None when Redis cannot answer now."""
        keys = [quota_key(app_key, period) for period in periods]
        args = [NO_LIMIT if limit is None else limit for limit in limits] + [*floors, *expire_at]
        async with self._slots:  # (the wait is not part of the link's timeout)
            reply = await self._link.run(lambda client: self._run(client, keys, args), None)
        if reply is None:
            return None
        admitted, day_calls, month_calls = (int(value) for value in reply)
        return Reservation(admitted == 1, day_calls, month_calls)

    async def _run(self, client: Redis, keys: list[str], args: list[int]) -> list[int]:
        try:
            return await self._reserve(keys=keys, args=args, client=client)  # type: ignore[no-any-return]
        except RedisConnectionError:
            # After a Redis restart every idle pooled connection is dead and fails at its
            # first use: drop them and try once on a fresh one (else each would count as
            # Redis being down, and the calls would be checked on local counts only).
            await client.connection_pool.disconnect(inuse_connections=False)
            return await self._reserve(keys=keys, args=args, client=client)  # type: ignore[no-any-return]
