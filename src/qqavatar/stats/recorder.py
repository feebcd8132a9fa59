"""The hot-path side of statistics: counting answered calls in memory.

`StatsRecorder.observe` is a gateway observer. Per call it does a few dict operations and
integer increments, no I/O; a flusher periodically `take`s what was counted as one
`StatsBatch` and writes it to a `StatsSink`.

What is counted where:
- calls that name a known app count under that app (including ones refused for bad
  parameters or a bad sign); calls that name no known app (ret 406, `App.Site.Index`,
  unreadable bodies) count under app_key `""`;
- calls to services that do not exist count under service `""`, so that made-up service
  names cannot grow the statistics without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from ..apicall import Outcome
from ..catalog import SERVICES
from .days import day_of, next_midnight
from .latency import bucket_of

NO_APP = ""
UNKNOWN_SERVICE = ""

# calls, system_errors (err_code < 0), cache_hits, upstream_fetches
CALLS, SYSTEM_ERRORS, CACHE_HITS, UPSTREAM_FETCHES = range(4)
CountKey = tuple[date, str, str, int]            # day, app_key, service, ret
MemberKey = tuple[date, str]                     # day, app_key
LatencyKey = tuple[date, int]                    # day, bucket


@dataclass(slots=True)
class StatsBatch:
    """Counts gathered since the last flush; added to what the store already holds."""

    counts: dict[CountKey, list[int]] = field(default_factory=dict)
    members: dict[MemberKey, set[str]] = field(default_factory=dict)
    latency: dict[LatencyKey, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counts or self.members or self.latency)

    @property
    def calls(self) -> int:
        return sum(counts[CALLS] for counts in self.counts.values())

    def merge(self, other: StatsBatch) -> None:
        """Add `other` into this batch."""
        for key, add in other.counts.items():
            mine = self.counts.get(key)
            if mine is None:
                self.counts[key] = list(add)
            else:
                for index, value in enumerate(add):
                    mine[index] += value
        for member_key, uuids in other.members.items():
            self.members.setdefault(member_key, set()).update(uuids)
        for latency_key, count in other.latency.items():
            self.latency[latency_key] = self.latency.get(latency_key, 0) + count


class StatsRecorder:
    """Counts every answered call; `observe` is the gateway observer."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._batch = StatsBatch()
        self._day = day_of(0)
        self._day_ends = 0.0           # the current day is recomputed once it has passed
        self._services: dict[str, str] = {}  # names known to exist, to skip the table lookup

    def observe(self, outcome: Outcome) -> None:
        now = self._clock()
        if now >= self._day_ends:
            self._day, self._day_ends = day_of(now), next_midnight(now)
        day = self._day
        service = self._services.get(outcome.service)
        if service is None:
            service = self._known_service(outcome.service)
        batch = self._batch
        key = (day, outcome.app_key or NO_APP, service, outcome.ret)
        counts = batch.counts.get(key)
        if counts is None:
            counts = batch.counts[key] = [0, 0, 0, 0]
        counts[CALLS] += 1
        if outcome.err_code < 0:
            counts[SYSTEM_ERRORS] += 1
        if outcome.cache == "HIT":
            counts[CACHE_HITS] += 1
        if outcome.upstream_fetch:
            counts[UPSTREAM_FETCHES] += 1
        if outcome.member is not None and outcome.app_key:
            members = batch.members.get((day, outcome.app_key))
            if members is None:
                members = batch.members[(day, outcome.app_key)] = set()
            members.add(outcome.member)
        if outcome.upstream_ms is not None:
            latency_key = (day, bucket_of(outcome.upstream_ms))
            batch.latency[latency_key] = batch.latency.get(latency_key, 0) + 1

    def take(self) -> StatsBatch:
        """Everything counted since the last `take`; counting goes on in a fresh batch."""
        batch, self._batch = self._batch, StatsBatch()
        return batch

    def give_back(self, batch: StatsBatch) -> None:
        """Return a batch that could not be written, so the next flush retries it."""
        batch.merge(self._batch)
        self._batch = batch

    @property
    def pending_calls(self) -> int:
        return self._batch.calls

    def _known_service(self, name: str) -> str:
        service = SERVICES.get(name.lower())
        if service is None:
            return UNKNOWN_SERVICE
        self._services[name] = service.name  # bounded: only names of real services
        return service.name
