"""A circuit breaker for one upstream: stop asking a host that keeps failing, then probe it.

closed ─(`threshold` different avatars fail in a row)─► open ─(`cooldown` s)─► half-open
half-open: ONE probe request goes through; success closes, failure opens again.

Failures are counted per avatar (key), once each in a streak: a client retrying one
broken avatar cannot open the breaker for everybody, but many different avatars failing
with no success in between mean the host is down. Any success ends the streak.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from time import monotonic
from typing import Literal

CircuitState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float,
                 clock: Callable[[], float] = monotonic) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failed: set[Hashable] = set()  # keys that failed in the current streak
        self._opened_at: float | None = None
        self._probing = False
        self.opened = 0  # how many times it opened, for logs and metrics

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() >= self._opened_at + self.cooldown:
            return "half-open"
        return "open"

    @property
    def retry_after(self) -> float:
        """Seconds until a probe may go (0 unless open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def allow(self) -> bool:
        """May a request go to this upstream now? In half-open, True for one probe only;
        the caller must then report `success`, `failure` or `abandon`."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() < self._opened_at + self.cooldown:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._failed.clear()
        self._opened_at = None
        self._probing = False

    def failure(self, key: Hashable) -> None:
        if self._opened_at is not None:
            if self._probing:  # the probe failed: another cool-down
                self._open()
            return  # a request from before it opened, ending late: already counted
        self._failed.add(key)
        if len(self._failed) >= self.threshold:
            self._open()

    def abandon(self) -> None:
        """The probe ended without an answer either way (cancelled): let another probe go."""
        self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        self._failed.clear()
        self.opened += 1
