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
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class SealCount:
    """What `AppStore.encrypt_secrets` did (app secrets and link keys together)."""

    sealed: int         # plaintext values now encrypted
    resealed: int       # values moved from the old key to the current one
    already: int        # values the current key had sealed before


async def seal_link_keys(connection: AsyncConnection, box: SecretBox,
                         old_box: SecretBox | None) -> SealCount:
    """Seal raw link keys with `box` and re-seal those of `old_box`, in the caller's
    transaction; SecretKeyError for a key sealed by neither."""
    sealed = resealed = already = 0
    rows = (await connection.execute(
        select(app_link_keys.c.app_key, app_link_keys.c.link_key))).all()
    for app_key, value in rows:
        stored = bytes(value)
        key_id = sealed_key_id_of_bytes(stored)
        if key_id == box.key_id:
            open_link_key(box, stored, app_key)  # a damaged key fails here, not at serve time
            already += 1
            continue
        if key_id is None:
            sealed += 1
        else:  # another key: the old one opens it to be re-sealed; `box` raises, naming it
            opener = old_box if old_box is not None and key_id == old_box.key_id else box
            stored = open_link_key(opener, stored, app_key)
            resealed += 1
        await connection.execute(
            update(app_link_keys).where(app_link_keys.c.app_key == app_key)
            .values(link_key=seal_link_key(box, stored, app_key)))
    return SealCount(sealed=sealed, resealed=resealed, already=already)
