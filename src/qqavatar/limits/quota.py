"""Daily and monthly quotas: counted in memory, reserved at check time, stored in batches.

A call counts once it passes the quota check, and the check reserves it in the
same synchronous step, so concurrent calls on one server can never overshoot.
Every app's calls are counted (not only apps with a quota), so a quota set in
the middle of a day applies to that day's calls so far.

Periods are calendar days and months in China Standard Time (UTC+8, no DST),
as YesApi counts them: `D2026-11-28`, `M2026-11`.

Counts reach the database every `flush_interval` seconds and at shutdown. Each
flush also reads the totals back, so several servers sharing one database see
each other's calls within about a second; a quota shared that way can be
overshot by at most what the other servers admit in that second.

With Redis (`QQAVATAR_REDIS_URL`), `admit` reserves each call of an app that has a
quota in Redis as well (limits/shared.py), which makes the quota exact across
servers. Calls of apps without a quota cost no round trip: they are only counted
here. The database stays the durable record (flushed as above). While Redis is
down, `admit` falls back to what this server knows: the database's totals, or the
count Redis last answered plus this server's calls since, whichever is more. Then
the bound is the old one: what the other servers admitted since then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ..store.db import is_database_outage
from ..store.quota import QuotaStore, UsageKey
from .shared import SharedQuotas

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
EXPIRY_MARGIN = 3600  # s a shared counter outlives its period (late calls, clock skew)
SHUTDOWN_ATTEMPTS = 5  # of the last flush, half a flush interval apart


def periods_at(now: float) -> tuple[str, str]:
    """(day, month) period keys of a Unix time, in UTC+8."""
    moment = datetime.fromtimestamp(now, CHINA)
    return f"D{moment:%Y-%m-%d}", f"M{moment:%Y-%m}"


def period_ends(now: float) -> tuple[int, int]:
    """Unix times at which the day and the month of `now` end, in UTC+8."""
    moment = datetime.fromtimestamp(now, CHINA)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight.replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    return int((midnight + timedelta(days=1)).timestamp()), int(next_month.timestamp())


def _over(limit: int | None, used: int) -> bool:
    return limit is not None and used >= limit


class QuotaBook:
    def __init__(
        self,
        store: QuotaStore,
        *,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        shared: SharedQuotas | None = None,
    ) -> None:
        self._store = store
        self._shared = shared
        self._shared_ok = True                   # for logging the switches once
        self._flush_interval = flush_interval
        self._clock = clock
        self._counts: dict[UsageKey, int] = {}   # current periods: stored + not yet stored
        self._pending: dict[UsageKey, int] = {}  # not yet stored
        self._seen: dict[UsageKey, int] = {}     # all servers' count as Redis last said
        self._second = -1
        self._periods = ("", "")
        self._expire_at = (0, 0)                 # shared counters' expiry (period end + margin)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()              # one flush at a time

    def periods(self) -> tuple[str, str]:
        second = int(self._clock())
        if second != self._second:  # recomputed once a second, not per call
            day_end, month_end = period_ends(second)
            self._second, self._periods = second, periods_at(second)
            self._expire_at = (day_end + EXPIRY_MARGIN, month_end + EXPIRY_MARGIN)
        return self._periods

    def reserve(self, app_key: str, daily: int | None, monthly: int | None) -> bool:
        """Count one call unless it would exceed a quota (None: no quota), on what this
        server knows alone. No await inside."""
        if daily is not None or monthly is not None:
            day, month = self.periods()
            if _over(daily, self._known((app_key, day))) or \
                    _over(monthly, self._known((app_key, month))):
                return False
        self.count(app_key)
        return True

    def count(self, app_key: str) -> None:
        """Count one call, never refused (an app without a quota; `reserve` once admitted)."""
        day, month = self.periods()
        day_key, month_key = (app_key, day), (app_key, month)
        counts, pending = self._counts, self._pending
        counts[day_key] = counts.get(day_key, 0) + 1
        counts[month_key] = counts.get(month_key, 0) + 1
        pending[day_key] = pending.get(day_key, 0) + 1
        pending[month_key] = pending.get(month_key, 0) + 1
        seen = self._seen
        if seen:  # our own calls since Redis last answered add to what it said
            if day_key in seen:
                seen[day_key] += 1
            if month_key in seen:
                seen[month_key] += 1

    async def admit(self, app_key: str, daily: int | None, monthly: int | None) -> bool:
        """`reserve`, exact across servers when Redis is on and the app has a quota."""
        shared = self._shared
        if shared is None or (daily is None and monthly is None):
            return self.reserve(app_key, daily, monthly)
        day, month = self.periods()
        day_key, month_key = (app_key, day), (app_key, month)
        day_used, month_used = self._known(day_key), self._known(month_key)
        if _over(daily, day_used) or _over(monthly, month_used):
            return False  # what we know never exceeds the true count: no need to ask Redis
        reservation = await shared.reserve(app_key, (day, month), self._expire_at,
                                           (daily, monthly), (day_used, month_used))
        if reservation is None:  # Redis is down: what this server knows, as without Redis
            self._note_shared(False)
            return self.reserve(app_key, daily, monthly)
        self._note_shared(True)
        if reservation.admitted:
            self._count(day_key, month_key)  # for the database, the durable record
        seen = self._seen
        seen[day_key] = max(seen.get(day_key, 0), reservation.day_calls)
        seen[month_key] = max(seen.get(month_key, 0), reservation.month_calls)
        return reservation.admitted

    def _known(self, key: UsageKey) -> int:
        """A lower bound of the true count: the database's total plus our unstored calls,
        or what Redis last said plus our calls since, whichever is more."""
        return max(self._counts.get(key, 0), self._seen.get(key, 0))

    def _count(self, day_key: UsageKey, month_key: UsageKey) -> None:
        counts, pending = self._counts, self._pending
        for key in (day_key, month_key):
            counts[key] = counts.get(key, 0) + 1
            pending[key] = pending.get(key, 0) + 1

    def _note_shared(self, ok: bool) -> None:
        if ok == self._shared_ok:
            return
        self._shared_ok = ok
        if ok:
            log.info("quota: counting in Redis again; quotas exact across servers")
        else:
            log.warning("quota: Redis unavailable; each server checks quotas on its own counts "
                        "(synced through the database every %g s) until it is back",
                        self._flush_interval)

    def usage(self, app_key: str) -> tuple[int, int]:
        """Calls of the app counted today and this month (UTC+8)."""
        day, month = self.periods()
        return self._counts.get((app_key, day), 0), self._counts.get((app_key, month), 0)

    async def load(self) -> None:
        """Read the current periods' totals (at start, before the first call)."""
        async with self._lock:
            await self._sync()

    async def flush(self, *, sync: bool = True) -> None:
        """Store what was counted since the last flush; then (sync) read all servers' totals."""
        async with self._lock:
            deltas, self._pending = self._pending, {}
            try:
                await self._store.add(deltas)
            except BaseException:
                for key, calls in deltas.items():  # keep them for the next attempt
                    self._pending[key] = self._pending.get(key, 0) + calls
                raise
            if sync:
                await self._sync()

    async def _sync(self) -> None:
        current = self.periods()
        totals = await self._store.totals(current)
        # No await from here on: calls admitted during the read are in _pending, not in totals.
        keys = {key for key in (*totals, *self._pending) if key[1] in current}
        self._counts = {key: totals.get(key, 0) + self._pending.get(key, 0) for key in keys}
        if self._seen:
            self._seen = {key: calls for key, calls in self._seen.items() if key[1] in current}

    async def start(self) -> None:
        if self._task is None:
            await self.load()
            self._task = asyncio.create_task(self._run(), name="qqavatar-quota-flush")

    async def stop(self) -> None:
        """Stop the periodic flush and store the last counts (a database that is briefly
        away gets a few more tries, as the statistics get)."""
        task, self._task = self._task, None
        if task is not None:
            async with self._lock:  # never cut a flush in half
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _ in range(SHUTDOWN_ATTEMPTS):
            try:
                await self.flush(sync=False)
                return
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
            await asyncio.sleep(self._flush_interval / 2)
        log.error("quota: database unavailable at shutdown; %d counted calls not stored",
                  sum(calls for (_, period), calls in self._pending.items()
                      if period.startswith("D")))

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush()
            except Exception as exc:
                if not failing:
                    if is_database_outage(exc):  # expected in an outage: no traceback
                        log.warning("quota: database unavailable (%s); counts kept in memory, "
                                    "stored when it is back", type(exc).__name__)
                    else:
                        log.exception("quota: storing counts failed; will keep retrying")
                failing = True
            else:
                if failing:
                    log.info("quota: storing counts works again")
                failing = False
