"""One RSGI request through an ASGI application (the Starlette pages beside the API).

The API paths are served natively on RSGI (`web.rsgi`); the pages are few and not
hot, so they keep their ASGI framework and run through this bridge.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive

from ..protocol.numbers import client_int

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope

log = logging.getLogger(__name__)


def latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _address(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    number = client_int(port, max_digits=5)
    if not host or number is None:
        return None
    return host.strip("[]"), number


def asgi_scope(scope: Scope) -> dict[str, Any]:
    """The ASGI HTTP scope of an RSGI request."""
    return {
        "type": "http",
        # 2.3: no `http.response.pathsend`, and apps listen for `http.disconnect` themselves.
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "raw_path": quote(scope.path).encode("ascii"),
        "query_string": scope.query_string.encode("utf-8"),
        "root_path": "",
        "headers": [(latin1(name.lower()), latin1(value))
                    for name, value in scope.headers.items()],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": {},
    }


def receiver(proto: HTTPProtocol) -> Receive:
    """An ASGI `receive`: the body chunk by chunk, then `http.disconnect` once the client goes."""
    chunks = proto.__aiter__()
    body_done = False

    async def receive() -> Message:
        nonlocal body_done
        if not body_done:
            try:
                chunk: bytes = await chunks.__anext__()
            except StopAsyncIteration:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}
        await proto.client_disconnect()
        return {"type": "http.disconnect"}

    return receive


class _Sender:
    """ASGI `send`: one `response_bytes` for a whole body, a stream for a body in parts."""

    def __init__(self, proto: HTTPProtocol) -> None:
        self.proto = proto
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.started = False
        self.finished = False
        self.stream: Any = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.status = message["status"]
            self.headers = [(name.decode("latin-1"), value.decode("latin-1"))
                            for name, value in message.get("headers", ())]
        elif kind == "http.response.body" and self.started and not self.finished:
            body: bytes = message.get("body", b"")
            more: bool = message.get("more_body", False)
            if self.stream is None and not more:
                self.proto.response_bytes(self.status, self.headers, body)
                self.finished = True
                return
            if self.stream is None:
                self.stream = self.proto.response_stream(self.status, self.headers)
            if body:
                await self.stream.send_bytes(body)
            self.finished = not more


async def run_asgi(app: ASGIApp, scope: Scope, proto: HTTPProtocol) -> None:
    """Serve one request with `app`; an app that fails before its answer is out gets a 500."""
    send = _Sender(proto)
    try:
        await app(asgi_scope(scope), receiver(proto), send)
    except Exception:
        log.exception("error in page %s", scope.path)
    if send.stream is None and not send.finished:
        proto.response_bytes(500, [("content-type", "text/plain; charset=utf-8")],
                             b"Internal Server Error")
