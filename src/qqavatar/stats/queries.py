"""Reading statistics back: rows for `qqavatar stats`, daily series for the dashboard
(the SQL is `store.stats`'s)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.stats import StatsTables
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
        self._tables = StatsTables(engine)

    async def rows(self, *, today: date, days: int, app_key: str | None = None) -> list[StatsRow]:
        """Rows of the last `days` days up to `today`, by day, app and service."""
        since = today - timedelta(days=days - 1)
        count_rows, member_rows = await self._tables.by_service(
            since=since, today=today, app_key=app_key)
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
        count_rows, member_rows, latency_rows = await self._tables.by_day(
            since=since, today=today, app_key=app_key)
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
        result = await self._tables.calls_by_app(since=today.replace(day=1), today=today)
        usage: dict[str, Usage] = defaultdict(Usage)
        for row in result:
            usage[row.app_key].month += int(row.calls)
            if row.day == today:
                usage[row.app_key].today += int(row.calls)
        return dict(usage)
