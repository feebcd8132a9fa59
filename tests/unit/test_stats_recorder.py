"""The in-memory side of statistics: days, latency buckets, the recorder's counting."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from qqavatar.apicall import Outcome
from qqavatar.stats.days import day_of, last_days, next_midnight
from qqavatar.stats.latency import (
    FIRST_BUCKET,
    LAST_BUCKET,
    bucket_of,
    percentiles,
    upper_bound,
)
from qqavatar.stats.recorder import NO_APP, UNKNOWN_SERVICE, StatsBatch, StatsRecorder

KEY = "0123456789ABCDEF0123456789ABCDEF"
# 2026-11-28 15:59:59 UTC is 23:59:59 in Shanghai; a second later the Shanghai day is the 29th.
BEFORE_MIDNIGHT = datetime(2026, 11, 28, 15, 59, 59, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_days_are_shanghai_days() -> None:
    assert day_of(BEFORE_MIDNIGHT) == date(2026, 11, 28)
    assert day_of(BEFORE_MIDNIGHT + 1) == date(2026, 11, 29)
    assert next_midnight(BEFORE_MIDNIGHT) == BEFORE_MIDNIGHT + 1
    assert next_midnight(BEFORE_MIDNIGHT + 1) == BEFORE_MIDNIGHT + 1 + 86400
    assert last_days(date(2026, 3, 1), 3) == [date(2026, 2, 27), date(2026, 2, 28),
                                              date(2026, 3, 1)]


@pytest.mark.parametrize("ms", [0.07, 0.5, 1.0, 3.3, 17.0, 250.0, 999.9, 12_345.0])
def test_a_latency_bucket_holds_its_duration_within_19_percent(ms: float) -> None:
    bucket = bucket_of(ms)
    assert upper_bound(bucket - 1) < ms <= upper_bound(bucket)
    assert upper_bound(bucket) / ms < 2 ** 0.25 + 1e-9


def test_latency_buckets_are_bounded() -> None:
    assert bucket_of(0) == bucket_of(-5) == bucket_of(float("nan")) == FIRST_BUCKET
    assert bucket_of(1e12) == bucket_of(float("inf")) == LAST_BUCKET


def test_percentiles_from_a_histogram() -> None:
    histogram = {bucket_of(10): 50, bucket_of(100): 40, bucket_of(1000): 10}
    p50, p90, p99 = percentiles(histogram, (0.5, 0.9, 0.99))
    assert p50 == upper_bound(bucket_of(10))
    assert p90 == upper_bound(bucket_of(100))
    assert p99 == upper_bound(bucket_of(1000))
    assert percentiles({}, (0.5, 0.9)) == [None, None]


def outcome(**fields: object) -> Outcome:
    values: dict[str, object] = {"service": "App.QQ.UserImage", "app_key": KEY, "ret": 200}
    values.update(fields)
    return Outcome(**values)  # type: ignore[arg-type]


def test_recorder_counts_each_kind_of_answer() -> None:
    recorder = StatsRecorder(clock=Clock(BEFORE_MIDNIGHT))
    recorder.observe(outcome(cache="HIT"))
    recorder.observe(outcome(cache="MISS", upstream_fetch=True, upstream_ms=12.0))
    recorder.observe(outcome(cache="MISS", upstream_fetch=True, upstream_ms=900.0, err_code=-2))
    recorder.observe(outcome(ret=400))
    recorder.observe(outcome(ret=400))
    recorder.observe(outcome(member="A" * 32, cache="HIT"))
    recorder.observe(outcome(member="A" * 32, cache="HIT"))
    recorder.observe(outcome(member="B" * 32, cache="STALE"))
    assert recorder.pending_calls == 8
    batch = recorder.take()
    day = date(2026, 11, 28)
    assert batch.counts == {
        # calls, system_errors, cache_hits, upstream_fetches
        (day, KEY, "App.QQ.UserImage", 200): [6, 1, 3, 2],
        (day, KEY, "App.QQ.UserImage", 400): [2, 0, 0, 0],
    }
    assert batch.members == {(day, KEY): {"A" * 32, "B" * 32}}
    assert batch.latency == {(day, bucket_of(12.0)): 1, (day, bucket_of(900.0)): 1}
    assert recorder.pending_calls == 0 and not recorder.take()


def test_unknown_apps_and_services_are_pooled() -> None:
    recorder = StatsRecorder(clock=Clock(BEFORE_MIDNIGHT))
    recorder.observe(outcome(app_key=None, ret=406))
    recorder.observe(outcome(app_key=None, service="App.Site.Index"))
    for made_up in ("App.Made.Up1", "App.Made.Up2", "x" * 500):
        recorder.observe(outcome(app_key=None, service=made_up, ret=404))
    recorder.observe(outcome(member="C" * 32, app_key=None, ret=406))  # no app: no member
    day = date(2026, 11, 28)
    batch = recorder.take()
    assert batch.counts == {
        (day, NO_APP, "App.QQ.UserImage", 406): [2, 0, 0, 0],
        (day, NO_APP, "App.Site.Index", 200): [1, 0, 0, 0],
        (day, NO_APP, UNKNOWN_SERVICE, 404): [3, 0, 0, 0],
    }
    assert batch.members == {}


def test_calls_after_shanghai_midnight_count_on_the_new_day() -> None:
    clock = Clock(BEFORE_MIDNIGHT)
    recorder = StatsRecorder(clock=clock)
    recorder.observe(outcome())
    clock.now += 1
    recorder.observe(outcome())
    recorder.observe(outcome())
    counts = recorder.take().counts
    assert counts[(date(2026, 11, 28), KEY, "App.QQ.UserImage", 200)][0] == 1
    assert counts[(date(2026, 11, 29), KEY, "App.QQ.UserImage", 200)][0] == 2


def test_a_batch_given_back_merges_with_newer_counts() -> None:
    recorder = StatsRecorder(clock=Clock(BEFORE_MIDNIGHT))
    recorder.observe(outcome(member="A" * 32, upstream_ms=5.0, upstream_fetch=True))
    failed = recorder.take()
    recorder.observe(outcome(member="B" * 32, upstream_ms=5.0, upstream_fetch=True))
    recorder.give_back(failed)
    batch = recorder.take()
    day = date(2026, 11, 28)
    assert batch.counts == {(day, KEY, "App.QQ.UserImage", 200): [2, 0, 0, 2]}
    assert batch.members == {(day, KEY): {"A" * 32, "B" * 32}}
    assert batch.latency == {(day, bucket_of(5.0)): 2}
    assert batch.calls == 2 and not StatsBatch()
