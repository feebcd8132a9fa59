"""The `app_link_keys` table: one link key per app, made when first needed, replaced on rotation.

Every change bumps `meta.apps_version` in the same transaction, the counter every server
already polls, so all workers see a new or rotated key within one poll. Deleting an app
deletes its key through the foreign key (`ON DELETE CASCADE`), and that delete bumps the
counter too.

With `QQAVATAR_SECRET_KEY` set the keys are stored sealed, as app secrets are
(store.sealing), and a write first checks that the key is the one the database uses. A key
that does not open (sealed under another key) leaves its app without private links, logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.links.tokens import LinkKey
from qqavatar.secretbox import SecretKeyError
from qqavatar.store.db import begin, connect
from qqavatar.store.polling import bump_apps_version
from qqavatar.store.schema import APPS_VERSION, app_link_keys, apps, meta
from qqavatar.store.sealing import (
    CONFIGURED,
    BoxChoice,
    check_writable,
    open_link_key,
    resolve_box,
    seal_link_key,
)

log = logging.getLogger(__name__)


class LinkKeyStore:
    def __init__(self, engine: AsyncEngine, *, box: BoxChoice = CONFIGURED,
                 clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._box = resolve_box(box)
        self._clock = clock
        self._unreadable: set[str] = set()  # apps whose key did not open, logged once each

    def _open(self, app_key: str, stored: bytes) -> LinkKey | None:
        try:
            key = LinkKey(open_link_key(self._box, stored, app_key))
        except SecretKeyError as exc:
            if app_key not in self._unreadable:
                log.error("app %s: private links are off: %s", app_key, exc)
                self._unreadable.add(app_key)
            return None
        self._unreadable.discard(app_key)
        return key

    async def all(self) -> dict[str, LinkKey]:
        """Every app's link key, by app_key; apps that have none get one now.

        Made here rather than only on first use, so that by the time an app's first link
        is viewed every worker already holds its key.
        """
        query = select(apps.c.app_key, app_link_keys.c.link_key).outerjoin(
            app_link_keys, apps.c.app_key == app_link_keys.c.app_key)
        async with connect(self._engine) as connection:
            rows = (await connection.execute(query)).all()
        keys: dict[str, LinkKey] = {}
        for row in rows:
            key = (self._open(row.app_key, bytes(row.link_key)) if row.link_key is not None
                   else await self.get_or_create(row.app_key))
            if key is not None:  # None: the app was deleted meanwhile, or its key won't open
                keys[row.app_key] = key
        return keys

    async def get(self, app_key: str) -> LinkKey | None:
        query = select(app_link_keys.c.link_key).where(app_link_keys.c.app_key == app_key)
        async with connect(self._engine) as connection:
            secret = (await connection.execute(query)).scalar_one_or_none()
        return None if secret is None else self._open(app_key, bytes(secret))

    async def get_or_create(self, app_key: str) -> LinkKey | None:
        """The app's key, made now if it has none; None if there is no such app."""
        found = await self.get(app_key)
        if found is not None:
            return found
        key = LinkKey.generate()
        try:
            async with begin(self._engine) as connection:
                await check_writable(connection, self._box)
                await connection.execute(insert(app_link_keys).values(
                    app_key=app_key, link_key=seal_link_key(self._box, key.secret, app_key),
                    created_at=int(self._clock())))
                await bump_apps_version(connection)
        except IntegrityError:
            # Another worker made it first (primary key), or the app is gone (foreign key).
            return await self.get(app_key)
        return key

    async def rotate(self, app_key: str) -> bool:
        """Give the app a new key, so every link made so far stops working; False: no app."""
        key = LinkKey.generate()
        values = {"link_key": seal_link_key(self._box, key.secret, app_key),
                  "created_at": int(self._clock())}
        async with begin(self._engine) as connection:
            await check_writable(connection, self._box)
            # Write first, read after (see AppStore.update): no SQLITE_BUSY upgrade race.
            result = await connection.execute(
                update(app_link_keys).where(app_link_keys.c.app_key == app_key).values(**values))
            if result.rowcount == 0:
                exists = await connection.execute(
                    select(apps.c.app_key).where(apps.c.app_key == app_key))
                if exists.first() is None:
                    return False
                await connection.execute(insert(app_link_keys).values(app_key=app_key, **values))
            await bump_apps_version(connection)
        return True

    async def version(self) -> int:
        query = select(meta.c.value).where(meta.c.key == APPS_VERSION)
        async with connect(self._engine) as connection:
            return int((await connection.execute(query)).scalar_one())
