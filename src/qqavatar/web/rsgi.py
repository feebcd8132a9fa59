"""The same application on granian's RSGI interface, the leanest serving path we measured.

RSGI hands a request over as one object and takes the answer in one call
(`response_bytes`), without ASGI's per-message dicts and send/receive round trips:
on a cached avatar that is most of what a Python server costs (docs/benchmarks.md).

`QQAvatarRSGI` wraps a `QQAvatarApp`. API calls (`/`, `/api/…`) are served here
directly and must answer exactly as `QQAvatarApp._http` does (tests/integration/
test_servers.py compares both servers); everything else — pages, and every request
when the access log is on — runs the ASGI app itself through `asgi_bridge`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from .. import identity
from ..apicall import ApiReply, ApiRequest
from ..logs import REQUEST_ID, new_request_id, request_id_for
from ..protocol.errors import ApiError
from ..protocol.names import requested_service
from ..protocol.numbers import client_int
from ..proxies import TrustedProxies
from ..settings import Settings

# The path rules and the 405 answer are the ASGI app's own: one definition for both.
from .app import (
    _ALLOWED_METHODS,
    _API_PATH,
    QQAvatarApp,
    freeze_heap,
    merge_slashes,
    method_not_allowed,
    refuse,
)
from .asgi_bridge import latin1, receiver, run_asgi
from .replies import KeptReplies
from .request import (
    CLOSE,
    MAX_BODY_BYTES,
    add_body,
    body_too_large,
    parse_query,
    read_body,
    too_slow,
)

if TYPE_CHECKING:
    from granian._granian import RSGIHeaders
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

log = logging.getLogger(__name__)

_NOSNIFF = ("x-content-type-options", "nosniff")


class HeaderView(Mapping[str, str]):
    """The request headers as a read-only mapping, read lazily: most calls never look."""

    __slots__ = ("_headers",)

    def __init__(self, headers: RSGIHeaders) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        value: str | None = self._headers.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value: str | None = self._headers.get(name)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._headers

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self._headers.keys()))

    def __len__(self) -> int:
        return len(dict.fromkeys(self._headers.keys()))


def peer_host(peer: str) -> str | None:
    """`127.0.0.1:5000` → `127.0.0.1`; `[::1]:5000` → `::1`."""
    host = peer.rpartition(":")[0]
    return host.strip("[]") or None


def request_id(headers: RSGIHeaders) -> str:
    """The client's sane `X-Request-Id`, else a new id (the rules of `logs.request_id_for`)."""
    value: str | None = headers.get("x-request-id")
    if value is None:
        return new_request_id()
    return request_id_for({"headers": [(b"x-request-id", latin1(value))]})


def head_of(reply: ApiReply) -> list[tuple[str, str]]:
    """The response headers but the request id (the server adds Content-Length, none on a
    304, and leaves out the body of a HEAD answer)."""
    return [("content-type", reply.content_type), _NOSNIFF, identity.SERVED_BY, *reply.headers]


def respond(proto: HTTPProtocol, reply: ApiReply, rid: str,
            close: bool = False) -> list[tuple[str, str]]:
    """Send `reply` (`close`: and end the connection); its `head_of` is returned (what a kept
    answer sends again)."""
    head = head_of(reply)
    sent = [*head, ("x-request-id", rid), CLOSE] if close else [*head, ("x-request-id", rid)]
    proto.response_bytes(reply.status, sent, reply.body)
    return head


def conditional(headers: RSGIHeaders) -> bool:
    """Does the request ask for a 304 (its answer then depends on its headers)?"""
    return "if-none-match" in headers or "if-modified-since" in headers


def plain(headers: RSGIHeaders) -> bool:
    """Neither conditional nor carrying a body: a kept answer is the whole answer to it."""
    return not ("if-none-match" in headers or "if-modified-since" in headers
                or "content-length" in headers or "transfer-encoding" in headers)


def unread_body(headers: RSGIHeaders) -> bool:
    """Does a GET or HEAD carry a body? It is not read, so its answer closes the connection:
    granian would close it after the answer anyway, now and then without saying so, and a
    pooled client would send its next call down a dead connection."""
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


async def read_rsgi_params(scope: Scope, headers: RSGIHeaders, proto: HTTPProtocol,
                           timeout: float) -> dict[str, str]:
    """`request.read_params` on RSGI. A body of declared length is read in one await, at wire
    speed; a chunked one chunk by chunk (granian has no bound of its own on a whole body),
    each read a round trip: `read_body` bounds how many."""
    params = parse_query(scope.query_string)
    declared = headers.get("content-length")
    if declared is None or "transfer-encoding" in headers:
        body = await read_body(receiver(proto), timeout)
    else:
        length = client_int(declared)
        if length is None or length > MAX_BODY_BYTES:
            raise body_too_large()
        try:
            async with asyncio.timeout(timeout):
                body = await proto()
        except TimeoutError:
            raise too_slow(timeout) from None
    return await add_body(params, headers.get("content-type", ""), body)


class QQAvatarRSGI:
    """An RSGI application (granian `--interface rsgi`)."""

    def __init__(self, app: QQAvatarApp) -> None:
        self.app = app
        self.proxies = TrustedProxies(app.settings.trusted_proxies)
        # Off with the access log: every request then runs through the ASGI app.
        self.kept: KeptReplies | None = None if app.access_log else KeptReplies()

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Called in each worker before its loop runs: start up on that loop, as ASGI's lifespan.
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self.app.startup())
        freeze_heap()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.app.shutdown())
        log.info("Finished server process [%d]", os.getpid())

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        # One coroutine for the whole API call: every extra await level costs on the hot path.
        if scope.proto != "http":  # websockets are turned off in the server
            return
        app = self.app
        path = scope.path
        if "//" in path:  # `//?s=…` is `/?s=…`, as `app` reads it
            path = merge_slashes(path)
        kept_replies, gateway = self.kept, app.gateway
        key = None  # under which this request's answer is kept: GETs only
        if kept_replies is not None and gateway is not None and scope.method == "GET":
            # The same URL again: its kept answer, if the gateway says it still holds.
            key = path + "?" + scope.query_string
            kept = kept_replies.get(key)
            if kept is not None:
                headers = scope.headers
                if plain(headers) and gateway.replay(kept[0]):
                    rid_header = ("x-request-id", request_id(headers))
                    proto.response_bytes(kept[1], [*kept[2], rid_header], kept[3])
                    return
        if path == "/":
            service = None
        else:
            match = _API_PATH.fullmatch(path)
            if match is None:
                await run_asgi(app, scope, proto)
                return
            service = match.group(1).replace("/", ".")
        if app.access_log:  # the access log wraps the ASGI app: run that, unchanged
            await run_asgi(app, scope, proto)
            return
        assert gateway is not None, "startup has not run"
        headers = scope.headers  # a new object at each access
        rid = request_id(headers)
        token = REQUEST_ID.set(rid)
        try:
            method = scope.method
            if method not in _ALLOWED_METHODS:
                respond(proto, method_not_allowed(method, unread_body(headers)), rid)
                return
            close = False
            try:
                if method == "POST":
                    params = await read_rsgi_params(scope, headers, proto,
                                                    app.settings.client_timeout)
                else:
                    params = parse_query(scope.query_string)
                    if unread_body(headers):
                        close, key = True, None  # an answer that closes is not kept
            except ApiError as error:  # the body was unreadable
                respond(proto, refuse(gateway, scope.query_string, error), rid)
                return
            if service is None:
                try:
                    service = requested_service(params)
                except ApiError as error:
                    respond(proto, gateway.reject(params, error), rid)
                    return
            client, scheme = peer_host(scope.client), scope.scheme
            if self.proxies:
                client, scheme = self.proxies.apply(client, scheme, headers.items())
            request = ApiRequest(service, params, HeaderView(headers), client, method,
                                 scheme=scheme, server=scope.server)
            reply = await gateway.handle(request, keep=key is not None)
            head = respond(proto, reply, rid, close)
            if (reply.kept is not None and kept_replies is not None and key is not None
                    and not conditional(headers)):
                kept_replies.put(key, reply, head)
        finally:
            REQUEST_ID.reset(token)


def create_rsgi_app(settings: Settings | None = None) -> QQAvatarRSGI:
    """Factory for `granian --interface rsgi --factory`."""
    return QQAvatarRSGI(QQAvatarApp(settings or Settings()))
