"""The negative cache: an upstream failure remembered per avatar for a short while.

A number whose avatar qlogo cannot serve is asked about once per `ttl`, however often
clients ask us; meanwhile they get the same failure at once. Bounded by entries (each
is a few hundred bytes), oldest dropped first.
"""

from __future__ import annotations

from collections import OrderedDict

from .failures import UpstreamError
from .model import Key

MAX_ENTRIES = 10_000


class FailureMemory:
    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._failures: OrderedDict[Key, tuple[UpstreamError, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def remember(self, key: Key, error: UpstreamError, now: float) -> None:
        if self.ttl <= 0:
            return
        self._failures.pop(key, None)
        self._failures[key] = (error, now + self.ttl)
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)

    def recall(self, key: Key, now: float) -> UpstreamError | None:
        """The failure remembered for `key`, while it is remembered."""
        found = self._failures.get(key)
        if found is None:
            return None
        error, until = found
        if now >= until:
            del self._failures[key]
            return None
        return error

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)
