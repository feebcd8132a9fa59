"""Python SDK for qqavatar (and YesApi) servers: `Client` (blocking) and `AsyncClient`.

    from qqavatar.client import Client, UpstreamUnavailable

    with Client("http://127.0.0.1:8000", APP_KEY, APP_SECRET) as client:
        avatar = client.user_image(376741929, size=640)    # Image: .content, .content_type …
        encoded = client.group_image_base64(123456789)      # EncodedImage: .base64, .content

Needs only httpx. With an app_secret every request is signed and every envelope's
`_auth` verified; errors are the typed exceptions below (see `errors`).
"""

from .asynchronous import AsyncClient
from .exceptions import (
    ApiError,
    AuthMismatch,
    BadRequest,
    BadSignature,
    BusinessError,
    ClientError,
    IpForbidden,
    ProtocolError,
    QQAvatarError,
    QuotaExceeded,
    RateLimited,
    ServerError,
    ServiceError,
    SessionExpired,
    TransportError,
    UnknownApp,
    UnknownService,
    UpstreamUnavailable,
)
from .models import EncodedImage, Image, Session
from .sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthMismatch",
    "BadRequest",
    "BadSignature",
    "BusinessError",
    "Client",
    "ClientError",
    "EncodedImage",
    "Image",
    "IpForbidden",
    "ProtocolError",
    "QQAvatarError",
    "QuotaExceeded",
    "RateLimited",
    "ServerError",
    "ServiceError",
    "Session",
    "SessionExpired",
    "TransportError",
    "UnknownApp",
    "UnknownService",
    "UpstreamUnavailable",
]
