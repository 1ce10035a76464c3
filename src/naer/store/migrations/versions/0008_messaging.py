"""MedCom messaging: messages sent and received (exactly once), the Bundle ids they came in, and the
municipality's list of admitted citizens (naer.messaging.tables).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message",
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("header_id", sa.String(64), nullable=False),
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("code", sa.String(24), nullable=False),
        sa.Column("sender_sor", sa.String(32), nullable=False),
        sa.Column("receiver_sor", sa.String(32), nullable=False),
        sa.Column("organization", sa.String(64), nullable=True),
        sa.Column("patient", sa.String(64), nullable=True),
        sa.Column("thread", sa.String(128), nullable=True),
        sa.Column("episode", sa.String(128), nullable=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("ack_code", sa.String(24), nullable=True),
        sa.Column("ack_body", sa.Text, nullable=True),
        sa.Column("problems", sa.Text, nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("direction", "sender_sor", "header_id", name="pk_message"),
    )
    op.create_index("ix_message_organization", "message", ["organization", "direction", "created"])
    op.create_index("ix_message_header", "message", ["header_id"])
    op.create_index("ix_message_thread", "message", ["thread"])
    op.create_index("ix_message_patient", "message", ["patient"])
    op.create_index("ix_message_due", "message", ["direction", "state", "next_attempt"])
    op.create_table(
        "message_bundle",
        sa.Column("sender_sor", sa.String(32), nullable=False),
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.Column("header_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sender_sor", "bundle_id", name="pk_message_bundle"),
    )
    op.create_table(
        "hospital_stay",
        sa.Column("organization", sa.String(64), nullable=False),
        sa.Column("hospital_sor", sa.String(32), nullable=False),
        sa.Column("episode", sa.String(128), nullable=False),
        sa.Column("patient", sa.String(64), nullable=True),
        sa.Column("cpr", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("hospital", sa.Text, nullable=False),
        sa.Column("klass", sa.String(8), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("start", sa.String(40), nullable=True),
        sa.Column("end", sa.String(40), nullable=True),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("header_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("organization", "hospital_sor", "episode", name="pk_hospital_stay"),
    )
    op.create_index("ix_hospital_stay_state", "hospital_stay", ["organization", "state"])


def downgrade() -> None:
    op.drop_table("hospital_stay")
    op.drop_table("message_bundle")
    op.drop_table("message")
