"""The features a server starts, in order, after the core (apps, avatars, gateway).

Each entry is `async def start(runtime, gateway) -> None` (see `runtime.Feature`).
"""

from __future__ import annotations

from . import metrics
from .limits import feature as limits
from .links import feature as links
from .members import feature as members
from .runtime import Feature
from .stats import feature as stats

# Guards run in the order added: limits admit (IP, domain, rate), then the session guard,
# then the quota, so that only calls that reach their handler use up quota.
FEATURES: tuple[Feature, ...] = (stats.start, links.start, limits.start, members.start,
                                 limits.start_quota, metrics.start)
