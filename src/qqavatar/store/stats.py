"""The statistics tables: counted batches added in, and read back grouped.

Every server adds its batches to the same rows (`INSERT … ON CONFLICT DO UPDATE SET
calls = calls + excluded.calls`), so any number of processes may write at once and a
batch never has to be read back. `stats.sink` turns a batch into these rows and
`stats.queries` the rows read back into reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.store.db import begin, connect
from qqavatar.store.schema import member_activity, stats_daily, upstream_latency

Rows = Sequence[Row[*tuple[Any, ...]]]  # rows of any width
Values = Sequence[Mapping[str, Any]]  # one dict of column values per row


class StatsTables:
    """`stats_daily`, `member_activity` and `upstream_latency` (SQLite or PostgreSQL)."""

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

    async def add(self, counts: Values, latency: Values, members: Values) -> None:
        """Add the rows' counts to the stored ones, all or nothing. Callers give the rows in
        key order: two servers upserting the same rows then lock them in the same order, so
        PostgreSQL never sees a deadlock between them."""
        async with begin(self._engine) as connection:
            if counts:
                await connection.execute(self._add(stats_daily), counts)
            if latency:
                await connection.execute(self._add(upstream_latency), latency)
            if members:
                insert = self._insert(member_activity).on_conflict_do_nothing()
                await connection.execute(insert, members)

    def _add(self, table: Table) -> Any:
        """Upsert that adds every column outside the primary key to the stored value."""
        insert = self._insert(table)
        return insert.on_conflict_do_update(
            index_elements=[column.name for column in table.primary_key.columns],
            set_={column.name: column + insert.excluded[column.name]
                  for column in table.columns if not column.primary_key},
        )

    async def by_service(self, *, since: date, today: date,
                         app_key: str | None = None) -> tuple[Rows, Rows]:
        """`stats_daily` rows from `since` to `today`, and (day, app_key, n) rows: the
        active members of each app and day."""
        counts = select(stats_daily).where(stats_daily.c.day.between(since, today))
        members = (
            select(member_activity.c.day, member_activity.c.app_key, func.count().label("n"))
            .where(member_activity.c.day.between(since, today))
            .group_by(member_activity.c.day, member_activity.c.app_key)
        )
        if app_key is not None:
            counts = counts.where(stats_daily.c.app_key == app_key)
            members = members.where(member_activity.c.app_key == app_key)
        async with connect(self._engine) as connection:
            return ((await connection.execute(counts)).all(),
                    (await connection.execute(members)).all())

    async def by_day(self, *, since: date, today: date,
                     app_key: str | None = None) -> tuple[Rows, Rows, Rows]:
        """Per day from `since` to `today`: the summed counters (day, calls, system_errors,
        cache_hits, upstream_fetches), the active members (day, n), and the upstream latency
        histogram rows (day, bucket, n) of all apps."""
        counts = (
            select(stats_daily.c.day,
                   func.sum(stats_daily.c.calls).label("calls"),
                   func.sum(stats_daily.c.system_errors).label("system_errors"),
                   func.sum(stats_daily.c.cache_hits).label("cache_hits"),
                   func.sum(stats_daily.c.upstream_fetches).label("upstream_fetches"))
            .where(stats_daily.c.day.between(since, today))
            .group_by(stats_daily.c.day)
        )
        members = (
            select(member_activity.c.day, func.count().label("n"))
            .where(member_activity.c.day.between(since, today))
            .group_by(member_activity.c.day)
        )
        if app_key is not None:
            counts = counts.where(stats_daily.c.app_key == app_key)
            members = members.where(member_activity.c.app_key == app_key)
        latency = (
            select(upstream_latency.c.day, upstream_latency.c.bucket,
                   upstream_latency.c["count"].label("n"))
            .where(upstream_latency.c.day.between(since, today))
        )
        async with connect(self._engine) as connection:
            return ((await connection.execute(counts)).all(),
                    (await connection.execute(members)).all(),
                    (await connection.execute(latency)).all())

    async def calls_by_app(self, *, since: date, today: date) -> Rows:
        """(app_key, day, calls) rows from `since` to `today`, of calls that named an app."""
        query = (
            select(stats_daily.c.app_key, stats_daily.c.day,
                   func.sum(stats_daily.c.calls).label("calls"))
            .where(stats_daily.c.day.between(since, today), stats_daily.c.app_key != "")
            .group_by(stats_daily.c.app_key, stats_daily.c.day)
        )
        async with connect(self._engine) as connection:
            return (await connection.execute(query)).all()
