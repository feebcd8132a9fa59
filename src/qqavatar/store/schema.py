"""The database tables, as SQLAlchemy Core metadata.

Alembic migrations in `migrations/versions/` are written by hand to match this
file; `tests/unit/test_store_migrations.py` checks that they agree.
Timestamps are integer Unix seconds: portable across SQLite and PostgreSQL and
free of time-zone questions.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

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
    Column("app_secret", String(255), nullable=False),  # sealed: see qqavatar.secretbox
    Column("name", String(100), nullable=False),
    Column("sign_required", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Per-app limits (qqavatar.limits); NULL / "" means no limit. Lists are comma-separated.
    Column("daily_quota", BigInteger, nullable=True),
    Column("monthly_quota", BigInteger, nullable=True),
    Column("rate_limit", Integer, nullable=True),  # calls per second
    Column("ip_allow", Text, nullable=False, server_default=""),  # CIDRs
    Column("domains", Text, nullable=False, server_default=""),  # bound Host names
    # The request sign it takes: yesapi or hmac-sha256 (protocol/sign.py SCHEMES).
    Column("sign_scheme", String(16), nullable=False, server_default="yesapi"),
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

# Members of an app (SPEC §6, qqavatar.members). `username_key` is the NFKC-casefolded
# name, so "Alice" and "alice" are one account on every backend. `password_hash` is a
# self-describing scrypt string (qqavatar.members.passwords), never the password.
members = Table(
    "members",
    metadata,
    Column("uuid", String(32), primary_key=True),
    Column("app_key", String(32), ForeignKey("apps.app_key", ondelete="CASCADE"),
           nullable=False),
    Column("username", String(50), nullable=False),
    Column("username_key", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger, nullable=True),
    UniqueConstraint("app_key", "username_key", name="uq_members_app_key_username_key"),
)

# Login sessions. Only the SHA-256 of a token is stored: a leaked table logs no one in.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("uuid", String(32), ForeignKey("members.uuid", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("app_key", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, server_default=false()),
)

# Calls counted against quotas (qqavatar.limits.quota): period `D2026-11-28` (a day) or
# `M2026-11` (a month), in Asia/Shanghai time. No foreign key: a batch of counts must
# still land when an app is deleted meanwhile.
quota_usage = Table(
    "quota_usage",
    metadata,
    Column("app_key", String(32), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("calls", BigInteger, nullable=False),
)

# Private avatar links (qqavatar.links): each app's 32-byte key sealing its link tokens.
# Replacing a key kills all of that app's links; deleting the app deletes its key.
app_link_keys = Table(
    "app_link_keys",
    metadata,
    Column("app_key", String(32), ForeignKey("apps.app_key", ondelete="CASCADE"),
           primary_key=True),
    # 32 raw bytes, or 76 sealed with QQAVATAR_SECRET_KEY (store.sealing; neither backend
    # enforces the declared length, so no migration).
    Column("link_key", LargeBinary(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
