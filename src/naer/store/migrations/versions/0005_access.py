"""Access control: the citizens each resource belongs to, accounts, break-the-glass grants, and the
hash-chained audit log, and the sign-in sessions of the web pages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

resource_patient is filled from the stored resources by the index rebuild that follows this upgrade
(search.index.INDEX_FORMAT changed with it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "resource_patient",
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "id", "patient_id", name="pk_resource_patient"),
    )
    op.create_index("ix_resource_patient_patient", "resource_patient", ["patient_id", "resource_type"])
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("display", sa.Text, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("practitioner", sa.String(64), nullable=True),
        sa.Column("practitioner_role", sa.String(64), nullable=True),
        sa.Column("organization", sa.String(64), nullable=True),
        sa.Column("patient", sa.String(64), nullable=True),
        sa.Column("issuer", sa.Text, nullable=True),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_accounts_subject", "accounts", ["issuer", "subject"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
    )
    op.create_table(
        "access_grant",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("starts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=True),
        sa.Column("reviewed", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.Text, nullable=True),
    )
    op.create_index("ix_access_grant_patient", "access_grant", ["patient", "account", "ends"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("prev", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_patient", "audit_log", ["patient", "recorded"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    for table in ("audit_head", "audit_log", "access_grant", "sessions", "accounts", "resource_patient"):
        op.drop_table(table)
