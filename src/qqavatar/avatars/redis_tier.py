"""The shared avatar tier (`QQAVATAR_REDIS_URL`): memory → disk → Redis → upstream.

Every server keeps its own memory (and disk) tier; Redis holds one more copy of each
upstream image (variant "" only: transcoded copies and identicons are cheap to make
again), so an avatar one server fetched is a hit on every other one.

Stored value: one binary string per avatar, `qqavatar:avatar:{kind:number:size}` (the
braces are a Redis Cluster hash tag: the scripts below touch a key's lock and outcome in
one slot). A fixed header (`_HEADER`: version, flags, size, Last-Modified, wall-clock
expiry, max-age, the 16 bytes of the ETag digest, lengths), the content type, the raw
image bytes; decoding checks the body against the ETag, as the disk tier does, and every
copy read back passes the checks of an upstream answer before it is used (entrycheck.py:
a Redis others can write to must not get text/html served as an avatar). The Redis
expiry is the freshness left plus the longer stale window, so a copy stays for
stale-while-revalidate and stale-if-error and then goes by itself.

Cross-host single-flight (`fetch_once`), under each server's own single-flight (one
Redis conversation per key per worker):

- `claim`: one script does `SET lock token NX PX` and answers either "yours", with the
  stored copy (another server may have refreshed it between our read and the lock), or
  the holder's token.
- The holder fetches, then one script stores the copy, writes the flight's outcome under
  `…:{token}` for its waiters, and deletes the lock if it still holds it
  (compare-and-delete: a lock that expired and was taken by someone else stays theirs).
- Waiters poll the outcome every `poll_interval` (short sleeps: no second connection
  for pub/sub, and a waiter's loop is bounded by the lock's lifetime). An upstream
  failure is shared: the waiters of that one flight answer the same failure instead of
  each asking the upstream again (later callers take the lock anew; the per-worker
  negative cache decides how long a failure is remembered). A failure that says nothing
  about the upstream (the holder's circuit open, its own queue full) is not shared: the
  holder lets go and one waiter takes over. So does a lock that expires without an
  outcome (the holder died), within `MAX_ROUNDS`.

Redis failing never fails a request: every operation goes through `RedisLink.run` with
a fallback (no copy; "fetch it yourself"), and the caller asks the upstream directly.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import time as wall_clock
from typing import TYPE_CHECKING, Literal

from .. import metric_hooks
from .disk import DiskEntry
from .entrycheck import STORED_MAX_BYTES, checked
from .failures import UNAVAILABLE, Failure, UpstreamError
from .model import Avatar, Key, etag_of

if TYPE_CHECKING:  # redis costs ~0.1 s to import: only servers with a Redis URL load it
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from ..redislink import RedisLink

log = logging.getLogger(__name__)

PREFIX = "qqavatar:avatar"
VERSION = 1
_DEFAULT = 1  # flags bit: Tencent's default image
# version, flags, size, modified_at, expires (wall clock), max_age, etag digest, lengths
# of the format name and the content type; then those two, then the body.
_HEADER = struct.Struct("!BBHqdI16sBB")
MIN_TTL_MS = 1000
POLL_INTERVAL = 0.02
MAX_ROUNDS = 3  # a waiter takes over at most this often (holders that died or let go)

# Outcome of a flight, for its waiters: the copy is in the tier (T), inline because it is
# not to be cached (A + encoded), an upstream failure (E + its Failure id), or let go (R).
_STORED, _INLINE, _FAILED, _LET_GO = b"T", b"A", b"E", b"R"

# KEYS: lock, tier. ARGV: token, lock ttl (ms). → {1, stored copy} or {0, holder's token}.
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2])}
end
return {0, redis.call('GET', KEYS[1])}
"""
# KEYS: lock, tier, outcome. ARGV: token, outcome, outcome ttl, copy, copy ttl ("" = none).
_FINISH = """
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
# KEYS: outcome, lock, tier. → {outcome, the copy when stored} or {false, lock's token}.
_POLL = """
local outcome = redis.call('GET', KEYS[1])
if outcome == 'T' then return {outcome, redis.call('GET', KEYS[3])} end
if outcome then return {outcome, false} end
return {false, redis.call('GET', KEYS[2])}
"""


def encode(entry: DiskEntry) -> bytes:
    format_, content_type = entry.format.encode(), entry.content_type.encode()
    header = _HEADER.pack(VERSION, _DEFAULT if entry.is_default else 0, entry.size,
                          entry.modified_at, entry.expires_wall, entry.max_age,
                          bytes.fromhex(entry.etag.strip('"')), len(format_), len(content_type))
    return header + format_ + content_type + entry.body


def decode(raw: bytes) -> DiskEntry | None:
    """The entry in `raw`, or None when anything about it is off."""
    try:
        version, flags, size, modified_at, expires, max_age, digest, format_length, \
            type_length = _HEADER.unpack_from(raw)
        type_start = _HEADER.size + format_length
        body_start = type_start + type_length
        format_ = raw[_HEADER.size:type_start].decode()
        content_type = raw[type_start:body_start].decode()
    except (struct.error, UnicodeDecodeError):
        return None
    body = raw[body_start:]
    etag = f'"{digest.hex()}"'
    if version != VERSION or len(raw) < body_start or etag_of(body) != etag:
        return None
    return DiskEntry(body=body, content_type=content_type, is_default=bool(flags & _DEFAULT),
                     size=size, format=format_, modified_at=modified_at, expires_wall=expires,
                     max_age=max_age, etag=etag)


def tier_key(key: Key) -> str:
    kind, number, size, variant = key
    assert not variant, key  # only the upstream's own image is shared
    return f"{PREFIX}:{{{kind}:{number}:{size}}}"


@dataclass(frozen=True, slots=True)
class _Claim:
    mine: bool
    token: str               # ours when mine, else the holder's
    stored: bytes | None     # the copy in the tier when the lock became ours


Waited = DiskEntry | UpstreamError | Literal["take over", "give up"]


class SharedTier:
    """The Redis tier of one worker; `keep_after_expiry` is the longest stale window,
    `lock_ttl` the longest a fetch may take (its waiters wait that long), `max_bytes` the
    upstream's bound (a larger copy is refused)."""

    def __init__(self, link: RedisLink, *, keep_after_expiry: float, lock_ttl: float,
                 poll_interval: float = POLL_INTERVAL,
                 max_bytes: int = STORED_MAX_BYTES) -> None:
        self.link = link
        self.max_bytes = max_bytes
        self.keep_after_expiry = keep_after_expiry
        self.lock_ttl = lock_ttl
        self.poll_interval = poll_interval
        client = link.client
        self._claim: AsyncScript = client.register_script(_CLAIM)
        self._finish: AsyncScript = client.register_script(_FINISH)
        self._poll: AsyncScript = client.register_script(_POLL)

    # --- the tier ---------------------------------------------------------------------------

    async def load(self, key: Key) -> DiskEntry | None:
        """The stored copy of `key` (fresh or not), None if there is none or Redis is down."""
        name = tier_key(key)

        async def get(client: Redis) -> bytes | None:
            raw = await client.get(name)
            return raw if isinstance(raw, bytes) else None

        raw = await self.link.run(get, None)
        return self._decoded(name, raw)

    async def store(self, key: Key, entry: DiskEntry) -> None:
        """Put a copy in the tier outside any flight (a test, a warm-up)."""
        name, value, ttl = tier_key(key), encode(entry), self._ttl_ms(entry)

        async def put(client: Redis) -> None:
            await client.set(name, value, px=ttl)

        await self.link.run(put, None)

    async def discard(self, key: Key) -> None:
        """Delete the shared copy of `key` (one found not to decode); Redis down: nothing."""
        name = tier_key(key)

        async def delete(client: Redis) -> None:
            await client.delete(name)

        await self.link.run(delete, None)

    # --- cross-host single-flight -----------------------------------------------------------

    async def fetch_once(self, key: Key,
                         fetch: Callable[[], Awaitable[Avatar]],
                         entry_of: Callable[[Avatar], DiskEntry]) -> Avatar | DiskEntry:
        """`fetch()` on one server for all: the avatar we fetched, or another server's
        copy (an entry), or raises its shared UpstreamError. Redis down: just `fetch()`."""
        for _ in range(MAX_ROUNDS):
            claim = await self._claim_lock(key)
            if claim is None:
                break  # Redis is down: everyone for themselves
            if claim.mine:
                stored = self._decoded(tier_key(key), claim.stored)
                if stored is not None and stored.expires_wall > wall_clock():
                    # refreshed by another server meanwhile: anyone who joined reads it too
                    await self._end(key, claim.token, _STORED)
                    metric_hooks.shared_lookup("hit")
                    return stored
                return await self._fetch_holding(key, claim.token, fetch, entry_of)
            waited = await self._wait(key, claim.token)
            if isinstance(waited, (DiskEntry, UpstreamError)):
                metric_hooks.shared_lookup("joined")
                if isinstance(waited, UpstreamError):
                    raise waited
                return waited
            if waited == "give up":
                break
        return await fetch()

    async def _fetch_holding(self, key: Key, token: str, fetch: Callable[[], Awaitable[Avatar]],
                             entry_of: Callable[[Avatar], DiskEntry]) -> Avatar:
        try:
            avatar = await fetch()
        except UpstreamError as exc:
            shared = exc.upstream_at_fault and exc.failure is not UNAVAILABLE
            await self._end(key, token, _FAILED + str(int(exc.failure)).encode() if shared
                            else _LET_GO)
            raise
        except asyncio.CancelledError:
            raise  # shutting down: the lock expires by itself, and the waiters take over
        except Exception:
            await self._end(key, token, _LET_GO)
            raise
        entry = entry_of(avatar)
        if avatar.max_age > 0:
            await self._end(key, token, _STORED, entry)
        else:
            await self._end(key, token, _INLINE + encode(entry))
        return avatar

    async def _claim_lock(self, key: Key) -> _Claim | None:
        token = secrets.token_hex(8)
        keys = [self._lock_key(key), tier_key(key)]
        args: list[str | int] = [token, int(self.lock_ttl * 1000)]

        async def claim(client: Redis) -> _Claim | None:
            mine, value = await self._claim(keys=keys, args=args, client=client)
            if mine:
                return _Claim(True, token, value)
            if value is None:
                return None  # cannot happen (one script); treat as Redis misbehaving
            return _Claim(False, value.decode(), None)

        return await self.link.run(claim, None)

    async def _end(self, key: Key, token: str, outcome: bytes,
                   entry: DiskEntry | None = None) -> None:
        keys = [self._lock_key(key), tier_key(key), self._outcome_key(key, token)]
        args: list[str | int | bytes] = [token, outcome, int(self.lock_ttl * 1000), b"", 0]
        if entry is not None:
            args[3:] = [encode(entry), self._ttl_ms(entry)]

        async def finish(client: Redis) -> None:
            await self._finish(keys=keys, args=args, client=client)

        await self.link.run(finish, None)

    async def _wait(self, key: Key, token: str) -> Waited:
        """Poll the flight of `token` until it has an outcome, its lock goes, or the lock's
        lifetime has passed."""
        keys = [self._outcome_key(key, token), self._lock_key(key), tier_key(key)]
        rounds = max(1, int(self.lock_ttl / self.poll_interval) + 1)

        async def poll(client: Redis) -> tuple[bytes | None, bytes | None] | None:
            outcome, value = await self._poll(keys=keys, client=client)
            return outcome, value

        for _ in range(rounds):
            await asyncio.sleep(self.poll_interval)
            polled = await self.link.run(poll, None)
            if polled is None:
                return "give up"  # Redis went away
            outcome, value = polled
            if outcome is None:
                if value is None or value.decode() != token:
                    return "take over"  # the holder died, its lock expired
                continue
            kind, rest = outcome[:1], outcome[1:]
            if kind == _FAILED:
                return UpstreamError(Failure(int(rest)), detail="as fetched by another server")
            if kind in (_STORED, _INLINE):
                entry = self._decoded(tier_key(key), value if kind == _STORED else rest)
                return entry if entry is not None else "take over"
            return "take over"  # let go
        return "give up"

    # --- helpers ----------------------------------------------------------------------------

    def _ttl_ms(self, entry: DiskEntry) -> int:
        left = entry.expires_wall - wall_clock() + self.keep_after_expiry
        return max(MIN_TTL_MS, int(left * 1000))

    def _decoded(self, name: str, raw: bytes | None) -> DiskEntry | None:
        if raw is None:
            return None
        entry = decode(raw)
        if entry is None:
            log.warning("shared tier: ignoring a corrupt value under %s", name)
        return checked(entry, self.max_bytes, f"shared tier {name}")

    @staticmethod
    def _lock_key(key: Key) -> str:
        kind, number, size, _ = key
        return f"{PREFIX}-lock:{{{kind}:{number}:{size}}}"

    @staticmethod
    def _outcome_key(key: Key, token: str) -> str:
        kind, number, size, _ = key
        return f"{PREFIX}-flight:{{{kind}:{number}:{size}}}:{token}"
