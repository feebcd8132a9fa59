"""Which key the database's sealed values are under, and refusing to write under another.

A database holds one key's sealed values (app secrets, private-link keys: see
qqavatar.secretbox). A process with another key, or none, that wrote anyway would leave a
row no server can open, so every write first checks the key the database uses: the key id of
most of its sealed values (ties: the oldest app's). One stray row sealed under another key
does not change it, so the operator's own key keeps working and the stray row can be deleted.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from qqavatar.secretbox import (
    SecretBox,
    SecretKeyError,
    box_for,
    sealed_key_id,
    sealed_key_id_of_bytes,
)
from qqavatar.settings import Settings
from qqavatar.store.schema import app_link_keys, apps

Value = TypeVar("Value", str, bytes)


class _Configured(enum.Enum):
    BOX = "configured"


CONFIGURED = _Configured.BOX  # the box of this process's QQAVATAR_SECRET_KEY
BoxChoice = SecretBox | _Configured | None


def resolve_box(box: BoxChoice) -> SecretBox | None:
    """`box`, or for CONFIGURED the box of `QQAVATAR_SECRET_KEY` (environment or config file)."""
    return box_for(Settings().secret_key) if box is CONFIGURED else box


async def database_key_id(connection: AsyncConnection) -> str | None:
    """The key id most sealed values are under; None if nothing is sealed."""
    counts: Counter[str] = Counter()
    query = select(apps.c.app_secret).order_by(apps.c.created_at, apps.c.app_key)
    for (stored,) in await connection.execute(query):
        key_id = sealed_key_id(stored)
        if key_id is not None:
            counts[key_id] += 1
    for (stored,) in await connection.execute(select(app_link_keys.c.link_key)):
        key_id = sealed_key_id_of_bytes(bytes(stored))
        if key_id is not None:
            counts[key_id] += 1
    # most_common keeps first-seen order among equals: the oldest app's key wins a tie.
    return counts.most_common(1)[0][0] if counts else None


def check_key_id(database: str | None, box: SecretBox | None, *, after: str = "") -> None:
    """SecretKeyError (one line, naming the database's key id) unless `box` is its key."""
    if database is None or (box is not None and box.key_id == database):
        return
    ours = "is not set" if box is None else f"has key id {box.key_id}"
    raise SecretKeyError(
        f"the database's secrets are encrypted with key id {database}, but "
        f"QQAVATAR_SECRET_KEY {ours}: set the key of id {database}{after}")


async def check_writable(connection: AsyncConnection, box: SecretBox | None) -> None:
    """Before a write: SecretKeyError if `box` is not the key the database uses."""
    check_key_id(await database_key_id(connection), box, after=" (nothing was changed)")


# --- private-link keys ------------------------------------------------------------------------


def _link_context(app_key: str) -> bytes:
    # Associated data: a sealed link key opens only as that app's link key.
    return b"app_link_keys " + app_key.encode("ascii")


def seal_link_key(box: SecretBox | None, raw: bytes, app_key: str) -> bytes:
    """The link key as stored: sealed when there is a box, else raw."""
    return raw if box is None else box.seal_bytes(raw, _link_context(app_key))


def open_link_key(box: SecretBox | None, stored: bytes, app_key: str) -> bytes:
    """The raw link key; SecretKeyError if it is sealed and `box` cannot open it."""
    key_id = sealed_key_id_of_bytes(stored)
    if key_id is None:
        return stored
    if box is None:
        raise SecretKeyError(f"link keys are encrypted (key id {key_id}) but "
                             "QQAVATAR_SECRET_KEY is not set: set the key they were encrypted with")
    return box.open_bytes(stored, _link_context(app_key))


@dataclass(slots=True)
class SealCount:
    """What `AppStore.encrypt_secrets` did (app secrets and link keys together)."""

    sealed: int = 0     # plaintext values now encrypted
    resealed: int = 0   # values moved from the old key to the current one
    already: int = 0    # values the current key had sealed before


@dataclass(slots=True)
class Resealer(Generic[Value]):
    """Moves sealed values of one kind (app secrets, link keys) to `box`, counting."""

    box: SecretBox
    old_box: SecretBox | None
    key_id: Callable[[Value], str | None]                # of a sealed value; None: plaintext
    open: Callable[[SecretBox, Value, str], Value]       # (box, stored, app_key) → plaintext
    seal: Callable[[SecretBox, Value, str], Value]       # (box, plaintext, app_key) → stored
    count: SealCount

    def new_value(self, stored: Value, app_key: str) -> Value | None:
        """What to store in place of `stored`; None: it stays (the current key sealed it).
        SecretKeyError for a value sealed by neither key, or damaged."""
        key_id = self.key_id(stored)
        if key_id == self.box.key_id:
            self.open(self.box, stored, app_key)  # a damaged value fails here, not at serve time
            self.count.already += 1
            return None
        if key_id is None:
            plain = stored
            self.count.sealed += 1
        else:  # another key: the old one opens it to be re-sealed; `box` raises, naming it
            old = self.old_box
            plain = self.open(old if old is not None and key_id == old.key_id else self.box,
                              stored, app_key)
            self.count.resealed += 1
        return self.seal(self.box, plain, app_key)


async def seal_link_keys(connection: AsyncConnection, box: SecretBox,
                         old_box: SecretBox | None, count: SealCount) -> None:
    """Seal raw link keys with `box` and re-seal those of `old_box`, in the caller's
    transaction, adding to `count`; SecretKeyError for a key sealed by neither."""
    resealer = Resealer[bytes](box, old_box, sealed_key_id_of_bytes, open_link_key,
                               seal_link_key, count)
    rows = (await connection.execute(
        select(app_link_keys.c.app_key, app_link_keys.c.link_key))).all()
    for app_key, value in rows:
        new = resealer.new_value(bytes(value), app_key)
        if new is not None:
            await connection.execute(
                update(app_link_keys).where(app_link_keys.c.app_key == app_key)
                .values(link_key=new))
