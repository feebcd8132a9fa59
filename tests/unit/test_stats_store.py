"""Statistics in the database: upsert-add from several writers, the collector, the queries.

On SQLite and (if configured) PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.apicall import Outcome
from qqavatar.stats.collector import StatsCollector
from qqavatar.stats.latency import bucket_of, upper_bound
from qqavatar.stats.queries import StatsQueries
from qqavatar.stats.recorder import StatsRecorder
from qqavatar.stats.sink import SqlStatsSink
from qqavatar.store.db import migrate
from qqavatar.store.testing import EngineFactory

pytestmark = pytest.mark.anyio

KEY_A = "A" * 32
KEY_B = "B" * 32
NOON = datetime(2026, 11, 28, 4, 0, tzinfo=UTC).timestamp()  # 12:00 in Shanghai
DAY = date(2026, 11, 28)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(app_key: str | None = KEY_A, **fields: object) -> Outcome:
    values: dict[str, object] = {"service": "App.QQ.UserImage", "app_key": app_key, "ret": 200}
    values.update(fields)
    return Outcome(**values)  # type: ignore[arg-type]


async def test_two_servers_add_up_in_the_same_rows(engines: EngineFactory) -> None:
    first, second = engines(), engines()
    await migrate(first)
    clock = Clock(NOON)
    recorders = [StatsRecorder(clock=clock), StatsRecorder(clock=clock)]
    sinks = [SqlStatsSink(first), SqlStatsSink(second)]
    for round_ in range(3):
        for recorder in recorders:
            recorder.observe(call(cache="HIT", member="M1" + "0" * 30))
            recorder.observe(call(upstream_fetch=True, upstream_ms=40.0, err_code=-1))
            recorder.observe(call(ret=409))
            recorder.observe(call(app_key=None, ret=406))
            recorder.observe(call(KEY_B, member=f"M{round_}" + "0" * 30))
        await asyncio.gather(*(sink.write(recorder.take())
                               for sink, recorder in zip(sinks, recorders, strict=True)))
    rows = await StatsQueries(first).rows(today=DAY, days=1)
    assert [row.to_json() for row in rows] == [
        {"day": "2026-11-28", "app_key": None, "service": "App.QQ.UserImage", "calls": 6,
         "by_ret": {"406": 6}, "system_errors": 0, "cache_hits": 0, "upstream_fetches": 0,
         "active_members": 0},
        {"day": "2026-11-28", "app_key": KEY_A, "service": "App.QQ.UserImage", "calls": 18,
         "by_ret": {"200": 12, "409": 6}, "system_errors": 6, "cache_hits": 6,
         "upstream_fetches": 6, "active_members": 1},
        {"day": "2026-11-28", "app_key": KEY_B, "service": "App.QQ.UserImage", "calls": 6,
         "by_ret": {"200": 6}, "system_errors": 0, "cache_hits": 0, "upstream_fetches": 0,
         "active_members": 3},
    ]
    [today] = await StatsQueries(first).daily(today=DAY, days=1)
    assert (today.calls, today.active_members, today.cache_hits, today.upstream_fetches) \
        == (30, 4, 6, 6)
    assert today.latency_ms == (upper_bound(bucket_of(40.0)),) * 3


async def test_queries_filter_by_app_and_days(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    clock = Clock(NOON - 2 * 86400)
    recorder, sink = StatsRecorder(clock=clock), SqlStatsSink(engine)
    for _ in range(3):
        recorder.observe(call(cache="HIT"))
        recorder.observe(call(KEY_B))
        clock.now += 86400
    await sink.write(recorder.take())
    queries = StatsQueries(engine)
    assert [(row.day.day, row.app_key) for row in await queries.rows(today=DAY, days=2)] \
        == [(27, KEY_A), (27, KEY_B), (28, KEY_A), (28, KEY_B)]
    assert [row.day.day for row in await queries.rows(today=DAY, days=7, app_key=KEY_B)] \
        == [26, 27, 28]
    daily = await queries.daily(today=DAY, days=4, app_key=KEY_A)
    assert [(s.day.day, s.calls, s.cache_hit_ratio) for s in daily] \
        == [(25, 0, None), (26, 1, 1.0), (27, 1, 1.0), (28, 1, 1.0)]
    usage = await queries.usage(today=DAY)
    assert (usage[KEY_A].today, usage[KEY_A].month) == (1, 3)
    # a new month starts the monthly count afresh
    assert (await queries.usage(today=date(2026, 12, 1))).get(KEY_A) is None


async def test_collector_keeps_counts_while_the_database_fails(engines: EngineFactory) -> None:
    engine = engines()
    recorder = StatsRecorder(clock=Clock(NOON))
    collector = StatsCollector(recorder, SqlStatsSink(engine), interval=0.05)
    for _ in range(5):
        recorder.observe(call(member="M" * 32))
    assert await collector.flush() is False  # no tables yet: the write fails
    assert recorder.pending_calls == 5
    recorder.observe(call(ret=400))
    await migrate(engine)
    assert await collector.flush() is True
    assert recorder.pending_calls == 0
    [row] = await StatsQueries(engine).rows(today=DAY, days=1)
    assert (row.calls, row.by_ret, row.active_members) == (6, {200: 5, 400: 1}, 1)


async def test_collector_flushes_periodically_and_everything_on_stop(
        engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    recorder = StatsRecorder()
    collector = StatsCollector(recorder, SqlStatsSink(engine), interval=0.05)
    collector.start()
    try:
        recorder.observe(call())
        for _ in range(100):  # written by the flusher, without anyone asking
            await asyncio.sleep(0.05)
            if recorder.pending_calls == 0 and await _calls(engine) == 1:
                break
        assert await _calls(engine) == 1
        for _ in range(7):
            recorder.observe(call(member="M" * 32))
    finally:
        await collector.stop()
    assert await _calls(engine) == 8
    async with engine.connect() as connection:
        members = (await connection.execute(text("SELECT count(*) FROM member_activity"))).scalar()
    assert members == 1


async def test_a_member_is_written_once_per_day(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    recorder = StatsRecorder(clock=Clock(NOON))
    collector = StatsCollector(recorder, SqlStatsSink(engine))
    recorder.observe(call(member="M" * 32))
    assert await collector.flush()
    recorder.observe(call(member="M" * 32))
    batch = recorder.take()
    recorder.give_back(batch)
    assert batch.members  # counted in memory …
    # … but the collector drops it before writing: this server wrote it already today
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM member_activity"))
    assert await collector.flush()
    async with engine.connect() as connection:
        members = (await connection.execute(text("SELECT count(*) FROM member_activity"))).scalar()
    assert members == 0


async def _calls(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        value = (await connection.execute(text("SELECT coalesce(sum(calls), 0) FROM stats_daily"))
                 ).scalar()
    return int(value)
