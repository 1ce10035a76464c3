"""The store's tables: the current version of each resource, and every version (history).

Resources are kept as JSON text (written and read with orjson): the API returns them as stored, and
search reads index tables written beside them, so the database never has to parse the JSON.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql

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


def _index_table(kind: str, *columns: Column[object]) -> Table:
    """An index table: which resource, which parameter, and the value in the form search compares; with
    the index every table has, by resource (a write replaces a resource's rows through it)."""
    table = Table(
        f"search_{kind}",
        metadata,
        Column("resource_type", String(64), nullable=False),
        Column("id", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
    )
    Index(f"ix_search_{kind}_resource", table.c.resource_type, table.c.id, table.c.param)
    return table


# Strings compare byte-wise on PostgreSQL ("C" collation), as on SQLite, so a prefix is a range.
_Bytewise = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

search_token = _index_table(
    "token", Column("system", Text, nullable=True), Column("code", Text, nullable=False)
)
search_string = _index_table(
    "string", Column("value", _Bytewise, nullable=False), Column("exact", Text, nullable=False)
)
search_reference = _index_table(
    "reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", Text, nullable=False),
)
search_date = _index_table(
    "date", Column("low", BigInteger, nullable=False), Column("high", BigInteger, nullable=False)
)
# A number or a Range of numbers: [low, high] (equal for a number).
search_number = _index_table(
    "number", Column("low", Double, nullable=False), Column("high", Double, nullable=False)
)
# A Quantity (or Range, Money, Duration, Age ...): its value range as written, its system and code (the
# unit text where there is no code), and, for a UCUM unit, the range in SI base units and their name.
search_quantity = _index_table(
    "quantity",
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("low", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("canonical", Text, nullable=True),
    Column("canonical_low", Double, nullable=True),
    Column("canonical_high", Double, nullable=True),
)
INDEX_TABLES = {
    "token": search_token,
    "string": search_string,
    "reference": search_reference,
    "date": search_date,
    "number": search_number,
    "quantity": search_quantity,
}

Index("ix_search_token_value", search_token.c.code, search_token.c.resource_type, search_token.c.param)
Index("ix_search_string_value", search_string.c.resource_type, search_string.c.param, search_string.c.value)
Index(
    "ix_search_reference_target",
    search_reference.c.target_id,
    search_reference.c.resource_type,
    search_reference.c.param,
)
Index("ix_search_date_value", search_date.c.resource_type, search_date.c.param, search_date.c.low)
Index("ix_search_number_value", search_number.c.resource_type, search_number.c.param, search_number.c.low)
Index(
    "ix_search_quantity_value",
    search_quantity.c.resource_type,
    search_quantity.c.param,
    search_quantity.c.low,
)

# The citizens each resource belongs to (its Patient compartment; a Patient belongs to itself), kept for
# every version ever written: a correction that moves a record to another citizen does not free its
# history, and a deleted record stays theirs. Access decides on these rows (naer.access).
resource_patient = Table(
    "resource_patient",
    metadata,
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    PrimaryKeyConstraint("resource_type", "id", "patient_id", name="pk_resource_patient"),
)
Index("ix_resource_patient_patient", resource_patient.c.patient_id, resource_patient.c.resource_type)

# The lock a conditional write takes before its search (migration 0003 says how it serialises them).
conditional_lock = Table(
    "conditional_lock",
    metadata,
    Column("key", String(64), nullable=False),
    Column("taken", BigInteger, nullable=False),
    PrimaryKeyConstraint("key", name="pk_conditional_lock"),
)

# What the index tables were built from (a digest of the search definitions); see migrate.upgrade.
search_index_state = Table("search_index_state", metadata, Column("definitions", String(64), nullable=False))

# The care relations of the access policy kept as rows (naer.store.relations): which resource makes which
# relation between which party and which citizen, from when to when (microseconds, the index's dates, the
# relation's time after the end added). Written with the index, in the same transaction as the resource.
care_relation = Table(
    "care_relation",
    metadata,
    Column("relation", String(64), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("party_type", String(64), nullable=False),
    Column("party_id", Text, nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
)
Index(
    "ix_care_relation_party", care_relation.c.party_id, care_relation.c.party_type, care_relation.c.relation
)
Index("ix_care_relation_resource", care_relation.c.resource_type, care_relation.c.id)
care_relation_state = Table("care_relation_state", metadata, Column("policy", String(64), nullable=False))
