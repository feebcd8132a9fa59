"""One client-address and scheme rule (qqavatar.proxies) for the API on both servers, the
pages and the allow-list guard. The RSGI path reads X-Forwarded-For/-Proto exactly as
uvicorn's ProxyHeadersMiddleware, which `qqavatar serve --server uvicorn` uses with the
same trusted proxies."""

from __future__ import annotations

import ast
import asyncio
import inspect
from typing import Any

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qqavatar.apicall import ApiRequest, Call
from qqavatar.catalog import USER_IMAGE
from qqavatar.limits import perclient
from qqavatar.limits.limit_values import networks, parse_address
from qqavatar.limits.perclient import client_key
from qqavatar.proxies import TrustedProxies, client_address, client_bucket

TRUSTED = "127.0.0.1/32,10.0.0.0/8,::1/128"
TRUSTED_NETWORKS = networks(("10.0.0.0/8", "127.0.0.1/32"))


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
    [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.4")],
    [("X-Forwarded-Proto", " https ")],
    [("X-Forwarded-Proto", "gopher")],
])
def test_same_client_and_scheme_as_uvicorn(peer: str, headers: list[tuple[str, str]]) -> None:
    proxies = TrustedProxies(TRUSTED)
    seen = proxies.apply(peer, "http", headers)
    assert seen == _uvicorn(peer, headers)
    # applied again (uvicorn rewrote the scope, then a page reads it through here): the same
    assert proxies.apply(seen[0], seen[1], headers) == seen


@pytest.mark.parametrize("forwarded", ["", "1.2.3.4,", " , "])
def test_an_empty_hop_from_a_trusted_proxy_leaves_the_client_unknown(forwarded: str) -> None:
    # uvicorn keeps the proxy's own address here; an allow-list must not match the proxy
    proxies = TrustedProxies(TRUSTED)
    assert proxies.apply("127.0.0.1", "http", [("X-Forwarded-For", forwarded)]) == (None, "http")


def test_no_trusted_proxies_changes_nothing() -> None:
    proxies = TrustedProxies("")
    assert not proxies
    assert proxies.apply("127.0.0.1", "http", [("X-Forwarded-For", "1.2.3.4"),
                                              ("X-Forwarded-Proto", "https")]) == (
        "127.0.0.1", "http")


def test_hostile_hops_are_never_trusted() -> None:
    proxies = TrustedProxies(TRUSTED)
    long_port = "1.2.3.4:" + "9" * 5000
    for hop in (long_port, "1" * 5000, "²", "[::1", "10.0.0.1]"):
        client, _ = proxies.apply("127.0.0.1", "http", [("X-Forwarded-For", hop)])
        assert client == hop and parse_address(hop) is None


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),               # no proxy
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),          # untrusted peer: header ignored
        ("127.0.0.1", None, "127.0.0.1"),                   # trusted peer, no header
        ("127.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("127.0.0.1", "1.2.3.4, 10.1.1.1", "1.2.3.4"),      # trusted hops are skipped
        ("127.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4"),       # left of the client: spoofable
        ("127.0.0.1", "10.2.2.2, 10.1.1.1", "10.2.2.2"),    # all trusted: the left-most
        ("127.0.0.1", " 1.2.3.4 ", "1.2.3.4"),
        ("127.0.0.1", "1.2.3.4:5678", "1.2.3.4"),           # a port, as uvicorn reads it
        ("::ffff:127.0.0.1", "1.2.3.4", "1.2.3.4"),         # IPv4-mapped peer
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    assert client_address(peer, forwarded, TRUSTED_NETWORKS) == parse_address(expected)


@pytest.mark.parametrize("forwarded", ["garbage", "1.2.3.4, unknown", "1.2.3.4,", ","])
def test_client_address_unreadable_hop_is_no_address(forwarded: str) -> None:
    assert client_address("127.0.0.1", forwarded, TRUSTED_NETWORKS) is None


def test_client_address_without_trusted_proxies_is_the_peer() -> None:
    assert client_address("127.0.0.1", "1.2.3.4", ()) == parse_address("127.0.0.1")
    assert client_address(None, "1.2.3.4", TRUSTED_NETWORKS) is None


@pytest.mark.parametrize(("host", "bucket"), [
    ("203.0.113.9", "203.0.113.9"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),   # one holder's /64 is one client
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    (None, "unknown"), ("", "unknown"), ("not-an-ip", "unknown"), ("1" * 300, "unknown"),
])
def test_client_bucket(host: str | None, bucket: str) -> None:
    assert client_bucket(host) == bucket


@pytest.mark.parametrize(("peer", "forwarded", "bucket"), [
    ("203.0.113.9", None, "203.0.113.9"),
    ("2001:db8:1:2::7", None, "2001:db8:1:2::/64"),
    ("10.0.0.2", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # behind a trusted proxy
    ("10.0.0.2", "::ffff:203.0.113.9", "203.0.113.9"),
    ("10.0.0.2", "not-an-ip", "unknown"), ("10.0.0.2", ",", "unknown"),
    ("198.51.100.1", "203.0.113.9", "198.51.100.1"),              # an untrusted peer's claim
])
def test_per_client_budgets_count_by_the_one_rule(peer: str, forwarded: str | None,
                                                  bucket: str) -> None:
    call = Call(service=USER_IMAGE, values={}, image_mode=False, app=None,
                request=ApiRequest(service="App.QQ.UserImage", params={}, client=peer,
                                   headers={"x-forwarded-for": forwarded} if forwarded else {}))
    assert client_key(call, TRUSTED_NETWORKS) == bucket


def test_the_budgets_have_no_copy_of_the_bucket_rule() -> None:
    # The IPv6 /64 rule lives in proxies.client_bucket only: two copies would drift apart.
    names = {node.names[0].name for node in ast.walk(ast.parse(inspect.getsource(perclient)))
             if isinstance(node, ast.Import)}
    assert "ipaddress" not in names
    assert "client_bucket" in inspect.getsource(perclient.client_key)
