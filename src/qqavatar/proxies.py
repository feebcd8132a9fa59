"""Who is calling, and over which scheme: one rule for every route (API, pages, guards).

The peer of the connection is the client, unless it is a trusted proxy
(`QQAVATAR_TRUSTED_PROXIES`). Then the scheme comes from `X-Forwarded-Proto`, and the
client is the right-most hop of `X-Forwarded-For` that is not itself a trusted proxy (the
left-most when all are): hops further left were written by that client and prove nothing.
A hop that is not an address is the client as written, so an allow-list never matches it;
an empty one leaves the client unknown (None).

Under uvicorn, `ProxyHeadersMiddleware` (`forwarded_allow_ips` = the trusted proxies) has
already applied this to the scope; applying it again gives the same answer, so pages and
guards read the client through here whichever server runs them.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .limits.limit_values import (
    IPAddress,
    IPNetwork,
    in_networks,
    networks,
    parse_address,
    split_list,
)

if TYPE_CHECKING:
    from starlette.requests import Request

_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_MAX_HOST = 253  # longer is no address: not looked up, never trusted


class TrustedProxies:
    def __init__(self, trusted: str | Sequence[IPNetwork]) -> None:
        """`trusted`: the setting's comma-separated CIDRs, or parsed networks."""
        self.networks: tuple[IPNetwork, ...] = (
            networks(tuple(split_list(trusted))) if isinstance(trusted, str) else tuple(trusted))
        self.trusts = functools.lru_cache(maxsize=4096)(self._trusts)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusts(self, host: str) -> bool:
        address = parse_address(host) if len(host) <= _MAX_HOST else None
        return address is not None and in_networks(address, self.networks)

    def client_of(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client's host, given the peer and the `X-Forwarded-For` values in order."""
        if peer is None or not self.networks or not self.trusts(peer):
            return peer
        hops = [_host(hop.strip()) for value in forwarded_for for hop in value.split(",")]
        if not hops:
            return peer
        chosen = next((hop for hop in reversed(hops) if not self.trusts(hop)), hops[0])
        return chosen or None

    def apply(self, client: str | None, scheme: str,
              headers: Iterable[tuple[str, str]]) -> tuple[str | None, str]:
        """(client, scheme) as the client sees them, given the peer and the request headers."""
        if client is None or not self.networks or not self.trusts(client):
            return client, scheme
        proto: str | None = None
        forwarded: list[str] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == "x-forwarded-proto":
                proto = value.strip()
            elif lowered == "x-forwarded-for":
                forwarded.append(value)
        if proto in _SCHEMES:
            scheme = proto
        return self.client_of(client, forwarded), scheme


@functools.lru_cache(maxsize=16)
def trusted_proxies(trusted: str | tuple[IPNetwork, ...]) -> TrustedProxies:
    """The rule of a setting (its CIDRs as written, or parsed), made once per distinct value."""
    return TrustedProxies(trusted)


def client_host(peer: str | None, forwarded_for: str | None,
                trusted: Sequence[IPNetwork]) -> str | None:
    """The client's host as written (the peer, or a forwarded hop); None when unknown."""
    values = [forwarded_for] if forwarded_for else []
    return trusted_proxies(tuple(trusted)).client_of(peer, values)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The client as an address (for allow-lists); None when it is unknown or not one."""
    host = client_host(peer, forwarded_for, trusted)
    return parse_address(host) if host else None


def client_bucket(host: str | None) -> str:
    """What a per-client budget counts under: the address, an IPv6 client by its /64 (one
    holder owns it), and every client that is no address as one ("unknown")."""
    address = parse_address(host) if host else None
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def request_client(request: Request) -> tuple[str | None, str]:
    """(client host, scheme) of a page request, by the server's trusted-proxy setting."""
    runtime = getattr(request.app.state, "runtime", None)
    cidrs: str = runtime.settings.trusted_proxies if runtime is not None else ""
    peer = request.client.host if request.client is not None else None
    return trusted_proxies(cidrs).apply(peer, request.url.scheme, request.headers.items())


def _host(value: str) -> str:
    """The host of a forwarded `host`, `host:port` or `[v6]:port`, read as uvicorn reads it."""
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value
        remainder = value[end + 1:]
        return value[1:end] if not remainder or remainder.startswith(":") else value
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host if port.isascii() and port.isdigit() and len(port) <= 5 else value
    return value
