"""The headers of an avatar's image answer, made per answer from shared pieces.

ETag, Last-Modified, X-Avatar-Default and X-Avatar-Size are the same on every answer of
one avatar, but kept with each cached avatar they cost ~260 B apiece (four tuples and a
date string: a twelfth of a 40 px JPEG). Made per answer they cost a few dictionary
lookups: the X-Avatar pairs are a handful shared by all, and the Last-Modified pairs of
the avatars answered lately are kept in a bounded table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Avatar

Header = tuple[str, str]

LAST_MODIFIED_KEPT = 16384  # ~190 B each; past it the table starts afresh
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DEFAULT: dict[bool, Header] = {False: ("X-Avatar-Default", "0"), True: ("X-Avatar-Default", "1")}
_SIZES: dict[int, Header] = {}
_LAST_MODIFIED: dict[int, Header] = {}


def http_date(unix: int) -> str:
    """RFC 9110 IMF-fixdate, as `email.utils.formatdate(unix, usegmt=True)` in a third of
    its time."""
    t = time.gmtime(unix)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def last_modified(unix: int) -> Header:
    header = _LAST_MODIFIED.get(unix)
    if header is None:
        if len(_LAST_MODIFIED) >= LAST_MODIFIED_KEPT:
            _LAST_MODIFIED.clear()
        header = _LAST_MODIFIED[unix] = ("Last-Modified", http_date(unix))
    return header


def size_header(size: int) -> Header:
    header = _SIZES.get(size)
    if header is None:
        header = ("X-Avatar-Size", str(size))
        if len(_SIZES) < 1024:  # sizes are a handful; the bound is only a guard
            _SIZES[size] = header
    return header


def image_headers(found: Avatar, cache_control: str, x_cache: str) -> list[Header]:
    """Every header of an image answer but the server's own."""
    return [("ETag", found.etag), last_modified(found.modified_at), _DEFAULT[found.is_default],
            size_header(found.size), ("Cache-Control", cache_control), ("X-Cache", x_cache)]
