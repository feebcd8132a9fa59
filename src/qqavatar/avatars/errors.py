"""The one exception the avatar pipeline raises, with the codes callers put in `data`."""

from __future__ import annotations

CONNECT = -1
TIMEOUT = -2
INVALID = -3
TOO_LARGE = -4

# err_code → (err_msg, HTTP status for image mode)
_CATALOGUE: dict[int, tuple[str, int]] = {
    CONNECT: ("头像服务器连接失败", 502),
    TIMEOUT: ("头像服务器响应超时", 504),
    INVALID: ("头像服务器返回了无效的图片", 502),
    TOO_LARGE: ("头像图片过大", 502),
}


class UpstreamError(Exception):
    """qlogo could not give us a valid avatar.

    `err_code` (< 0) and `err_msg` go into `data`; `http_status` is the status of an
    image-mode answer. `detail` is for logs only (English, may name hosts): never shown
    to API callers.
    """

    def __init__(self, err_code: int, err_msg: str | None = None, http_status: int | None = None,
                 detail: str = "") -> None:
        default_msg, default_status = _CATALOGUE.get(err_code, ("头像服务器错误", 502))
        self.err_code = err_code
        self.err_msg = default_msg if err_msg is None else err_msg
        self.http_status = default_status if http_status is None else http_status
        self.detail = detail
        super().__init__(err_code, self.err_msg, self.http_status, detail)

    def __str__(self) -> str:
        text = f"{self.err_code} {self.err_msg}"
        return f"{text} ({self.detail})" if self.detail else text

    def copy(self) -> UpstreamError:
        """A fresh instance, so waiters sharing one failure don't share one traceback."""
        return UpstreamError(self.err_code, self.err_msg, self.http_status, self.detail)
