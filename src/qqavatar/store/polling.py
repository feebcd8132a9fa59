"""In-memory views of the database that reload when `meta.apps_version` moves.

The apps (`AppRegistry`) and the private-link keys (`LinkRegistry`) both change only
together with that counter, so each keeps a snapshot and a background task that polls the
one row and calls `load()` when it differs from the snapshot's version; every change to
them calls `bump_apps_version` in its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from qqavatar.store.db import StoreUnavailable
from qqavatar.store.schema import APPS_VERSION, meta


async def bump_apps_version(connection: AsyncConnection) -> None:
    """Move `meta.apps_version`: in the same transaction as the change it announces, so
    pollers never see one without the other."""
    await connection.execute(
        update(meta).where(meta.c.key == APPS_VERSION).values(value=meta.c.value + 1)
    )


class VersionPolled:
    """`start` loads (errors propagate: a server should not start blind), then polls every
    `poll_interval` seconds; a failing refresh keeps the last good snapshot and is logged
    once per outage, not once per poll. Subclasses implement `load` (which sets `_version`) and
    `_read_version`."""

    def __init__(self, *, poll_interval: float, name: str, log: logging.Logger) -> None:
        self._poll_interval = poll_interval
        self._name = name  # "app registry": in log lines and the task's name
        self._log = log    # the subclass's own logger, so log names stay per component
        self._version: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> None:
        raise NotImplementedError

    async def _read_version(self) -> int:
        """The database's `apps_version` now."""
        raise NotImplementedError

    async def start(self) -> None:
        if self._task is not None:
            return
        await self.load()
        self._task = asyncio.create_task(self._poll(),
                                         name="qqavatar-" + self._name.replace(" ", "-"))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                if await self._read_version() != self._version:
                    await self.load()
            except StoreUnavailable as outage:  # expected in an outage: said once, no traceback
                if not failing:
                    self._log.warning("%s: refresh failed (%s); will keep retrying", self._name,
                                      outage)
                failing = True
            except Exception:  # noqa: BLE001 - any failure: keep the last snapshot, log it
                if not failing:
                    self._log.exception("%s: refresh failed; will keep retrying", self._name)
                failing = True
            else:
                if failing:
                    self._log.info("%s: refresh works again", self._name)
                failing = False
