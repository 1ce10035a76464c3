"""Conditional create, update and delete: the target is found by search criteria instead of an id.

FHIR's rules: a conditional create with no match creates, with one match returns that resource without
writing, with several fails (412); a conditional update with no match creates, with one match updates
it, with several fails (412); a conditional delete removes the one match (several: 412). The search and
the write run in one transaction, after a lock on the (type, criteria) pair (``lock``): concurrent
conditional writes with the same criteria run one after the other, so they make exactly one resource, on
SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Invalid, PreconditionFailed
from naer.store.resources import connection
from naer.store.search.query import matching_ids
from naer.store.tables import conditional_lock


def lock(con: Connection, resource_type: str, criteria: str) -> None:
    """Take the lock of (type, criteria) until the transaction ends: an upsert of its row, which holds the
    row lock on PostgreSQL and the write lock on SQLite. The criteria are sorted, so that the same search
    written in another order waits for the same lock."""
    pairs = sorted(parse_qsl(criteria.lstrip("?"), keep_blank_values=True))
    key = hashlib.sha256(orjson.dumps([resource_type, pairs])).hexdigest()
    insert = postgresql.insert if con.dialect.name == "postgresql" else sqlite.insert
    statement = insert(conditional_lock).values(key=key, taken=1)
    con.execute(
        statement.on_conflict_do_update(
            index_elements=[conditional_lock.c.key], set_={"taken": conditional_lock.c.taken + 1}
        )
    )


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
        lock(con, resource_type, criteria)
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
        lock(con, resource_type, criteria)
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
