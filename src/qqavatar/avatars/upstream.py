"""Fetching one avatar from qlogo over HTTP, with every failure turned into an `UpstreamError`.

An upstream is a host we were configured to trust, not every host it names: a redirect
is followed only to a template host (the fetched URL's own, or `hosts`), and the size
bound counts the body after inflating, as it comes (inflate.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import anyio.lowlevel
import httpx

from .. import __version__
from ..httpcache import parse_http_date, parse_max_age
from ..protocol.numbers import client_int
from .failures import CONNECT, INVALID, TIMEOUT, TOO_LARGE, UpstreamError
from .images import media_type
from .inflate import ACCEPT_ENCODING, BadEncoding, BodyTooLarge, BoundedBody

# Requests to qlogo in flight at once. httpx's pool spends CPU per event in proportion
# to the requests queued in it and the connections it holds: 1000 concurrent misses took
# 20 s with a pool of 100 and no gate, 9 s through a gate of 64, 6 s at 16, 5 s at 8
# (2-core box, fake qlogo answering in 30 ms). Callers therefore queue on this cheap
# FIFO semaphore, and the pool stays small.
MAX_IN_FLIGHT = 16
MAX_REDIRECTS = 3

@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    content_type: str
    x_info: str
    max_age: int | None  # from Cache-Control, when upstream gave one
    last_modified: int | None = None  # Unix time of Last-Modified, when upstream gave one


class Upstream:
    """One shared HTTP client (pooled keep-alive connections) for every avatar fetch.

    `timeout` bounds connecting and each read; the whole fetch, queueing included, is
    capped at twice that, so a server that drips a byte now and then cannot hold a
    request forever. A caller trying several upstreams in turn passes one `deadline`
    (event-loop time) for all of them.
    """

    def __init__(self, *, timeout: float, max_bytes: int, hosts: Iterable[str] = (),
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.max_bytes = max_bytes
        # Where a redirect may lead besides the fetched URL's own host (template hosts).
        self.hosts = frozenset(host.lower() for host in hosts)
        self.timeout = timeout
        self.total_timeout = timeout * 2
        self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=MAX_IN_FLIGHT,
                                max_keepalive_connections=MAX_IN_FLIGHT, keepalive_expiry=30),
            headers={"User-Agent": f"qqavatar/{__version__}",
                     "Accept-Encoding": ACCEPT_ENCODING},
            follow_redirects=False,  # followed by `_fetch`, to template hosts only
            transport=transport,
        )

    async def warm_up(self) -> None:
        """Load anyio's asyncio backend (httpx's network layer) before the first fetch."""
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, deadline: float | None = None) -> Fetched:
        loop = asyncio.get_running_loop()
        limit = loop.time() + self.total_timeout
        if deadline is not None:
            limit = min(limit, deadline)
        sent_at: float | None = None
        try:
            # Waiting for the gate counts: a caller's wait is bounded whatever the load.
            async with asyncio.timeout_at(limit), self._gate:
                sent_at = loop.time()
                return await self._fetch(url)
        except (TimeoutError, httpx.TimeoutException) as exc:
            error = UpstreamError(TIMEOUT, detail=f"{url}: {exc!r}")
            # Blame the upstream (its circuit breaker counts it) only when it had a fair
            # chance: a read/connect timeout, or a whole `timeout` since the request went.
            # Time spent queued behind our own gate means we are the bottleneck.
            error.upstream_at_fault = isinstance(exc, httpx.TimeoutException) or (
                sent_at is not None and loop.time() - sent_at >= self.timeout)
            raise error from None
        except httpx.TransportError as exc:  # connect refused, reset, protocol errors
            raise UpstreamError(CONNECT, detail=f"{url}: {exc!r}") from None
        except httpx.HTTPError as exc:  # anything else httpx refuses in an answer
            raise UpstreamError(INVALID, detail=f"{url}: {exc!r}") from None

    async def _fetch(self, url: str) -> Fetched:
        target = httpx.URL(url)
        allowed = self.hosts | {target.host}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._client.stream("GET", target) as response:
                if not response.is_redirect:
                    return await self._read(url, response)
                target = redirect_target(url, response, allowed)
        raise UpstreamError(INVALID, detail=f"{url}: more than {MAX_REDIRECTS} redirects")

    async def _read(self, url: str, response: httpx.Response) -> Fetched:
        if response.status_code != 200:
            # 5xx and 429 say the host is in trouble; 404 and such, this one avatar.
            trouble = response.status_code >= 500 or response.status_code == 429
            raise UpstreamError(INVALID, detail=f"{url}: HTTP {response.status_code}",
                                host_fault=trouble)
        # Reject before reading: no point downloading an HTML error page.
        content_type = response.headers.get("content-type", "")
        if not media_type(content_type).startswith("image/"):
            raise UpstreamError(INVALID, detail=f"{url}: Content-Type {content_type!r}")
        length = response.headers.get("content-length", "")
        declared = client_int(length)  # unreadable or absent: the bound counts as it reads
        if declared is not None and declared > self.max_bytes:
            raise UpstreamError(TOO_LARGE, detail=f"{url}: Content-Length {length}")
        try:
            body = BoundedBody(response.headers.get("content-encoding", ""), self.max_bytes)
            async for chunk in response.aiter_raw():
                # Raising leaves the `async with`, which closes the connection: nothing
                # more is read.
                body.feed(chunk)
            image = body.finish()
        except BodyTooLarge as exc:
            raise UpstreamError(TOO_LARGE, detail=f"{url}: {exc}") from None
        except BadEncoding as exc:
            raise UpstreamError(INVALID, detail=f"{url}: {exc}") from None
        return Fetched(
            body=image,
            content_type=content_type,
            x_info=response.headers.get("x-info", ""),
            max_age=parse_max_age(response.headers.get("cache-control")),
            last_modified=parse_http_date(response.headers.get("last-modified")),
        )


def redirect_target(url: str, response: httpx.Response, allowed: frozenset[str]) -> httpx.URL:
    """Where a redirect leads, if that is a template host over HTTP(S); else INVALID."""
    location = response.headers.get("location", "")
    try:
        target = response.url.join(location)
        host = target.host  # decoded here: IDNA may fail
    except (httpx.InvalidURL, ValueError):  # ValueError: a host IDNA cannot read
        target, host = None, ""
    if target is None or target.scheme not in ("http", "https") or host not in allowed:
        raise UpstreamError(INVALID, detail=f"{url}: redirect to {location[:200]!r} refused "
                                            "(not a template host)")
    return target
