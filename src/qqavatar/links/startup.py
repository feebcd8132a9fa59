"""Server start: the link key registry, polled like the app registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..components import Runtime
from ..secretbox import box_for
from ..store.link_keys import LinkKeyStore
from .registry import LinkRegistry

if TYPE_CHECKING:
    from ..gateway import Gateway


async def start(runtime: Runtime, gateway: Gateway) -> None:
    if runtime.engine is None:  # no database, no keys: the link services answer 500
        return
    # The app registry's key, from the server's own settings (not read again from the
    # environment): link keys and app secrets are opened with one key.
    box = box_for(runtime.settings.secret_key)
    registry = LinkRegistry(LinkKeyStore(runtime.engine, box=box))
    await registry.start()
    runtime.links = registry
    runtime.closers.append(registry.stop)
