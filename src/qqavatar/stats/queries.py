"""Reading statistics back: rows for `qqavatar stats`, daily series for the dashboard."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.schema import member_activity, stats_daily, upstream_latency
from .days import last_days
from .latency import percentiles

QUANTILES = (0.5, 0.9, 0.99)


@dataclass(slots=True)
class StatsRow:
    """One app's calls to one service on one day."""

    day: date
    app_key: str
    service: str
    calls: int = 0
    by_ret: dict[int, int] = field(default_factory=dict)
    system_errors: int = 0
    cache_hits: int = 0
    upstream_fetches: int = 0
    active_members: int = 0  # of the app that day, whichever service they called

    def to_json(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "app_key": self.app_key or None,
            "service": self.service,
            "calls": self.calls,
            "by_ret": {str(ret): count for ret, count in sorted(self.by_ret.items())},
            "system_errors": self.system_errors,
            "cache_hits": self.cache_hits,
            "upstream_fetches": self.upstream_fetches,
            "active_members": self.active_members,
        }


@dataclass(slots=True)
class DaySummary:
    """One day of traffic (of one app, or all): what the dashboard charts."""

    day: date
    calls: int = 0
    system_errors: int = 0
    cache_hits: int = 0
    upstream_fetches: int = 0
    active_members: int = 0
    latency_ms: tuple[float | None, ...] = (None,) * len(QUANTILES)  # p50, p90, p99

    @property
    def cache_hit_ratio(self) -> float | None:
        """Hits among avatar lookups (hits + upstream fetches); None without lookups."""
        lookups = self.cache_hits + self.upstream_fetches
        return self.cache_hits / lookups if lookups else None


@dataclass(slots=True)
class Usage:
    today: int = 0
    month: int = 0


class StatsQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rows(self, *, today: date, days: int, app_key: str | None = None) -> list[StatsRow]:
        """Rows of the last `days` days up to `today`, by day, app and service."""
        since = today - timedelta(days=days - 1)
        counts = select(stats_daily).where(stats_daily.c.day.between(since, today))
        members = (
            select(member_activity.c.day, member_activity.c.app_key, func.count().label("n"))
            .where(member_activity.c.day.between(since, today))
            .group_by(member_activity.c.day, member_activity.c.app_key)
        )
        if app_key is not None:
            counts = counts.where(stats_daily.c.app_key == app_key)
            members = members.where(member_activity.c.app_key == app_key)
        async with self._engine.connect() as connection:
            count_rows = (await connection.execute(counts)).all()
            member_rows = (await connection.execute(members)).all()
        active = {(row.day, row.app_key): int(row.n) for row in member_rows}
        rows: dict[tuple[date, str, str], StatsRow] = {}
        for row in count_rows:
            key = (row.day, row.app_key, row.service)
            item = rows.get(key)
            if item is None:
                item = rows[key] = StatsRow(*key, active_members=active.get(key[:2], 0))
            item.calls += row.calls
            item.by_ret[row.ret] = item.by_ret.get(row.ret, 0) + row.calls
            item.system_errors += row.system_errors
            item.cache_hits += row.cache_hits
            item.upstream_fetches += row.upstream_fetches
        return [rows[key] for key in sorted(rows)]

    async def daily(self, *, today: date, days: int,
                    app_key: str | None = None) -> list[DaySummary]:
        """One summary per day (every day, empty ones too), oldest first.

        Latency is the upstream's, over all apps: qlogo is equally fast for everyone.
        """
        since = today - timedelta(days=days - 1)
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
        async with self._engine.connect() as connection:
            count_rows = (await connection.execute(counts)).all()
            member_rows = (await connection.execute(members)).all()
            latency_rows = (await connection.execute(latency)).all()
        summaries = {day: DaySummary(day) for day in last_days(today, days)}
        for row in count_rows:
            summary = summaries[row.day]
            summary.calls, summary.system_errors = int(row.calls), int(row.system_errors)
            summary.cache_hits = int(row.cache_hits)
            summary.upstream_fetches = int(row.upstream_fetches)
        for member_row in member_rows:
            summaries[member_row.day].active_members = int(member_row.n)
        histograms: dict[date, dict[int, int]] = defaultdict(dict)
        for latency_row in latency_rows:
            histograms[latency_row.day][latency_row.bucket] = int(latency_row.n)
        for day, histogram in histograms.items():
            summaries[day].latency_ms = tuple(percentiles(histogram, QUANTILES))
        return list(summaries.values())

    async def usage(self, *, today: date) -> dict[str, Usage]:
        """Calls per app today and this month (all answers, refused ones included)."""
        month_start = today.replace(day=1)
        query = (
            select(stats_daily.c.app_key, stats_daily.c.day,
                   func.sum(stats_daily.c.calls).label("calls"))
            .where(stats_daily.c.day.between(month_start, today), stats_daily.c.app_key != "")
            .group_by(stats_daily.c.app_key, stats_daily.c.day)
        )
        async with self._engine.connect() as connection:
            result = (await connection.execute(query)).all()
        usage: dict[str, Usage] = defaultdict(Usage)
        for row in result:
            usage[row.app_key].month += int(row.calls)
            if row.day == today:
                usage[row.app_key].today += int(row.calls)
        return dict(usage)
