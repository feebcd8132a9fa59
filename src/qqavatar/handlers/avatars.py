"""App.QQ.UserImage and App.QQ.GroupImage: the avatar as image bytes or base64 in `data`."""

from __future__ import annotations

import time

from ..avatars import Avatar, UpstreamError
from ..calls import ApiReply, Call, Result
from ..protocol.phpjson import dumps, encode_str
from ..runtime import Runtime


async def avatar(runtime: Runtime, call: Call) -> Result:
    kind = call.service.avatar_kind
    number, size = call.values[call.service.number_param], call.values["size"]
    cache = "HIT"
    waited: float | None = None  # ms spent on the upstream (statistics), misses only
    try:
        found = runtime.avatars.cached(kind, number, size)
        if found is None:
            cache = "MISS"
            started = time.perf_counter()
            try:
                found = await runtime.avatars.get(kind, number, size)
            finally:
                waited = (time.perf_counter() - started) * 1000
    except UpstreamError as failure:
        data = dumps({"err_code": failure.err_code, "err_msg": failure.err_msg, "img": ""})
        return Result(data=data, err_code=failure.err_code, http_status=failure.http_status,
                      cache="MISS", upstream_fetch=True, upstream_ms=waited)
    if call.image_mode:
        reply = image_reply(found, call.request.headers.get("if-none-match"))
        return Result(reply=reply, cache=cache, upstream_fetch=cache == "MISS",
                      upstream_ms=waited)
    return Result(data=avatar_data(found), cache=cache, upstream_fetch=cache == "MISS",
                  upstream_ms=waited)


def avatar_data(found: Avatar) -> bytes:
    """`data` for output=0, assembled from ready pieces (the base64 is pre-escaped)."""
    return b"".join((
        b'{"err_code":0,"err_msg":"","img":"',
        found.b64_json,
        b'","is_default":', b"true" if found.is_default else b"false",
        b',"content_type":', encode_str(found.content_type).encode("utf-8"),
        b"}",
    ))


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a list, or `*`."""
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def image_reply(found: Avatar, if_none_match: str | None) -> ApiReply:
    max_age = max(0, int(found.expires_at - time.monotonic()))
    headers = [
        ("ETag", found.etag),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("X-Avatar-Default", "1" if found.is_default else "0"),
    ]
    if if_none_match is not None and etag_matches(if_none_match, found.etag):
        return ApiReply(304, found.content_type, b"", headers)
    return ApiReply(200, found.content_type, found.body, headers)
