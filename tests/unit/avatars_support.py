"""Helpers for the AvatarService tests: a service on the fake qlogo, and a clock to move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from qqavatar.avatars import AvatarService, Served
from qqavatar.avatars import service as service_module
from qqavatar.avatars.model import Kind
from qqavatar.fakeqlogo import RunningFake

T = TypeVar("T")
MiB = 1024 * 1024


@asynccontextmanager
async def avatar_service(fake: RunningFake, **options: Any) -> AsyncIterator[AvatarService]:
    settings: dict[str, Any] = {"user_url": fake.user_url, "group_url": fake.group_url,
                                "timeout": 2.0, "max_bytes": 2 * MiB,
                                "cache_max_bytes": 16 * MiB}
    settings.update(options)
    svc = AvatarService(**settings)
    try:
        yield svc
    finally:
        await svc.aclose()


def run(fake: RunningFake, test: Callable[[AvatarService], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        async with avatar_service(fake, **options) as svc:
            return await test(svc)
    return asyncio.run(main())


class Clock:
    """The avatar service's monotonic clock, moved by the test (freshness, breakers)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(service_module, "monotonic", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until_settled(svc: AvatarService, kind: Kind, number: str, size: int,
                        *args: str) -> Served:
    """Ask until the answer is no longer STALE (a background refresh has landed)."""
    for _ in range(300):
        served = await svc.fetch(kind, number, size, *args)
        if served.cache != "STALE":
            return served
        await asyncio.sleep(0.02)
    raise AssertionError("still STALE after 6 s")
