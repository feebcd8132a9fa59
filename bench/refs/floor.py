"""The floor: a do-nothing app on qqavatar's own server and interface, answering the same bytes.

Whatever qqavatar answers above this costs its own code; whatever this costs, any
Python service on that server pays before doing any work. The answers (status,
headers, body per path) are recorded from qqavatar by the harness and replayed here.
A call to `/?…` (the mix) gets the answer recorded for its `size` and `output`
(`mix_route`): the mix's bodies at the cost of a few string operations, less than any
lookup of the avatar asked for.

    python -m bench.refs.floor --server granian|uvicorn --port P --answers FILE
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from typing import Any

ANSWERS_ENV = "BENCH_FLOOR_ANSWERS"
Answer = tuple[int, list[tuple[str, str]], bytes]
_NOT_FOUND: Answer = (404, [("content-type", "text/plain")], b"not recorded")


def mix_route(query: str) -> str:
    """`…&size=100&output=0` → `/mix-json100`: where the answer for a mix call is recorded."""
    size = query.partition("size=")[2].partition("&")[0]
    return ("/mix-json" if "output=0" in query else "/mix-image") + size


def load_answers(path: str) -> dict[str, Answer]:
    with open(path, encoding="utf-8") as file:
        recorded = json.load(file)
    return {route: (item["status"], [(name, value) for name, value in item["headers"]],
                    base64.b64decode(item["body"]))
            for route, item in recorded.items()}


class FloorRSGI:
    def __init__(self, path: str) -> None:
        self.path = path
        self.answers: dict[str, Answer] = {}

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        # The harness records the answers while this server starts: read them on first use.
        answers = self.answers or self._load()
        found = answers.get(scope.path)
        if found is None:
            found = answers.get(mix_route(scope.query_string), _NOT_FOUND)
        proto.response_bytes(*found)

    def _load(self) -> dict[str, Answer]:
        if os.path.exists(self.path):
            self.answers = load_answers(self.path)
        return self.answers


class FloorASGI:
    def __init__(self, path: str) -> None:
        self.path = path
        self.answers: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            for _ in range(2):  # startup, then shutdown
                message = await receive()
                await send({"type": message["type"] + ".complete"})
            return
        answers = self.answers or self._load()
        status, headers, body = answers.get(scope["path"], _NOT_FOUND_ASGI)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _load(self) -> dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]]:
        if os.path.exists(self.path):
            self.answers = {
                route: (status, [(name.encode("latin-1"), value.encode("latin-1"))
                                 for name, value in headers]
                        + [(b"content-length", str(len(body)).encode("ascii"))], body)
                for route, (status, headers, body) in load_answers(self.path).items()}
        return self.answers


_NOT_FOUND_ASGI: tuple[int, list[tuple[bytes, bytes]], bytes] = (
    404, [(b"content-length", b"0")], b"")


def create_rsgi() -> FloorRSGI:
    return FloorRSGI(os.environ[ANSWERS_ENV])


def create_asgi() -> FloorASGI:
    return FloorASGI(os.environ[ANSWERS_ENV])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=("granian", "uvicorn"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--answers", required=True)
    args = parser.parse_args()
    os.environ[ANSWERS_ENV] = args.answers
    if args.server == "granian":
        # Exactly the server qqavatar's `serve` builds, only the app differs.
        from qqavatar.web.servers import granian_server

        granian_server("bench.refs.floor:create_rsgi", "127.0.0.1", args.port,
                       args.workers).serve()
    else:
        import uvicorn

        # As `qqavatar serve --server uvicorn` runs it (uvloop and httptools when installed).
        uvicorn.run("bench.refs.floor:create_asgi", factory=True, host="127.0.0.1",
                    port=args.port, workers=args.workers, log_level="warning",
                    access_log=False, server_header=False)

if __name__ == "__main__":
    main()
