"""The failures the avatar pipeline raises: what went wrong, not what to answer.

`protocol.avatar_errors` maps each to YesApi's `err_code`, `err_msg` and the HTTP status of
an image-mode answer; nothing here knows those.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

CacheState = Literal["HIT", "MISS", "STALE", "REVALIDATED"]


class Failure(IntEnum):
    """Why the upstream gave no avatar. The values are stable ids, written into the shared
    tier's Redis records and the metrics' labels (they are YesApi's err_codes by history)."""

    CONNECT = -1      # no connection, or it broke
    TIMEOUT = -2      # no answer in time (or no place at the upstream in time)
    INVALID = -3      # an answer that is no usable image (HTTP error, not an image, …)
    TOO_LARGE = -4
    UNAVAILABLE = -5  # the circuit breaker is open: failing fast without asking the upstream


CONNECT, TIMEOUT, INVALID, TOO_LARGE, UNAVAILABLE = Failure


class AvatarError(Exception):
    """No avatar to answer with.

    `cache` and `upstream_fetch` tell statistics where the failure came from: a failure
    remembered by the negative cache is a `HIT` that made no upstream request.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.cache: CacheState = "MISS"
        self.upstream_fetch = False


class NoAvatar(AvatarError):
    """`default=404` and the number has no avatar of its own (qlogo answered its default).
    `avatar_kind` is "user" or "group"."""

    def __init__(self, avatar_kind: str) -> None:
        super().__init__(avatar_kind)
        self.avatar_kind = avatar_kind

    def __str__(self) -> str:
        return f"no avatar of its own ({self.avatar_kind})"


class UpstreamError(AvatarError):
    """qlogo could not give us a valid avatar, for the reason `failure` names.

    `detail` is for logs only (English, may name hosts): never shown to API callers.
    """

    def __init__(self, failure: Failure, detail: str = "",
                 host_fault: bool | None = None) -> None:
        super().__init__(failure, detail)
        self.failure = failure
        self.detail = detail
        self.upstream_at_fault = True  # False: we timed out (overloaded), not the upstream
        # The host failed (no connection, no answer in time, 5xx), as opposed to a bad
        # answer about one avatar (404, not an image): only the former feeds its breaker.
        self.host_fault = failure in (CONNECT, TIMEOUT) if host_fault is None else host_fault
        self.args = (failure, detail, self.host_fault)

    def __str__(self) -> str:
        text = self.failure.name.lower()
        return f"{text} ({self.detail})" if self.detail else text

    def copy(self, cache: CacheState = "MISS", upstream_fetch: bool = False) -> UpstreamError:
        """A fresh instance, so waiters sharing one failure don't share one traceback."""
        twin = UpstreamError(self.failure, self.detail, self.host_fault)
        twin.cache, twin.upstream_fetch = cache, upstream_fetch
        return twin
