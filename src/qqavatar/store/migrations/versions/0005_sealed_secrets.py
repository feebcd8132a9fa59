"""apps.app_secret widened to hold encrypted secrets (qqavatar.secretbox)

Revision ID: 0005
Revises: 0001
Create Date: 2024-01-05

A sealed secret is about 140 characters; 255 leaves room for a later format version.

SQLite does not enforce a VARCHAR length, but it reports the declared one, and
schema.py must agree with the database. Its ALTER TABLE cannot change a column's
type; alembic's batch mode would copy and DROP the apps table, and with foreign keys
on, that DROP deletes every member and link key through ON DELETE CASCADE. So SQLite
gets the declared type rewritten in place (the documented writable_schema procedure
for changes that do not alter the stored data; TEXT affinity stays the same).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD, _NEW = 64, 255


def upgrade() -> None:
    _set_length(_OLD, _NEW)


def downgrade() -> None:
    # Sealed secrets do not fit back: decrypt them first (unset the key on a copy, …).
    _set_length(_NEW, _OLD)


def _set_length(old: int, new: int) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.alter_column("apps", "app_secret", type_=sa.String(new),
                        existing_type=sa.String(old), existing_nullable=False)
        return
    before = f"app_secret VARCHAR({old})"
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'apps'").scalar_one()
    if sql.count(before) != 1:
        raise RuntimeError(f"apps table not as expected; cannot find {before!r} in it")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'apps'",
            (sql.replace(before, f"app_secret VARCHAR({new})"),))
        # Every connection re-reads the schema when its version moves.
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    if bind.exec_driver_sql("PRAGMA integrity_check").scalar_one() != "ok":
        raise RuntimeError("SQLite integrity check failed after widening apps.app_secret")
