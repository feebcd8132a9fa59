"""Where counted batches go: `StatsSink`, and `SqlStatsSink`, which adds them to the
database's statistics tables (`store.stats`). Another store (Redis, say) only has to
implement `write`.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.stats import StatsTables
from .recorder import CACHE_HITS, CALLS, SYSTEM_ERRORS, UPSTREAM_FETCHES, StatsBatch

_COUNTERS = {
    "calls": CALLS,
    "system_errors": SYSTEM_ERRORS,
    "cache_hits": CACHE_HITS,
    "upstream_fetches": UPSTREAM_FETCHES,
}


class StatsSink(Protocol):
    async def write(self, batch: StatsBatch) -> None:
        """Add the batch to the stored counters, all or nothing."""


class SqlStatsSink:
    """Adds batches to the statistics tables (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tables = StatsTables(engine)

    async def write(self, batch: StatsBatch) -> None:
        # Rows in key order: concurrent writers then lock them in one order (no deadlocks).
        counts = [
            {"day": day, "app_key": app_key, "service": service, "ret": ret}
            | {name: values[index] for name, index in _COUNTERS.items()}
            for (day, app_key, service, ret), values in sorted(batch.counts.items())
        ]
        members = [
            {"day": day, "app_key": app_key, "uuid": uuid}
            for (day, app_key), uuids in sorted(batch.members.items())
            for uuid in sorted(uuids)
        ]
        latency = [
            {"day": day, "bucket": bucket, "count": count}
            for (day, bucket), count in sorted(batch.latency.items())
        ]
        await self._tables.add(counts, latency, members)
