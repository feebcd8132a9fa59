"""Prometheus metrics, correct with one worker or many.

With several workers (`qqavatar serve --workers N`) every worker writes its values to
files in `PROMETHEUS_MULTIPROC_DIR` (the serve command makes a fresh one per run) and
`/metrics`, answered by whichever worker gets the scrape, adds them up. With one worker
the values live in memory. The mode is fixed when this module is first imported, which
happens in the worker after the serve command has set (or removed) the variable.

What feeds what:
- requests, their latency and cache hits/misses: the gateway observer (`RequestMetrics`),
  plain counts per call, moved into the Prometheus objects when `/metrics` is read (one
  worker) or at once (several);
- cache bytes/entries: read from `runtime.avatars.cache` at scrape time (one worker) or
  every second by each worker (several);
- upstream latency/errors, single-flight waits, shared-tier answers, statistics flushes:
  the core calls `qqavatar.metric_hooks`, which `start` connects to the functions below.

Import this module only in server processes (startup.py does): see metric_hooks.py for why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

from . import __version__, metric_hooks

if TYPE_CHECKING:
    from .apicall import Outcome
    from .components import Runtime
    from .gateway import Gateway

log = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How prometheus_client keeps values: fixed when it was first imported in this process.
MULTIPROCESS = values.ValueClass is not values.MutexValue
REFRESH_INTERVAL = 1.0  # seconds between a worker's gauge updates (several workers only)

# A cached hit is answered in well under a millisecond; a miss waits for qlogo (tens of
# ms, up to twice the upstream timeout).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0)
_LATENCY_BOUNDS = (*_LATENCY_BUCKETS, math.inf)  # as `Histogram` adds +Inf
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)

disable_created_metrics()  # type: ignore[no-untyped-call]  # `*_created`: noise here

REQUESTS = Counter("qqavatar_requests", "API calls answered, by service and ret.",
                   ["service", "ret"])
REQUEST_SECONDS = Histogram("qqavatar_request_duration_seconds",
                            "Time from the gateway taking a call to its answer, by service.",
                            ["service"], buckets=_LATENCY_BUCKETS)
CACHE_LOOKUPS = Counter("qqavatar_cache_lookups",
                        "Avatar answers by where they came from (hit: memory cache, "
                        "miss: fetched or shared a fetch, …).", ["result"])
CACHE_BYTES = Gauge("qqavatar_cache_bytes", "Bytes held by the in-memory avatar caches.",
                    multiprocess_mode="livesum")
CACHE_ENTRIES = Gauge("qqavatar_cache_entries", "Avatars held by the in-memory caches.",
                      multiprocess_mode="livesum")
CACHE_MAX_BYTES = Gauge("qqavatar_cache_max_bytes", "Bound of the in-memory avatar caches.",
                        multiprocess_mode="livesum")
UPSTREAM_SECONDS = Histogram("qqavatar_upstream_duration_seconds",
                             "Fetches from qlogo, successful or not, queueing included.",
                             buckets=_UPSTREAM_BUCKETS)
UPSTREAM_ERRORS = Counter("qqavatar_upstream_errors",
                          "Failed fetches from qlogo, by err_code (-1 unreachable, "
                          "-2 timeout, -3 not an image, -4 too large).", ["err_code"])
SHARED_LOOKUPS = Counter("qqavatar_shared_cache_lookups",
                         "Avatars the shared Redis tier gave instead of the upstream (hit: "
                         "a fresh copy, stale: an expired one, joined: another server's "
                         "fetch, waited for).", ["result"])
FLIGHT_WAITS = Counter("qqavatar_single_flight_waits",
                       "Callers that waited for a fetch another caller had started.")
FLUSH_LAG = Gauge("qqavatar_counter_flush_lag_seconds",
                  "Seconds since the statistics counters were last written to the database.",
                  multiprocess_mode="livemax")
BUILD_INFO = Gauge("qqavatar_build_info", "The running version.", ["version"],
                   multiprocess_mode="livemax")


# --- hooks for other parts of the server ---------------------------------------------------

class _FlushClock:
    last: float | None = None  # monotonic time of the last successful statistics flush


_flushes = _FlushClock()


def counters_flushed() -> None:
    """The statistics flusher wrote (or had nothing to write): the lag starts again from 0."""
    _flushes.last = time.monotonic()
    FLUSH_LAG.set(0)


def upstream_fetched(seconds: float, err_code: int = 0) -> None:
    """One fetch from qlogo ended; `err_code` < 0 when it failed."""
    UPSTREAM_SECONDS.observe(seconds)
    if err_code:
        UPSTREAM_ERRORS.labels(str(err_code)).inc()


def flight_joined() -> None:
    FLIGHT_WAITS.inc()


def shared_lookup(result: str) -> None:
    SHARED_LOOKUPS.labels(result).inc()


# --- the gateway observer ------------------------------------------------------------------

UNKNOWN_SERVICE = "unknown"


class _ServiceMetrics:
    """One service's calls: plain counts since the last flush, and its Prometheus children."""

    __slots__ = ("buckets", "latency", "name", "rets", "seconds", "tally")

    def __init__(self, name: str) -> None:
        self.name = name
        self.latency = REQUEST_SECONDS.labels(name)
        self.rets: dict[int, Counter] = {}
        self.tally: dict[int, int] = {}            # calls by ret since the last flush
        self.buckets = [0] * len(_LATENCY_BOUNDS)  # latency observations per bucket, not cumulative
        self.seconds = 0.0                         # their sum

    def ret(self, ret: int) -> Counter:
        child = self.rets.get(ret)
        if child is None:
            child = self.rets[ret] = REQUESTS.labels(self.name, str(ret))
        return child

    def flush(self) -> None:
        tally, self.tally = self.tally, {}
        for ret, count in tally.items():
            self.ret(ret).inc(count)
        buckets, self.buckets = self.buckets, [0] * len(_LATENCY_BOUNDS)
        if any(buckets):
            # What `observe` does once per call, for the whole batch: the sum, and each
            # bucket's own count (prometheus_client keeps them non-cumulative).
            # tests/unit/test_metrics_flush.py checks this against `observe`.
            latency: Any = self.latency
            latency._sum.inc(self.seconds)
            for value, count in zip(latency._buckets, buckets, strict=True):
                if count:
                    value.inc(count)
        self.seconds = 0.0


class RequestMetrics:
    """The gateway observer: per call two dict lookups and a few plain additions.

    prometheus_client takes a lock for each update (a counter and a histogram per call
    cost about a tenth of a cached hit). With one worker this observer only counts, and
    `flush` — run by every `/metrics` answer, see `exposition` — moves the counts into the
    Prometheus objects. With several workers any worker may answer a scrape, so there each
    call is flushed at once and the sums stay exact.

    Labels stay bounded: a service name nobody registered counts as `unknown` (clients
    choose those names), `ret` and cache results come from our own code.
    """

    def __init__(self, *, deferred: bool = True) -> None:
        self.deferred = deferred
        self._services: dict[str, _ServiceMetrics] = {}
        self._unknown = _ServiceMetrics(UNKNOWN_SERVICE)
        self._cache: dict[str, Counter] = {}
        self._cache_tally: dict[str, int] = {}

    def __call__(self, outcome: Outcome) -> None:
        service = self._services.get(outcome.service) or self._service(outcome.service)
        tally = service.tally
        tally[outcome.ret] = tally.get(outcome.ret, 0) + 1
        duration = outcome.duration
        service.buckets[bisect_left(_LATENCY_BOUNDS, duration)] += 1  # first bound >= it
        service.seconds += duration
        if outcome.cache is not None:
            self._cache_tally[outcome.cache] = self._cache_tally.get(outcome.cache, 0) + 1
        if not self.deferred:
            service.flush()
            self._flush_cache()

    def flush(self) -> None:
        """Move the counts so far into the Prometheus objects."""
        for service in (*self._services.values(), self._unknown):
            service.flush()
        self._flush_cache()

    def _flush_cache(self) -> None:
        cache, self._cache_tally = self._cache_tally, {}
        for result, count in cache.items():
            child = self._cache.get(result)
            if child is None:
                child = self._cache[result] = CACHE_LOOKUPS.labels(result.lower())
            child.inc(count)

    def _service(self, name: str) -> _ServiceMetrics:
        from .catalog import SERVICES

        known = SERVICES.get(name.lower())
        if known is None or known.name != name:
            return self._unknown
        service = self._services[name] = _ServiceMetrics(name)
        return service


# The observers whose counts `/metrics` must flush first (one per running app in this process).
_deferred: list[RequestMetrics] = []


# --- gauges and exposition -----------------------------------------------------------------


def refresh(runtime: Runtime) -> None:
    """Gauges that mirror state: the cache's size, the flush lag."""
    cache = runtime.avatars.cache
    CACHE_BYTES.set(cache.total_bytes)
    CACHE_ENTRIES.set(len(cache))
    CACHE_MAX_BYTES.set(cache.max_bytes)
    if _flushes.last is not None:
        FLUSH_LAG.set(time.monotonic() - _flushes.last)


def exposition(runtime: Runtime | None) -> tuple[bytes, str]:
    """The body and content type of a `/metrics` answer."""
    for observer in _deferred:
        observer.flush()
    if runtime is not None:
        refresh(runtime)
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


async def start(runtime: Runtime, gateway: Gateway) -> None:
    """The metrics feature: observe every call; with several workers, keep gauges fresh."""
    if os.environ.get(MULTIPROCESS_ENV) and not MULTIPROCESS:
        log.error("metrics: prometheus_client was imported before %s was set; /metrics "
                  "will show this worker only", MULTIPROCESS_ENV)
    metric_hooks.flight_joined = flight_joined
    metric_hooks.upstream_fetched = upstream_fetched
    metric_hooks.shared_lookup = shared_lookup
    metric_hooks.counters_flushed = counters_flushed
    observer = RequestMetrics(deferred=not MULTIPROCESS)
    gateway.observers.append(observer)
    BUILD_INFO.labels(__version__).set(1)
    if runtime.stats is not None and _flushes.last is None:
        _flushes.last = time.monotonic()  # the lag counts from the start until the first flush
    refresh(runtime)
    if not MULTIPROCESS:
        _deferred.append(observer)

        async def forget() -> None:
            _deferred.remove(observer)

        runtime.closers.append(forget)
        return
    task = asyncio.create_task(_refresh_forever(runtime), name="qqavatar-metrics-refresh")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # This worker's live gauges leave the sums; its counters stay counted.
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    runtime.closers.append(stop)


async def _refresh_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(REFRESH_INTERVAL)
        refresh(runtime)
