"""Where counted batches go: `StatsSink`, and its SQL implementation.

Every server adds its batches to the same rows (`INSERT … ON CONFLICT DO UPDATE SET
calls = calls + excluded.calls`), so any number of processes may write at once and a
batch never has to be read back. Another store (Redis, say) only has to implement `write`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.schema import member_activity, stats_daily, upstream_latency
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
    """Upserts batches into the statistics tables (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        inserts: dict[str, Callable[[Table], Any]] = {
            "sqlite": sqlite.insert,
            "postgresql": postgresql.insert,
        }
        if dialect not in inserts:
            raise ValueError(f"statistics need SQLite or PostgreSQL, not {dialect}")
        self._insert = inserts[dialect]

    async def write(self, batch: StatsBatch) -> None:
        # Rows in key order: two servers upserting the same rows then lock them in the same
        # order, so PostgreSQL never sees a deadlock between them.
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
        async with self._engine.begin() as connection:
            if counts:
                await connection.execute(self._add(stats_daily, _COUNTERS), counts)
            if latency:
                await connection.execute(self._add(upstream_latency, ("count",)), latency)
            if members:
                insert = self._insert(member_activity).on_conflict_do_nothing()
                await connection.execute(insert, members)

    def _add(self, table: Table, columns: Iterable[str]) -> Any:
        insert = self._insert(table)
        keys = [column.name for column in table.primary_key.columns]
        return insert.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + insert.excluded[name] for name in columns},
        )
