"""Members, sessions, app limits and quota counts in the store, on SQLite and PostgreSQL.

PostgreSQL runs when QQAVATAR_TEST_DATABASE_URL is set (CI sets it).
"""

from __future__ import annotations

import asyncio
import calendar
import re

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.limits.quota import QuotaBook, periods_at
from qqavatar.members.service import LoginFailure, MemberService
from qqavatar.store.apps import AppStore
from qqavatar.store.db import migrate
from qqavatar.store.members import MemberStore, UsernameTaken, token_hash
from qqavatar.store.quota import QuotaStore
from qqavatar.store.schema import members, quota_usage, sessions
from qqavatar.store.testing import EngineFactory

pytestmark = pytest.mark.anyio

PASSWORD = "e10adc3949ba59abbe56e057f20f883e"  # md5("123456")


@pytest.fixture
async def engine(engines: EngineFactory) -> AsyncEngine:
    engine = engines()
    await migrate(engine)
    return engine


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- apps: limits ----------------------------------------------------------------------------

async def test_app_limits_round_trip_and_clear(engine: AsyncEngine) -> None:
    store = AppStore(engine)
    app = await store.create("limited")
    assert (app.daily_quota, app.monthly_quota, app.rate_limit, app.ip_allow, app.domains) == (
        None, None, None, (), ())
    updated = await store.update(app.app_key, daily_quota=100, monthly_quota=2000, rate_limit=5,
                                 ip_allow=["10.1.2.3/8", "::1"], domains=["API.Example.com"])
    assert updated is not None
    assert updated == await store.get(app.app_key)
    assert (updated.daily_quota, updated.monthly_quota, updated.rate_limit) == (100, 2000, 5)
    assert updated.ip_allow == ("10.0.0.0/8", "::1/128")
    assert updated.domains == ("api.example.com",)
    assert updated.public_dict()["ip_allow"] == ["10.0.0.0/8", "::1/128"]
    # Only what is given changes; 0 and [] clear.
    cleared = await store.update(app.app_key, daily_quota=0, ip_allow=[])
    assert cleared is not None
    assert (cleared.daily_quota, cleared.monthly_quota, cleared.ip_allow) == (None, 2000, ())
    assert cleared.domains == ("api.example.com",)


async def test_app_limits_are_validated(engine: AsyncEngine) -> None:
    store = AppStore(engine)
    app = await store.create("strict")
    version = await store.version()
    for bad in ({"daily_quota": -1}, {"rate_limit": 100_001}, {"ip_allow": ["10.0.0.300"]},
                {"domains": ["a.com:80"]}):
        with pytest.raises(ValueError):
            await store.update(app.app_key, **bad)  # type: ignore[arg-type]
    assert await store.version() == version


# --- members and sessions --------------------------------------------------------------------

async def test_member_names_are_unique_per_app_case_insensitively(engine: AsyncEngine) -> None:
    apps, store = AppStore(engine), MemberStore(engine)
    first, second = await apps.create("one"), await apps.create("two")
    alice = await store.create(first.app_key, "Alice", "hash", 100)
    assert re.fullmatch(r"[0-9A-F]{32}", alice.uuid)
    with pytest.raises(UsernameTaken):
        await store.create(first.app_key, "ALICE", "hash", 101)
    other = await store.create(second.app_key, "alice", "hash", 102)  # another app: fine
    assert other.uuid != alice.uuid
    assert await store.find(first.app_key, "aLiCe") == alice
    assert await store.find(second.app_key, "nobody") is None


async def test_sessions_open_revoke_and_sweep(engine: AsyncEngine) -> None:
    app = await AppStore(engine).create("sessions")
    store = MemberStore(engine)
    member = await store.create(app.app_key, "bob", "hash", 100)
    await store.open_session(member, token_hash("A" * 64), 100, 200)
    await store.open_session(member, token_hash("B" * 64), 100, 150)
    session = await store.session(token_hash("a" * 64))
    assert session is not None
    assert (session.uuid, session.app_key, session.expires_at, session.revoked) == (
        member.uuid, app.app_key, 200, False)
    assert not await store.revoke(app.app_key, "0" * 32, token_hash("A" * 64), 110)  # wrong uuid
    assert await store.revoke(app.app_key, member.uuid, token_hash("A" * 64), 110)
    assert not await store.revoke(app.app_key, member.uuid, token_hash("A" * 64), 110)  # again
    assert not await store.revoke(app.app_key, member.uuid, token_hash("B" * 64), 150)  # expired
    # The next login sweeps the revoked and the expired session.
    await store.open_session(member, token_hash("C" * 64), 160, 300)
    async with engine.connect() as connection:
        left = (await connection.execute(select(sessions.c.token_hash))).scalars().all()
    assert left == [token_hash("C" * 64)]


async def test_deleting_an_app_deletes_its_members(engine: AsyncEngine) -> None:
    apps, store = AppStore(engine), MemberStore(engine)
    app = await apps.create("gone")
    member = await store.create(app.app_key, "carol", "hash", 100)
    await store.open_session(member, token_hash("D" * 64), 100, 200)
    assert await apps.delete(app.app_key)
    assert await store.find(app.app_key, "carol") is None
    assert await store.session(token_hash("D" * 64)) is None


async def test_member_service_flow(engine: AsyncEngine) -> None:
    app = await AppStore(engine).create("service")
    clock = Clock(1_000.5)
    service = MemberService(MemberStore(engine), token_ttl=60, clock=clock)
    uuid = await service.register(app.app_key, "dave", PASSWORD)
    assert uuid is not None
    assert await service.register(app.app_key, "Dave", PASSWORD) is None
    assert await service.login(app.app_key, "erin", PASSWORD) is LoginFailure.NO_SUCH_MEMBER
    assert await service.login(app.app_key, "dave", "0" * 32) is LoginFailure.WRONG_PASSWORD
    login = await service.login(app.app_key, "dave", PASSWORD.upper())  # md5 in either case
    assert not isinstance(login, LoginFailure)
    assert login.uuid == uuid and re.fullmatch(r"[0-9A-F]{64}", login.token)
    assert login.expires_at == 1_061  # whole seconds, never shorter than the TTL
    assert await service.holds(app.app_key, uuid, login.token)
    assert await service.holds(app.app_key, uuid.lower(), login.token.lower())
    assert not await service.holds("X" * 32, uuid, login.token)          # another app
    assert not await service.holds(app.app_key, "0" * 32, login.token)   # another member
    clock.now = 1_060.9
    assert await service.check(app.app_key, uuid, login.token)
    clock.now = 1_061.0
    assert not await service.holds(app.app_key, uuid, login.token)       # expired, even cached
    assert not await service.check(app.app_key, uuid, login.token)
    assert not await service.logout(app.app_key, uuid, login.token)


async def test_logout_ends_a_cached_session_at_once(engine: AsyncEngine) -> None:
    app = await AppStore(engine).create("cache")
    service = MemberService(MemberStore(engine), token_ttl=3600, cache_seconds=60)
    assert await service.register(app.app_key, "frank", PASSWORD) is not None
    login = await service.login(app.app_key, "frank", PASSWORD)
    assert not isinstance(login, LoginFailure)
    assert await service.holds(app.app_key, login.uuid, login.token)  # now cached for 60 s
    other_server = MemberService(MemberStore(engine), token_ttl=3600, cache_seconds=60)
    assert await other_server.holds(app.app_key, login.uuid, login.token)
    assert await service.logout(app.app_key, login.uuid, login.token)
    assert not await service.holds(app.app_key, login.uuid, login.token)
    # Another server learns it when its cache entry ends (documented: up to cache_seconds).
    assert await other_server.holds(app.app_key, login.uuid, login.token)
    assert not await other_server.check(app.app_key, login.uuid, login.token)  # no cache here
    assert not await other_server.holds(app.app_key, login.uuid, login.token)


async def test_passwords_are_stored_hashed(engine: AsyncEngine) -> None:
    app = await AppStore(engine).create("hashing")
    service = MemberService(MemberStore(engine), token_ttl=60)
    await service.register(app.app_key, "grace", PASSWORD)
    async with engine.connect() as connection:
        stored = (await connection.execute(select(members.c.password_hash))).scalar_one()
    assert stored.startswith("scrypt$") and PASSWORD not in stored


# --- quota counts ----------------------------------------------------------------------------

async def test_quota_store_upsert_adds(engine: AsyncEngine) -> None:
    store = QuotaStore(engine)
    await store.add({("A", "D2026-11-28"): 2, ("A", "M2026-11"): 2})
    await store.add({("A", "D2026-11-28"): 3, ("B", "D2026-11-28"): 1})
    assert await store.totals(["D2026-11-28"]) == {("A", "D2026-11-28"): 5,
                                                   ("B", "D2026-11-28"): 1}
    assert await store.totals(["M2026-11", "D2000-01-01"]) == {("A", "M2026-11"): 2}
    assert await store.totals([]) == {}


async def test_quota_store_concurrent_adds_lose_nothing(engines: EngineFactory) -> None:
    await migrate(engines())
    stores = [QuotaStore(engines()) for _ in range(4)]  # like four servers
    keys = {("A", "D2026-11-28"): 1, ("A", "M2026-11"): 1, ("B", "D2026-11-28"): 1}
    await asyncio.gather(*(store.add(keys) for store in stores for _ in range(5)))
    totals = await stores[0].totals(["D2026-11-28", "M2026-11"])
    assert totals == {key: 20 for key in keys}


async def test_quota_book_reserves_exactly_and_survives_a_restart(engine: AsyncEngine) -> None:
    clock = Clock(1_795_000_000.0)
    day, month = periods_at(clock.now)
    book = QuotaBook(QuotaStore(engine), clock=clock)
    await book.load()
    admitted = [book.reserve("A", 3, None) for _ in range(5)]
    assert admitted == [True, True, True, False, False]
    assert book.reserve("A", None, 4) and not book.reserve("A", None, 4)  # month: 4 used
    assert book.usage("A") == (4, 4)
    await book.flush()
    async with engine.connect() as connection:
        rows = (await connection.execute(select(quota_usage))).all()
    assert {(row.app_key, row.period, row.calls) for row in rows} == {("A", day, 4),
                                                                    ("A", month, 4)}
    restarted = QuotaBook(QuotaStore(engine), clock=clock)
    await restarted.load()
    assert restarted.usage("A") == (4, 4)
    assert not restarted.reserve("A", 4, None)
    assert restarted.reserve("A", 5, None)
    await restarted.stop()  # the last counts are stored at shutdown
    assert (await QuotaStore(engine).totals([day]))[("A", day)] == 5


async def test_quota_books_on_one_database_see_each_other(engines: EngineFactory) -> None:
    engine = engines()
    await migrate(engine)
    clock = Clock(calendar.timegm((2026, 11, 10, 4, 0, 0)))
    first = QuotaBook(QuotaStore(engine), clock=clock)
    second = QuotaBook(QuotaStore(engines()), clock=clock)
    await first.load()
    await second.load()
    assert first.reserve("A", 10, None) and first.reserve("A", 10, None)
    assert second.reserve("A", 10, None)
    await first.flush()
    await second.flush()  # stores its 1 and reads the first book's 2
    assert second.usage("A")[0] == 3
    await first.flush()
    assert first.usage("A")[0] == 3
    # A new day starts from zero; the month goes on.
    clock.now += 86_400
    assert first.usage("A") == (0, 3)


async def test_unstored_calls_keep_their_period_across_midnight(engine: AsyncEngine) -> None:
    """Calls counted before midnight (UTC+8) and stored after it stay the old day's; at the
    end of a month the month's count starts afresh too."""
    clock = Clock(calendar.timegm((2026, 11, 30, 15, 59, 59)))  # 23:59:59 on 30 Nov, UTC+8
    book = QuotaBook(QuotaStore(engine), clock=clock)
    await book.load()
    for _ in range(3):
        book.count("A")
    clock.now += 1  # 1 Dec: a new day and a new month
    assert book.usage("A") == (0, 0)
    assert book.reserve("A", 2, None) and book.reserve("A", 2, None)
    assert not book.reserve("A", 2, None)  # the new day's quota counts the new day only
    await book.flush()
    totals = await QuotaStore(engine).totals(["D2026-11-30", "M2026-11", "D2026-12-01",
                                              "M2026-12"])
    assert totals == {("A", "D2026-11-30"): 3, ("A", "M2026-11"): 3,
                      ("A", "D2026-12-01"): 2, ("A", "M2026-12"): 2}
    assert book.usage("A") == (2, 2)

