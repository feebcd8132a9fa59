"""Answers of cached hits kept by the request as it arrived, to give again to the same URL.

A hot avatar is asked for with the very same URL many times a second. Instead of parsing,
looking up the app, checking the sign and building the answer each time, the server keeps
the answer the gateway marked as `kept` under the raw path and query, and for the next
identical GET asks `Gateway.replay` whether it still holds (same second, same app record,
same cached avatar) and counts the call. Requests with conditional headers or a body
(not `plain`) take the full path, as does everything else the gateway does not mark
(misses, apps with limits, sessions, private links); `web/rsgi.py` does the lookup.

Bounded: kept answers belong to one second (a new second starts afresh), and at most
`MAX_ENTRIES` of them holding `MAX_BYTES` of keys and bodies are kept at once (past that,
answers are simply not kept until the next second).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..apicall import ApiReply, Kept

if TYPE_CHECKING:
    from granian._granian import RSGIHeaders

MAX_ENTRIES = 1024
MAX_BYTES = 4 * 1024 * 1024

Header = tuple[str, str]
# (the gateway's kept call, status, the response headers before X-Request-Id, body)
KeptReply = tuple[Kept, int, list[Header], bytes]


def plain(headers: RSGIHeaders) -> bool:
    """Neither conditional nor carrying a body: a kept answer is the whole answer to it, and
    its own answer may be kept."""
    return not ("if-none-match" in headers or "if-modified-since" in headers
                or "content-length" in headers or "transfer-encoding" in headers)


class KeptReplies:
    __slots__ = ("_bytes", "_entries", "_second", "get", "max_bytes", "max_entries")

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: dict[str, KeptReply] = {}
        # `get(key)`: the kept answer, or None. The dict's own method, no Python frame around
        # it: it runs for every GET (the entries are cleared, never replaced).
        self.get: Callable[[str], KeptReply | None] = self._entries.get
        self._second = -1
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, reply: ApiReply, head: list[Header]) -> None:
        """Keep `reply` (its `kept` set) under `key`; `head` is its headers as sent."""
        kept = reply.kept
        assert kept is not None
        if kept.second != self._second:  # older answers cannot hold any more: let them go
            self._entries.clear()
            self._second, self._bytes = kept.second, 0
        cost = len(key) + len(reply.body)
        old = self._entries.get(key)
        if old is not None:
            self._bytes -= len(key) + len(old[3])
        elif len(self._entries) >= self.max_entries:
            return
        if self._bytes + cost > self.max_bytes:
            if old is not None:
                del self._entries[key]
            return
        self._entries[key] = (kept, reply.status, head, reply.body)
        self._bytes += cost
