"""Link keys in memory, for sealing links and opening them without a database round-trip.

Like `AppRegistry`, it polls `meta.apps_version` and reloads every key when it moves
(a rotation, a new key, a deleted app). A token whose key id is unknown may be a key that
another worker made a moment ago, so a miss also reloads, at most once per
`miss_reload_interval`: forged tokens cannot turn into a database query each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..store.link_keys import LinkKeyStore
from ..store.polling import VersionPolled
from .tokens import LinkKey, LinkTarget, split_token

log = logging.getLogger(__name__)


class LinkRegistry(VersionPolled):
    def __init__(self, store: LinkKeyStore, *, poll_interval: float = 0.5,
                 miss_reload_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(poll_interval=poll_interval, name="link registry", log=log)
        self._store = store
        self._miss_reload_interval = miss_reload_interval
        self._clock = clock
        self._by_app: dict[str, LinkKey] = {}
        self._by_id: dict[bytes, list[tuple[str, LinkKey]]] = {}
        self._loaded_at = float("-inf")
        self._reloading = asyncio.Lock()

    async def seal(self, app_key: str, target: LinkTarget) -> str | None:
        """The token for `target` under the app's key (made on first use); None: no such app."""
        key = self._by_app.get(app_key)
        if key is None:
            key = await self._store.get_or_create(app_key)
            if key is None:
                return None
            self._install({**self._by_app, app_key: key})
        return key.seal(app_key, target)

    async def open(self, token: str) -> tuple[str, LinkTarget] | None:
        """(app_key, target) of a genuine token under a current key; None for anything else."""
        parts = split_token(token)
        if parts is None:
            return None
        for _ in range(2):
            for app_key, key in self._by_id.get(parts.key_id, ()):
                target = key.unseal(app_key, parts.raw)
                if target is not None:
                    return app_key, target
            if not await self._reload_after_miss():
                return None
        return None

    async def _read_version(self) -> int:
        return await self._store.version()

    async def load(self) -> None:
        # Version before keys: a change landing in between is seen again by the next poll.
        version = await self._store.version()
        self._install(await self._store.all())
        self._version = version
        self._loaded_at = self._clock()

    def _install(self, by_app: dict[str, LinkKey]) -> None:
        by_id: dict[bytes, list[tuple[str, LinkKey]]] = {}
        for app_key, key in by_app.items():
            by_id.setdefault(key.key_id, []).append((app_key, key))
        self._by_app, self._by_id = by_app, by_id  # readers see the old or the new, whole

    async def _reload_after_miss(self) -> bool:
        """Reload unless that was done lately; True if the keys may have changed."""
        if self._clock() - self._loaded_at < self._miss_reload_interval:
            return False
        async with self._reloading:
            if self._clock() - self._loaded_at < self._miss_reload_interval:
                return True  # another request reloaded while this one waited
            try:
                await self.load()
            except Exception:
                log.exception("link registry: reload failed")
                return False
        return True
