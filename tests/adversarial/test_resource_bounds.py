"""Resource bounds, against real servers: what one client (or a thousand) can make us hold.

- Request head (line + headers): granian answers 431 past `MAX_HEAD_BYTES` or 100 headers.
- Bodies: over `MAX_BODY_BYTES` refused from Content-Length before a byte is read, or as soon
  as a chunked body grows past it; a body not complete within the client timeout is refused.
- Slow clients: headers dribbled a byte a second are cut at the client timeout (granian);
  a thousand of them at once are all cut, and every descriptor comes back.
- A thousand idle connections leave normal requests unaffected.
- A flood of distinct numbers keeps the worker's memory within the cache bound; descriptors and
  upstream connections stay bounded. `FLOOD_NUMBERS=100000` runs the full-size flood
  (docs/reliability.md has its figures); the default run is a smaller one of the same shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qqavatar.avatars.upstream import MAX_IN_FLIGHT
from qqavatar.web.request import MAX_BODY_BYTES, MAX_PARAMS
from qqavatar.web.servers import MAX_HEAD_BYTES
from tests.server_fixture import RunningServer

CLIENT_TIMEOUT = 2.0  # seconds; the servers here run with QQAVATAR_CLIENT_TIMEOUT=2
FLOOD_NUMBERS = int(os.environ.get("FLOOD_NUMBERS", "1500"))
# The full-size flood runs against the brief's 4 MiB cache; the default one fills a smaller
# cache several times over in a few seconds.
CACHE_MAX_BYTES = 4 * 1024**2 if FLOOD_NUMBERS > 10_000 else 1024**2
TOO_LARGE = "请求体不能超过"
TOO_SLOW = "请求体未在"


# --- the cache's own accounting --------------------------------------------------------------


# A cache filled three times over, in a fresh interpreter: its RSS growth is what the cache
# costs at steady state (objects, allocator slack, freed memory not given back).
_FILL = """
import os, random, sys
from qqavatar.avatars.cache import AvatarCache
from qqavatar.avatars.model import make_avatar

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))

body_size, max_bytes = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
cache = AvatarCache(max_bytes)
before, n = rss(), 0
while n < 3 * max(len(cache), 1000):
    # Fresh objects as the service makes them (body from the network, key from the query),
    # with the spread of sizes real avatars have.
    body = os.urandom(rng.randint(body_size * 2 // 3, body_size * 4 // 3))
    avatar = make_avatar(body, "image/jpeg", is_default=False, lifetime=600, now=0.0,
                         size=100, format="jpeg", modified_at=1_700_000_000 + n)
    cache.put(("user", str(1_000_000 + n), 100, ""), avatar)
    n += 1
print(rss() - before, cache.total_bytes, len(cache))
"""


@pytest.mark.parametrize("body_size", [500, 2000, 20000])
def test_the_byte_bound_holds_in_resident_memory(body_size: int) -> None:
    """The cache's accounting (entry_cost) must not undercount what it really costs: the
    byte bound is only as good as it. Nor overcount much: that would waste the bound."""
    max_bytes = 32 * 1024**2
    done = subprocess.run([sys.executable, "-c", _FILL, str(body_size), str(max_bytes)],
                          capture_output=True, text=True, check=True, timeout=120)
    grown, accounted, entries = map(int, done.stdout.split())
    assert accounted <= max_bytes and entries > 0
    assert grown <= max_bytes, f"RSS grew {grown / 2**20:.1f} MiB for a {max_bytes >> 20} MiB cache"
    assert grown > 0.75 * max_bytes, f"only {grown / 2**20:.1f} MiB used of {max_bytes >> 20} MiB"


# --- real servers ------------------------------------------------------------------------------


def _start(tmp: Path, fake: Any, server: str) -> tuple[RunningServer, dict[str, Any]]:
    running = RunningServer(tmp, fake.url, {
        "QQAVATAR_CACHE_MAX_BYTES": str(CACHE_MAX_BYTES),
        "QQAVATAR_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT),
    }, args=("--server", server))
    app = running.create_app("bounds")
    running.wait_for_app(app["app_key"])
    return running, app


@pytest.fixture(scope="module")
def granian(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    running, app = _start(tmp_path_factory.mktemp("granian"), fake_qlogo, "granian")
    yield running, app
    running.stop()


@pytest.fixture(scope="module")
def uvicorn(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    running, app = _start(tmp_path_factory.mktemp("uvicorn"), fake_qlogo, "uvicorn")
    yield running, app
    running.stop()


@pytest.fixture(params=["granian", "uvicorn"])
def either(request: pytest.FixtureRequest) -> tuple[RunningServer, dict[str, Any]]:
    served: tuple[RunningServer, dict[str, Any]] = request.getfixturevalue(request.param)
    return served


@pytest.fixture(scope="module", autouse=True)
def _enough_descriptors() -> None:
    """A thousand client sockets need more than a default soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))


def worker_pid(server: RunningServer) -> int:
    """The process that runs the app: granian's spawned worker, or uvicorn's own process."""
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    return server.proc.pid


def rss_bytes(pid: int) -> int:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert found is not None
    return int(found.group(1)) * 1024


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connections_to(pid: int, port: int) -> int:
    """The process's TCP sockets connected to `port` on this machine (its upstream pool)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes and fields[3] == "01":  # ESTABLISHED
                count += 1
    return count


def exchange(server: RunningServer, data: bytes, *, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send raw bytes; everything the server answers until it closes (or `timeout`)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may close before we finish sending
            sock.sendall(data)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
                if _complete(answer):
                    break
    return answer, time.monotonic() - started


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    return bool(sep) and found is not None and len(body) >= int(found.group(1))


def avatar_path(app: dict[str, Any], number: int | str = 10001, extra: str = "") -> str:
    return f"/?s=App.QQ.UserImage&app_key={app['app_key']}&qq={number}&size=40&output=0{extra}"


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def closes(answer: bytes) -> bool:
    """Does the answer say the connection ends with it (the body was left unread)?"""
    head = answer.partition(b"\r\n\r\n")[0].lower()
    return b"\r\nconnection: close\r\n" in head + b"\r\n"


# --- head, body and parameter limits ------------------------------------------------------------


def test_request_head_over_the_limit_is_431(granian: tuple[RunningServer, dict[str, Any]]) -> None:
    server, app = granian
    path = avatar_path(app)
    fits = f"GET {path}&pad={'a' * (MAX_HEAD_BYTES - 2048)} HTTP/1.1\r\nHost: x\r\n\r\n"
    answer, _ = exchange(server, fits.encode())
    assert status(answer) == 200 and b'"ret":200' in answer, answer[:200]
    too_long = f"GET {path}&pad={'a' * MAX_HEAD_BYTES} HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status(exchange(server, too_long.encode())[0]) == 431
    big_header = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * MAX_HEAD_BYTES}\r\n\r\n"
    assert status(exchange(server, big_header.encode())[0]) == 431
    many = "".join(f"X-H{i}: v\r\n" for i in range(101))
    assert status(exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())[0]) \
        == 431
    # And the server is fine afterwards.
    assert server.client.get(path).json()["ret"] == 200


def test_declared_body_over_the_cap_is_refused_unread(
        either: tuple[RunningServer, dict[str, Any]]) -> None:
    server, app = either
    head = (f"POST {avatar_path(app)} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {100 * MAX_BODY_BYTES}\r\n\r\n")
    answer, took = exchange(server, head.encode())  # and not one byte of the 100 MiB
    assert TOO_LARGE.encode() in answer and b'"ret":400' in answer, answer[:300]
    assert took < CLIENT_TIMEOUT  # answered at once, not after waiting for a body
    assert closes(answer)


def test_a_client_reusing_its_connection_after_a_refused_body(
        either: tuple[RunningServer, dict[str, Any]]) -> None:
    """The refusal says `Connection: close`: a pooled client opens a new connection for its
    next call instead of sending it down one the server is closing (which lost that call
    now and then on a loaded machine)."""
    server, app = either
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for _ in range(20):
            refused = http.post(avatar_path(app), content=b"a=" + b"x" * (2 * MAX_BODY_BYTES),
                                headers={"content-type": "application/x-www-form-urlencoded"})
            assert TOO_LARGE in refused.json()["msg"]
            assert refused.headers["connection"] == "close"
            assert http.get(avatar_path(app)).json()["ret"] == 200


def test_chunked_body_over_the_cap_is_cut(either: tuple[RunningServer, dict[str, Any]]) -> None:
    server, app = either
    chunk = b"a" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    for _ in range(MAX_BODY_BYTES // len(chunk) + 2)) + b"0\r\n\r\n"
    head = (f"POST {avatar_path(app)} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode()
    answer, _ = exchange(server, head + body)
    assert TOO_LARGE.encode() in answer and b'"ret":400' in answer, answer[:300]
    assert closes(answer)


def test_parameter_count_is_bounded(granian: tuple[RunningServer, dict[str, Any]]) -> None:
    server, app = granian
    at_limit = {f"p{i}": "1" for i in range(MAX_PARAMS - 5)}
    over = {f"p{i}": "1" for i in range(MAX_PARAMS + 1)}
    base = {"s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001", "output": "0"}
    assert server.client.get("/", params={**base, **at_limit}).json()["ret"] == 200
    for reply in (server.client.get("/", params={**base, **over}),
                  server.client.post("/", params=base, data=over),
                  server.client.post("/", params=base, json=over)):
        assert reply.json()["ret"] == 400 and str(MAX_PARAMS) in reply.json()["msg"], reply.text


# --- slow clients ---------------------------------------------------------------------------


def dribble(server: RunningServer, head: bytes, drip: bytes, *, every: float = 1.0,
            limit: float = 15.0) -> tuple[float, bytes]:
    """Send `head`, then `drip` one byte every `every` s: (seconds until closed, answer)."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(every)
        sock.sendall(head)
        started = time.monotonic()
        answer = b""
        for byte in drip:  # bounded: len(drip) bytes at most, and `limit` seconds
            if time.monotonic() - started > limit or _complete(answer):
                break
            try:
                sock.send(bytes([byte]))
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        return time.monotonic() - started, answer


def test_headers_dribbled_are_cut_at_the_client_timeout(
        granian: tuple[RunningServer, dict[str, Any]]) -> None:
    server, app = granian
    took, _ = dribble(server, b"GET ", f"{avatar_path(app)} HTTP/1.1\r\nX: {'a' * 40}".encode())
    assert CLIENT_TIMEOUT - 0.5 <= took <= CLIENT_TIMEOUT + 1.5, took


def test_body_dribbled_gets_an_envelope_at_the_client_timeout(
        either: tuple[RunningServer, dict[str, Any]]) -> None:
    server, app = either
    head = (f"POST {avatar_path(app)} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode()
    started = time.monotonic()
    _, answer = dribble(server, head, b"a" * 100, limit=CLIENT_TIMEOUT + 3)
    assert TOO_SLOW.encode() in answer and b'"ret":400' in answer, answer[:300]
    assert time.monotonic() - started <= CLIENT_TIMEOUT + 3
    assert closes(answer)


def test_a_thousand_idle_and_slow_connections(
        granian: tuple[RunningServer, dict[str, Any]]) -> None:
    """1100 idle and 500 half-sent connections: normal calls go on; the half-sent are cut.

    1100 is past granian's default connection cap (1024), which they used to exhaust."""
    server, app = granian
    pid = worker_pid(server)
    before = open_fds(pid)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1100)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(500)]
    try:
        for sock in half:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        for n in range(20):
            assert server.client.get(avatar_path(app, 10001 + n)).json()["ret"] == 200
        assert time.monotonic() - started < 10
        held = open_fds(pid)
        assert held >= before + 1500  # they really are open on the server
        time.sleep(CLIENT_TIMEOUT + 1)
        cut = sum(1 for sock in half if _closed(sock))  # every half-sent request was cut
        assert cut == len(half)
    finally:
        for sock in idle + half:
            sock.close()
    deadline = time.monotonic() + 5
    while open_fds(pid) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(pid) <= before + 5


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        return sock.recv(100) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


# --- a flood of distinct numbers ------------------------------------------------------------------


async def _flood(port: int, paths: list[str], connections: int) -> tuple[int, int]:
    """Every path once over `connections` keep-alive connections: (ret 200s, others)."""
    good = bad = 0

    async def one(share: list[str]) -> None:
        nonlocal good, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for path in share:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                assert length is not None, head
                body = await reader.readexactly(int(length.group(1)))
                if body.startswith(b'{"ret":200'):
                    good += 1
                else:
                    bad += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(paths[i::connections]) for i in range(connections)))
    return good, bad


def test_flood_of_distinct_numbers_stays_within_the_cache_bound(
        granian: tuple[RunningServer, dict[str, Any]], fake_qlogo: Any) -> None:
    server, app = granian
    pid = worker_pid(server)
    upstream_port = int(fake_qlogo.url.rsplit(":", 1)[1])
    # Numbers ending in 0: the upstream answers its (cheap, fixed) default image; each number
    # is still its own cache entry. Warm up to twice the cache, then flood.
    numbers = [f"{2_000_000 + 10 * n}" for n in range(FLOOD_NUMBERS)]
    capacity = CACHE_MAX_BYTES // 3500  # entries of a 40 px default image, roughly
    warm = min(2 * capacity, len(numbers) // 3)
    assert warm > capacity  # the cache is full before the measured part
    assert asyncio.run(_flood(server.port, [avatar_path(app, n) for n in numbers[:warm]], 32)) \
        == (warm, 0)
    rss_warm, fds_warm = rss_bytes(pid), open_fds(pid)
    peaks = {"upstream": 0, "fds": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):  # bounded by the flood's own end
            peaks["upstream"] = max(peaks["upstream"], connections_to(pid, upstream_port))
            peaks["fds"] = max(peaks["fds"], open_fds(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        good, bad = asyncio.run(_flood(server.port, [avatar_path(app, n)
                                                      for n in numbers[warm:]], 64))
    finally:
        done.set()
        sampler.join()
    took = time.monotonic() - started
    rss_end, fds_end = rss_bytes(pid), open_fds(pid)
    metrics = server.client.get("/metrics").text
    cache_bytes = float(re.search(r"^qqavatar_cache_bytes (\S+)", metrics, re.M).group(1))  # type: ignore[union-attr]
    print(f"\nflood: {len(numbers) - warm} distinct numbers in {took:.1f} s; worker RSS "
          f"{rss_warm / 2**20:.1f} → {rss_end / 2**20:.1f} MiB; fds {fds_warm} → peak "
          f"{peaks['fds']} → {fds_end}; upstream connections peak {peaks['upstream']}; "
          f"cache {cache_bytes / 2**20:.2f} MiB")
    assert (good, bad) == (len(numbers) - warm, 0)
    assert cache_bytes <= CACHE_MAX_BYTES
    # The cache was already full at the warm-up: the flood may not add memory beyond noise.
    assert rss_end - rss_warm < 4 * 2**20, (rss_warm, rss_end)
    assert peaks["upstream"] <= MAX_IN_FLIGHT
    assert peaks["fds"] <= fds_warm + 64 + MAX_IN_FLIGHT + 8  # our 64 client sockets + pool
    assert fds_end <= fds_warm + MAX_IN_FLIGHT + 8
