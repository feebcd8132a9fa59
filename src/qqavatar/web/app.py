"""The ASGI application: both YesApi URL styles onto the gateway.

`/?s=App.QQ.UserImage` (or `service=`, which wins) and `/api/App/QQ/UserImage`
become one service name and one dict of parameters. Raw ASGI on purpose: the
avatar path is the hot path and needs no framework in between.

Paths are read as a PHP host behind nginx reads them: a run of slashes is one slash
(YesApi's PHP SDK asks for `//?s=…`). Every other path is a page (`routes`), its body read
here within the pages' bounds (`pagebody`); a path no page has is HTTP 404 with the error
envelope, which a YesApi client can read as any other refusal.
"""

from __future__ import annotations

import gc
import logging
import re
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
from ..protocol.names import requested_service
from ..redislink import RedisLink
from ..secretbox import box_for
from ..settings import Settings
from ..startup import FEATURES
from ..store.apps import AppRegistry, AppStore
from ..store.db import make_engine, migrate
from .pagebody import page_refusal, read_page_body, replaying
from .request import CLOSE, UnreadBody, has_body, parse_query, read_params
from .routes import ROUTES

log = logging.getLogger(__name__)

_API_PATH = re.compile(r"/api/([A-Za-z0-9_]+(?:/[A-Za-z0-9_]+){1,2})/?")
_ALLOWED_METHODS = ("GET", "POST", "HEAD")
_SLASHES = re.compile(r"//+")


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
        if path == "/":
            service = None
        else:
            match = _API_PATH.fullmatch(path)
            if match is None:
                await self._page(scope, receive, with_request_id(send))
                return
            service = match.group(1).replace("/", ".")
        method = scope["method"]
        if method not in _ALLOWED_METHODS:
            await _send(send, scope, method_not_allowed(method, has_body(scope)))
            return
        try:
            params = await read_params(scope, receive, timeout=self.settings.client_timeout)
        except ApiError as error:
            await _send(send, scope, refuse(self.gateway, scope.get("query_string", b""), error))
            return
        if service is None:
            try:
                service = requested_service(params)
            except ApiError as error:
                await _send(send, scope, self.gateway.reject(params, error))
                return
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        client = scope.get("client")
        request = ApiRequest(service, params, headers, client[0] if client else None, method,
                             scheme=scope.get("scheme", "http"), server=scope.get("server"))
        reply = await self.gateway.handle(request)
        await _send(send, scope, reply)

    async def _page(self, scope: Scope, receive: Receive, send: Send) -> None:
        if has_body(scope):
            try:
                body = await read_page_body(scope, receive, self.settings.client_timeout)
            except ApiError as error:
                await _send(send, scope, page_refusal(error), request_id=False)
                return
            receive = replaying(body, receive)
        await self.pages(scope, receive, send)


def merge_slashes(path: str) -> str:
    """`//api//App/QQ/UserImage` → `/api/App/QQ/UserImage` (nginx's merge_slashes)."""
    return _SLASHES.sub("/", path)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """A path no page has: HTTP 404, the body an error envelope (no app: no `_auth`)."""
    error = errors.unknown_path(scope["path"])
    body = envelope(error.ret, EMPTY_DATA, error.msg, int(time.time()), None)
    await _send(send, scope, ApiReply(404, JSON_TYPE, body, [("Cache-Control", "no-store")]),
                request_id=False)


def refuse(gateway: Gateway, query_string: bytes | str, error: ApiError) -> ApiReply:
    """The answer to a call whose body could not be read: shaped from the query if that
    parses; it closes the connection when part of the body was left unread."""
    try:
        query = parse_query(query_string)
    except ApiError:  # the query itself was refused
        query = {}
    refusal = gateway.reject(query, error)
    if isinstance(error, UnreadBody):
        refusal.headers.append(CLOSE)
    return refusal


def freeze_heap() -> None:
    """Called by a server process once its app has started: everything loaded so far lives
    as long as the process, so move it out of the garbage collector's sight; its full
    collections then scan only what requests and the cache add since."""
    gc.collect()
    gc.freeze()


def method_not_allowed(method: str, with_body: bool) -> ApiReply:
    """405; it closes the connection if the request sent a body (it is left unread)."""
    body = f"Method {method[:16]} Not Allowed".encode("ascii", "replace")
    headers = [("Allow", ", ".join(_ALLOWED_METHODS))]
    if with_body:
        headers.append(CLOSE)
    return ApiReply(405, "text/plain; charset=utf-8", body, headers)


async def _send(send: Send, scope: Scope, reply: ApiReply, *, request_id: bool = True) -> None:
    """`request_id`: add X-Request-Id (pages have theirs added by `with_request_id`)."""
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        identity.SERVED_BY_RAW,
    ]
    if reply.status != 304:
        headers.append((b"content-length", str(len(reply.body)).encode("ascii")))
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in reply.headers]
    rid = REQUEST_ID.get() if request_id else None
    if rid is not None:
        headers.append((b"x-request-id", rid.encode("ascii")))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" or reply.status == 304 else reply.body
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> QQAvatarApp:
    """Factory for `uvicorn --factory` and for tests."""
    return QQAvatarApp(settings or Settings())
