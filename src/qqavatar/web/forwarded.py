"""X-Forwarded-For / X-Forwarded-Proto from trusted proxies, for the RSGI server path.

Under uvicorn its `ProxyHeadersMiddleware` does this (`proxy_headers` with
`forwarded_allow_ips=QQAVATAR_TRUSTED_PROXIES`); granian has no such option, so the
RSGI path applies the same rules here: only when the peer is a trusted proxy, the
scheme comes from `X-Forwarded-Proto` and the client is the right-most hop of
`X-Forwarded-For` that is not itself a trusted proxy (the left-most when all are).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

_SCHEMES = frozenset({"http", "https", "ws", "wss"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, cidrs: str) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in cidrs.split(",") if item.strip())
        self.trusts = functools.lru_cache(maxsize=4096)(self._trusts)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def apply(self, client: str | None, scheme: str,
              headers: Iterable[tuple[str, str]]) -> tuple[str | None, str]:
        """(client, scheme) as the client sees them, given the peer and the request headers."""
        if client is None or len(client) > 253 or not self.trusts(client):
            return client, scheme
        proto: str | None = None
        hops: list[str] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == "x-forwarded-proto":
                proto = value
            elif lowered == "x-forwarded-for":
                hops.append(value)
        if proto is not None and proto.strip() in _SCHEMES:
            scheme = proto.strip()
        if hops:
            hosts = [_host(item.strip()) for item in ", ".join(hops).split(",")]
            chosen = next((host for host in reversed(hosts)
                           if len(host) > 253 or not self.trusts(host)), hosts[0])
            if chosen:
                client = chosen
        return client, scheme


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
        try:
            int(port)
        except ValueError:
            return value
        return host
    return value
