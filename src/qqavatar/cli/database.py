"""Running one piece of CLI work against the configured database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:  # imported when a command runs: `qqavatar app --help` needs none of them
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def run_with_engine(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Open the configured database, migrate it, run `work`, close it; a failure ends the
    command with one line."""
    import asyncio

    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from qqavatar.settings import Settings
    from qqavatar.store.db import StoreUnavailable, make_engine, migrate

    try:
        url = Settings().effective_database_url
    except ValidationError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from exc

    async def run() -> T:
        try:
            engine = make_engine(url)
        except ImportError as exc:  # e.g. asyncpg missing for a postgresql:// URL
            raise click.ClickException(f"database driver not installed: {exc}") from exc
        try:
            await migrate(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError, StoreUnavailable) as exc:
        # One line: no SQL, no traceback, no URL (it may hold a password).
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
        reason = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        raise click.ClickException(f"database error: {reason}") from exc
