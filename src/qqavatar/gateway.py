"""One API call from parameters to reply, in PhalApi's order.

service lookup (404) → parameter rules, common then the service's (400)
→ app (406) → signature (400/409) → the service itself → envelope or image.

This module knows YesApi, not HTTP: it takes a service name and a flat dict of
parameters, and gives back a status, a content type, headers and bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import __version__
from .avatars import Avatar, AvatarService, UpstreamError
from .protocol import errors
from .protocol.envelope import envelope, is_valid_callback, jsonp
from .protocol.errors import ApiError
from .protocol.params import parse, parse_bool
from .protocol.phpjson import dumps, encode_str
from .protocol.sign import verify_sign
from .services import COMMON_RULES, ENVELOPE_RULES, SERVICES, Service, resolve

log = logging.getLogger(__name__)

JSON_TYPE = "application/json;charset=utf-8"
JSONP_TYPE = "text/javascript; charset=utf-8"


class AppLike(Protocol):
    @property
    def app_key(self) -> str: ...
    @property
    def app_secret(self) -> str: ...
    @property
    def sign_required(self) -> bool: ...


class AppLookup(Protocol):
    def get(self, app_key: str) -> AppLike | None: ...


@dataclass(slots=True)
class ApiCall:
    service: str                      # as named by the URL or `service`/`s`; "" → Site.Index
    params: dict[str, str]
    if_none_match: str | None = None


@dataclass(slots=True)
class ApiReply:
    status: int
    content_type: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Context:
    """What is known about the caller so far; shapes the error reply too."""

    t: int
    secret: str | None = None
    image_mode: bool = False
    return_data: bool = False
    callback: str | None = None


class Gateway:
    def __init__(
        self,
        *,
        apps: AppLookup,
        avatars: AvatarService,
        mirror_status: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.apps = apps
        self.avatars = avatars
        self.mirror_status = mirror_status
        self.clock = clock

    def _context(self, params: dict[str, str]) -> _Context:
        callback = params.get("callback")
        return _Context(
            t=int(self.clock()),
            callback=callback if callback is not None and is_valid_callback(callback) else None,
            return_data=parse_bool(params.get("return_data", "0")),
        )

    def reject(self, params: dict[str, str], error: ApiError) -> ApiReply:
        """An error found before the call could be read (e.g. a malformed body)."""
        return self._error(self._context(params), error)

    async def handle(self, call: ApiCall) -> ApiReply:
        params = call.params
        ctx = self._context(params)
        try:
            service = resolve(call.service or "App.Site.Index")
            if service.image:
                ctx.image_mode = parse_bool(params.get("output", "1"))
            if not service.needs_app:
                parse(params, ENVELOPE_RULES)
                return self._envelope(ctx, 200, dumps(self._site_index()), "")
            values, app = self._authenticate(ctx, service, params)
            return await self._avatar(ctx, service, values, call.if_none_match)
        except ApiError as error:
            return self._error(ctx, error)
        except Exception:  # a bug must not become a stack trace on the wire
            log.exception("unhandled error in %s", call.service)
            return self._error(ctx, errors.server_error("内部错误，请稍后重试"))

    def _authenticate(
        self, ctx: _Context, service: Service, params: dict[str, str]
    ) -> tuple[dict[str, Any], AppLike]:
        common = parse(params, COMMON_RULES)
        app = self.apps.get(common["app_key"])
        if app is not None:
            ctx.secret = app.app_secret
        if (common["uuid"] is None) != (common["token"] is None):
            raise errors.uuid_without_token()
        values = parse(params, service.rules)
        if app is None:
            raise errors.unknown_app()
        sign = common["sign"]
        if sign is None:
            if app.sign_required:
                raise errors.missing("sign")
        elif not verify_sign(params, app.app_secret, sign):
            raise errors.bad_sign()
        return values, app

    async def _avatar(
        self, ctx: _Context, service: Service, values: dict[str, Any], if_none_match: str | None
    ) -> ApiReply:
        number, size = values[service.number_param], values["size"]
        try:
            avatar = self.avatars.cached(service.avatar_kind, number, size)  # type: ignore[arg-type]
            if avatar is None:
                avatar = await self.avatars.get(service.avatar_kind, number, size)  # type: ignore[arg-type]
        except UpstreamError as failure:
            data = dumps({"err_code": failure.err_code, "err_msg": failure.err_msg, "img": ""})
            status = failure.http_status if ctx.image_mode else 200
            return self._envelope(ctx, 200, data, "", http_status=status)
        if ctx.image_mode:
            return _image_reply(avatar, if_none_match)
        return self._envelope(ctx, 200, _avatar_data(avatar), "")

    def _site_index(self) -> dict[str, object]:
        return {
            "name": "qqavatar",
            "version": __version__,
            "services": [service.name for service in SERVICES.values()],
        }

    def _error(self, ctx: _Context, error: ApiError) -> ApiReply:
        status = error.ret if ctx.image_mode else None
        return self._envelope(ctx, error.ret, b"{}", error.msg, http_status=status)

    def _envelope(
        self, ctx: _Context, ret: int, data: bytes, msg: str, *, http_status: int | None = None
    ) -> ApiReply:
        body = data if ctx.return_data else envelope(ret, data, msg, ctx.t, ctx.secret)
        content_type = JSON_TYPE
        if ctx.callback is not None:
            body, content_type = jsonp(ctx.callback, body), JSONP_TYPE
        if http_status is None:
            http_status = ret if self.mirror_status else 200
        return ApiReply(http_status, content_type, body, [("Cache-Control", "no-store")])


def _avatar_data(avatar: Avatar) -> bytes:
    """`data` for output=0, assembled from ready pieces (the base64 is pre-escaped)."""
    return b"".join((
        b'{"err_code":0,"err_msg":"","img":"',
        avatar.b64_json,
        b'","is_default":', b"true" if avatar.is_default else b"false",
        b',"content_type":', encode_str(avatar.content_type).encode("utf-8"),
        b"}",
    ))


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a list, or `*`."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _image_reply(avatar: Avatar, if_none_match: str | None) -> ApiReply:
    max_age = max(0, int(avatar.expires_at - time.monotonic()))
    headers = [
        ("ETag", avatar.etag),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("X-Avatar-Default", "1" if avatar.is_default else "0"),
    ]
    if if_none_match is not None and _etag_matches(if_none_match, avatar.etag):
        return ApiReply(304, avatar.content_type, b"", headers)
    return ApiReply(200, avatar.content_type, avatar.body, headers)
