"""The headers of an avatar's image answer, made per answer from shared pieces.

ETag, Last-Modified, X-Avatar-Default and X-Avatar-Size are the same on every answer of
one avatar, but kept with each cached avatar they cost ~260 B apiece (four tuples and a
date string: a twelfth of a 40 px JPEG). So they live in a bounded hot table of their
own, keyed by the ETag and Last-Modified time (the rest follows from the bytes): the
avatars answered lately find theirs there, the others have theirs made (X-Avatar pairs
shared by all, the date formatted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..httpcache import CACHE_CONTROL, http_date

if TYPE_CHECKING:
    from .model import Avatar

Header = tuple[str, str]

KEPT = 4096  # ~330 B each (1.3 MiB); past it the table starts afresh
_DEFAULT: dict[bool, Header] = {False: ("X-Avatar-Default", "0"), True: ("X-Avatar-Default", "1")}
_SIZES: dict[int, Header] = {}
_KEPT: dict[tuple[str, int, int], tuple[Header, Header, Header, Header]] = {}


def size_header(size: int) -> Header:
    header = _SIZES.get(size)
    if header is None:
        header = ("X-Avatar-Size", str(size))
        if len(_SIZES) < 1024:  # sizes are a handful; the bound is only a guard
            _SIZES[size] = header
    return header


def image_headers(found: Avatar, max_age: int, x_cache: str) -> list[Header]:
    """Every header of an image answer but the server's own."""
    # The size too: qlogo may send the same bytes for two sizes (a default image), and each
    # answer says the size it was asked as. (is_default follows from the bytes.)
    key = (found.etag, found.modified_at, found.size)
    kept = _KEPT.get(key)
    if kept is None:
        if len(_KEPT) >= KEPT:
            _KEPT.clear()
        kept = _KEPT[key] = (("ETag", found.etag),
                             ("Last-Modified", http_date(found.modified_at)),
                             _DEFAULT[found.is_default], size_header(found.size))
    return [*kept, ("Cache-Control", CACHE_CONTROL % max_age), ("X-Cache", x_cache)]
