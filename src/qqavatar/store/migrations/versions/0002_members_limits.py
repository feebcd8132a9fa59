"""members, sessions, quota_usage; per-app limit columns on apps

Revision ID: 0002
Revises: 0001
Create Date: 2024-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LIMIT_COLUMNS = ("daily_quota", "monthly_quota", "rate_limit", "ip_allow", "domains")


def upgrade() -> None:
    # Plain ADD COLUMN (nullable or with a default) works on SQLite without a table copy.
    op.add_column("apps", sa.Column("daily_quota", sa.BigInteger(), nullable=True))
    op.add_column("apps", sa.Column("monthly_quota", sa.BigInteger(), nullable=True))
    op.add_column("apps", sa.Column("rate_limit", sa.Integer(), nullable=True))
    op.add_column("apps", sa.Column("ip_allow", sa.Text(), nullable=False, server_default=""))
    op.add_column("apps", sa.Column("domains", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "members",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("username", sa.String(50), nullable=False),
        sa.Column("username_key", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name="pk_members"),
        sa.ForeignKeyConstraint(["app_key"], ["apps.app_key"], ondelete="CASCADE",
                                name="fk_members_app_key_apps"),
        sa.UniqueConstraint("app_key", "username_key", name="uq_members_app_key_username_key"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
        sa.ForeignKeyConstraint(["uuid"], ["members.uuid"], ondelete="CASCADE",
                                name="fk_sessions_uuid_members"),
    )
    op.create_index("ix_sessions_uuid", "sessions", ["uuid"])
    op.create_table(
        "quota_usage",
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_key", "period", name="pk_quota_usage"),
    )


def downgrade() -> None:
    op.drop_table("quota_usage")
    op.drop_index("ix_sessions_uuid", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("members")
    with op.batch_alter_table("apps") as batch:  # SQLite drops columns by copying the table
        for column in reversed(_LIMIT_COLUMNS):
            batch.drop_column(column)
