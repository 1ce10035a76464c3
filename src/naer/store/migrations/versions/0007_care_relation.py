"""The access policy's care relations kept as rows beside the search index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Filled from the search index by the rebuild that follows this upgrade (naer.store.relations: the state
table holds no policy yet, so the rows are stale and derived again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_relation",
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("party_type", sa.String(64), nullable=False),
        sa.Column("party_id", sa.Text, nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("low", sa.BigInteger, nullable=False),
        sa.Column("high", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_care_relation_party", "care_relation", ["party_id", "party_type", "relation"])
    op.create_index("ix_care_relation_resource", "care_relation", ["resource_type", "id"])
    op.create_table("care_relation_state", sa.Column("policy", sa.String(64), nullable=False))


def downgrade() -> None:
    op.drop_table("care_relation")
    op.drop_table("care_relation_state")
