"""A circuit breaker for one upstream: stop asking a host that is down, then probe it.

closed ─(within `window` s: `threshold` different avatars' host failures in a row, or
`threshold` requests or more with `ratio` or more of them host failures)─► open
open ─(`cooldown` s)─► half-open: ONE probe request goes through; an answer closes, a host
failure opens again.

The streak notices a host going down at once; the ratio, a host failing every other time
while a few answers still get through (each would end a streak).

Only the host's own failures count: no connection, no answer in time, 5xx (`failure(key)`).
An answer that is bad for one avatar (404, not an image, too large) says the host is up
(`success()`): numbers that qlogo refuses, however many, cannot open the breaker for
everybody. A key's failure counts once per window, so a client retrying one number that
times out cannot make up the ratio alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from time import monotonic
from typing import Literal

CircuitState = Literal["closed", "open", "half-open"]

WINDOW = 30.0  # seconds of outcomes the ratio is taken over
RATIO = 0.5    # the share of host failures that opens it


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float,
                 clock: Callable[[], float] = monotonic, *, window: float = WINDOW,
                 ratio: float = RATIO) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold  # the least volume (requests in the window) to judge by
        self.cooldown = cooldown
        self.window = window
        self.ratio = ratio
        self._clock = clock
        self._failed: dict[Hashable, float] = {}  # key → when it failed; oldest first
        self._streak: dict[Hashable, float] = {}  # the same, since the last answer
        self._answers: deque[list[int]] = deque()  # [second, answers in it], oldest first
        self._answered = 0  # the sum over `_answers`
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
        """The host answered. Open or half-open: it is back (closes, forgets the window)."""
        if self._opened_at is not None:
            self._reset()
            return
        now = self._clock()
        self._forget_before(now - self.window)
        self._streak.clear()
        second = int(now)
        if self._answers and self._answers[-1][0] == second:
            self._answers[-1][1] += 1
        else:
            self._answers.append([second, 1])
        self._answered += 1

    def failure(self, key: Hashable) -> None:
        """A request for `key` failed for a fault of the host's."""
        if self._opened_at is not None:
            if self._probing:  # the probe failed: another cool-down
                self._open()
            return  # a request from before it opened, ending late: already counted
        now = self._clock()
        self._forget_before(now - self.window)
        self._failed.setdefault(key, now)
        self._streak.setdefault(key, now)
        failed = len(self._failed)
        total = failed + self._answered
        if len(self._streak) >= self.threshold or (
                total >= self.threshold and failed >= self.ratio * total):
            self._open()

    def abandon(self) -> None:
        """The probe ended without an answer either way (cancelled): let another probe go."""
        self._probing = False

    def _forget_before(self, start: float) -> None:
        for failures in (self._failed, self._streak):
            while failures:
                key, at = next(iter(failures.items()))
                if at >= start:
                    break
                del failures[key]
        while self._answers and self._answers[0][0] + 1 <= start:
            self._answered -= self._answers.popleft()[1]

    def _open(self) -> None:
        self._reset()
        self._opened_at = self._clock()
        self.opened += 1

    def _reset(self) -> None:
        self._opened_at = None
        self._probing = False
        self._failed.clear()
        self._streak.clear()
        self._answers.clear()
        self._answered = 0
