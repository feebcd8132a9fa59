"""Statistics for one server: the recorder on the hot path, a flusher behind it.

Every `FLUSH_INTERVAL` seconds the counted batch goes to the sink in one transaction, so a
kill -9 loses at most that much; `stop` (a runtime closer, run by a graceful SIGTERM or
SIGINT after the last request is answered) writes everything that is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date, timedelta

from .. import metric_hooks
from ..store.db import StoreUnavailable
from .recorder import StatsBatch, StatsRecorder
from .sink import StatsSink

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5  # seconds; the issue allows one, half leaves room for a slow write
SHUTDOWN_RETRIES = 4  # more attempts of the last write, FLUSH_INTERVAL apart


class StatsCollector:
    def __init__(self, recorder: StatsRecorder, sink: StatsSink, *,
                 interval: float = FLUSH_INTERVAL) -> None:
        self.recorder = recorder
        self._sink = sink
        self._interval = interval
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        # Members this server has written (today's and yesterday's): a member calling all
        # day is written once, not once per flush.
        self._written: dict[tuple[date, str], set[str]] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="qqavatar-stats-flusher")

    async def stop(self) -> None:
        """Stop the flusher and write everything counted so far."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # the loop ends with a final flush
        else:
            await self.flush()
        for _ in range(SHUTDOWN_RETRIES):  # a database that is briefly away gets a chance
            if not self.recorder.pending_calls:
                break
            await asyncio.sleep(self._interval)
            await self.flush()
        if self.recorder.pending_calls:
            log.error("statistics: %d calls could not be written at shutdown",
                      self.recorder.pending_calls)

    async def flush(self) -> bool:
        """Write what was counted; True on success. On failure the counts are kept for the
        next attempt (a database outage delays statistics, it does not lose them)."""
        async with self._lock:
            batch = self.recorder.take()
            new_members = self._drop_written_members(batch)
            if not batch:
                return True
            try:
                await self._sink.write(batch)
            except BaseException as exc:
                self.recorder.give_back(batch)
                if not isinstance(exc, Exception):
                    raise  # cancelled: the counts are back in the recorder
                if not self._failing:
                    if isinstance(exc, StoreUnavailable):  # expected in an outage: no traceback
                        log.warning("statistics: database unavailable (%s); counts kept in "
                                    "memory, written when it is back", exc.reason)
                    else:
                        log.exception("statistics: writing failed; will keep retrying")
                self._failing = True
                return False
            if self._failing:
                log.info("statistics: writing works again")
                self._failing = False
            self._remember_members(new_members)
            return True

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if await self.flush():
                metric_hooks.counters_flushed()  # metrics: the flush lag starts again from 0

    def _drop_written_members(self, batch: StatsBatch) -> dict[tuple[date, str], set[str]]:
        for key in list(batch.members):
            fresh = batch.members[key] - self._written.get(key, set())
            if fresh:
                batch.members[key] = fresh
            else:
                del batch.members[key]
        return batch.members

    def _remember_members(self, written: dict[tuple[date, str], set[str]]) -> None:
        if not written:
            return
        for key, uuids in written.items():
            self._written.setdefault(key, set()).update(uuids)
        # Keep today and yesterday (calls counted just before midnight flush just after it).
        oldest = max(day for day, _ in self._written) - timedelta(days=1)
        self._written = {key: uuids for key, uuids in self._written.items() if key[0] >= oldest}
