"""Members as the services and the session guard use them: register, log in, check, log out.

Valid and invalid sessions are cached in memory for a moment, so that the
session guard on the hot path reads the database at most once per token per
`cache_seconds`. A session never comes back to life (tokens are random, and
expiry and revocation are final), so caching "invalid" is always safe; caching
"valid" means a Logout on another server takes up to `cache_seconds` to reach
this one. A Logout on this server takes effect here at once.

Every read and write of the database is bounded by `db_timeout`; a database that is
unreachable, drops the connection or does not answer in time raises
`MembersUnavailable` (the services answer ret 500 with a clear message), and the next
call simply tries again: the engine's pool reconnects once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from ..store.db import StoreUnavailable
from ..store.members import MemberStore, UsernameTaken, new_token, token_hash
from .passwords import ahash_password, averify_decoy, averify_password

log = logging.getLogger(__name__)

T = TypeVar("T")
DB_TIMEOUT = 5.0  # s per database operation; asyncpg alone would wait 60 s for a connection


class MembersUnavailable(Exception):
    """The database could not be reached, or did not answer within `db_timeout`."""


class LoginFailure(Enum):
    NO_SUCH_MEMBER = 1
    WRONG_PASSWORD = 2


@dataclass(frozen=True, slots=True)
class Login:
    uuid: str
    token: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class _Cached:
    uuid: str | None      # None: no live session for this token
    app_key: str
    until: float          # cache entry (and, for a live session, at most its expiry)


class MemberService:
    def __init__(
        self,
        store: MemberStore,
        *,
        token_ttl: int,
        cache_seconds: float = 1.5,  # a Logout reaches every server within 2 s
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        db_timeout: float = DB_TIMEOUT,
    ) -> None:
        self._store = store
        self._db_timeout = db_timeout
        self._db_down = False  # for logging an outage once, and its end
        self._token_ttl = token_ttl
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    async def register(self, app_key: str, username: str, password_md5: str) -> str | None:
        """The new member's uuid; None when the name is taken in this app."""
        if await self._db(self._store.find(app_key, username)) is not None:
            return None  # answer before paying for the KDF
        hashed = await ahash_password(password_md5.lower())
        try:
            member = await self._db(self._store.create(app_key, username, hashed,
                                                       int(self._clock())))
        except UsernameTaken:  # registered by a concurrent call meanwhile
            return None
        return member.uuid

    async def login(self, app_key: str, username: str, password_md5: str) -> Login | LoginFailure:
        member = await self._db(self._store.find(app_key, username))
        if member is None:  # as slow as a wrong password: the time tells no names apart
            await averify_decoy(password_md5.lower())
            return LoginFailure.NO_SUCH_MEMBER
        if not await averify_password(password_md5.lower(), member.password_hash):
            return LoginFailure.WRONG_PASSWORD
        now = self._clock()
        token = new_token()
        expires_at = math.ceil(now + self._token_ttl)  # whole seconds, never shorter than the TTL
        await self._db(self._store.open_session(member, token_hash(token), int(now), expires_at))
        return Login(member.uuid, token, expires_at)

    async def holds(self, app_key: str, uuid: str, token: str) -> bool:
        """Whether the pair is a live session of this app (cached; for the session guard)."""
        hashed = token_hash(token)
        now = self._clock()
        cached = self._cache.get(hashed)
        if cached is None or cached.until <= now:
            cached = await self._lookup(hashed, now)
        return cached.uuid is not None and cached.uuid == uuid.upper() \
            and cached.app_key == app_key

    async def check(self, app_key: str, uuid: str, token: str) -> bool:
        """Like `holds`, but read from the database (App.User.Check answers authoritatively)."""
        cached = await self._lookup(token_hash(token), self._clock())
        return cached.uuid == uuid.upper() and cached.app_key == app_key

    async def logout(self, app_key: str, uuid: str, token: str) -> bool:
        """End the session; False when the pair was not a live session of this app."""
        hashed = token_hash(token)
        now = self._clock()
        ended = await self._db(self._store.revoke(app_key, uuid.upper(), hashed, int(now)))
        if ended:  # (a failed Logout names another app's or member's session: leave it be)
            self._remember(hashed, _Cached(None, "", now + self._cache_seconds))
        return ended

    async def _lookup(self, hashed: str, now: float) -> _Cached:
        session = await self._db(self._store.session(hashed))
        if session is None or session.revoked or session.expires_at <= now:
            entry = _Cached(None, "", now + self._cache_seconds)
        else:
            until = min(now + self._cache_seconds, float(session.expires_at))
            entry = _Cached(session.uuid, session.app_key, until)
            known = self._cache.get(hashed)
            if known is not None and known.uuid is None and known.until > now:
                return known  # a Logout landed while we read: "ended" is final, keep it
        self._remember(hashed, entry)
        return entry

    def _remember(self, hashed: str, entry: _Cached) -> None:
        cache = self._cache
        cache[hashed] = entry
        cache.move_to_end(hashed)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)  # the oldest entry: it also expires first

    async def _db(self, operation: Awaitable[T]) -> T:
        """`operation`, bounded in time; a database outage becomes `MembersUnavailable`."""
        try:
            async with asyncio.timeout(self._db_timeout):
                result = await operation
        except (TimeoutError, StoreUnavailable) as exc:
            if not self._db_down:
                self._db_down = True
                reason = exc.reason if isinstance(exc, StoreUnavailable) else "TimeoutError"
                log.warning("members: database unavailable (%s); member services answer "
                            "ret 500 until it is back", reason)
            raise MembersUnavailable from exc
        if self._db_down:
            self._db_down = False
            log.info("members: database reachable again")
        return result
