"""The access package's tables, in the store's database (so that a write and its audit entry commit in
one transaction): accounts, break-the-glass grants, and the audit log with its head."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Table, Text

from naer.store.tables import metadata

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),  # the user name, or a system client's client_id
    Column("display", Text, nullable=False),
    Column("role", String(32), nullable=False),  # a role of the policy file
    Column("password_hash", Text, nullable=True),  # Argon2id; a system client's secret; None: none
    Column("practitioner", String(64), nullable=True),
    Column("practitioner_role", String(64), nullable=True),
    Column("organization", String(64), nullable=True),
    Column("patient", String(64), nullable=True),
    Column("issuer", Text, nullable=True),  # an outside identity provider's issuer, with its subject
    Column("subject", Text, nullable=True),
    Column("scopes", Text, nullable=False),  # SMART scopes the account may be given (space-separated)
    Column("active", Boolean, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)
Index("ix_accounts_subject", accounts.c.issuer, accounts.c.subject)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie's secret, never the secret itself
    Column("account", String(64), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True), nullable=True),  # signed out
    Column("address", String(64), nullable=False),
)

grants = Table(
    "access_grant",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("patient", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("starts", DateTime(timezone=True), nullable=False),
    Column("ends", DateTime(timezone=True), nullable=False),
    Column("review", String(16), nullable=False),  # pending, accepted, rejected
    Column("reviewer", String(64), nullable=True),
    Column("reviewed", DateTime(timezone=True), nullable=True),
    Column("review_note", Text, nullable=True),
)
Index("ix_access_grant_patient", grants.c.patient, grants.c.account, grants.c.ends)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded", DateTime(timezone=True), nullable=False),
    Column("patient", String(64), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("content", Text, nullable=False),  # the AuditEvent as JSON
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_patient", audit_log.c.patient, audit_log.c.recorded)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
