"""The table conditional writes take their lock in: one row per (type, criteria) ever used.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A conditional create first writes this row (an upsert) in its own transaction: on PostgreSQL that holds
the row's lock, on SQLite the database's write lock, until the transaction ends. A second conditional
create with the same criteria waits there, and then its search sees the first one's resource, so
concurrent creates make exactly one resource instead of racing between the search and the insert.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conditional_lock",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("taken", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_conditional_lock"),
    )


def downgrade() -> None:
    op.drop_table("conditional_lock")
