"""YesApi's answers to avatar failures: every failure kind the pipeline raises has its exact
err_code, err_msg and image-mode HTTP status, and the docs' table says the same."""

from __future__ import annotations

import pytest

from qqavatar.avatars.failures import AvatarError, Failure, NoAvatar, UpstreamError
from qqavatar.catalog import USER_IMAGE
from qqavatar.protocol.avatar_errors import AVATAR_ERRORS, failure_answer


@pytest.mark.parametrize(("failure", "code", "text", "status"), [
    (Failure.CONNECT, -1, "头像服务器连接失败", 502),
    (Failure.TIMEOUT, -2, "头像服务器响应超时", 504),
    (Failure.INVALID, -3, "头像服务器返回了无效的图片", 502),
    (Failure.TOO_LARGE, -4, "头像图片过大", 502),
    (Failure.UNAVAILABLE, -5, "头像服务暂时不可用，请稍后重试", 503),
])
def test_each_upstream_failure_has_its_yesapi_answer(failure: Failure, code: int, text: str,
                                                     status: int) -> None:
    answer = failure_answer(UpstreamError(failure, detail="http://qlogo.example/: HTTP 500"))
    assert (answer.err_code, answer.err_msg, answer.http_status) == (code, text, status)
    assert (code, f"{text} ({answer.meaning}); 图片模式 HTTP {status}") in AVATAR_ERRORS


@pytest.mark.parametrize(("kind", "text"), [("user", "该QQ号没有设置头像"),
                                            ("group", "该QQ群没有设置头像")])
def test_no_avatar_is_a_business_failure(kind: str, text: str) -> None:
    answer = failure_answer(NoAvatar(kind))
    assert (answer.err_code, answer.err_msg, answer.http_status) == (1, text, 404)


def test_the_docs_list_every_failure_once() -> None:
    codes = [code for code, _ in AVATAR_ERRORS]
    assert sorted(codes) == [-5, -4, -3, -2, -1, 1]
    assert USER_IMAGE.errors == AVATAR_ERRORS


def test_the_log_text_of_a_failure_names_its_kind_not_a_yesapi_text() -> None:
    error = UpstreamError(Failure.TIMEOUT, detail="http://qlogo.example/: ReadTimeout")
    assert str(error) == "timeout (http://qlogo.example/: ReadTimeout)"
    assert error.host_fault  # the host failed: its breaker counts it
    assert not UpstreamError(Failure.INVALID).host_fault  # a bad answer about one avatar


def test_a_failure_without_an_answer_is_a_bug() -> None:
    with pytest.raises(TypeError):
        failure_answer(AvatarError())
