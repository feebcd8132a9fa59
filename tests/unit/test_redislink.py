"""RedisLink against a real redis-server that goes away and comes back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from qqavatar.redislink import RedisLink
from tests.redis_fixture import RedisProcess

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path)
    yield process
    process.stop()


async def _incr(client: Redis) -> int:
    return int(await client.incr("counter"))


async def test_down_answers_the_fallback_at_once_and_comes_back(
        redis_process: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    link = RedisLink(redis_process.url, retry_after=1.0, clock=lambda: now[0])
    try:
        assert await link.run(_incr, -1) == 1
        assert link.state == "ok"

        redis_process.stop()
        with caplog.at_level(logging.WARNING, logger="qqavatar.redislink"):
            assert await link.run(_incr, -1) == -1
            assert link.state == "down"
            assert not link.usable  # not due for a retry: the next call never touches the network
            assert await link.run(_incr, -1) == -1

            redis_process.start()  # a fresh Redis: it kept nothing
            assert await link.run(_incr, -1) == -1  # still inside retry_after
            now[0] += 1.0
            assert await link.run(_incr, -1) == 1
            assert link.state == "ok"
        messages = [record.getMessage() for record in caplog.records]
        assert sum("unreachable" in message for message in messages) == 1
        assert sum("reachable again" in message for message in messages) == 1
    finally:
        await link.aclose()


async def test_an_operation_that_hangs_is_cut_by_the_timeout(redis_process: RedisProcess) -> None:
    link = RedisLink(redis_process.url, timeout=0.1)
    try:
        async def blocked(client: Redis) -> object:
            return await client.blpop(["never-filled"], timeout=5)  # type: ignore[misc]

        assert await link.run(blocked, "fallback") == "fallback"
        assert link.state == "down"
    finally:
        await link.aclose()


async def test_operations_in_flight_across_a_change_do_not_flap_the_state(
        redis_process: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    link = RedisLink(redis_process.url, retry_after=1.0, clock=lambda: now[0])
    try:
        assert await link.run(_incr, -1) == 1

        async def slow_success(client: Redis) -> int:
            result = await _incr(client)
            now[0] += 0.5  # the link goes down while this one is under way
            await link._failed(ConnectionError("lost"), started=now[0])
            return result

        with caplog.at_level(logging.WARNING, logger="qqavatar.redislink"):
            assert await link.run(slow_success, -1) == 2
            assert link.state == "down"  # its success began before the loss: not news

            now[0] += 1.0
            assert await link.run(_incr, -1) == 3  # a fresh operation brings it back
            await link._failed(ConnectionError("stale"), started=now[0] - 0.1)
            assert link.state == "ok"  # that one began before the recovery: not news
        messages = [record.getMessage() for record in caplog.records]
        assert sum("unreachable" in message for message in messages) == 1
        assert sum("reachable again" in message for message in messages) == 1
    finally:
        await link.aclose()
