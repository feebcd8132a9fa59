"""App.QQ.UserImage and App.QQ.GroupImage: the avatar as image bytes or base64 in `data`.

Every answer says where the avatar came from in `X-Cache` (HIT, MISS, STALE, REVALIDATED;
a failure remembered by the negative cache is a HIT). Image answers carry `ETag`,
`Last-Modified`, `Cache-Control: public, max-age=<seconds of freshness left>` (0 for a
stale copy), `X-Avatar-Size` (the pixel size actually served) and `X-Avatar-Default`, and
answer `If-None-Match` (which wins, RFC 9110 §13.2.2) and `If-Modified-Since` with 304.

No `Vary`: the answer depends on the URL's parameters only, never on request headers
(`format` is a parameter, not negotiated from `Accept`); the conditional headers only
choose between 200 and 304 of one representation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..apicall import ApiReply, Call, Result
from ..avatars import Avatar, AvatarError, CacheState
from ..avatars.headers import image_headers
from ..avatars.model import Source
from ..components import Runtime
from ..httpcache import not_modified
from ..protocol.avatar_errors import failure_answer
from ..protocol.phpjson import dumps
from .digests import DATA_HEAD, DataDigests

_X_CACHE: dict[str, tuple[tuple[str, str], ...]] = {
    state: (("X-Cache", state),) for state in ("HIT", "MISS", "STALE", "REVALIDATED")}
_CONDITIONAL_METHODS = ("GET", "HEAD")
DIGESTS = DataDigests()  # this process's hot tier of data JSON pieces and md5 states


async def avatar(runtime: Runtime, call: Call) -> Result:
    values = call.values
    kind = call.service.avatar_kind
    number, size = values[call.service.number_param], values["size"]
    fmt: str = values.get("format") or ""
    default: str = values.get("default") or "qq"
    found = runtime.avatars.cached(kind, number, size, fmt, default)
    if found is not None:  # the hot path: the answer and where it came from, nothing more
        lookup = (kind, number, size, fmt, default)
        key = (kind, number, size, "") if not fmt and default == "qq" else None
        if call.image_mode:  # `_answer`, inlined
            request = call.request
            max_age = max_age_of(found, "HIT")
            reply = image_reply(found, request.headers, "HIT", request.method, max_age)
            # The answer holds until its max-age would count down (a 304 depends on headers).
            source = None if reply.status == 304 else Source(
                lookup, found, found.expires_at - max_age, key)
            return Result(reply=reply, cache="HIT", source=source)
        result = _answer(call, found, "HIT", False, None)
        result.source = Source(lookup, found, found.expires_at, key)
        return result
    started = time.perf_counter()
    limits = runtime.client_limits
    try:
        if limits is None or runtime.avatars.fetching(kind, number, size):
            served = await runtime.avatars.fetch(kind, number, size, fmt, default)
        else:  # a fetch of its own: in turn with other clients' (limits/fairgate.py)
            async with limits.miss(call):
                served = await runtime.avatars.fetch(kind, number, size, fmt, default)
    except AvatarError as failure:
        waited = (time.perf_counter() - started) * 1000 if failure.upstream_fetch else None
        answer = failure_answer(failure)
        data = dumps({"err_code": answer.err_code, "err_msg": answer.err_msg, "img": ""})
        return Result(data=data, err_code=answer.err_code, http_status=answer.http_status,
                      cache=failure.cache, upstream_fetch=failure.upstream_fetch,
                      upstream_ms=waited, headers=_X_CACHE[failure.cache])
    waited = None
    if served.upstream_fetch and served.cache in ("MISS", "REVALIDATED"):
        waited = (time.perf_counter() - started) * 1000
    return _answer(call, served.avatar, served.cache, served.upstream_fetch, waited)


def _answer(call: Call, found: Avatar, cache: CacheState, upstream_fetch: bool,
            waited: float | None) -> Result:
    if call.image_mode:
        reply = image_reply(found, call.request.headers, cache, call.request.method)
        return Result(reply=reply, cache=cache, upstream_fetch=upstream_fetch,
                      upstream_ms=waited)
    b64, tail, state = DIGESTS.of(found)
    return Result(data=(DATA_HEAD, b64, tail), cache=cache,
                  upstream_fetch=upstream_fetch, upstream_ms=waited, headers=_X_CACHE[cache],
                  data_md5=state)


def max_age_of(found: Avatar, cache: CacheState) -> int:
    """Seconds of freshness left, for Cache-Control."""
    # A stale copy is answered once, not kept: caches must come back for the fresh one.
    return 0 if cache == "STALE" else max(0, int(found.expires_at - time.monotonic()))


def image_reply(found: Avatar, headers: Mapping[str, str], cache: CacheState = "HIT",
                method: str = "GET", max_age: int | None = None) -> ApiReply:
    if max_age is None:
        max_age = max_age_of(found, cache)
    reply_headers = image_headers(found, max_age, cache)
    if method in _CONDITIONAL_METHODS and not_modified(found.etag, found.modified_at, headers):
        return ApiReply(304, found.content_type, b"", reply_headers)
    return ApiReply(200, found.content_type, found.body, reply_headers)
