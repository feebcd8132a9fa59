"""Limit values as operators write them and as requests carry them: pure, no I/O.

Lists (CIDRs, domains) are stored comma-separated and normalised, so what
`app show` prints is exactly what the guards compare against.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

MAX_LIST_ITEMS = 100
_CLEAR_WORDS = frozenset({"", "none"})
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


MAX_QUOTA = 2**63 - 1
# The moving window keeps one entry per call of the last second, so this bounds its memory.
MAX_RATE_LIMIT = 100_000


def clean_limit(value: int | None, what: str, maximum: int = MAX_QUOTA) -> int | None:
    """A count limit as stored: None for none (0 clears), ValueError when out of range."""
    if value is None or value == 0:
        return None
    if not 0 < value <= maximum:
        raise ValueError(f"{what} must be between 1 and {maximum}, or 0 to clear it; got {value}")
    return value


def split_list(text: str) -> list[str]:
    """`a, b,c` → ["a", "b", "c"]; "" or "none" → [] (clears the list)."""
    if text.strip().lower() in _CLEAR_WORDS:
        return []
    return [item.strip() for item in text.split(",") if item.strip()]


def join_list(items: Iterable[str]) -> str:
    return ",".join(items)


def _dedup(items: Iterable[str]) -> tuple[str, ...]:
    seen = dict.fromkeys(items)
    if len(seen) > MAX_LIST_ITEMS:
        raise ValueError(f"at most {MAX_LIST_ITEMS} entries, got {len(seen)}")
    return tuple(seen)


def clean_cidrs(items: Iterable[str]) -> tuple[str, ...]:
    """Normalised networks: `10.1.2.3/8` → `10.0.0.0/8`, a bare address → `/32` (`/128`).

    `items` may also be one comma-separated string.
    """
    cleaned = []
    for item in split_list(items) if isinstance(items, str) else items:
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
        cleaned.append(str(network))
    return _dedup(cleaned)


def clean_domains(items: Iterable[str]) -> tuple[str, ...]:
    """Host names as a `Host` header carries them: lowercase, IDNA (punycode), no port.

    `items` may also be one comma-separated string.
    """
    listed = split_list(items) if isinstance(items, str) else items
    return _dedup(_clean_domain(item) for item in listed)


def _clean_domain(item: str) -> str:
    text = item.strip().lower().rstrip(".")
    literal = _ip_literal(text)
    if literal is not None:
        return literal
    if ":" in text or "/" in text:
        raise ValueError(f"a domain is a host name without scheme, port or path: {item!r}")
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"not a valid domain name: {item!r}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"not a valid domain name: {item!r}")
    return ascii_name


def _ip_literal(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def host_of(header: str) -> str:
    """The host of a `Host` header, as `clean_domains` writes it: port, case, dot removed."""
    text = header.strip().lower()
    if text.startswith("["):  # [v6]:port
        end = text.find("]")
        return (_ip_literal(text[: end + 1]) or text) if end > 0 else text
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    host = host.rstrip(".")
    return _ip_literal(host) or host


@functools.lru_cache(maxsize=1024)
def networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parsed networks of a stored allow-list (memoised: the hot path asks for it per call)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def parse_address(text: str) -> IPAddress | None:
    """An address, IPv4-mapped IPv6 (`::ffff:1.2.3.4`) read as IPv4; None if not one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: IPAddress, allowed: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in allowed)
