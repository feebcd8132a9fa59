"""apps.sign_scheme: the request sign an app takes (protocol/sign.py)

Revision ID: 0006
Revises: 0001
Create Date: 2024-01-06

`yesapi` (every existing app) is YesApi's md5 sign; `hmac-sha256` the stronger scheme an
app may opt into (docs/security.md). A column with a constant default: SQLite's ADD
COLUMN takes it without copying the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps", sa.Column("sign_scheme", sa.String(16), nullable=False,
                                    server_default="yesapi"))


def downgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("sign_scheme")
