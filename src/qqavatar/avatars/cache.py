"""An LRU of avatars bounded by the bytes they hold, not by their number.

Expired entries stay until the LRU evicts them or the service drops them: they are what
stale-while-revalidate and stale-if-error answer with.
"""

from __future__ import annotations

from collections import OrderedDict

from .model import Avatar, Key

# What an entry costs the process in resident memory, measured (RSS, not tracemalloc) at a
# full cache's steady state on CPython 3.11 and glibc: beyond its image's length, about
# 550 B of objects (the Avatar, its ETag string, the key and its number string, the
# OrderedDict's node and table slot; answer headers are made per answer, headers.py) and
# allocator slack of up to about 8 % of the bytes (freed temporaries of the same sizes leave
# holes). The bound is honest only if this does not undercount:
# tests/adversarial/test_resource_bounds.py fills a cache and compares RSS with it.
ENTRY_OVERHEAD = 700
SLACK_DIVISOR = 8  # 12.5 % of the bytes on top


def entry_cost(avatar: Avatar) -> int:
    payload = len(avatar.body)
    return payload + payload // SLACK_DIVISOR + ENTRY_OVERHEAD


class AvatarCache:
    """`get`, `lookup` and `put` are O(1); entries leave by LRU eviction or `discard`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total_bytes = 0
        self._entries: OrderedDict[Key, Avatar] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Held, fresh or not; does not count as a use."""
        return key in self._entries

    def keys(self) -> list[Key]:
        """Least recently used first."""
        return list(self._entries)

    def get(self, key: Key, now: float) -> Avatar | None:
        """The fresh avatar for `key`, marked as most recently used, or None."""
        avatar = self._entries.get(key)
        if avatar is None or avatar.expires_at <= now:
            return None
        self._entries.move_to_end(key)
        return avatar

    def lookup(self, key: Key) -> Avatar | None:
        """The avatar for `key` fresh or expired, marked as most recently used, or None."""
        avatar = self._entries.get(key)
        if avatar is not None:
            self._entries.move_to_end(key)
        return avatar

    def peek(self, key: Key) -> Avatar | None:
        """Like `lookup`, but not a use: the LRU order stays as it is."""
        return self._entries.get(key)

    def put(self, key: Key, avatar: Avatar) -> bool:
        """Store `avatar`, evicting the least recently used; False if it alone exceeds the bound."""
        self.discard(key)
        cost = entry_cost(avatar)
        if cost > self.max_bytes:
            return False
        self._entries[key] = avatar
        self.total_bytes += cost
        while self.total_bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.total_bytes -= entry_cost(evicted)
        return True

    def discard(self, key: Key) -> None:
        avatar = self._entries.pop(key, None)
        if avatar is not None:
            self.total_bytes -= entry_cost(avatar)

    def clear(self) -> None:
        self._entries.clear()
        self.total_bytes = 0
