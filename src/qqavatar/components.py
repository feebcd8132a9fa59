"""The components one running server shares; handlers, guards and features take what they need."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from .apicall import AppLike
from .avatars import AvatarService
from .settings import Settings

if TYPE_CHECKING:
    from .limits.perclient import ClientLimits
    from .limits.quota import QuotaBook
    from .links.registry import LinkRegistry
    from .members.service import MemberService
    from .redislink import RedisLink
    from .stats.collector import StatsCollector


class AppLookup(Protocol):
    def get(self, app_key: str) -> AppLike | None: ...


Closer = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    apps: AppLookup
    avatars: AvatarService
    engine: AsyncEngine | None = None
    closers: list[Closer] = field(default_factory=list)  # run in reverse order at shutdown
    links: LinkRegistry | None = None  # set by the private links feature
    stats: StatsCollector | None = None  # set by the statistics feature
    members: MemberService | None = None  # set by the members feature
    quotas: QuotaBook | None = None  # set by the limits feature: calls today / this month
    client_limits: ClientLimits | None = None  # set by the limits feature: per-client budgets
    redis: RedisLink | None = None  # QQAVATAR_REDIS_URL: state shared by every server
