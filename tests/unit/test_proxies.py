"""The RSGI path reads X-Forwarded-For/-Proto exactly as uvicorn's ProxyHeadersMiddleware,
which `qqavatar serve --server uvicorn` uses with the same trusted proxies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qqavatar.web.forwarded import TrustedProxies

TRUSTED = "127.0.0.1/32,10.0.0.0/8,::1/128"


def _uvicorn(peer: str, headers: list[tuple[str, str]]) -> tuple[str | None, str]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=TRUSTED)
    scope = {"type": "http", "scheme": "http", "client": (peer, 5000),
             "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                         for name, value in headers]}
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    return seen["client"][0], seen["scheme"]


@pytest.mark.parametrize("peer", ["127.0.0.1", "10.1.2.3", "203.0.113.9", "::1"])
@pytest.mark.parametrize("headers", [
    [],
    [("X-Forwarded-For", "203.0.113.7")],
    [("X-Forwarded-For", "203.0.113.7, 10.0.0.2")],
    [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")],
    [("X-Forwarded-For", "10.0.0.1, 10.0.0.2")],
    [("X-Forwarded-For", "203.0.113.7:8080"), ("X-Forwarded-Proto", "https")],
    [("X-Forwarded-For", "[2001:db8::1]:443, 10.0.0.3")],
    [("X-Forwarded-For", "not-an-ip")],
    [("X-Forwarded-For", "")],
    [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.4")],
    [("X-Forwarded-Proto", " https ")],
    [("X-Forwarded-Proto", "gopher")],
])
def test_same_client_and_scheme_as_uvicorn(peer: str, headers: list[tuple[str, str]]) -> None:
    assert TrustedProxies(TRUSTED).apply(peer, "http", headers) == _uvicorn(peer, headers)


def test_no_trusted_proxies_changes_nothing() -> None:
    proxies = TrustedProxies("")
    assert not proxies
    assert proxies.apply("127.0.0.1", "http", [("X-Forwarded-For", "1.2.3.4")]) == (
        "127.0.0.1", "http")
