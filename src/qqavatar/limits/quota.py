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
quota in Redis as well (limits/redis_quota.py), which makes the quota exact across
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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..store.db import StoreUnavailable
from ..store.quota import QuotaStore, UsageKey
from .redis_quota import SharedQuotas

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


@dataclass(slots=True)
class _Tally:
    """One app's calls in the current day and month (UTC+8): a few slot increments per call,
    where four dictionary updates under (app_key, period) keys cost twice as much."""

    day: int = 0          # all servers' as the database last said, plus ours since
    month: int = 0
    day_new: int = 0      # ours, not yet stored
    month_new: int = 0
    day_seen: int = -1    # all servers' as Redis last said, plus ours since; -1: not known
    month_seen: int = -1


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
        self._tallies: dict[str, _Tally] = {}    # per app, in the current periods
        self._earlier: dict[UsageKey, int] = {}  # ours in periods that have ended, not yet stored
        self._second = -1
        self._periods = ("", "")
        self._expire_at = (0, 0)                 # shared counters' expiry (period end + margin)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()              # one flush at a time

    def periods(self) -> tuple[str, str]:
        second = int(self._clock())
        if second != self._second:  # recomputed once a second, not per call
            day_end, month_end = period_ends(second)
            self._second = second
            self._expire_at = (day_end + EXPIRY_MARGIN, month_end + EXPIRY_MARGIN)
            periods = periods_at(second)
            if periods != self._periods:
                self._begin(periods)
        return self._periods

    def _begin(self, periods: tuple[str, str]) -> None:
        """A new day (and maybe month): its count starts afresh (until the next sync reads
        what other servers counted in it); our unstored calls of the old one wait in
        `_earlier` for the next flush."""
        (old_day, old_month), (day, month) = self._periods, periods
        self._periods = periods  # the old ones have ended: `_add_unstored` keeps them apart
        for app_key, tally in self._tallies.items():
            if day != old_day:
                if tally.day_new:
                    self._add_unstored(app_key, old_day, tally.day_new)
                tally.day = tally.day_new = 0
                tally.day_seen = -1
            if month != old_month:
                if tally.month_new:
                    self._add_unstored(app_key, old_month, tally.month_new)
                tally.month = tally.month_new = 0
                tally.month_seen = -1

    def _tally(self, app_key: str) -> _Tally:
        tally = self._tallies.get(app_key)
        if tally is None:
            tally = self._tallies[app_key] = _Tally()
        return tally

    def _used(self, app_key: str) -> tuple[int, int]:
        """A lower bound of the true counts (day, month): the database's total plus our
        unstored calls, or what Redis last said plus our calls since, whichever is more."""
        tally = self._tallies.get(app_key)
        if tally is None:
            return 0, 0
        return max(tally.day, tally.day_seen), max(tally.month, tally.month_seen)

    def reserve(self, app_key: str, daily: int | None, monthly: int | None) -> bool:
        """Count one call unless it would exceed a quota (None: no quota), on what this
        server knows alone. No await inside."""
        if daily is not None or monthly is not None:
            self.periods()
            day_used, month_used = self._used(app_key)
            if _over(daily, day_used) or _over(monthly, month_used):
                return False
        self.count(app_key)
        return True

    def count(self, app_key: str) -> None:
        """Count one call, never refused (an app without a quota; `reserve` once admitted)."""
        if int(self._clock()) != self._second:
            self.periods()
        tally = self._tallies.get(app_key) or self._tally(app_key)
        tally.day += 1
        tally.month += 1
        tally.day_new += 1
        tally.month_new += 1
        if tally.day_seen >= 0:  # our own calls since Redis last answered add to what it said
            tally.day_seen += 1
        if tally.month_seen >= 0:
            tally.month_seen += 1

    async def admit(self, app_key: str, daily: int | None, monthly: int | None) -> bool:
        """`reserve`, exact across servers when Redis is on and the app has a quota."""
        shared = self._shared
        if shared is None or (daily is None and monthly is None):
            return self.reserve(app_key, daily, monthly)
        periods = self.periods()
        day_used, month_used = self._used(app_key)
        if _over(daily, day_used) or _over(monthly, month_used):
            return False  # what we know never exceeds the true count: no need to ask Redis
        reservation = await shared.reserve(app_key, periods, self._expire_at,
                                           (daily, monthly), (day_used, month_used))
        if reservation is None:  # Redis is down: what this server knows, as without Redis
            self._note_shared(False)
            return self.reserve(app_key, daily, monthly)
        self._note_shared(True)
        current = self.periods()
        if reservation.admitted:  # for the database, the durable record
            for period in periods:
                self._add_unstored(app_key, period, 1, counted=True)
        if current == periods:  # (a day that ended meanwhile has no tally to update)
            tally = self._tally(app_key)
            tally.day_seen = max(tally.day_seen, reservation.day_calls)
            tally.month_seen = max(tally.month_seen, reservation.month_calls)
        return reservation.admitted

    def _add_unstored(self, app_key: str, period: str, calls: int, *,
                      counted: bool = False) -> None:
        """Add `calls` of ours, not yet stored, in `period` (counted: to its count too)."""
        day, month = self._periods
        if period == day:
            tally = self._tally(app_key)
            tally.day_new += calls
            tally.day += calls if counted else 0
        elif period == month:
            tally = self._tally(app_key)
            tally.month_new += calls
            tally.month += calls if counted else 0
        else:  # a period that has ended
            key = (app_key, period)
            self._earlier[key] = self._earlier.get(key, 0) + calls

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
        self.periods()
        tally = self._tallies.get(app_key)
        return (0, 0) if tally is None else (tally.day, tally.month)

    async def load(self) -> None:
        """Read the current periods' totals (at start, before the first call)."""
        async with self._lock:
            await self._sync()

    async def flush(self, *, sync: bool = True) -> None:
        """Store what was counted since the last flush; then (sync) read all servers' totals."""
        async with self._lock:
            deltas = self._take_new()
            try:
                await self._store.add(deltas)
            except BaseException:
                self._give_back(deltas)  # kept for the next attempt
                raise
            if sync:
                await self._sync()

    def _take_new(self) -> dict[UsageKey, int]:
        """Our calls not yet stored, by (app_key, period); from now on they count as stored."""
        day, month = self.periods()  # (a day that has ended moves to `_earlier` first)
        deltas, self._earlier = self._earlier, {}
        for app_key, tally in self._tallies.items():
            if tally.day_new:
                deltas[(app_key, day)] = tally.day_new
                tally.day_new = 0
            if tally.month_new:
                deltas[(app_key, month)] = tally.month_new
                tally.month_new = 0
        return deltas

    def _give_back(self, deltas: dict[UsageKey, int]) -> None:
        self.periods()
        for (app_key, period), calls in deltas.items():
            self._add_unstored(app_key, period, calls)

    def _unstored_days(self) -> int:
        return (sum(calls for (_, period), calls in self._earlier.items()
                    if period.startswith("D"))
                + sum(tally.day_new for tally in self._tallies.values()))

    async def _sync(self) -> None:
        current = self.periods()
        totals = await self._store.totals(current)
        # No await from here on: calls admitted during the read are in the tallies' `_new`
        # counts, not in totals.
        if self.periods() != current:
            return  # a new day began during the read: the next sync reads that one
        day, month = current
        apps = {app_key for app_key, _ in totals} | self._tallies.keys()
        tallies: dict[str, _Tally] = {}
        for app_key in apps:
            tally = self._tallies.get(app_key) or _Tally()
            tally.day = totals.get((app_key, day), 0) + tally.day_new
            tally.month = totals.get((app_key, month), 0) + tally.month_new
            if tally.day or tally.month or tally.day_seen >= 0 or tally.month_seen >= 0:
                tallies[app_key] = tally
        self._tallies = tallies

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
            except StoreUnavailable:
                pass
            await asyncio.sleep(self._flush_interval / 2)
        log.error("quota: database unavailable at shutdown; %d counted calls not stored",
                  self._unstored_days())

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush()
            except Exception as exc:
                if not failing:
                    if isinstance(exc, StoreUnavailable):  # expected in an outage: no traceback
                        log.warning("quota: database unavailable (%s); counts kept in memory, "
                                    "stored when it is back", exc.reason)
                    else:
                        log.exception("quota: storing counts failed; will keep retrying")
                failing = True
            else:
                if failing:
                    log.info("quota: storing counts works again")
                failing = False
