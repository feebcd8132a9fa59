"""Apps: the callers of the API, each with a key, a secret and a signing switch.

`AppStore` is the database side (used by the CLI and the admin UI);
`AppRegistry` is the in-memory copy the request path reads without I/O.
With `QQAVATAR_SECRET_KEY` set, the store seals each secret it writes and opens each one
it reads (qqavatar.secretbox): an `AppRecord` always holds the usable secret, the
`apps.app_secret` column only ciphertext (and plaintext rows not yet encrypted).
Every write first checks that the key is the one the database uses (store.sealing); a row
sealed under another key is skipped by reads of all apps, not fatal to them.
"""

from __future__ import annotations

import builtins
import logging
import secrets
import string
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from qqavatar.limits.limit_values import (
    MAX_QUOTA,
    MAX_RATE_LIMIT,
    clean_cidrs,
    clean_domains,
    clean_limit,
    join_list,
)
from qqavatar.protocol.sign import SCHEMES, YESAPI
from qqavatar.secretbox import SecretBox, SecretKeyError, open_secret, sealed_key_id
from qqavatar.store.db import begin, connect
from qqavatar.store.polling import VersionPolled, bump_apps_version
from qqavatar.store.schema import APPS_VERSION, apps, meta
from qqavatar.store.sealing import (
    CONFIGURED,
    BoxChoice,
    Resealer,
    SealCount,
    check_key_id,
    check_writable,
    database_key_id,
    resolve_box,
    seal_link_keys,
)

log = logging.getLogger(__name__)

NAME_MAX_LEN = 100
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LEN = 64


def new_app_key() -> str:
    """32 uppercase hex digits, as YesApi issues them."""
    return secrets.token_hex(16).upper()


def new_app_secret() -> str:
    """64 characters from [A-Za-z0-9] (about 381 bits)."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LEN))


def clean_name(name: str) -> str:
    """`name` stripped; ValueError if empty, too long or holding control characters."""
    cleaned = name.strip()
    if not cleaned:
        raise ValueError("app name must not be empty")
    if len(cleaned) > NAME_MAX_LEN:
        raise ValueError(f"app name must be at most {NAME_MAX_LEN} characters, got {len(cleaned)}")
    # Names are shown in tables and logs, where a newline or escape would garble them.
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise ValueError("app name must not contain control characters")
    return cleaned


def clean_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"sign scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    return scheme


@dataclass(frozen=True, slots=True)
class AppRecord:
    app_key: str
    app_secret: str
    name: str
    sign_required: bool
    created_at: int
    updated_at: int
    # Limits (qqavatar.limits): None / () is no limit.
    daily_quota: int | None = None
    monthly_quota: int | None = None
    rate_limit: int | None = None           # calls per second
    ip_allow: tuple[str, ...] = ()          # normalised CIDRs
    domains: tuple[str, ...] = ()           # normalised host names
    sign_scheme: str = YESAPI               # the request sign it takes (protocol/sign.py)

    def public_dict(self, *, with_secret: bool = True) -> dict[str, object]:
        """The record as JSON-ready data, optionally without the secret."""
        data: dict[str, object] = {"app_key": self.app_key}
        if with_secret:
            data["app_secret"] = self.app_secret
        data |= {
            "name": self.name,
            "sign_required": self.sign_required,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "daily_quota": self.daily_quota,
            "monthly_quota": self.monthly_quota,
            "rate_limit": self.rate_limit,
            "ip_allow": list(self.ip_allow),
            "domains": list(self.domains),
            "sign_scheme": self.sign_scheme,
        }
        return data

    def row(self, box: SecretBox | None = None) -> dict[str, object]:
        """The record as a row of the `apps` table, the secret sealed when there is a box."""
        data = self.public_dict()
        data["ip_allow"], data["domains"] = join_list(self.ip_allow), join_list(self.domains)
        data["app_secret"] = _stored_secret(self.app_secret, self.app_key, box)
        return data

    @classmethod
    def from_row(cls, row: Row[Any], box: SecretBox | None = None) -> AppRecord:
        """SecretKeyError if the row's secret is sealed and `box` cannot open it."""
        return cls(
            app_key=row.app_key,
            app_secret=open_secret(row.app_secret, row.app_key, box),
            name=row.name,
            sign_required=bool(row.sign_required),
            created_at=int(row.created_at),
            updated_at=int(row.updated_at),
            daily_quota=_optional_int(row.daily_quota),
            monthly_quota=_optional_int(row.monthly_quota),
            rate_limit=_optional_int(row.rate_limit),
            ip_allow=_split(row.ip_allow),
            domains=_split(row.domains),
            sign_scheme=str(row.sign_scheme),
        )


def _stored_secret(secret: str, app_key: str, box: SecretBox | None) -> str:
    return secret if box is None else box.seal(secret, app_key)


def _optional_int(value: int | None) -> int | None:
    return None if value is None else int(value)


def _split(stored: str | None) -> tuple[str, ...]:
    return tuple(stored.split(",")) if stored else ()


@dataclass(frozen=True, slots=True)
class UnreadableApp:
    """An app whose secret does not open with this process's key (sealed under another)."""

    app_key: str
    name: str
    reason: str


class AppStore:
    """CRUD over the `apps` table. Every change bumps `meta.apps_version`.

    `box`: seals secrets on write and opens them on read; None keeps them plaintext; the
    default is the box of `QQAVATAR_SECRET_KEY`, so every store in a process (CLI, admin
    UI, server) agrees without each caller passing it.
    """

    def __init__(self, engine: AsyncEngine, *, box: BoxChoice = CONFIGURED,
                 clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._box = resolve_box(box)
        self._clock = clock  # replaceable for tests

    @property
    def engine(self) -> AsyncEngine:
        """For stores of things that belong to apps (e.g. link keys), in the same database."""
        return self._engine

    async def create(self, name: str, *, sign_required: bool = False,
                     sign_scheme: str = YESAPI) -> AppRecord:
        now = int(self._clock())
        record = AppRecord(
            app_key=new_app_key(),
            app_secret=new_app_secret(),
            name=clean_name(name),
            sign_required=sign_required,
            created_at=now,
            updated_at=now,
            sign_scheme=clean_scheme(sign_scheme),
        )
        async with begin(self._engine) as connection:
            await check_writable(connection, self._box)
            await connection.execute(insert(apps).values(**record.row(self._box)))
            await bump_apps_version(connection)
        return record

    async def list(self) -> builtins.list[AppRecord]:
        """All apps whose secret opens, oldest first; apps made within the same second by
        name. SecretKeyError if this process's key is not the one the database uses."""
        return (await self.read_all())[0]

    async def read_all(self) -> tuple[builtins.list[AppRecord], builtins.list[UnreadableApp]]:
        """All apps as `list` gives them, and those sealed under another key (skipped)."""
        query = select(apps).order_by(apps.c.created_at, apps.c.name, apps.c.app_key)
        async with connect(self._engine) as connection:
            check_key_id(await database_key_id(connection), self._box)
            rows = (await connection.execute(query)).all()
        records, unreadable = [], []
        for row in rows:
            try:
                records.append(AppRecord.from_row(row, self._box))
            except SecretKeyError as exc:
                unreadable.append(UnreadableApp(row.app_key, row.name, self._why(row, exc)))
        return records, unreadable

    def _why(self, row: Row[Any], error: SecretKeyError) -> str:
        key_id = sealed_key_id(row.app_secret)
        if self._box is not None and key_id not in (None, self._box.key_id):
            return f"its secret is sealed under key id {key_id}, not this key's {self._box.key_id}"
        return str(error)

    async def name_of(self, app_key: str) -> str | None:
        """The app's name, its secret left closed (it may be sealed under another key)."""
        query = select(apps.c.name).where(apps.c.app_key == app_key)
        async with connect(self._engine) as connection:
            name = (await connection.execute(query)).scalar_one_or_none()
        return None if name is None else str(name)

    async def get(self, app_key: str) -> AppRecord | None:
        async with connect(self._engine) as connection:
            return await self._get(connection, app_key)

    async def update(
        self,
        app_key: str,
        *,
        name: str | None = None,
        sign_required: bool | None = None,
        rotate_secret: bool = False,
        daily_quota: int | None = None,
        monthly_quota: int | None = None,
        rate_limit: int | None = None,
        ip_allow: Sequence[str] | None = None,
        domains: Sequence[str] | None = None,
        sign_scheme: str | None = None,
    ) -> AppRecord | None:
        """Change the given fields; None if there is no such app.

        A limit given as 0 (an empty list for `ip_allow`/`domains`) is cleared;
        None leaves a field as it is. Bad values raise ValueError.
        With nothing to change, returns the app untouched (no version bump).
        """
        values: dict[str, object] = {}
        if name is not None:
            values["name"] = clean_name(name)
        if sign_required is not None:
            values["sign_required"] = sign_required
        if rotate_secret:
            values["app_secret"] = _stored_secret(new_app_secret(), app_key, self._box)
        limits = {"daily_quota": (daily_quota, MAX_QUOTA),
                  "monthly_quota": (monthly_quota, MAX_QUOTA),
                  "rate_limit": (rate_limit, MAX_RATE_LIMIT)}
        for field, (limit, maximum) in limits.items():
            if limit is not None:
                values[field] = clean_limit(limit, field, maximum)
        if ip_allow is not None:
            values["ip_allow"] = join_list(clean_cidrs(ip_allow))
        if domains is not None:
            values["domains"] = join_list(clean_domains(domains))
        if sign_scheme is not None:
            values["sign_scheme"] = clean_scheme(sign_scheme)
        if not values:
            return await self.get(app_key)
        values["updated_at"] = int(self._clock())
        async with begin(self._engine) as connection:
            await check_writable(connection, self._box)
            # Write first, read after: on SQLite a read-then-write transaction
            # can fail with SQLITE_BUSY when another writer slips in between.
            result = await connection.execute(
                update(apps).where(apps.c.app_key == app_key).values(**values)
            )
            if result.rowcount == 0:
                return None
            await bump_apps_version(connection)
            return await self._get(connection, app_key)

    async def delete(self, app_key: str) -> bool:
        """True if the app existed and is now gone."""
        async with begin(self._engine) as connection:
            await check_writable(connection, self._box)
            result = await connection.execute(delete(apps).where(apps.c.app_key == app_key))
            if result.rowcount == 0:
                return False
            await bump_apps_version(connection)
        return True

    async def version(self) -> int:
        """The `apps_version` counter: changes whenever any app does."""
        query = select(meta.c.value).where(meta.c.key == APPS_VERSION)
        async with connect(self._engine) as connection:
            value = (await connection.execute(query)).scalar_one()
        return int(value)

    async def encrypt_secrets(self, *, old_box: SecretBox | None = None) -> SealCount:
        """Seal every plaintext secret and link key with this store's box; with `old_box`,
        also re-seal those it had sealed. One transaction: all rows move, or none.

        SecretKeyError for a row sealed by a key that is neither (nothing is changed).
        The secrets' values stay the same, so apps, `updated_at` and the version do too.
        """
        box = self._box
        count = SealCount()
        async with begin(self._engine) as connection:
            if box is None:
                check_key_id(await database_key_id(connection), None)  # names the key in use
                raise SecretKeyError("QQAVATAR_SECRET_KEY is not set: there is no key to "
                                     "encrypt app secrets with")
            resealer = Resealer[str](box, old_box, sealed_key_id, SecretBox.open,
                                     SecretBox.seal, count)
            rows = (await connection.execute(select(apps.c.app_key, apps.c.app_secret))).all()
            for app_key, stored in rows:
                new = resealer.new_value(stored, app_key)
                if new is not None:
                    await connection.execute(
                        update(apps).where(apps.c.app_key == app_key).values(app_secret=new))
            await seal_link_keys(connection, box, old_box, count)
        return count

    async def _get(self, connection: AsyncConnection, app_key: str) -> AppRecord | None:
        query = select(apps).where(apps.c.app_key == app_key)
        row = (await connection.execute(query)).first()
        return None if row is None else AppRecord.from_row(row, self._box)


class AppRegistry(VersionPolled):
    """In-memory view of all apps for the hot path; refreshed from the store.

    Lookups are plain dict reads. A background task polls the one-row
    `apps_version` counter and reloads everything when it moves; the app table
    is small, so a full reload is simpler and safer than applying diffs.
    An app whose secret is sealed under another key is left out (logged once, by name):
    one bad row must not stop the server from serving the others.
    """

    def __init__(self, store: AppStore, *, poll_interval: float = 0.5) -> None:
        super().__init__(poll_interval=poll_interval, name="app registry", log=log)
        self._store = store
        self._apps: dict[str, AppRecord] = {}
        self._skipped: set[str] = set()  # app_keys whose skipping was logged

    def get(self, app_key: str) -> AppRecord | None:
        return self._apps.get(app_key)

    def __len__(self) -> int:
        return len(self._apps)

    @property
    def version(self) -> int | None:
        """The `apps_version` of the loaded snapshot; None before the first load."""
        return self._version

    async def _read_version(self) -> int:
        return await self._store.version()

    async def load(self) -> None:
        """Reload every app now."""
        # Version before rows: a change landing in between is then seen again
        # by the next poll, never missed.
        version = await self._store.version()
        records, unreadable = await self._store.read_all()
        self._apps = {record.app_key: record for record in records}  # one atomic swap
        self._version = version
        for app in unreadable:
            if app.app_key not in self._skipped:
                log.error("app %r (%s) is not served: %s (`qqavatar app list` marks it, "
                          "`qqavatar app delete` removes it)", app.name, app.app_key, app.reason)
        self._skipped = {app.app_key for app in unreadable}
