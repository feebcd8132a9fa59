"""Link URLs: `<public base>/a/<token>[.<format>]`.

The extension is the `format` parameter when the link has one (so pages and tools that
look at extensions see the right one), and nothing otherwise; any other extension is a
different URL and answers 404, so each link has exactly one spelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .tokens import LinkTarget

PATH_PREFIX = "/a/"
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def public_base(configured: str | None, scheme: str, headers: Mapping[str, str]) -> str | None:
    """QQAVATAR_PUBLIC_URL, else the request's scheme and Host; None without a usable Host."""
    if configured:
        return configured
    host = headers.get("host", "")
    if _HOST.fullmatch(host) is None:  # a URL handed out must not carry a crafted Host
        return None
    return f"{'https' if scheme == 'https' else 'http'}://{host}"


def extension(target: LinkTarget) -> str | None:
    return target.get("format")


def link_url(base: str, token: str, target: LinkTarget) -> str:
    ext = extension(target)
    return f"{base}{PATH_PREFIX}{token}" + (f".{ext}" if ext else "")


def split_name(name: str) -> tuple[str, str | None]:
    """The last path segment → (token, extension or None). Tokens hold no dot."""
    token, dot, ext = name.partition(".")
    return token, (ext if dot else None)
