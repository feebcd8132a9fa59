"""The database tables, as SQLAlchemy Core metadata.

Alembic migrations in `migrations/versions/` are written by hand to match this
file; `tests/unit/test_store_migrations.py` checks that they agree.
Timestamps are integer Unix seconds: portable across SQLite and PostgreSQL and
free of time-zone questions.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Integer, MetaData, String, Table, false

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

# Statistics (qqavatar.stats). Days are calendar days in Asia/Shanghai (UTC+8), as YesApi
# counts them. app_key "" holds calls that named no known app; service "" holds calls to
# services that do not exist. Counters only ever grow, by upsert-add from every server.
stats_daily = Table(
    "stats_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("app_key", String(32), primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("ret", Integer, primary_key=True),
    Column("calls", BigInteger, nullable=False),
    Column("system_errors", BigInteger, nullable=False),  # answers with err_code < 0
    Column("cache_hits", BigInteger, nullable=False),
    Column("upstream_fetches", BigInteger, nullable=False),
)

# One row per member active on a day (a uuid+token pair that held).
member_activity = Table(
    "member_activity",
    metadata,
    Column("day", Date, primary_key=True),
    Column("app_key", String(32), primary_key=True),
    Column("uuid", String(32), primary_key=True),
)

# Upstream latency histogram per day; bucket b counts fetches of up to 2**(b/4) ms.
upstream_latency = Table(
    "upstream_latency",
    metadata,
    Column("day", Date, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
)
