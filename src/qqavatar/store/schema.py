"""The database tables, as SQLAlchemy Core metadata.

Alembic migrations in `migrations/versions/` are written by hand to match this
file; `tests/unit/test_store_migrations.py` checks that they agree.
Timestamps are integer Unix seconds: portable across SQLite and PostgreSQL and
free of time-zone questions.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table, false

# Stable constraint names, so later migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

apps = Table(
    "apps",
    metadata,
    Column("app_key", String(32), primary_key=True),
    Column("app_secret", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("sign_required", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Small integer counters. `apps_version` is bumped by every change to `apps`,
# so servers notice changes (deletes included) by polling one cheap row.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

APPS_VERSION = "apps_version"
