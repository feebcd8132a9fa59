"""HTTP caching, pure (no I/O, nothing of ours imported): the rules of RFC 9110 and 9111 that
an avatar's answer and its upstream fetch follow.

- `etag_matches`, `not_modified`: a conditional request's `If-None-Match` (which wins) or
  `If-Modified-Since` against a representation's ETag and modification time: 304 or 200;
- `http_date`, `parse_http_date`: Last-Modified and If-Modified-Since dates, both ways;
- `CACHE_CONTROL`, `parse_max_age`: the `Cache-Control` we send, and the upstream's max-age.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a list, or `*`."""
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def not_modified(etag: str, modified_at: int, headers: Mapping[str, str]) -> bool:
    """Does the client's copy match? If-None-Match when sent, else If-Modified-Since.
    `headers`: the request's, lowercase names."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    since_text = headers.get("if-modified-since")
    if since_text is None:  # the common case: no call to the date parser
        return False
    since = parse_http_date(since_text)
    return since is not None and modified_at <= since


def http_date(unix: int) -> str:
    """RFC 9110 IMF-fixdate, as `email.utils.formatdate(unix, usegmt=True)` in a third of
    its time."""
    t = time.gmtime(unix)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_http_date(value: str | None) -> int | None:
    """`Sun, 06 Nov 1994 08:49:37 GMT` → 784111777; None for anything unreadable."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# What shared caches and browsers may do with an avatar: keep it `max_age` seconds (`%`
# this format with the seconds: a function call more would cost on the hot path).
CACHE_CONTROL = "public, max-age=%d"


def parse_max_age(value: str | None) -> int | None:
    """The max-age of a `Cache-Control` header, None when it gives none."""
    match = _MAX_AGE.search(value or "")
    return int(match[1]) if match else None
