"""Quota usage: calls per app per period, added to in batches by every server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.store.db import begin, connect
from qqavatar.store.schema import quota_usage

UsageKey = tuple[str, str]  # (app_key, period)


class QuotaStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def totals(self, periods: Sequence[str]) -> dict[UsageKey, int]:
        """Calls of every app in the given periods, as counted by all servers so far."""
        if not periods:
            return {}
        query = select(quota_usage).where(quota_usage.c.period.in_(list(periods)))
        async with connect(self._engine) as connection:
            rows = (await connection.execute(query)).all()
        return {(row.app_key, row.period): int(row.calls) for row in rows}

    async def add(self, deltas: Mapping[UsageKey, int]) -> None:
        """Add `deltas` to the stored counts in one transaction (upsert-add)."""
        if not deltas:
            return
        # Sorted, so that concurrent writers lock rows in one order (no deadlocks on PostgreSQL).
        rows = [{"app_key": key, "period": period, "calls": calls}
                for (key, period), calls in sorted(deltas.items())]
        async with begin(self._engine) as connection:
            await connection.execute(self._upsert_add(connection.dialect.name), rows)

    @staticmethod
    def _upsert_add(backend: str) -> Any:
        insert = postgresql.insert if backend == "postgresql" else sqlite.insert
        statement = insert(quota_usage)
        return statement.on_conflict_do_update(
            index_elements=[quota_usage.c.app_key, quota_usage.c.period],
            set_={"calls": quota_usage.c.calls + statement.excluded.calls},
        )
