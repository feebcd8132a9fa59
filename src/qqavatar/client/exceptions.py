"""What can go wrong when calling a qqavatar (or YesApi) server, as typed exceptions.

    QQAvatarError
    ├── TransportError       the server could not be reached or the connection broke
    ├── ProtocolError        the answer is neither an envelope nor an image
    ├── AuthMismatch         an answer (ret 200) whose `_auth` does not hold for our secret
    ├── ApiError             `ret` is not 200: `.ret`, `.msg`, `.authentic`
    │   ├── ClientError      4xx, the request's fault (never retried)
    │   │   └── BadRequest 400, SessionExpired 401, IpForbidden 402, UnknownService 404,
    │   │       UnknownApp 406, RateLimited 408, BadSignature 409, QuotaExceeded 413
    │   └── ServerError      5xx
    └── ServiceError         `ret` 200 but `data.err_code` != 0: `.err_code`, `.err_msg`
        ├── UpstreamUnavailable  err_code < 0, a system failure (retried)
        └── BusinessError        err_code > 0, e.g. a wrong password
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class QQAvatarError(Exception):
    """Base of every error the client raises."""


class TransportError(QQAvatarError):
    """No answer: connection refused or reset, a timeout. The httpx error is `__cause__`.

    `maybe_sent` is False when the request surely never reached the server (it could
    not connect), so sending it again cannot do anything twice.
    """

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class ProtocolError(QQAvatarError):
    """An answer that is not what a YesApi server sends (e.g. a proxy's HTML error page)."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class AuthMismatch(QQAvatarError):
    """The envelope's `_auth` is missing or wrong: the answer is not from a server that
    knows our app_secret (wrong secret, or altered on the way)."""

    def __init__(self, message: str, *, expected: str | None = None,
                 received: str | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class ApiError(QQAvatarError):
    """The server refused the call: `ret` (not 200) and its message, verbatim.

    `authentic` says whether the refusal's `_auth` held: None when it could not be
    checked (no app_secret given, or the server refused before it knew the app).
    A refusal is raised even when its `_auth` does not hold: the call failed either
    way, and with a wrong app_secret the server's own word (`签名错误`) says more than
    an AuthMismatch would.
    """

    def __init__(self, ret: int, msg: str, *, http_status: int | None = None,
                 authentic: bool | None = None) -> None:
        super().__init__(f"ret {ret}: {msg}")
        self.ret = ret
        self.msg = msg
        self.http_status = http_status
        self.authentic = authentic


class ClientError(ApiError):
    """ret 4xx: the request is wrong; sending it again will not help."""


class BadRequest(ClientError):
    """400: a missing or malformed parameter (also a missing `sign` when signing is on)."""


class SessionExpired(ClientError):
    """401: the uuid/token pair does not hold."""


class IpForbidden(ClientError):
    """402: the app does not accept calls from this IP."""


class UnknownService(ClientError):
    """404: no such service on this server."""


class UnknownApp(ClientError):
    """406: the app_key is unknown here (or not bound to this domain)."""


class RateLimited(ClientError):
    """408: too many calls per second for this app."""


class BadSignature(ClientError):
    """409: `sign` does not match (wrong app_secret)."""


class QuotaExceeded(ClientError):
    """413: the app's daily or monthly quota is used up."""


class ServerError(ApiError):
    """ret 5xx: the server failed."""


class ServiceError(QQAvatarError):
    """ret 200 with a non-zero `data.err_code`: the call was valid but did not succeed."""

    def __init__(self, err_code: int, err_msg: str, *, data: Mapping[str, Any] | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(f"err_code {err_code}: {err_msg}")
        self.ret = 200
        self.err_code = err_code
        self.err_msg = err_msg
        self.data: Mapping[str, Any] = data or {}
        self.http_status = http_status


class UpstreamUnavailable(ServiceError):
    """err_code < 0: the avatar could not be fetched (upstream down, slow, or not an image)."""


class BusinessError(ServiceError):
    """err_code > 0: a business failure, e.g. `登录失败，账号不存在或密码错误`."""


CLIENT_ERRORS: Mapping[int, type[ClientError]] = {
    400: BadRequest,
    401: SessionExpired,
    402: IpForbidden,
    404: UnknownService,
    406: UnknownApp,
    408: RateLimited,
    409: BadSignature,
    413: QuotaExceeded,
}


def api_error(ret: int, msg: str, *, http_status: int | None = None,
              authentic: bool | None = None) -> ApiError:
    """The exception for an envelope whose `ret` is not 200."""
    kind: type[ApiError] = ApiError
    if 400 <= ret < 500:
        kind = CLIENT_ERRORS.get(ret, ClientError)
    elif ret >= 500:
        kind = ServerError
    return kind(ret, msg, http_status=http_status, authentic=authentic)


def service_error(err_code: int, err_msg: str, data: Mapping[str, Any],
                  http_status: int | None = None) -> ServiceError:
    """The exception for `ret` 200 with a non-zero `err_code`."""
    kind = UpstreamUnavailable if err_code < 0 else BusinessError
    return kind(err_code, err_msg, data=data, http_status=http_status)
