"""The rate limiter on the `limits` library: memory storage, and Redis shared by servers."""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path

import pytest
from limits.errors import ConfigurationError

from qqavatar.limits.rate import RateLimiter, open_storage, storage_uri
from tests.redis_fixture import RedisProcess

pytestmark = pytest.mark.anyio

REDIS = "redis://127.0.0.1:6379/0"


def redis_is_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


async def test_memory_limit_is_per_app() -> None:
    limiter = RateLimiter(open_storage("memory://"))
    assert [await limiter.allow("A", 3) for _ in range(5)] == [True, True, True, False, False]
    assert await limiter.allow("B", 3)  # another app has its own window
    other_process = RateLimiter(open_storage("memory://"))
    assert await other_process.allow("A", 3)  # memory:// is per process


@pytest.mark.redis
async def test_redis_storage_is_shared_between_servers() -> None:
    if not redis_is_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    key = "test-" + secrets.token_hex(8)
    first, second = RateLimiter(open_storage(REDIS)), RateLimiter(open_storage(REDIS))
    answers = [await limiter.allow(key, 3) for limiter in (first, second, first, second)]
    assert answers == [True, True, True, False]


def test_unknown_storage_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="nope"):
        open_storage("nope://x")


def test_storage_defaults_to_redis_when_there_is_one() -> None:
    assert storage_uri(None, None) == "memory://"
    assert storage_uri(None, "redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert storage_uri("memory://", "redis://127.0.0.1:6379/0") == "memory://"  # explicit wins


@pytest.mark.redis
async def test_a_failing_shared_storage_falls_back_to_memory_and_comes_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    redis = RedisProcess(tmp_path)
    now = [0.0]
    try:
        limiter = RateLimiter(open_storage(redis.url), retry_after=1.0, clock=lambda: now[0])
        assert [await limiter.allow("A", 2) for _ in range(3)] == [True, True, False]
        redis.stop()
        with caplog.at_level(logging.INFO, logger="qqavatar.limits.rate"):
            # No error for the caller: a per-process window of its own (it starts empty).
            assert [await limiter.allow("A", 2) for _ in range(3)] == [True, True, False]
            redis.start()  # empty, and not tried again before retry_after
            assert not await limiter.allow("A", 2)
            now[0] += 1.0
            assert await limiter.allow("A", 2)  # the shared window again (Redis came back empty)
        messages = [record.getMessage() for record in caplog.records]
        assert sum("shared storage failed" in message for message in messages) == 1
        assert sum("works again" in message for message in messages) == 1
    finally:
        redis.stop()
