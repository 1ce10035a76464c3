"""Which citizens a resource belongs to: its Patient compartment (the compartment parameters of
``search/parameters.json`` that refer to a Patient; a Patient belongs to itself), computed from the
search index rows when it is written and kept in ``resource_patient`` for every version.

Access decides on these rows (naer.access): a resource is visible to an asker when every citizen it
belongs to is; a resource that belongs to no citizen (an Organization, a ValueSet) is nobody's record.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from naer.store.search.definitions import compartment
from naer.store.search.extract import Rows
from naer.store.tables import resource_patient

PATIENT = "Patient"


def patients_of(resource_type: str, rid: str, rows: Rows) -> set[str]:
    """The ids of the Patients a resource (with these index rows) belongs to."""
    params = compartment().get(resource_type, ())
    found = {row[2] for row in rows["reference"] if row[0] in params and row[1] == PATIENT}
    if resource_type == PATIENT:
        found.add(rid)
    return {p for p in found if len(p) <= 64}


def remember(con: Connection, items: Iterable[tuple[str, str, set[str]]]) -> None:
    """Add (type, id, patients) to the table; rows already there stay (one INSERT for all)."""
    values = [
        {"resource_type": kind, "id": rid, "patient_id": p} for kind, rid, patients in items for p in patients
    ]
    if not values:
        return
    dialect = postgresql if con.dialect.name == "postgresql" else sqlite
    con.execute(dialect.insert(resource_patient).on_conflict_do_nothing(), values)


def of(con: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """The citizens of each of these resources (every version's)."""
    found: dict[tuple[str, str], set[str]] = {}
    by_kind: dict[str, list[str]] = {}
    for kind, rid in keys:
        by_kind.setdefault(kind, []).append(rid)
    for kind, ids in by_kind.items():
        for start in range(0, len(ids), 500):
            rows = con.execute(
                select(resource_patient.c.id, resource_patient.c.patient_id).where(
                    resource_patient.c.resource_type == kind,
                    resource_patient.c.id.in_(ids[start : start + 500]),
                )
            )
            for rid, patient in rows:
                found.setdefault((kind, rid), set()).add(patient)
    return found
