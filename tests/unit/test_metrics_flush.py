"""The request observer's plain counts reach Prometheus exactly as per-call updates would."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from qqavatar import metrics
from qqavatar.apicall import Outcome

SERVICE = "App.QQ.GroupImage"
# On bucket bounds, between them, past the last one, and zero (a rejected call).
DURATIONS = [0.0, 0.0005, 0.0007, 0.001, 0.003, 0.3, 7.0, 12.5, 0.0004]


def _samples(registry: CollectorRegistry, name: str, **labels: str) -> dict[str, float]:
    """The family's samples that carry `labels`, keyed by sample name and all labels."""
    found: dict[str, float] = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for sample in family.samples:
            if all(sample.labels.get(key) == value for key, value in labels.items()):
                key = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{key}}}"] = sample.value
    return found


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: round(value - before.get(key, 0.0), 9) for key, value in after.items()}


def _outcomes() -> list[Outcome]:
    rets = [200, 200, 400, 200, 406, 200, 200, 200, 500]
    caches = ["HIT", "HIT", None, "MISS", None, "HIT", "STALE", "HIT", None]
    return [Outcome(service=SERVICE, app_key=None, ret=ret, cache=cache, duration=duration)
            for ret, cache, duration in zip(rets, caches, DURATIONS, strict=True)]


def _expected_latency() -> dict[str, float]:
    reference = CollectorRegistry()
    histogram = Histogram("qqavatar_request_duration_seconds", "reference", ["service"],
                          buckets=metrics._LATENCY_BUCKETS, registry=reference)
    for duration in DURATIONS:
        histogram.labels(SERVICE).observe(duration)
    return {key: round(value, 9)
            for key, value in _samples(reference, "qqavatar_request_duration_seconds",
                                       service=SERVICE).items()}


def _read() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    return (_samples(REGISTRY, "qqavatar_requests", service=SERVICE),
            _samples(REGISTRY, "qqavatar_request_duration_seconds", service=SERVICE),
            _samples(REGISTRY, "qqavatar_cache_lookups"))


def _check_added(before: tuple[dict[str, float], ...]) -> None:
    requests, latency, cache = (
        {key: value for key, value in _delta(after, old).items() if value}
        for after, old in zip(_read(), before, strict=True))
    total = "qqavatar_requests_total{ret=%s,service=" + SERVICE + "}"
    assert requests == {total % "200": 6.0, total % "400": 1.0, total % "406": 1.0,
                        total % "500": 1.0}
    assert latency == {key: value for key, value in _expected_latency().items() if value}
    lookups = "qqavatar_cache_lookups_total{result=%s}"
    assert cache == {lookups % "hit": 4.0, lookups % "miss": 1.0, lookups % "stale": 1.0}


def test_deferred_counts_show_only_after_a_flush_and_match_per_call_updates() -> None:
    observer = metrics.RequestMetrics(deferred=True)
    before = _read()
    for outcome in _outcomes():
        observer(outcome)
    assert [_delta(after, old) for after, old in zip(_read(), before, strict=True)] == [
        dict.fromkeys(now, 0.0) for now in _read()]  # nothing reached Prometheus yet
    observer.flush()
    _check_added(before)
    observer.flush()  # a second flush adds nothing
    _check_added(before)


def test_immediate_mode_writes_each_call() -> None:
    observer = metrics.RequestMetrics(deferred=False)
    before = _read()
    for outcome in _outcomes():
        observer(outcome)
    _check_added(before)


def test_exposition_flushes_running_observers() -> None:
    observer = metrics.RequestMetrics(deferred=True)
    metrics._deferred.append(observer)
    try:
        before = _read()
        for outcome in _outcomes():
            observer(outcome)
        body, _ = metrics.exposition(None)
        _check_added(before)
        assert f'qqavatar_requests_total{{ret="406",service="{SERVICE}"}}'.encode() in body
    finally:
        metrics._deferred.remove(observer)
