"""Members of an app and their login sessions, in the database.

Passwords arrive here already hashed (qqavatar.members.passwords) and tokens
only as their SHA-256: this module never sees a secret it could leak.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from qqavatar.store.db import begin, connect
from qqavatar.store.schema import members, sessions


class UsernameTaken(Exception):
    """The app already has a member with this name (compared case-insensitively)."""


def new_uuid() -> str:
    """32 uppercase hex digits, as YesApi issues member uuids."""
    return secrets.token_hex(16).upper()


def new_token() -> str:
    """64 uppercase hex digits (256 random bits)."""
    return secrets.token_hex(32).upper()


def token_hash(token: str) -> str:
    """What is stored of a token; tokens are hex, so case is not significant."""
    return hashlib.sha256(token.upper().encode("utf-8")).hexdigest()


def username_key(username: str) -> str:
    """The form names are unique in: `Ａlice`, `ALICE` and `alice` are one account."""
    return unicodedata.normalize("NFKC", username).casefold()


@dataclass(frozen=True, slots=True)
class Member:
    uuid: str
    app_key: str
    username: str
    password_hash: str
    created_at: int
    last_login_at: int | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Member:
        last_login = None if row.last_login_at is None else int(row.last_login_at)
        return cls(row.uuid, row.app_key, row.username, row.password_hash,
                   int(row.created_at), last_login)


@dataclass(frozen=True, slots=True)
class Session:
    uuid: str
    app_key: str
    expires_at: int   # Unix seconds; the session holds while now < expires_at
    revoked: bool


class MemberStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, app_key: str, username: str, password_hash: str, now: int) -> Member:
        """A new member; UsernameTaken when the app already has the name."""
        member = Member(new_uuid(), app_key, username, password_hash, now, None)
        row = {"uuid": member.uuid, "app_key": app_key, "username": username,
               "username_key": username_key(username), "password_hash": password_hash,
               "created_at": now, "last_login_at": None}
        try:
            async with begin(self._engine) as connection:
                await connection.execute(insert(members).values(**row))
        except IntegrityError:
            if await self.find(app_key, username) is not None:
                raise UsernameTaken(username) from None
            raise  # not the name: e.g. the app was deleted meanwhile
        return member

    async def find(self, app_key: str, username: str) -> Member | None:
        query = select(members).where(members.c.app_key == app_key,
                                      members.c.username_key == username_key(username))
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else Member.from_row(row)

    async def open_session(self, member: Member, hashed_token: str, now: int,
                           expires_at: int) -> None:
        """Store a new session; the member's dead sessions are swept on the way."""
        async with begin(self._engine) as connection:
            await connection.execute(delete(sessions).where(
                sessions.c.uuid == member.uuid,
                or_(sessions.c.revoked, sessions.c.expires_at <= now),
            ))
            await connection.execute(insert(sessions).values(
                token_hash=hashed_token, uuid=member.uuid, app_key=member.app_key,
                created_at=now, expires_at=expires_at, revoked=False,
            ))
            await connection.execute(
                update(members).where(members.c.uuid == member.uuid).values(last_login_at=now)
            )

    async def session(self, hashed_token: str) -> Session | None:
        query = select(sessions).where(sessions.c.token_hash == hashed_token)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return Session(row.uuid, row.app_key, int(row.expires_at), bool(row.revoked))

    async def revoke(self, app_key: str, uuid: str, hashed_token: str, now: int) -> bool:
        """End a live session; False when there was none to end."""
        statement = update(sessions).where(and_(
            sessions.c.token_hash == hashed_token,
            sessions.c.uuid == uuid,
            sessions.c.app_key == app_key,
            sessions.c.revoked.is_(False),
            sessions.c.expires_at > now,
        )).values(revoked=True)
        async with begin(self._engine) as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0
