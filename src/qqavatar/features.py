"""The features a server starts, in order, after the core (apps, avatars, gateway).

Each entry is `async def start(runtime, gateway) -> None` (see `runtime.Feature`).
"""

from __future__ import annotations

from .runtime import Feature

FEATURES: tuple[Feature, ...] = ()
