"""Back-off after failed sign-ins: per client address, in each server process.

`FAILURES` wrong tokens (or used sign-in links) from one address within `WINDOW` seconds,
and that address gets 429 with `Retry-After` until the oldest of them is a window old.
A right token is refused too while an address is held back: guessing must not go on
at full speed, and the operator waits a minute at most. The table is bounded; past
`MAX_CLIENTS` addresses the least recently failed is forgotten.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

FAILURES = 5
WINDOW = 60.0
MAX_CLIENTS = 10_000


class SignInThrottle:
    def __init__(self, *, failures: int = FAILURES, window: float = WINDOW,
                 max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.window, self.max_clients = failures, window, max_clients
        self.clock = clock
        self._failed: dict[str, deque[float]] = {}  # insertion order: least recent first

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0: now."""
        times = self._recent(client)
        if times is None or len(times) < self.failures:
            return 0
        return max(1, math.ceil(times[0] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        times = self._recent(client) or deque(maxlen=self.failures)
        times.append(self.clock())
        self._failed.pop(client, None)
        self._failed[client] = times  # to the end: the most recent
        while len(self._failed) > self.max_clients:
            del self._failed[next(iter(self._failed))]

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failed.get(client)
        if times is None:
            return None
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failed[client]
            return None
        return times
