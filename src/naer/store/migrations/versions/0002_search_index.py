"""Search index tables (token, string, reference, date) and the record of what they were built from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The tables start empty; ``naer.store.migrate.upgrade`` fills them from the stored resources whenever the
recorded search definitions differ from the running code's (so also right after this migration).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _table(kind: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        f"search_{kind}",
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        *columns,
    )
    op.create_index(f"ix_search_{kind}_resource", f"search_{kind}", ["resource_type", "id", "param"])


def upgrade() -> None:
    bytewise = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
    _table("token", sa.Column("system", sa.Text, nullable=True), sa.Column("code", sa.Text, nullable=False))
    _table(
        "string", sa.Column("value", bytewise, nullable=False), sa.Column("exact", sa.Text, nullable=False)
    )
    _table(
        "reference",
        sa.Column("target_type", sa.String(64), nullable=True),
        sa.Column("target_id", sa.Text, nullable=False),
    )
    _table(
        "date",
        sa.Column("low", sa.BigInteger, nullable=False),
        sa.Column("high", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_search_token_value", "search_token", ["code", "resource_type", "param"])
    op.create_index("ix_search_string_value", "search_string", ["resource_type", "param", "value"])
    op.create_index("ix_search_reference_target", "search_reference", ["target_id", "resource_type", "param"])
    op.create_index("ix_search_date_value", "search_date", ["resource_type", "param", "low"])
    op.create_table("search_index_state", sa.Column("definitions", sa.String(64), nullable=False))


def downgrade() -> None:
    for kind in ("token", "string", "reference", "date"):
        op.drop_table(f"search_{kind}")
    op.drop_table("search_index_state")
