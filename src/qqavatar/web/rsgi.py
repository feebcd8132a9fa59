"""The same application on granian's RSGI interface, the leanest serving path we measured.

RSGI hands a request over as one object and takes the answer in one call
(`response_bytes`), without ASGI's per-message dicts and send/receive round trips:
on a cached avatar that is most of what a Python server costs (docs/benchmarks.md).

`QQAvatarRSGI` wraps a `QQAvatarApp`. An API call (`/`, `/api/…`) is served here: its
request read into an `ApiRequest`, answered by `web/dispatch.py` as on ASGI, a repeated
plain GET from its kept answer (`web/replies.py`); everything else — pages, and every
request when the access log is on — runs the ASGI app itself through `asgi_bridge`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ..apicall import ApiRequest
from ..logs import REQUEST_ID, new_request_id, request_id_for
from ..proxies import trusted_proxies
from ..settings import Settings
from .app import QQAvatarApp, freeze_heap
from .asgi_bridge import latin1, receiver, run_asgi
from .dispatch import ROOT, Headers, answer_call, api_service, head_of, merge_slashes
from .replies import KeptReplies, plain
from .request import read_body, too_slow

if TYPE_CHECKING:
    from granian._granian import RSGIHeaders
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

log = logging.getLogger(__name__)


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


async def read_rsgi_body(proto: HTTPProtocol, headers: Headers, limit: int, timeout: float
                         ) -> bytes:
    """`dispatch.BodyReader` on RSGI. A body of declared length is read in one await, at wire
    speed; a chunked one chunk by chunk (granian has no bound of its own on a whole body),
    each read a round trip: `read_body` bounds how many."""
    if "content-length" not in headers or "transfer-encoding" in headers:
        return await read_body(receiver(proto), timeout, limit)
    try:
        async with asyncio.timeout(timeout):
            body: bytes = await proto()
    except TimeoutError:
        raise too_slow(timeout) from None
    return body


class QQAvatarRSGI:
    """An RSGI application (granian `--interface rsgi`)."""

    def __init__(self, app: QQAvatarApp) -> None:
        self.app = app
        self.proxies = trusted_proxies(app.settings.trusted_proxies)
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
        # One coroutine for the edge of an API call: every extra await level costs on the hot
        # path.
        if scope.proto != "http":  # websockets are turned off in the server
            return
        app = self.app
        path = scope.path
        if "//" in path:  # `//?s=…` is `/?s=…`, as `app` reads it
            path = merge_slashes(path)
        kept_replies, gateway = self.kept, app.gateway
        key = None  # under which this request's answer is kept: GETs only
        if kept_replies is not None and gateway is not None and scope.method == "GET":
            # The same URL again: its kept answer, if the gateway says it still holds (the
            # lookup is written out here: a call level more costs on the kept path).
            key = path + "?" + scope.query_string
            kept = kept_replies.get(key)
            if kept is not None and plain(headers := scope.headers) and gateway.replay(kept[0]):
                rid_header = ("x-request-id", request_id(headers))
                proto.response_bytes(kept[1], [*kept[2], rid_header], kept[3])
                return
        service = ROOT if path == "/" else api_service(path)
        if service is None or app.access_log:
            # A page, or the access log on (it wraps the ASGI app): the ASGI app, unchanged.
            await run_asgi(app, scope, proto)
            return
        assert gateway is not None, "startup has not run"
        headers = scope.headers  # a new object at each access
        rid = request_id(headers)
        token = REQUEST_ID.set(rid)
        try:
            # granian applies no proxy headers: the trusted proxies' rule is applied here
            # (uvicorn's middleware does it on ASGI).
            client, scheme = peer_host(scope.client), scope.scheme
            if self.proxies:
                client, scheme = self.proxies.apply(client, scheme, headers.items())
            request = ApiRequest(service, {}, HeaderView(headers), client, scope.method,
                                 scheme=scheme, server=scope.server)
            reply = await answer_call(gateway, request, scope.query_string, headers,
                                      read_rsgi_body, proto, app.settings.client_timeout,
                                      keep=key is not None)
            head = head_of(reply)
            proto.response_bytes(reply.status, [*head, ("x-request-id", rid)], reply.body)
            if (reply.kept is not None and kept_replies is not None and key is not None
                    and plain(headers)):
                kept_replies.put(key, reply, head)
        finally:
            REQUEST_ID.reset(token)


def create_rsgi_app(settings: Settings | None = None) -> QQAvatarRSGI:
    """Factory for `granian --interface rsgi --factory`."""
    return QQAvatarRSGI(QQAvatarApp(settings or Settings()))
