"""Index tables for number and quantity search parameters (and composites whose value is one).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The search definitions changed with them (number, quantity and composite parameters are answered), so
the index is rebuilt from the stored resources after this upgrade (search.index.stale says so).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
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
    op.create_index(f"ix_search_{kind}_value", f"search_{kind}", ["resource_type", "param", "low"])
    op.create_index(f"ix_search_{kind}_resource", f"search_{kind}", ["resource_type", "id", "param"])


def upgrade() -> None:
    _table(
        "number",
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
    )
    _table(
        "quantity",
        sa.Column("system", sa.Text, nullable=True),
        sa.Column("code", sa.Text, nullable=True),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("canonical", sa.Text, nullable=True),
        sa.Column("canonical_low", sa.Double, nullable=True),
        sa.Column("canonical_high", sa.Double, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("search_quantity")
    op.drop_table("search_number")
