"""Who is calling: the client address behind (only) the proxies the operator trusts.

The peer of the connection is the client, unless it is a trusted proxy: then
`X-Forwarded-For` is read from the right, skipping trusted hops, and the first
untrusted hop is the client. Hops further left were written by that client and
prove nothing. A hop that is not an address ends the walk with no answer, which
the allow-list treats as "not allowed".

Both server paths already apply these rules to the peer address they hand over
(uvicorn through `forwarded_allow_ips`, the RSGI path in `web.forwarded`), and
applying them twice gives the same address; this keeps the allow-list right
under any other ASGI server too.
"""

from __future__ import annotations

from collections.abc import Sequence

from .values import IPAddress, IPNetwork, in_networks, parse_address


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> IPAddress | None:
    address = parse_address(peer) if peer else None
    if address is None or not trusted or not in_networks(address, trusted):
        return address
    if not forwarded_for:
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None
        if not in_networks(hop_address, trusted):
            return hop_address
        address = hop_address
    return address  # every hop is a trusted proxy: the left-most one is the best we know
