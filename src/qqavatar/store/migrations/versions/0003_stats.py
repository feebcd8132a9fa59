"""statistics: stats_daily, member_activity, upstream_latency

Revision ID: 0003
Revises: 0001
Create Date: 2024-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("ret", sa.Integer(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("system_errors", sa.BigInteger(), nullable=False),
        sa.Column("cache_hits", sa.BigInteger(), nullable=False),
        sa.Column("upstream_fetches", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "app_key", "service", "ret", name="pk_stats_daily"),
    )
    op.create_table(
        "member_activity",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("day", "app_key", "uuid", name="pk_member_activity"),
    )
    op.create_table(
        "upstream_latency",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "bucket", name="pk_upstream_latency"),
    )


def downgrade() -> None:
    op.drop_table("upstream_latency")
    op.drop_table("member_activity")
    op.drop_table("stats_daily")
