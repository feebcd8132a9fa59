"""The rate limiter on the `limits` library: memory storage, and Redis shared by servers."""

from __future__ import annotations

import secrets
import socket

import pytest
from limits.errors import ConfigurationError

from qqavatar.limits.rate import RateLimiter, open_storage

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
