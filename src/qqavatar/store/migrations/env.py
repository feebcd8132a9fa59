"""Alembic environment for qqavatar.

Normally run through `qqavatar.store.db.migrate`, which hands over an open
connection in `config.attributes["connection"]`. Run by the `alembic` command
(`alembic -c src/qqavatar/store/alembic.ini …`, for writing new revisions) it
connects by itself to `sqlalchemy.url` or else the configured database.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from qqavatar.store.schema import metadata

config = context.config


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from qqavatar.settings import Settings

    return Settings().effective_database_url


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies tables.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine() -> None:
    from qqavatar.store.db import make_engine

    engine = make_engine(_database_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    asyncio.run(_run_own_engine())
