"""A fake of Tencent's qlogo avatar CDN: a real HTTP server for tests and the offline demo.

Routes (the same shapes as the real CDN):

- ``GET /g?b=qq&nk=<qq>&s=<size>``            user avatar (``s`` defaults to 40)
- ``GET /gh/<group>/<group>/<size>/``         group avatar
- ``GET /headimg_dl?dst_uin=<qq>&spec=<size>`` user avatar, the alternate upstream

``size`` is any integer 1..1000 (qlogo's own 40/100/140/640 included); the image is
size×size pixels. The last digit of the number decides what comes back:

- ``…0``   no avatar of its own: Tencent's default, a fixed JPEG "penguin", with
           ``X-Info: notexist:-109`` and ``Cache-Control: no-cache``
- ``…1-4`` a JPEG, ``X-Info: real data``, ``Cache-Control: max-age=2592000``
- ``…5-9`` a PNG, same headers

A real avatar's colours are derived from blake2b(kind, number, version), so one number
always gets the same bytes until a ``change`` fault bumps its version; users and groups
with the same number get different images. Every image carries ``Last-Modified``.

Control endpoints (JSON):

- ``GET  /_fake/stats``  → ``{"requests": n, "by_key": {"user:10001:100": n, …}}``
- ``POST /_fake/reset``  zero the counters, clear every fault and version
- ``POST /_fake/fault``  ``{"mode": …, "delay_ms": int?, "numbers": [...]?,
  "rate": float?, "seed": int?}``.
  Without ``numbers`` the fault replaces every fault set before (for all numbers);
  with ``numbers`` it is set for those numbers only and wins over the global one.
  ``delay_ms`` delays the answer in every mode. Modes: see `FAULT_MODES`.
- ``GET  /_fake/injected`` → ``{"error500": n, …}``: the faults the ``chaos`` mode dealt
  since the last reset, by mode (``none`` included)

Chaos: in mode ``chaos`` a share ``rate`` of avatar requests gets one of `CHAOS_FAULTS`,
the rest a normal answer. The draw is a hash of (seed, kind, number, size, how many times
this avatar was asked), not a shared random stream, so a run is reproduced by its seed
whatever order concurrent requests arrive in.

Redirect faults send the client to the same avatar URL with ``redirected=1`` added; a
request carrying ``redirected=1`` is answered normally whatever the fault.

Every avatar request is counted, faulted or not; malformed ones (400/404) are not.

Run it with ``python -m qqavatar.fakeqlogo --host 127.0.0.1 --port 8081``, embed it with
`serve_in_thread`, or start it as a child process with `spawn`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gzip
import hashlib
import io
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from typing import Any, Literal, Self, TypedDict, get_args
from urllib.parse import parse_qs

import httpx
import uvicorn
from PIL import Image, ImageDraw
from starlette.types import Receive, Scope, Send

FaultMode = Literal[
    "none",      # normal answers
    "error500",  # HTTP 500 with a text body
    "hang",      # never answer; wait until the client gives up
    "html",      # 200 text/html
    "notimage",  # 200 image/jpeg whose body is garbage
    "huge",      # 200 image/jpeg, a 5 MiB body streamed without Content-Length
    "reset",     # drop the TCP connection (RST) without answering
    "drip",      # a valid image, one small chunk every 200 ms
    "slow",      # a normal answer after delay_ms
    "change",    # every fetch bumps the number's version: a new image each time
    "nohd",      # no HD avatar: size 640 is the default image, smaller sizes are real
    "truncated", # 200 with the first half of a real image (Content-Length says half)
    "redirect",  # 302 to the same avatar on this host (a relative Location)
    "redirect_away",  # 302 to the same avatar under the other loopback name (another host)
    "gzip",      # the real image, gzip-compressed (Content-Encoding: gzip)
    "gzipbomb",  # 200 image/jpeg, Content-Encoding: gzip: 64 KiB that inflate to 64 MiB
    "chaos",     # a share `rate` of requests gets one of CHAOS_FAULTS, seeded
]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

# What chaos deals: every way an upstream fails that the service must turn into err_code < 0.
CHAOS_FAULTS: tuple[FaultMode, ...] = ("error500", "hang", "reset", "html", "notimage",
                                       "truncated")

Kind = Literal["user", "group"]
Headers = list[tuple[bytes, bytes]]

# Modes that answer slowly or not at all, and must notice when the client gives up.
_NEED_WATCHER = frozenset({"hang", "drip", "huge", "reset"})

MAX_SIZE = 1000
HD_SIZE = 640  # qlogo's HD size: users who never uploaded one get the default there
HUGE_BYTES = 5 * 1024 * 1024
BOMB_BYTES = 64 * 1024 * 1024  # what the gzip bomb inflates to
DRIP_CHUNK = 16
DRIP_INTERVAL = 0.2
REAL_HEADERS = [(b"x-info", b"real data"), (b"cache-control", b"max-age=2592000")]
DEFAULT_HEADERS = [(b"x-info", b"notexist:-109"), (b"cache-control", b"no-cache")]

_GROUP_PATH = re.compile(r"^/gh/(\d{1,20})/(\d{1,20})/(\d{1,4})/?$")
_NUMBER = re.compile(r"^\d{1,20}$")


class FakeStats(TypedDict):
    requests: int
    by_key: dict[str, int]


@dataclass(frozen=True, slots=True)
class Fault:
    mode: FaultMode = "none"
    delay_ms: int = 0
    rate: float = 0.0  # chaos only: the share of requests that fail
    seed: int = 0      # chaos only

    def resolve(self, kind: Kind, number: str, size: int, nth: int) -> FaultMode:
        """The mode for the `nth` request of one avatar: chaos draws one, others are themselves."""
        if self.mode != "chaos":
            return self.mode
        digest = hashlib.blake2b(f"{self.seed}:{kind}:{number}:{size}:{nth}".encode(),
                                 digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2**64  # uniform in [0, 1)
        if draw >= self.rate:
            return "none"
        # Rescale the draw that fell below `rate` to pick the fault evenly.
        return CHAOS_FAULTS[min(int(draw / self.rate * len(CHAOS_FAULTS)),
                                len(CHAOS_FAULTS) - 1)]


# --- images -------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def avatar_bytes(kind: Kind, number: str, version: int, size: int) -> bytes:
    """The encoded image for one (kind, number, version, size); memoised so serving is cheap."""
    seed = hashlib.blake2b(f"{kind}:{number}:{version}".encode(), digest_size=9).digest()
    top, bottom, head = tuple(seed[0:3]), tuple(seed[3:6]), tuple(seed[6:9])
    # A gradient and a "head" give bodies of realistic size; a flat colour compresses to nothing.
    mask = Image.linear_gradient("L").resize((size, size))
    img = Image.composite(Image.new("RGB", (size, size), bottom),
                          Image.new("RGB", (size, size), top), mask)
    ImageDraw.Draw(img).ellipse((size * 0.25, size * 0.2, size * 0.75, size * 0.7), fill=head)
    out = io.BytesIO()
    if int(number[-1]) <= 4:
        img.save(out, "JPEG", quality=85)
    else:
        img.save(out, "PNG")
    return out.getvalue()


@lru_cache(maxsize=64)
def penguin_bytes(size: int) -> bytes:
    """Tencent's default avatar, approximately: a penguin on grey, JPEG."""
    img = Image.new("RGB", (100, 100), (235, 235, 235))
    draw = ImageDraw.Draw(img)
    draw.ellipse((25, 15, 75, 92), fill=(20, 20, 20))     # body
    draw.ellipse((35, 38, 65, 88), fill=(250, 250, 250))  # belly
    draw.ellipse((38, 25, 46, 33), fill=(250, 250, 250))  # eyes
    draw.ellipse((54, 25, 62, 33), fill=(250, 250, 250))
    draw.polygon([(44, 36), (56, 36), (50, 44)], fill=(250, 170, 20))  # beak
    draw.ellipse((28, 86, 48, 96), fill=(250, 170, 20))   # feet
    draw.ellipse((52, 86, 72, 96), fill=(250, 170, 20))
    out = io.BytesIO()
    img.resize((size, size)).save(out, "JPEG", quality=85)
    return out.getvalue()


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A JPEG's first bytes and then zeros, BOMB_BYTES in all, gzip-compressed (~64 KiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    parts = [packer.compress(b"\xff\xd8\xff\xe0" + bytes(1024 * 1024 - 4))]
    zeros = bytes(1024 * 1024)
    parts += [packer.compress(zeros) for _ in range(BOMB_BYTES // len(zeros) - 1)]
    return b"".join([*parts, packer.flush()])


def _last_modified(number: str, version: int) -> bytes:
    stamp = 1_500_000_000 + int(number) % 100_000_000 + version * 3600
    return formatdate(stamp, usegmt=True).encode()


# --- the ASGI app ---------------------------------------------------------------------------


class _Disconnect:
    """Watches `receive` so endless answers (hang, drip, huge) stop when the client leaves."""

    def __init__(self, receive: Receive) -> None:
        self.event = asyncio.Event()
        self._task = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.event.set()

    def close(self) -> None:
        self._task.cancel()


class FakeQlogo:
    """The raw ASGI app. All state lives on the server's one event loop: no locks needed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_key: Counter[str] = Counter()
        self.global_fault = Fault()
        self.faults: dict[str, Fault] = {}
        self.versions: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()  # what chaos dealt, by mode

    def fault_for(self, number: str) -> Fault:
        return self.faults.get(number, self.global_fault)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_fake/"):
            await self._control(scope, receive, send)
            return
        target = _route(path, parse_qs(scope["query_string"].decode("latin-1")))
        if isinstance(target, str):
            status = 400 if target.startswith("bad") else 404
            await _send(send, status, b"text/plain", target.encode())
            return
        kind, number, size = target
        key = f"{kind}:{number}:{size}"
        self.requests += 1
        self.by_key[key] += 1
        fault = self.fault_for(number)
        mode = fault.resolve(kind, number, size, self.by_key[key])
        if mode in ("redirect", "redirect_away"):
            if b"redirected=1" not in scope["query_string"]:
                await _redirect(send, scope, away=mode == "redirect_away")
                return
            mode = "none"  # the redirect's target answers
        if fault.mode == "chaos":
            self.injected[mode] += 1
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if mode not in _NEED_WATCHER:  # the common case stays cheap for benchmarks
            await self._avatar(send, asyncio.Event(), mode, kind, number, size)
            return
        watcher = _Disconnect(receive)
        try:
            await self._avatar(send, watcher.event, mode, kind, number, size)
        finally:
            watcher.close()

    async def _avatar(self, send: Send, gone: asyncio.Event, mode: FaultMode, kind: Kind,
                      number: str, size: int) -> None:
        if mode == "change":
            self.versions[number] += 1
        if mode == "error500":
            await _send(send, 500, b"text/plain", b"fake qlogo: injected error")
        elif mode == "hang":
            await gone.wait()
        elif mode == "html":
            await _send(send, 200, b"text/html; charset=utf-8", b"<html><body>oops</body></html>")
        elif mode == "notimage":
            await _send(send, 200, b"image/jpeg", b"this is not an image at all " * 40)
        elif mode == "huge":
            await _stream_huge(send, gone)
        elif mode == "reset":
            await _reset_connection(send, gone)
        else:
            ctype, body, headers = self._image(kind, number, size, hd=mode != "nohd")
            if mode == "drip":
                await _drip(send, gone, ctype, body, headers)
            elif mode == "truncated":
                await _send(send, 200, ctype, body[:len(body) // 2], headers)
            elif mode == "gzip":
                await _send(send, 200, ctype, gzip.compress(body),
                            [*headers, (b"content-encoding", b"gzip")])
            elif mode == "gzipbomb":
                await _send(send, 200, b"image/jpeg", gzip_bomb(),
                            [*REAL_HEADERS, (b"content-encoding", b"gzip")])
            else:
                await _send(send, 200, ctype, body, headers)

    def _image(self, kind: Kind, number: str, size: int,
               hd: bool = True) -> tuple[bytes, bytes, Headers]:
        version = self.versions[number]
        modified = [(b"last-modified", _last_modified(number, version))]
        if number.endswith("0") or (size == HD_SIZE and not hd):
            return b"image/jpeg", penguin_bytes(size), DEFAULT_HEADERS + modified
        ctype = b"image/jpeg" if int(number[-1]) <= 4 else b"image/png"
        return ctype, avatar_bytes(kind, number, version, size), REAL_HEADERS + modified

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope["method"], scope["path"])
        if route == ("GET", "/_fake/stats"):
            stats: FakeStats = {"requests": self.requests, "by_key": dict(self.by_key)}
            await _send_json(send, 200, stats)
        elif route == ("GET", "/_fake/injected"):
            await _send_json(send, 200, dict(self.injected))
        elif route == ("POST", "/_fake/reset"):
            self.reset()
            await _send_json(send, 200, {"ok": True})
        elif route == ("POST", "/_fake/fault"):
            try:
                numbers, fault = _parse_fault(await _read_body(receive))
            except (ValueError, TypeError) as exc:
                await _send_json(send, 400, {"error": str(exc)})
                return
            if numbers is None:
                self.global_fault, self.faults = fault, {}
            else:
                self.faults.update(dict.fromkeys(numbers, fault))
            await _send_json(send, 200, {"ok": True})
        else:
            await _send_json(send, 404, {"error": "no such control endpoint"})


def make_app() -> FakeQlogo:
    """A fresh fake with its own counters and faults."""
    return FakeQlogo()


def _route(path: str, query: dict[str, list[str]]) -> tuple[Kind, str, int] | str:
    """(kind, number, size) for an avatar URL, or an error text ("bad …" → 400, else 404)."""
    def arg(name: str, default: str | None = None) -> str | None:
        return query.get(name, [default])[0]

    if path == "/g":
        kind: Kind = "user"
        number, size = arg("nk"), arg("s", "40")
        if arg("b") != "qq":
            return "bad request: b must be qq"
    elif path == "/headimg_dl":
        kind, number, size = "user", arg("dst_uin"), arg("spec", "40")
    elif match := _GROUP_PATH.match(path):
        if match[1] != match[2]:
            return "not found: the two group numbers differ"
        kind, number, size = "group", match[1], match[3]
    else:
        return "not found"
    if number is None or not _NUMBER.match(number):
        return "bad request: number must be digits"
    if size is None or not size.isdigit() or not 1 <= int(size) <= MAX_SIZE:
        return f"bad request: size must be 1..{MAX_SIZE}"
    return kind, number, int(size)


def _parse_fault(body: bytes) -> tuple[list[str] | None, Fault]:
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TypeError("body must be a JSON object")
    mode = data.get("mode", "none")
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {sorted(FAULT_MODES)}")
    delay = data.get("delay_ms") or 0
    if not isinstance(delay, int) or delay < 0:
        raise ValueError("delay_ms must be a non-negative integer")
    rate = data.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ValueError("rate must be a number from 0 to 1")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    numbers = data.get("numbers")
    if numbers is not None:
        if not isinstance(numbers, list):
            raise TypeError("numbers must be a list")
        numbers = [str(n) for n in numbers]
    return numbers, Fault(mode, delay, float(rate), seed)


# --- ASGI helpers ---------------------------------------------------------------------------


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, status: int, ctype: bytes, body: bytes,
                headers: Headers | None = None) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, data: object) -> None:
    await _send(send, status, b"application/json", json.dumps(data).encode())


async def _stream_huge(send: Send, gone: asyncio.Event) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"image/jpeg"), *REAL_HEADERS]})
    # Starts like a JPEG so only the size gives it away; no Content-Length, so the client
    # has to count while reading.
    chunk = b"\xff\xd8\xff\xe0" + bytes(64 * 1024 - 4)
    sent = 0
    while sent < HUGE_BYTES and not gone.is_set():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        sent += len(chunk)
        chunk = bytes(len(chunk))
    await send({"type": "http.response.body", "body": b""})


async def _redirect(send: Send, scope: Scope, *, away: bool) -> None:
    """302 to the request's own URL plus `redirected=1`: on this host (a relative
    Location), or `away`: under the other loopback name, the same server but not the
    same host to a client (127.0.0.1 <-> localhost)."""
    query = scope["query_string"].decode("latin-1")
    target = f"{scope['path']}?{query + '&' if query else ''}redirected=1"
    if away:
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode("latin-1")
        name, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        other = "127.0.0.1" if name == "localhost" else "localhost"
        target = f"http://{other}{colon}{port}{target}"
    await send({"type": "http.response.start", "status": 302,
                "headers": [(b"location", target.encode("latin-1")),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _drip(send: Send, gone: asyncio.Event, ctype: bytes, body: bytes,
                headers: Headers) -> None:
    await send({
        "type": "http.response.start", "status": 200,
        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                    *headers],
    })
    for start in range(0, len(body), DRIP_CHUNK):
        if gone.is_set():
            return
        await send({"type": "http.response.body", "body": body[start:start + DRIP_CHUNK],
                    "more_body": True})
        await asyncio.sleep(DRIP_INTERVAL)
    await send({"type": "http.response.body", "body": b""})


async def _reset_connection(send: Send, gone: asyncio.Event) -> None:
    """Drop the connection with a TCP RST before any byte of the answer is written.

    ASGI cannot close a connection, so this reaches into uvicorn: its `send` is a bound
    method of the request cycle, which holds the asyncio transport. With SO_LINGER 0 the
    close turns into an RST, which clients see as "connection reset by peer".
    """
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let uvicorn notice the loss, or it would try to answer 500 on the dead connection.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), 1)
        return
    # Another server: promise a body and hang up; the client still sees a broken connection.
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"image/jpeg"), (b"content-length", b"1000")]})


# --- running it -----------------------------------------------------------------------------


class RunningFake:
    """A fake qlogo running somewhere: its address, its control endpoints, and how to stop it."""

    def __init__(self, url: str, stopper: Callable[[], None]) -> None:
        self.url = url.rstrip("/")
        self.port = httpx.URL(self.url).port or 80
        self._stopper: Callable[[], None] | None = stopper
        self._client: httpx.Client | None = None

    @property
    def user_url(self) -> str:
        """A user URL template for `AvatarService`, pointing here."""
        return self.url + "/g?b=qq&nk={qq}&s={size}"

    @property
    def group_url(self) -> str:
        return self.url + "/gh/{group}/{group}/{size}/"

    def stats(self) -> FakeStats:
        data: FakeStats = self._control("GET", "stats").json()
        return data

    def count(self, kind: Kind, number: str, size: int) -> int:
        """How many times this avatar was requested since the last reset."""
        return self.stats()["by_key"].get(f"{kind}:{number}:{size}", 0)

    def reset(self) -> None:
        self._control("POST", "reset")

    def fault(self, mode: FaultMode, delay_ms: int | None = None,
              numbers: list[str] | None = None, *, rate: float | None = None,
              seed: int | None = None) -> None:
        """Set a fault; `rate` and `seed` are for ``chaos`` (e.g. ``fault("chaos", rate=0.3)``)."""
        body: dict[str, object] = {"mode": mode}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        if numbers is not None:
            body["numbers"] = numbers
        if rate is not None:
            body["rate"] = rate
        if seed is not None:
            body["seed"] = seed
        self._control("POST", "fault", body)

    def injected(self) -> dict[str, int]:
        """What the ``chaos`` mode dealt since the last reset: requests by mode."""
        dealt: dict[str, int] = self._control("GET", "injected").json()
        return dealt

    def _control(self, method: str, name: str, body: object = None) -> httpx.Response:
        if self._client is None:
            # One client for all calls: building one (its TLS context) costs ~50 ms.
            # trust_env=False: a proxy from the environment must not intercept loopback.
            self._client = httpx.Client(trust_env=False, timeout=5)
        response = self._client.request(method, f"{self.url}/_fake/{name}", json=body)
        response.raise_for_status()
        return response

    def stop(self) -> None:
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; binding before starting uvicorn makes port 0 race-free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: FakeQlogo) -> uvicorn.Server:
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


def serve_in_thread(host: str = "127.0.0.1", port: int = 0) -> RunningFake:
    """Run a fake in a daemon thread of this process (port 0: a free port)."""
    sock = bind(host, port)
    server = _server(make_app())
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="fake-qlogo", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()

    # The socket already listens, so requests made before uvicorn is up just wait in the
    # backlog; waiting for `started` only makes failures show here rather than later.
    for _ in range(500):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.01)
    if not server.started:
        stop()
        raise RuntimeError("fake qlogo did not start")
    return RunningFake(_url(sock), stop)


def spawn(host: str = "127.0.0.1", port: int = 0, *, timeout: float = 15) -> RunningFake:
    """Run a fake in a child process (`python -m qqavatar.fakeqlogo`) and wait until it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qqavatar.fakeqlogo", "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )

    def stop() -> None:
        atexit.unregister(stop)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    atexit.register(stop)  # a caller that crashes before stop() leaves no orphan behind

    # readline() blocks, so read in a helper thread to be able to give up.
    lines: list[str] = []

    def read_first_line() -> None:
        assert proc.stdout is not None
        lines.append(proc.stdout.readline())

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(timeout)
    match = re.search(r"listening on (\S+)", lines[0]) if lines else None
    if match is None:
        stop()
        raise RuntimeError(f"fake qlogo did not start (exit code {proc.poll()})")
    return RunningFake(match[1], stop)


_HELP_URLS = """\
URLs it serves (BASE is printed at start: "fake qlogo listening on BASE"):
  BASE/g?b=qq&nk=<qq>&s=<size>             user avatar
  BASE/gh/<group>/<group>/<size>/          group avatar
  BASE/headimg_dl?dst_uin=<qq>&spec=<size> user avatar, the alternate upstream
  BASE/_fake/stats, /_fake/reset, /_fake/fault, /_fake/injected   test controls
Numbers ending in 0 have no avatar of their own (the default penguin).

Point qqavatar at it:
  QQAVATAR_UPSTREAM_USER_URL='BASE/g?b=qq&nk={qq}&s={size}'
  QQAVATAR_UPSTREAM_GROUP_URL='BASE/gh/{group}/{group}/{size}/'
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qqavatar.fakeqlogo",
                                     description="A fake of Tencent's qlogo avatar CDN.",
                                     epilog=_HELP_URLS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    args = parser.parse_args(argv)
    sock = bind(args.host, args.port)
    print(f"fake qlogo listening on {_url(sock)}", flush=True)
    _server(make_app()).run(sockets=[sock])


if __name__ == "__main__":
    main()
