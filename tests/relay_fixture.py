"""A real HTTP relay in front of a qqavatar server, standing for what sits on the path.

It forwards every request and counts it; `mode` makes it misbehave the way a network
or an attacker would: `tamper` rewrites bytes of the answer (`replace`), `drop` closes
the connection without answering.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

Mode = Literal["pass", "tamper", "drop"]
_KEPT_HEADERS = ("content-type", "etag", "cache-control", "x-avatar-default", "x-cache")


class Relay:
    def __init__(self, target: str) -> None:
        self.target = target
        self.mode: Mode = "pass"
        self.replace: tuple[bytes, bytes] = (b"", b"")
        self.requests = 0
        self.tampered = 0       # answers actually rewritten
        self._lock = threading.Lock()
        self._upstream = httpx.Client(base_url=target, timeout=10.0)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                relay._forward(self)

            def do_POST(self) -> None:
                relay._forward(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self, mode: Mode = "pass", replace: tuple[bytes, bytes] = (b"", b"")) -> None:
        with self._lock:
            self.mode, self.replace, self.requests, self.tampered = mode, replace, 0, 0

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
            mode, (old, new) = self.mode, self.replace
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else None
        if mode == "drop":
            handler.close_connection = True
            return
        headers = {name: value for name, value in handler.headers.items()
                   if name.lower() in ("content-type",)}
        answer = self._upstream.request(handler.command, handler.path, content=body,
                                        headers=headers)
        content = answer.content
        if mode == "tamper" and old in content:
            content = content.replace(old, new)
            with self._lock:
                self.tampered += 1
        handler.send_response(answer.status_code)
        for name in _KEPT_HEADERS:
            if name in answer.headers:
                handler.send_header(name, answer.headers[name])
        handler.send_header("content-length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()
