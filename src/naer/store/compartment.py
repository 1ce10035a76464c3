"""A patient's compartment: the resources that belong to a citizen through the compartment parameters of
``search/parameters.json`` (for example Encounter.patient, Observation.subject/performer), read from the
reference index. Used by ``Patient/$everything`` and by Patient- and Group-level ``$export``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, or_, select
from sqlalchemy.engine import Connection

from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.resources import Stored, by_type, connection, current_of, current_versions
from naer.store.search.definitions import compartment
from naer.store.tables import INDEX_TABLES, resources

PATIENT = "Patient"


def member_ids(resource_type: str, patients: Sequence[str] | None) -> Select[Any]:
    """Ids of ``resource_type`` resources in the compartment of ``patients`` (None: of any patient)."""
    links = INDEX_TABLES["reference"]
    conditions = [
        links.c.resource_type == resource_type,
        links.c.param.in_(compartment().get(resource_type, ())),
        links.c.target_type == PATIENT,
    ]
    if patients is not None:
        conditions.append(links.c.target_id.in_(patients))
    return select(links.c.id).where(*conditions)


def in_compartment(resource_type: str, patients: Sequence[str] | None) -> Any:
    """A condition on the current-resource table: in the compartment of ``patients`` (None: any)."""
    members = resources.c.id.in_(member_ids(resource_type, patients))
    if resource_type != PATIENT:
        return members
    themselves = resources.c.id.in_(patients) if patients is not None else resources.c.id.is_not(None)
    return or_(themselves, members)


def compartment_types() -> list[str]:
    return [PATIENT, *(t for t in compartment() if t != PATIENT)]


def everything(
    db: Engine | Connection,
    context: RequestContext,
    patient_id: str,
    types: Sequence[str] | None = None,
    since: datetime | None = None,
) -> list[Stored]:
    """The patient, every resource in the patient's compartment, and the resources those refer to that
    belong to no patient (organisations, practitioners, locations ...): Patient first, then by type, id."""
    with connection(db, write=False) as con:
        # 404 / 410 for an unknown or deleted one, or one the asker may not know of
        patient = store.read(con, context, PATIENT, patient_id, audit=False)
        found: list[Stored] = [patient]
        visible = context.visible(resources.c.resource_type, resources.c.id)
        for kind in compartment_types():
            if kind == PATIENT:
                continue
            context.permit("search", kind)
            rows = con.execute(
                select(resources).where(
                    resources.c.resource_type == kind,
                    resources.c.deleted.is_(False),
                    in_compartment(kind, [patient_id]),
                    *([] if visible is None else [visible]),
                )
            )
            found.extend(current_of(row) for row in rows)
        found.extend(_referenced(con, context, found))
    if types:
        found = [s for s in found if s.resource_type in types]
    if since is not None:
        found = [s for s in found if s.last_updated >= since]
    context.accessed("search", [(s.resource_type, s.id) for s in found], f"Patient/{patient_id}/$everything")
    return [found[0], *sorted(found[1:], key=lambda s: (s.resource_type, s.id))] if found else []


def _referenced(con: Connection, context: RequestContext, found: list[Stored]) -> list[Stored]:
    links = INDEX_TABLES["reference"]
    inside = compartment_types()
    keys: set[tuple[str, str]] = set()
    for kind, ids in by_type((s.resource_type, s.id) for s in found).items():
        rows = con.execute(
            select(links.c.target_type, links.c.target_id).where(
                links.c.resource_type == kind,
                links.c.id.in_(ids),
                links.c.target_type.is_not(None),
                links.c.target_type.not_in(inside),
            )
        )
        keys.update((t, i) for t, i in rows)
    return current_versions(con, keys, context)
