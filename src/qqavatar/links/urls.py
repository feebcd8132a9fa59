"""Link URLs: `<public base>/a/<token>[.<format>]`.

The extension is the `format` parameter when the link has one (so pages and tools that
look at extensions see the right one), and nothing otherwise; any other extension is a
different URL and answers 404, so each link has exactly one spelling.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tokens import LinkTarget

PATH_PREFIX = "/a/"


def public_base(configured: str | None, allowed_hosts: Sequence[str], scheme: str,
                host: str | None, server: tuple[str, int] | str | None) -> str | None:
    """The base of the link URLs handed out, never built from arbitrary request text.

    A link URL goes into `data`, which `_auth` signs with the construction of the request
    sign: request text there would make `_auth` a sign oracle (docs/security.md). So the
    base is QQAVATAR_PUBLIC_URL; else the request's Host only if the operator listed it in
    QQAVATAR_ALLOWED_HOSTS (any other Host gets the first listed one); else the address the
    connection reached the server on. None: none of these is known.
    """
    if configured:
        return configured
    prefix = "https://" if scheme == "https" else "http://"
    if allowed_hosts:
        asked = (host or "").lower()
        return prefix + (asked if asked in allowed_hosts else allowed_hosts[0])
    address = server_address(server)
    return None if address is None else prefix + address


def server_address(server: tuple[str, int] | str | None) -> str | None:
    """`host:port` of the address a connection reached (ASGI's tuple, RSGI's text);
    an IPv6 host in brackets."""
    if server is None:
        return None
    if isinstance(server, str):
        host, _, port = server.rpartition(":")
    else:
        host, port = server[0], str(server[1])
    host = host.strip("[]")
    if not host or not port.isdigit():
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def extension(target: LinkTarget) -> str | None:
    return target.get("format")


def link_url(base: str, token: str, target: LinkTarget) -> str:
    ext = extension(target)
    return f"{base}{PATH_PREFIX}{token}" + (f".{ext}" if ext else "")


def split_name(name: str) -> tuple[str, str | None]:
    """The last path segment → (token, extension or None). Tokens hold no dot."""
    token, dot, ext = name.partition(".")
    return token, (ext if dot else None)
