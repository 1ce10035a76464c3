"""Conditional create, update and delete: the target is found by search criteria instead of an id.

FHIR's rules: a conditional create with no match creates, with one match returns that resource without
writing, with several fails (412); a conditional update with no match creates, with one match updates
it, with several fails (412); a conditional delete removes the one match (several: 412). The search and
the write run in one transaction. Two concurrent conditional creates with the same criteria can both
create (as in most servers; a unique identifier needs a database constraint, which Nær does not add).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Invalid, PreconditionFailed
from naer.store.resources import connection
from naer.store.search import matching_ids


def _one(found: list[str], resource_type: str, criteria: str) -> str | None:
    if len(found) > 1:
        raise PreconditionFailed(f"several {resource_type} resources match {criteria!r}; be more selective")
    return found[0] if found else None


def create(
    db: Engine | Connection,
    context: RequestContext,
    resource_type: str,
    body: Any,
    criteria: str,
    rid: str | None = None,
) -> store.Stored:
    """Create (under ``rid`` if given) unless ``criteria`` (If-None-Exist) already select a resource;
    then return that one."""
    store.known_type(resource_type)
    with connection(db, write=True) as con:
        existing = _one(matching_ids(con, context, resource_type, criteria), resource_type, criteria)
        if existing is not None:
            return store.read(con, context, resource_type, existing)
        return store.create(con, context, resource_type, body, rid)


def update(
    db: Engine | Connection, context: RequestContext, resource_type: str, body: Any, criteria: str
) -> store.Stored:
    """Update the one resource ``criteria`` select, or create one when none does."""
    store.known_type(resource_type)
    with connection(db, write=True) as con:
        existing = _one(matching_ids(con, context, resource_type, criteria), resource_type, criteria)
        given = body.get("id") if isinstance(body, dict) else None
        if given is not None and not isinstance(given, str):
            raise Invalid(f"the resource's id must be a string, not {given!r}", where=f"{resource_type}.id")
        if existing is None:
            if given:
                return store.update(con, context, resource_type, given, body)
            return store.create(con, context, resource_type, body)
        if given and given != existing:
            raise Invalid(
                f"the body's id {given!r} is not that of the matching {resource_type}/{existing}",
                where=f"{resource_type}.id",
            )
        return store.update(con, context, resource_type, existing, {**body, "id": existing})


def delete(
    db: Engine | Connection, context: RequestContext, resource_type: str, criteria: str
) -> store.Stored | None:
    """Delete the one resource ``criteria`` select (None: nothing matched)."""
    store.known_type(resource_type)
    with connection(db, write=True) as con:
        existing = _one(matching_ids(con, context, resource_type, criteria), resource_type, criteria)
        return None if existing is None else store.delete(con, context, resource_type, existing)
