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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ..store.quota import QuotaStore, UsageKey

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def periods_at(now: float) -> tuple[str, str]:
    """(day, month) period keys of a Unix time, in UTC+8."""
    moment = datetime.fromtimestamp(now, CHINA)
    return f"D{moment:%Y-%m-%d}", f"M{moment:%Y-%m}"


class QuotaBook:
    def __init__(
        self,
        store: QuotaStore,
        *,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._clock = clock
        self._counts: dict[UsageKey, int] = {}   # current periods: stored + not yet stored
        self._pending: dict[UsageKey, int] = {}  # not yet stored
        self._second = -1
        self._periods = ("", "")
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()              # one flush at a time

    def periods(self) -> tuple[str, str]:
        second = int(self._clock())
        if second != self._second:  # recomputed once a second, not per call
            self._second, self._periods = second, periods_at(second)
        return self._periods

    def reserve(self, app_key: str, daily: int | None, monthly: int | None) -> bool:
        """Count one call unless it would exceed a quota (None: no quota). No await inside."""
        day, month = self.periods()
        day_key, month_key = (app_key, day), (app_key, month)
        counts = self._counts
        day_used, month_used = counts.get(day_key, 0), counts.get(month_key, 0)
        if (daily is not None and day_used >= daily) or (
            monthly is not None and month_used >= monthly
        ):
            return False
        counts[day_key], counts[month_key] = day_used + 1, month_used + 1
        pending = self._pending
        pending[day_key] = pending.get(day_key, 0) + 1
        pending[month_key] = pending.get(month_key, 0) + 1
        return True

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

    async def start(self) -> None:
        if self._task is None:
            await self.load()
            self._task = asyncio.create_task(self._run(), name="qqavatar-quota-flush")

    async def stop(self) -> None:
        """Stop the periodic flush and store the last counts."""
        task, self._task = self._task, None
        if task is not None:
            async with self._lock:  # never cut a flush in half
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush(sync=False)

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush()
            except Exception:
                if not failing:
                    log.exception("quota: storing counts failed; will keep retrying")
                failing = True
            else:
                if failing:
                    log.info("quota: storing counts works again")
                failing = False
