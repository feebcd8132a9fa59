"""What YesApi answers when there is no avatar: `data.err_code`, `data.err_msg` and the HTTP
status of an image-mode answer, for each failure the avatar pipeline raises; and the table
of them the docs show.

`err_code` < 0 is a system failure (the upstream), > 0 a business failure (`default=404`
and the number has no avatar of its own).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..avatars.failures import AvatarError, Failure, NoAvatar, UpstreamError


@dataclass(frozen=True, slots=True)
class FailureAnswer:
    err_code: int
    err_msg: str
    http_status: int  # of an image-mode answer
    meaning: str      # English, for the docs


UPSTREAM_FAILURES: dict[Failure, FailureAnswer] = {
    Failure.CONNECT: FailureAnswer(-1, "头像服务器连接失败", 502, "upstream unreachable"),
    Failure.TIMEOUT: FailureAnswer(-2, "头像服务器响应超时", 504, "upstream timed out"),
    Failure.INVALID: FailureAnswer(-3, "头像服务器返回了无效的图片", 502,
                                   "upstream answered no valid image"),
    Failure.TOO_LARGE: FailureAnswer(-4, "头像图片过大", 502, "upstream image too large"),
    Failure.UNAVAILABLE: FailureAnswer(-5, "头像服务暂时不可用，请稍后重试", 503,
                                       "upstream failing, circuit open: failing fast"),
}
_NO_AVATAR_MEANING = "default=404 and no avatar of its own"
NO_AVATAR: dict[str, FailureAnswer] = {
    "user": FailureAnswer(1, "该QQ号没有设置头像", 404, _NO_AVATAR_MEANING),
    "group": FailureAnswer(1, "该QQ群没有设置头像", 404, _NO_AVATAR_MEANING),
}


def failure_answer(error: AvatarError) -> FailureAnswer:
    """The answer to `error` (an `UpstreamError` or a `NoAvatar`)."""
    if isinstance(error, UpstreamError):
        return UPSTREAM_FAILURES[error.failure]
    if isinstance(error, NoAvatar):
        return NO_AVATAR.get(error.avatar_kind, NO_AVATAR["user"])
    raise TypeError(f"no YesApi answer for {type(error).__name__}")


# data.err_code → meaning, for the docs of the avatar services
AVATAR_ERRORS: tuple[tuple[int, str], ...] = (
    *((answer.err_code, f"{answer.err_msg} ({answer.meaning}); 图片模式 HTTP {answer.http_status}")
      for answer in UPSTREAM_FAILURES.values()),
    (1, f"该号码没有设置头像 ({_NO_AVATAR_MEANING}); 图片模式 HTTP 404"),
)
