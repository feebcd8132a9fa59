"""The shared Redis tier: encoding, expiry and stale windows, one upstream request for
many servers, and Redis going away and coming back. A real redis-server of the module's
own and the fake qlogo; each "server" is an AvatarService with its own RedisLink."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from qqavatar.avatars import AvatarService
from qqavatar.avatars.disk import DiskEntry
from qqavatar.avatars.failures import Failure, UpstreamError
from qqavatar.avatars.model import Key, etag_of
from qqavatar.avatars.redis_tier import SharedTier, decode, encode, tier_key
from qqavatar.fakeqlogo import RunningFake, avatar_bytes, spawn
from qqavatar.redislink import RedisLink
from tests.redis_fixture import RedisProcess
from tests.server_fixture import free_port
from tests.unit.avatars_support import avatar_service
from tests.unit.test_avatars_entry_check import HOSTILE, OVER_UPSTREAM_BOUND

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

STALE_TTL = 600
STALE_IF_ERROR_TTL = 3600


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:
        yield running


@pytest.fixture(scope="module")
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path_factory.mktemp("redis"))
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _clean(fake: RunningFake, redis_process: RedisProcess) -> None:
    fake.reset()
    if redis_process.proc is None:  # a test that stopped it failed before restarting it
        redis_process.start()


def number(last_digit: int = 1) -> str:
    """A number no other test uses (the Redis lives for the whole module)."""
    return f"{10_000_000 + secrets.randbelow(10**8)}{last_digit}"


@asynccontextmanager
async def shared_service(fake: RunningFake, redis: RedisProcess,
                         **options: Any) -> AsyncIterator[AvatarService]:
    """One "server": its own memory cache and RedisLink, the module's Redis."""
    link = RedisLink(redis.url)
    options = {"stale_ttl": STALE_TTL, "stale_if_error_ttl": STALE_IF_ERROR_TTL, **options}
    try:
        async with avatar_service(fake, **options) as svc:
            svc.share_through(link)
            yield svc
    finally:
        await link.aclose()


def entry(body: bytes = avatar_bytes("user", "10005", 0, 100), *, expires_in: float = 600,
          is_default: bool = False) -> DiskEntry:
    return DiskEntry(body=body, content_type="image/png", is_default=is_default, size=100,
                     format="png", modified_at=1_600_000_000,
                     expires_wall=time.time() + expires_in, max_age=600, etag=etag_of(body))


# --- encoding -----------------------------------------------------------------------------


def test_an_entry_round_trips_in_a_few_dozen_bytes_of_header() -> None:
    for stored in (entry(), entry(b"\xff\xd8" + bytes(range(256)) * 40, is_default=True)):
        raw = encode(stored)
        assert raw.endswith(stored.body)  # raw bytes, not base64
        assert len(raw) - len(stored.body) < 64
        assert decode(raw) == stored


@pytest.mark.parametrize("damage", ["flip a body byte", "truncate", "bad version", "empty",
                                    "header only"])
def test_a_damaged_value_decodes_to_nothing(damage: str) -> None:
    raw = bytearray(encode(entry(b"x" * 300)))
    if damage == "flip a body byte":
        raw[-10] ^= 0x40
    elif damage == "truncate":
        del raw[-1]
    elif damage == "bad version":
        raw[0] = 99
    elif damage == "empty":
        raw.clear()
    else:
        del raw[20:]
    assert decode(bytes(raw)) is None


# --- the tier -----------------------------------------------------------------------------


async def test_redis_keeps_a_copy_for_its_freshness_plus_the_stale_windows(
        redis_process: RedisProcess) -> None:
    link = RedisLink(redis_process.url)
    tier = SharedTier(link, keep_after_expiry=STALE_IF_ERROR_TTL, lock_ttl=1)
    key: Key = ("user", number(), 100, "")
    try:
        await tier.store(key, entry(expires_in=600))
        left = await link.client.pttl(tier_key(key))
        assert (600 + STALE_IF_ERROR_TTL - 5) * 1000 < left <= (600 + STALE_IF_ERROR_TTL) * 1000
        loaded = await tier.load(key)
        assert loaded is not None and loaded.body == entry().body
        # an avatar expired longer ago than the windows is not kept at all (1 s floor)
        await tier.store(key, entry(expires_in=-2 * STALE_IF_ERROR_TTL))
        assert await link.client.pttl(tier_key(key)) <= 1000
    finally:
        await link.aclose()


async def test_a_fresh_copy_in_redis_is_a_hit_without_the_upstream(
        fake: RunningFake, redis_process: RedisProcess) -> None:
    n = number()
    async with shared_service(fake, redis_process) as first, \
            shared_service(fake, redis_process) as second:
        fetched = await first.fetch("user", n, 100)
        assert fetched.cache == "MISS"
        served = await second.fetch("user", n, 100)
        assert served.cache == "HIT" and not served.upstream_fetch
        assert served.avatar.body == fetched.avatar.body
        assert served.avatar.etag == fetched.avatar.etag
        assert served.avatar.modified_at == fetched.avatar.modified_at
        assert abs(served.avatar.expires_at - fetched.avatar.expires_at) < 1
        assert second.cached("user", n, 100) is served.avatar  # now in its memory too
        # derived copies are made locally from the shared original, not stored in Redis
        assert (await second.fetch("user", n, 100, "webp")).avatar.format == "webp"
        client = Redis.from_url(redis_process.url)
        try:
            assert await client.keys(f"qqavatar:avatar:*{n}*") == [
                tier_key(("user", n, 100, "")).encode()]
        finally:
            await client.aclose()
    assert fake.count("user", n, 100) == 1


async def test_an_expired_copy_is_stale_within_the_window_and_ignored_past_it(
        fake: RunningFake, redis_process: RedisProcess) -> None:
    stale, too_old = number(), number()
    async with shared_service(fake, redis_process) as svc:
        assert svc.shared is not None
        old = entry(expires_in=-60)  # expired a minute ago: within stale_ttl
        await svc.shared.store(("user", stale, 100, ""), old)
        served = await svc.fetch("user", stale, 100)
        assert served.cache == "STALE" and served.avatar.body == old.body
        # the background refresh asks the upstream once and puts the new copy in Redis
        for _ in range(100):
            stored = await svc.shared.load(("user", stale, 100, ""))
            if stored is not None and stored.body != old.body:
                break
            await asyncio.sleep(0.02)
        assert stored is not None and stored.body != old.body
        assert stored.expires_wall > time.time()
        assert fake.count("user", stale, 100) == 1

        # past both windows: not answered with, fetched instead
        await svc.shared.store(("user", too_old, 100, ""), entry(expires_in=-STALE_IF_ERROR_TTL
                                                                  - 10))
        served = await svc.fetch("user", too_old, 100)
        assert served.cache == "MISS" and served.avatar.body != old.body
        assert fake.count("user", too_old, 100) == 1


# --- one upstream request for every server ------------------------------------------------


async def test_fifty_concurrent_misses_on_two_servers_make_one_upstream_request(
        fake: RunningFake, redis_process: RedisProcess) -> None:
    n = number()
    fake.fault("slow", delay_ms=300, numbers=[n])  # every miss arrives while it is fetched
    async with shared_service(fake, redis_process) as first, \
            shared_service(fake, redis_process) as second:
        answers = await asyncio.gather(*(
            (first if i % 2 else second).fetch("user", n, 140) for i in range(50)))
    assert fake.count("user", n, 140) == 1
    assert len({served.avatar.etag for served in answers}) == 1
    assert {served.cache for served in answers} == {"MISS"}
    # the waiting server read the holder's copy from Redis and kept it in memory
    assert first.cached("user", n, 140) is not None
    assert second.cached("user", n, 140) is not None


async def test_an_upstream_failure_is_shared_with_the_waiting_server(
        fake: RunningFake, redis_process: RedisProcess) -> None:
    n = number()
    fake.fault("error500", delay_ms=300, numbers=[n])
    async with shared_service(fake, redis_process, negative_ttl=0) as first, \
            shared_service(fake, redis_process, negative_ttl=0) as second:
        answers = await asyncio.gather(first.fetch("user", n, 100), second.fetch("user", n, 100),
                                       return_exceptions=True)
        assert all(isinstance(a, UpstreamError) and a.failure is Failure.INVALID for a in answers), answers
        assert fake.count("user", n, 100) == 1
        # shared with that flight's waiters only: the next caller asks again
        fake.fault("none")
        assert (await second.fetch("user", n, 100)).cache == "MISS"
        assert fake.count("user", n, 100) == 2


async def test_a_lock_whose_holder_died_is_taken_over_when_it_goes(
        fake: RunningFake, redis_process: RedisProcess) -> None:
    n = number()
    lock = SharedTier._lock_key(("user", n, 100, ""))
    client = Redis.from_url(redis_process.url)
    try:
        async with shared_service(fake, redis_process) as svc:
            # a holder that took the lock and never came back (crashed)
            await client.set(lock, "dead-holder", px=10_000)
            task = asyncio.create_task(svc.fetch("user", n, 100))
            await asyncio.sleep(0.3)
            assert not task.done() and fake.count("user", n, 100) == 0  # waiting, not fetching
            await client.delete(lock)  # as its expiry would
            served = await task
        assert served.cache == "MISS"
        assert fake.count("user", n, 100) == 1
        assert not await client.exists(lock)  # the new holder let go
    finally:
        await client.aclose()


# --- Redis goes away and comes back -------------------------------------------------------


async def test_redis_down_mid_run_every_request_answers_and_it_is_used_again_after(
        fake: RunningFake, redis_process: RedisProcess) -> None:
    before, during, after = number(), number(), number()
    async with shared_service(fake, redis_process) as first, \
            shared_service(fake, redis_process) as second:
        await first.fetch("user", before, 100)
        assert (await second.fetch("user", before, 100)).cache == "HIT"

        redis_process.stop()
        answers = await asyncio.gather(*(
            (first if i % 2 else second).fetch("user", during, 100) for i in range(20)))
        assert len({served.avatar.etag for served in answers}) == 1  # every one answered
        assert first.shared is not None and first.shared.link.state == "down"
        # without Redis each server fetches for itself: one request each, no more
        assert fake.count("user", during, 100) == 2

        redis_process.start()  # a fresh Redis (it kept nothing); links retry after 1 s
        await asyncio.sleep(1.05)
        assert (await first.fetch("user", after, 100)).cache == "MISS"
        served = await second.fetch("user", after, 100)
        assert served.cache == "HIT"
        assert first.shared.link.state == "ok"
        assert fake.count("user", after, 100) == 1


async def test_redis_down_from_the_start_costs_nothing_but_sharing(fake: RunningFake) -> None:
    n = number()
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        async with avatar_service(fake) as svc:
            svc.share_through(link)
            answers = await asyncio.gather(*(svc.fetch("user", n, 100) for _ in range(10)))
            assert {served.cache for served in answers} == {"MISS"}
            assert (await svc.fetch("user", n, 100)).cache == "HIT"
        assert link.state == "down"
        assert fake.count("user", n, 100) == 1  # the local single-flight still holds
    finally:
        await link.aclose()


# --- hostile copies -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["html", "svg", "png labelled jpeg", "header injection",
                                  "over the upstream bound"])
async def test_a_hostile_copy_in_redis_is_not_served(
        fake: RunningFake, redis_process: RedisProcess, name: str) -> None:
    """Right checksum, wrong content (entrycheck.py): dropped, fetched again, replaced."""
    n = number(5)  # a PNG avatar
    key: Key = ("user", n, 100, "")
    hostile = HOSTILE.get(name, OVER_UPSTREAM_BOUND)
    async with shared_service(fake, redis_process) as svc:
        assert svc.shared is not None
        await svc.shared.store(key, hostile)  # written as any Redis client could
        assert await svc.shared.link.client.get(tier_key(key)) == encode(hostile)
        served = await svc.fetch("user", n, 100)
        assert served.cache == "MISS" and served.upstream_fetch
        assert served.avatar.body == avatar_bytes("user", n, 0, 100)
        assert served.avatar.content_type == "image/png"
        again = await svc.shared.load(key)  # what every other server now reads
        assert again is not None and again.body == served.avatar.body
    assert fake.count("user", n, 100) == 1
