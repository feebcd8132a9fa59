"""The features a server starts, in order, after the core (apps, avatars, gateway).

Each entry is `async def start(runtime, gateway) -> None`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from . import metrics
from .components import Runtime
from .gateway import Gateway
from .limits import startup as limits
from .links import startup as links
from .members import startup as members
from .stats import startup as stats

# A feature starts with the server: it may add components to the runtime, guards and
# observers to the gateway, and closers to `runtime.closers`.
Feature = Callable[[Runtime, Gateway], Awaitable[None]]

# Guards run in the order added: limits admit (IP, domain, rate), then the session guard,
# then the quota, so that only calls that reach their handler use up quota.
FEATURES: tuple[Feature, ...] = (stats.start, links.start, limits.start, members.start,
                                 limits.start_quota, metrics.start)
