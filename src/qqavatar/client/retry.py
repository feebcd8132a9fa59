"""When a failed call is sent again, and after how long."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .calls import Call
from .exceptions import TransportError, UpstreamUnavailable


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2          # attempts after the first
    backoff: float = 0.25     # seconds before the first retry (about; jittered)
    max_backoff: float = 4.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff must not be negative")

    def should_retry(self, error: Exception, call: Call[Any]) -> bool:
        """System failures only: err_code < 0, or no answer at all. Never a 4xx or a 5xx."""
        if isinstance(error, UpstreamUnavailable):
            return True
        if isinstance(error, TransportError):
            # A call that may have reached the server is sent again only if that is harmless.
            return call.idempotent or not error.maybe_sent
        return False

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based): exponential, with
        "equal jitter" so many clients that failed together do not retry together."""
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)
