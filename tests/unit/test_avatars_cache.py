"""The byte-bounded LRU: bound, order, expiry, oversize entries."""

from __future__ import annotations

from dataclasses import fields

from qqavatar.avatars.cache import ENTRY_OVERHEAD, SLACK_DIVISOR, AvatarCache, entry_cost
from qqavatar.avatars.model import Avatar, Key, make_avatar


def avatar(size: int = 1000, *, lifetime: int = 60, now: float = 0.0, fill: bytes = b"x") -> Avatar:
    return make_avatar(fill * size, "image/jpeg", is_default=False, lifetime=lifetime, now=now)


def key(n: int) -> Key:
    return ("user", str(10000 + n), 100, "")


def test_entry_cost_counts_the_body_once_slack_and_overhead() -> None:
    a = avatar(3000)
    assert entry_cost(a) == 3000 + 3000 // SLACK_DIVISOR + ENTRY_OVERHEAD


def test_an_avatar_holds_one_copy_of_its_image() -> None:
    """Nothing derived from the bytes (base64, JSON pieces) is kept with the avatar: the
    handlers' bounded hot tier holds those (handlers/digests.py)."""
    a = avatar(3000)
    held = [field.name for field in fields(Avatar) if isinstance(getattr(a, field.name), bytes)]
    assert held == ["body"]


def test_total_bytes_never_exceeds_the_bound_and_oldest_go_first() -> None:
    cost = entry_cost(avatar())
    cache = AvatarCache(max_bytes=cost * 3 + cost // 2)
    for n in range(10):
        cache.put(key(n), avatar())
        assert cache.total_bytes <= cache.max_bytes
    assert cache.keys() == [key(7), key(8), key(9)]
    assert cache.total_bytes == 3 * cost


def test_get_marks_an_entry_recently_used() -> None:
    cost = entry_cost(avatar())
    cache = AvatarCache(max_bytes=cost * 3)
    for n in range(3):
        cache.put(key(n), avatar())
    assert cache.get(key(0), now=1) is not None
    cache.put(key(3), avatar())
    assert cache.keys() == [key(2), key(0), key(3)]  # key(1) was the least recently used


def test_a_miss_is_none() -> None:
    assert AvatarCache(10_000).get(key(0), now=0) is None


def test_expired_entries_are_not_fresh_but_kept_for_stale_answers() -> None:
    cache = AvatarCache(100_000)
    kept = avatar(lifetime=60, now=100)
    cache.put(key(0), kept)
    assert cache.get(key(0), now=159.9) is kept
    assert cache.get(key(0), now=160) is None
    assert cache.lookup(key(0)) is kept  # any age: what stale-while-revalidate answers with
    assert len(cache) == 1
    cache.discard(key(0))
    assert cache.total_bytes == 0


def test_lookup_is_a_use_and_peek_is_not() -> None:
    cost = entry_cost(avatar())
    cache = AvatarCache(max_bytes=cost * 2)
    cache.put(key(0), avatar())
    cache.put(key(1), avatar())
    assert cache.peek(key(0)) is not None
    cache.put(key(2), avatar())
    assert cache.keys() == [key(1), key(2)]  # peeking key(0) did not save it
    assert cache.lookup(key(1)) is not None
    cache.put(key(3), avatar())
    assert cache.keys() == [key(1), key(3)]
    assert cache.lookup(key(0)) is None and cache.peek(key(0)) is None


def test_an_entry_bigger_than_the_bound_is_not_cached() -> None:
    cache = AvatarCache(max_bytes=5000)
    assert cache.put(key(0), avatar(100))
    assert not cache.put(key(1), avatar(5000))
    assert cache.keys() == [key(0)]


def test_replacing_an_entry_keeps_the_byte_count_exact() -> None:
    cache = AvatarCache(max_bytes=100_000)
    cache.put(key(0), avatar(1000))
    cache.put(key(0), avatar(2000))
    assert len(cache) == 1
    assert cache.total_bytes == entry_cost(avatar(2000))
    cache.discard(key(0))
    cache.discard(key(0))
    assert cache.total_bytes == 0


def test_an_oversize_replacement_drops_the_stale_entry() -> None:
    cache = AvatarCache(max_bytes=5000)
    cache.put(key(0), avatar(100))
    cache.put(key(0), avatar(5000))
    assert cache.get(key(0), now=0) is None
    assert cache.total_bytes == 0


def test_zero_bound_caches_nothing() -> None:
    cache = AvatarCache(max_bytes=0)
    assert not cache.put(key(0), avatar(1))
    assert len(cache) == 0
