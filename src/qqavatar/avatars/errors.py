"""The exceptions the avatar pipeline raises, with the codes callers put in `data`.

`err_code` < 0 is a system failure (the upstream), > 0 a business failure (`default=404`
for a number without an avatar of its own).
"""

from __future__ import annotations

from typing import Literal

NO_AVATAR = 1
CONNECT = -1
TIMEOUT = -2
INVALID = -3
TOO_LARGE = -4
UNAVAILABLE = -5  # the circuit breaker is open: failing fast without asking the upstream

UNAVAILABLE_MSG = "头像服务暂时不可用，请稍后重试"

# err_code → (err_msg, HTTP status for image mode)
_CATALOGUE: dict[int, tuple[str, int]] = {
    CONNECT: ("头像服务器连接失败", 502),
    TIMEOUT: ("头像服务器响应超时", 504),
    INVALID: ("头像服务器返回了无效的图片", 502),
    TOO_LARGE: ("头像图片过大", 502),
    UNAVAILABLE: (UNAVAILABLE_MSG, 503),
}

NO_AVATAR_MSG = {"user": "该QQ号没有设置头像", "group": "该QQ群没有设置头像"}

CacheState = Literal["HIT", "MISS", "STALE", "REVALIDATED"]


class AvatarError(Exception):
    """No avatar to answer with. `err_code`/`err_msg` go into `data`; `http_status` is the
    status of an image-mode answer.

    `cache` and `upstream_fetch` tell statistics where the failure came from: a failure
    remembered by the negative cache is a `HIT` that made no upstream request.
    """

    def __init__(self, err_code: int, err_msg: str, http_status: int) -> None:
        self.err_code = err_code
        self.err_msg = err_msg
        self.http_status = http_status
        self.cache: CacheState = "MISS"
        self.upstream_fetch = False
        super().__init__(err_code, err_msg, http_status)

    def __str__(self) -> str:
        return f"{self.err_code} {self.err_msg}"


class NoAvatar(AvatarError):
    """`default=404` and the number has no avatar of its own (qlogo answered its default)."""

    def __init__(self, kind: str) -> None:
        super().__init__(NO_AVATAR, NO_AVATAR_MSG.get(kind, NO_AVATAR_MSG["user"]), 404)


class UpstreamError(AvatarError):
    """qlogo could not give us a valid avatar.

    `detail` is for logs only (English, may name hosts): never shown to API callers.
    """

    def __init__(self, err_code: int, err_msg: str | None = None, http_status: int | None = None,
                 detail: str = "", host_fault: bool | None = None) -> None:
        default_msg, default_status = _CATALOGUE.get(err_code, ("头像服务器错误", 502))
        super().__init__(err_code, default_msg if err_msg is None else err_msg,
                         default_status if http_status is None else http_status)
        self.detail = detail
        self.upstream_at_fault = True  # False: we timed out (overloaded), not the upstream
        # The host failed (no connection, no answer in time, 5xx), as opposed to a bad
        # answer about one avatar (404, not an image): only the former feeds its breaker.
        self.host_fault = err_code in (CONNECT, TIMEOUT) if host_fault is None else host_fault
        self.args = (err_code, self.err_msg, self.http_status, detail, self.host_fault)

    def __str__(self) -> str:
        text = f"{self.err_code} {self.err_msg}"
        return f"{text} ({self.detail})" if self.detail else text

    def copy(self, cache: CacheState = "MISS", upstream_fetch: bool = False) -> UpstreamError:
        """A fresh instance, so waiters sharing one failure don't share one traceback."""
        twin = UpstreamError(self.err_code, self.err_msg, self.http_status, self.detail,
                             self.host_fault)
        twin.cache, twin.upstream_fetch = cache, upstream_fetch
        return twin
