"""The ASGI application (uvicorn): start-up and shut-down, and the ASGI edge of a request.

Raw ASGI on purpose: the avatar path is the hot path and needs no framework in between.
What a request means — API call or page, method, body, service, the answer's headers — is
`web/dispatch.py`'s, shared with the RSGI edge (`web/rsgi.py`); this module only reads the
ASGI scope into an `ApiRequest` and sends the answer. Pages (`routes`) run in Starlette,
their body read first within the pages' bounds; a path no page has is HTTP 404 with the
error envelope, which a YesApi client can read as any other refusal.
"""

from __future__ import annotations

import gc
import logging
import time

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from .. import identity
from ..apicall import ApiReply, ApiRequest
from ..avatars import AvatarService
from ..components import Runtime
from ..gateway import JSON_TYPE, Gateway
from ..logs import REQUEST_ID, log_access, request_id_for, with_request_id
from ..protocol import errors
from ..protocol.envelope import EMPTY_DATA, envelope
from ..protocol.errors import ApiError
from ..redislink import RedisLink
from ..secretbox import box_for
from ..settings import Settings
from ..startup import FEATURES
from ..store.apps import AppRegistry, AppStore
from ..store.db import make_engine, migrate
from .dispatch import (
    Headers,
    answer_call,
    api_service,
    body_sent,
    head_of,
    merge_slashes,
    page_refusal,
    read_page_body,
)
from .pagebody import replaying
from .request import read_body
from .routes import ROUTES

log = logging.getLogger(__name__)


class QQAvatarApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        identity.install(settings)  # X-Served-By of this process's answers
        self.access_log = settings.access_log
        self.gateway: Gateway | None = None
        self.runtime: Runtime | None = None
        self.pages = Starlette(routes=ROUTES)
        self.pages.router.default = not_found

    async def startup(self) -> None:
        settings = self.settings
        engine = make_engine(settings.effective_database_url)
        await migrate(engine)
        registry = AppRegistry(AppStore(engine, box=box_for(settings.secret_key)))
        await registry.start()
        avatars = AvatarService.from_settings(settings)
        await avatars.warm_up()
        runtime = Runtime(settings=settings, apps=registry, avatars=avatars, engine=engine,
                          closers=[engine.dispose, avatars.aclose, registry.stop])
        if settings.redis_url:
            runtime.redis = RedisLink(settings.redis_url, timeout=settings.redis_timeout)
            runtime.closers.append(runtime.redis.aclose)
            avatars.share_through(runtime.redis)
        self.runtime = runtime
        self.gateway = Gateway(runtime)
        for start in FEATURES:
            await start(runtime, self.gateway)
        self.pages.state.runtime = runtime
        self.pages.state.gateway = self.gateway

    async def shutdown(self) -> None:
        if self.runtime is None:
            return
        for close in reversed(self.runtime.closers):
            try:
                await close()
            except Exception:
                log.exception("error during shutdown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Every log record of this request carries its id (each request is its own task).
            token = REQUEST_ID.set(request_id_for(scope))
            try:
                if self.access_log:
                    await log_access(self._http, scope, receive, send)
                else:
                    await self._http(scope, receive, send)
            finally:
                REQUEST_ID.reset(token)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                freeze_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.gateway is not None, "lifespan startup has not run"
        path: str = scope["path"]
        if "//" in path:
            path = merge_slashes(path)
            scope = {**scope, "path": path}
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        service = api_service(path)
        if service is None:
            await self._page(scope, headers, receive, with_request_id(send))
            return
        client = scope.get("client")  # uvicorn has applied the trusted proxies' headers
        request = ApiRequest(service, {}, headers, client[0] if client else None,
                             scope["method"], scheme=scope.get("scheme", "http"),
                             server=scope.get("server"))
        reply = await answer_call(self.gateway, request, scope.get("query_string", b""),
                                  headers, read_asgi_body, receive, self.settings.client_timeout)
        await _send(send, scope, reply)

    async def _page(self, scope: Scope, headers: dict[str, str], receive: Receive,
                    send: Send) -> None:
        if body_sent(headers):
            try:
                body = await read_page_body(headers, read_asgi_body, receive,
                                            self.settings.client_timeout)
            except ApiError as error:
                await _send(send, scope, page_refusal(error), request_id=False)
                return
            receive = replaying(body, receive)
        await self.pages(scope, receive, send)


async def read_asgi_body(receive: Receive, headers: Headers, limit: int, timeout: float
                         ) -> bytes:
    """`dispatch.BodyReader` on ASGI."""
    return await read_body(receive, timeout, limit)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """A path no page has: HTTP 404, the body an error envelope (no app: no `_auth`)."""
    error = errors.unknown_path(scope["path"])
    body = envelope(error.ret, EMPTY_DATA, error.msg, int(time.time()), None)
    await _send(send, scope, ApiReply(404, JSON_TYPE, body, [("Cache-Control", "no-store")]),
                request_id=False)


def freeze_heap() -> None:
    """Called by a server process once its app has started: everything loaded so far lives
    as long as the process, so move it out of the garbage collector's sight; its full
    collections then scan only what requests and the cache add since."""
    gc.collect()
    gc.freeze()


async def _send(send: Send, scope: Scope, reply: ApiReply, *, request_id: bool = True) -> None:
    """`request_id`: add X-Request-Id (pages have theirs added by `with_request_id`)."""
    head = head_of(reply)
    rid = REQUEST_ID.get() if request_id else None
    if rid is not None:
        head.append(("x-request-id", rid))
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in head]
    if reply.status != 304:
        headers.append((b"content-length", str(len(reply.body)).encode("ascii")))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" or reply.status == 304 else reply.body
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> QQAvatarApp:
    """Factory for `uvicorn --factory` and for tests."""
    return QQAvatarApp(settings or Settings())
