"""private avatar links: app_link_keys

Revision ID: 0004
Revises: 0001
Create Date: 2024-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_link_keys",
        sa.Column("app_key", sa.String(32), nullable=False),
        sa.Column("link_key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["app_key"], ["apps.app_key"], ondelete="CASCADE",
                                name="fk_app_link_keys_app_key_apps"),
        sa.PrimaryKeyConstraint("app_key", name="pk_app_link_keys"),
    )


def downgrade() -> None:
    op.drop_table("app_link_keys")
