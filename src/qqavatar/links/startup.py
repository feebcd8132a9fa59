"""Server start: the link key registry, polled like the app registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..components import Runtime
from ..store.link_keys import LinkKeyStore
from .registry import LinkRegistry

if TYPE_CHECKING:
    from ..gateway import Gateway


async def start(runtime: Runtime, gateway: Gateway) -> None:
    if runtime.engine is None:  # no database, no keys: the link services answer 500
        return
    registry = LinkRegistry(LinkKeyStore(runtime.engine))
    await registry.start()
    runtime.links = registry
    runtime.closers.append(registry.stop)
