"""What a request means, for both servers: its path, method and body, the call handed to the
gateway, and the headers of its answer.

`web/app.py` (ASGI, uvicorn) and `web/rsgi.py` (RSGI, granian) only read their server's
request objects (into an `ApiRequest` still without parameters, and a `BodyReader`) and
send the reply back; the rules are here:

- the path: a run of slashes is one slash, as a PHP host behind nginx reads it (YesApi's PHP
  SDK asks for `//?s=…`); `/` and `/api/App/QQ/UserImage` are API calls, any other path is
  a page (`web/routes.py`);
- the method of an API call: GET, POST or HEAD, else 405;
- the body: a POST's is read within the API's bounds (`web/request.py`), a page's within the
  pages' (`web/pagebody.py`); any other body is left unread;
- the service (the path's, else `s=`/`service=`) and the `ApiRequest` the gateway takes;
- the answer's head: Content-Type, nosniff, X-Served-By, the reply's own headers,
  X-Request-Id, and `Connection: close` when part of the body was left unread: the connection
  cannot carry another request, and a pooled client must not send one down it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from .. import identity
from ..apicall import ApiReply, ApiRequest
from ..gateway import Gateway
from ..protocol.errors import ApiError
from ..protocol.names import requested_service
from ..protocol.numbers import client_int
from .pagebody import MAX_PAGE_BODY_BYTES, check_page_form
from .request import MAX_BODY_BYTES, UnreadBody, add_body, body_too_large, parse_query

API_METHODS = ("GET", "POST", "HEAD")
ROOT = ""  # the service of `/`: named by the parameters
_API_PATH = re.compile(r"/api/([A-Za-z0-9_]+(?:/[A-Za-z0-9_]+){1,2})/?")
_SLASHES = re.compile(r"//+")
_NOSNIFF = ("x-content-type-options", "nosniff")
CLOSE = ("connection", "close")

Header = tuple[str, str]


class Headers(Protocol):
    """The request headers as the server has them (names in lower case): read in place, the
    way that costs least on the hot path."""

    def __contains__(self, name: str, /) -> bool: ...
    def get(self, name: str, default: Any = None, /) -> Any: ...


# Where a server's body comes from (ASGI's `receive`, RSGI's protocol object).
Source = TypeVar("Source")
# `read(source, headers, limit, timeout)`: the whole body, at most `limit` bytes, within
# `timeout` seconds (UnreadBody otherwise); a declared length has been checked against `limit`.
BodyReader = Callable[[Source, Headers, int, float], Awaitable[bytes]]


def merge_slashes(path: str) -> str:
    """`//api//App/QQ/UserImage` → `/api/App/QQ/UserImage` (nginx's merge_slashes)."""
    return _SLASHES.sub("/", path)


def api_service(path: str) -> str | None:
    """The service an API path names (`ROOT` for `/`); None: the path is a page's.
    `path` has had its slashes merged."""
    if path == "/":
        return ROOT
    match = _API_PATH.fullmatch(path)
    return None if match is None else match.group(1).replace("/", ".")


def body_sent(headers: Headers) -> bool:
    """Does the request carry a body (chunked, or a Content-Length over 0)?"""
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


async def bounded_body(headers: Headers, read: BodyReader[Source], source: Source, limit: int,
                       timeout: float) -> bytes:
    """The whole body; a declared length over `limit` is refused before a byte is read."""
    declared = headers.get("content-length")
    if declared is not None and "transfer-encoding" not in headers:
        length = client_int(declared)
        if length is None or length > limit:
            raise body_too_large(limit)
    return await read(source, headers, limit, timeout)


async def read_page_body(headers: Headers, read: BodyReader[Source], source: Source,
                         timeout: float) -> bytes:
    """A page's body, within the pages' bounds; ApiError otherwise."""
    body = await bounded_body(headers, read, source, MAX_PAGE_BODY_BYTES, timeout)
    check_page_form(body, headers.get("content-type", ""))
    return body


def answer_call(gateway: Gateway, request: ApiRequest, query_string: str | bytes,
                headers: Headers, read: BodyReader[Source], source: Source, timeout: float,
                *, keep: bool = False) -> Awaitable[ApiReply]:
    """The answer to an API call. `request` is filled in here: its service as `api_service`
    gave it, its parameters from the query string and a POST body. `keep`: the edge keeps
    answers (web/replies.py) and the request is plain (no body, not conditional).

    Not a coroutine itself: a call without a body gets the gateway's own, so the hot path
    awaits no level more than the gateway's. An answer after which the connection must close
    carries `Connection: close` among its headers."""
    method = request.method
    if method == "POST":
        return _answer_with_body(gateway, request, query_string, headers, read, source,
                                 timeout)
    # Only a POST's body is read. Any other is left unread, so its answer closes the
    # connection: granian would close it anyway, now and then without saying so, and a pooled
    # client would send its next call down a dead connection.
    # `body_sent` and `_fill`, written out: a call level each costs on the full path.
    unread = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
    if method not in API_METHODS:
        return _given(method_not_allowed(method), unread)
    try:
        params = parse_query(query_string)
    except ApiError as error:
        return _given(gateway.reject({}, error), unread)
    request.params = params
    if request.service == ROOT:
        try:
            request.service = requested_service(params)
        except ApiError as error:
            return _given(gateway.reject(params, error), unread)
    if unread:  # rare: the answer closes, and is not kept
        return _closing(gateway.handle(request))
    return gateway.handle(request, keep=keep)


async def _answer_with_body(gateway: Gateway, request: ApiRequest, query_string: str | bytes,
                            headers: Headers, read: BodyReader[Source], source: Source,
                            timeout: float) -> ApiReply:
    try:
        params = parse_query(query_string)
    except ApiError as error:  # the body is left unread
        return _with_close(gateway.reject({}, error), body_sent(headers))
    try:
        body = await bounded_body(headers, read, source, MAX_BODY_BYTES, timeout)
        params = await add_body(params, headers.get("content-type", ""), body)
    except ApiError as error:  # the body was refused, perhaps before its end
        refusal = gateway.reject(parse_query(query_string), error)  # shaped by the query
        return _with_close(refusal, isinstance(error, UnreadBody))
    unnamed = _fill(gateway, request, params)
    return unnamed if unnamed is not None else await gateway.handle(request)


def _fill(gateway: Gateway, request: ApiRequest, params: dict[str, str]) -> ApiReply | None:
    """Give `request` its parameters, and its service if the path named none; the refusal
    if the parameters name none either."""
    request.params = params
    if request.service == ROOT:
        try:
            request.service = requested_service(params)
        except ApiError as error:
            return gateway.reject(params, error)
    return None


def _with_close(reply: ApiReply, close: bool) -> ApiReply:
    """`reply`, saying `Connection: close` if `close` (a reply is its caller's to change)."""
    if close:
        reply.headers.append(CLOSE)
    return reply


async def _given(reply: ApiReply, close: bool) -> ApiReply:
    return _with_close(reply, close)


async def _closing(answer: Awaitable[ApiReply]) -> ApiReply:
    return _with_close(await answer, True)


def method_not_allowed(method: str) -> ApiReply:
    body = f"Method {method[:16]} Not Allowed".encode("ascii", "replace")
    return ApiReply(405, "text/plain; charset=utf-8", body, [("Allow", ", ".join(API_METHODS))])


def page_refusal(error: ApiError) -> ApiReply:
    """The plain-text answer to a page body refused."""
    body = error.msg.encode("utf-8")
    if isinstance(error, UnreadBody):
        return ApiReply(error.status, "text/plain; charset=utf-8", body, [CLOSE])
    return ApiReply(400, "text/plain; charset=utf-8", body)


def head_of(reply: ApiReply) -> list[Header]:
    """The answer's headers but X-Request-Id (what a kept answer sends again) and
    Content-Length (granian adds it, none on a 304; the ASGI edge adds it itself)."""
    return [("content-type", reply.content_type), _NOSNIFF, identity.SERVED_BY, *reply.headers]
