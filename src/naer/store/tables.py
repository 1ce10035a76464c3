"""The store's tables: the current version of each resource, and every version (history).

Resources are kept as JSON text (written and read with orjson): the API returns them as stored, and
search reads index tables written beside them, so the database never has to parse the JSON.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _version_columns() -> list[Column[object]]:
    """What the current table and the history share: the resource, its version, when, and the JSON."""
    return [
        Column("resource_type", String(64), nullable=False),
        Column("id", String(64), nullable=False),
        Column("version_id", Integer, nullable=False),
        Column("last_updated", DateTime(timezone=True), nullable=False),
        Column("deleted", Boolean, nullable=False),
    ]


resources = Table(
    "resources",
    metadata,
    *_version_columns(),
    Column("content", Text, nullable=True),  # NULL once deleted
    PrimaryKeyConstraint("resource_type", "id", name="pk_resources"),
)

history = Table(
    "resource_history",
    metadata,
    *_version_columns(),
    Column("method", String(8), nullable=False),  # POST, PUT or DELETE: how this version came to be
    Column("content", Text, nullable=True),
    PrimaryKeyConstraint("resource_type", "id", "version_id", name="pk_resource_history"),
)

Index("ix_history_last_updated", history.c.last_updated)
Index("ix_history_type_last_updated", history.c.resource_type, history.c.last_updated)
