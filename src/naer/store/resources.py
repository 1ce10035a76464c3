"""Create, read, update and delete FHIR resources, keeping every version.

Each write is one transaction: the current row and a history row change together or not at all. Writes
are optimistic: an update names the version it replaces, and loses (409) if another writer got there
first; ``If-Match`` turns a stale version into 412 before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, and_, func, insert, select, true
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from naer.fhir import jsontext
from naer.fhir.validate import is_resource_type, validation_errors
from naer.settings import get_settings
from naer.store import citizens, events
from naer.store.checks import DIGITS, INT32, shape
from naer.store.citizens import patients_of
from naer.store.context import RequestContext
from naer.store.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from naer.store.search import index as search_index
from naer.store.search.extract import Rows
from naer.store.tables import history, resources

ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


@dataclass(frozen=True)
class Stored:
    """One version of a resource as stored (``content`` is its JSON text; None for a deletion)."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: str | None
    method: str = "GET"
    created: bool = False

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC (microseconds kept, so history order and ``_since`` agree with meta)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _utc(moment: datetime) -> datetime:
    # SQLite returns naive datetimes, PostgreSQL ones in the session's time zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def known_type(resource_type: str) -> None:
    if not is_resource_type(resource_type):
        raise NotFound(f"unknown resource type {resource_type!r}")


def valid_id(rid: Any) -> None:
    if not isinstance(rid, str) or not 1 <= len(rid) <= 64 or not set(rid) <= ID_CHARS:
        raise Invalid(f"{rid!r} is not a FHIR id (1-64 letters, digits, '-' and '.')")


def parse_body(raw: bytes) -> Any:
    """The request body as JSON, or Invalid saying where it breaks."""
    if not raw.strip():
        raise Invalid("the request has no body; send a FHIR resource as JSON")
    try:
        body = jsontext.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Invalid(f"the body is not valid JSON: {error}") from None
    settings = get_settings()
    shape(body, settings.max_depth, settings.max_array)
    return body


def checked(body: Any, resource_type: str, rid: str | None = None) -> dict[str, Any]:
    """A resource of ``resource_type`` (with ``id`` = ``rid`` for an update), valid by the FHIR library."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object (a FHIR resource)")
    kind = body.get("resourceType")
    if kind is None:
        raise Invalid("the resource has no resourceType", where="resourceType")
    if kind != resource_type:
        raise Invalid(
            f"the body is a {kind} but the URL is for {resource_type}", where=f"{kind}.resourceType"
        )
    if "id" in body and not isinstance(body["id"], str):
        raise Invalid(f"the resource's id must be a string, not {body['id']!r}", where=f"{kind}.id")
    if not isinstance(kind, str) or not is_resource_type(kind):
        raise Invalid(f"unknown resource type {kind!r}", where="resourceType")
    if rid is not None:
        if "id" not in body:
            raise Invalid(f"an update must carry the resource's id ({rid!r})", where=f"{kind}.id")
        if body["id"] != rid:
            raise Invalid(f"the body's id {body['id']!r} is not the URL's {rid!r}", where=f"{kind}.id")
    problems = validation_errors(body)
    if problems:
        where = problems[0].split(":", 1)[0]
        raise Unprocessable(f"the {kind} is not valid FHIR R4: " + "; ".join(problems[:5]), where=where)
    return body


def stamp(body: dict[str, Any], rid: str, version: int, moment: datetime) -> str:
    """The resource as stored: its id, and meta.versionId and meta.lastUpdated set by the store."""
    body = dict(body)
    body["id"] = rid
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(moment)
    body["meta"] = meta
    return jsontext.dumps(body).decode()


@contextmanager
def connection(db: Engine | Connection, write: bool) -> Iterator[Connection]:
    """The caller's connection (inside a transaction Bundle), or one of our own: a transaction to write,
    a plain connection to read (on PostgreSQL without a transaction: see ``reader``)."""
    if isinstance(db, Connection):
        yield db
        return
    with db.begin() if write else reader(db).connect() as con:
        yield con


@lru_cache(maxsize=16)
def reader(db: Engine) -> Engine:
    """The engine to read with. On PostgreSQL its connections run each statement on its own (autocommit):
    at READ COMMITTED every statement has its own snapshot anyway, and a connection that held no
    transaction is not rolled back when it goes back to the pool, and psycopg forgets its prepared
    statements at every ROLLBACK. So the store's reads stay prepared: the access condition of a read
    took 5-10 ms to plan at every request, and 0.3-0.6 ms to run once prepared."""
    if db.dialect.name != "postgresql":
        return db
    return db.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def planned_each_time(con: Connection) -> Iterator[Connection]:
    """Statements on ``con`` planned for their values at every execution. A prepared statement is
    planned for any values after five runs on PostgreSQL; for a query whose best plan depends on how
    many rows its values pick (a department with 20,000 open requests against a GP with ten) that
    generic plan probed the index row by row: 400 ms instead of 140. The setting is the session's (reads
    run without a transaction), so it is reset before the connection goes back to the pool."""
    if con.dialect.name != "postgresql":
        yield con
        return
    con.exec_driver_sql("SET plan_cache_mode = force_custom_plan")
    try:
        yield con
    finally:
        con.exec_driver_sql("RESET plan_cache_mode")


def now() -> datetime:
    return datetime.now(UTC)


def _record(con: Connection, version: Stored) -> None:
    con.execute(
        insert(history).values(
            resource_type=version.resource_type,
            id=version.id,
            version_id=version.version_id,
            last_updated=version.last_updated,
            deleted=version.deleted,
            method=version.method,
            content=version.content,
        )
    )


def _insert_new(
    con: Connection, resource_type: str, rid: str, body: dict[str, Any], method: str, rows: Rows
) -> Stored:
    moment = now()
    made = Stored(resource_type, rid, 1, moment, False, stamp(body, rid, 1, moment), method, created=True)
    con.execute(
        insert(resources).values(
            resource_type=resource_type,
            id=rid,
            version_id=1,
            last_updated=moment,
            deleted=False,
            content=made.content,
        )
    )
    _record(con, made)
    search_index.write(con, resource_type, rid, rows, fresh=True)
    events.written(con, made)
    return made


def create(
    db: Engine | Connection, context: RequestContext, resource_type: str, body: Any, rid: str | None = None
) -> Stored:
    """Store a new resource under a server-assigned id (or ``rid``, for bulk load of known ids)."""
    known_type(resource_type)
    context.permit("create", resource_type)
    resource = checked(body, resource_type)
    rid = rid or str(uuid.uuid4())
    valid_id(rid)
    rows = search_index.rows_of(resource_type, rid, resource)
    patients = patients_of(resource_type, rid, rows)
    try:
        with connection(db, write=True) as con:
            context.writable(con, "create", resource_type, patients)
            made = _insert_new(con, resource_type, rid, resource, "POST", rows)
            context.written(con, "create", resource_type, rid, 1, patients)
            return made
    except IntegrityError:
        raise Conflict(f"{resource_type}/{rid} already exists") from None


def _replace_current(con: Connection, version: Stored, rows: Rows | None) -> None:
    """Make ``version`` (of ``resource``; None for a deletion) the current one if the stored one is
    still the version before it (optimistic locking: a writer that lost the race gets 409), add it to
    the history and re-index it."""
    changed = con.execute(
        sql_update(resources)
        .where(
            and_(
                resources.c.resource_type == version.resource_type,
                resources.c.id == version.id,
                resources.c.version_id == version.version_id - 1,
            )
        )
        .values(
            version_id=version.version_id,
            last_updated=version.last_updated,
            deleted=version.deleted,
            content=version.content,
        )
    )
    if changed.rowcount != 1:
        raise Conflict(f"{version.reference} was changed by another request; read it and retry")
    _record(con, version)
    search_index.write(con, version.resource_type, version.id, rows, fresh=False)
    events.written(con, version)


def _current(con: Connection, context: RequestContext, resource_type: str, rid: str) -> Any:
    """The stored version of a resource and whether the asker may know of it (``seen``)."""
    condition = context.visible(resources.c.resource_type, resources.c.id)
    seen = true() if condition is None else condition
    return con.execute(
        select(resources.c.version_id, resources.c.deleted, seen.label("seen")).where(
            and_(resources.c.resource_type == resource_type, resources.c.id == rid)
        )
    ).first()


def _not_yours(resource_type: str, rid: str) -> Forbidden:
    return Forbidden(f"you may not write {resource_type}/{rid}")


def update(
    db: Engine | Connection,
    context: RequestContext,
    resource_type: str,
    rid: str,
    body: Any,
    if_match: int | None = None,
) -> Stored:
    """Replace a resource with a new version, or create it with this id if it does not exist."""
    known_type(resource_type)
    valid_id(rid)
    context.permit("update", resource_type)
    resource = checked(body, resource_type, rid)
    rows = search_index.rows_of(resource_type, rid, resource)
    patients = patients_of(resource_type, rid, rows)
    try:
        with connection(db, write=True) as con:
            row = _current(con, context, resource_type, rid)
            if row is not None and not row.seen:
                raise _not_yours(resource_type, rid)  # the same answer as for a record one may not write
            context.writable(con, "update", resource_type, patients)
            if row is None:
                if if_match is not None:
                    raise PreconditionFailed(f"{resource_type}/{rid} does not exist (If-Match {if_match})")
                made = _insert_new(con, resource_type, rid, resource, "PUT", rows)
                context.written(con, "create", resource_type, rid, 1, patients)
                return made
            old = int(row.version_id)
            if if_match is not None and if_match != old:
                raise PreconditionFailed(
                    f"{resource_type}/{rid} is at version {old}, not {if_match} (If-Match)"
                )
            moment = now()
            version = Stored(
                resource_type, rid, old + 1, moment, False, stamp(resource, rid, old + 1, moment), "PUT"
            )
            _replace_current(con, version, rows)
            context.written(con, "update", resource_type, rid, old + 1, patients)
            return replace(version, created=bool(row.deleted))
    except IntegrityError:
        raise Conflict(f"{resource_type}/{rid} was created by another request; read it and retry") from None


def delete(db: Engine | Connection, context: RequestContext, resource_type: str, rid: str) -> Stored | None:
    """Delete a resource, keeping its history; None if there was nothing to delete (already deleted or
    never there: FHIR deletes are idempotent; one the asker may not know of is never there)."""
    known_type(resource_type)
    context.permit("delete", resource_type)
    with connection(db, write=True) as con:
        row = _current(con, context, resource_type, rid)
        if row is None or row.deleted or not row.seen:
            return None
        patients = citizens.of(con, [(resource_type, rid)]).get((resource_type, rid), set())
        context.writable(con, "delete", resource_type, patients)
        old = int(row.version_id)
        moment = now()
        version = Stored(resource_type, rid, old + 1, moment, True, None, "DELETE")
        _replace_current(con, version, None)
        context.written(con, "delete", resource_type, rid, old + 1, patients)
        return version


def current_of(row: Any) -> Stored:
    """A row of the current-version table as a Stored."""
    return Stored(row.resource_type, row.id, row.version_id, _utc(row.last_updated), row.deleted, row.content)


def by_type(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(type, id) pairs grouped as ids per type: one query per type instead of one per resource."""
    grouped: dict[str, list[str]] = {}
    for kind, rid in keys:
        grouped.setdefault(kind, []).append(rid)
    return grouped


def current_versions(
    con: Connection, keys: Iterable[tuple[str, str]], context: RequestContext | None = None
) -> list[Stored]:
    """The current versions of these resources (deleted ones, and those ``context`` may not know of, left
    out), by type and id."""
    found: list[Stored] = []
    condition = context.visible(resources.c.resource_type, resources.c.id) if context else None
    for kind, ids in by_type(keys).items():
        rows = con.execute(
            select(resources).where(
                resources.c.resource_type == kind,
                resources.c.id.in_(ids),
                resources.c.deleted.is_(False),
                *_kept(condition),
            )
        )
        found.extend(current_of(row) for row in rows)
    return sorted(found, key=lambda s: (s.resource_type, s.id))


def _kept(condition: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [] if condition is None else [condition]


def read(
    db: Engine | Connection, context: RequestContext, resource_type: str, rid: str, audit: bool = True
) -> Stored:
    """The current version (404 for one unknown or that the asker may not know of, 410 if deleted)."""
    known_type(resource_type)
    context.permit("read", resource_type)
    condition = context.visible(resources.c.resource_type, resources.c.id)
    with connection(db, write=False) as con:
        row = con.execute(
            select(resources).where(
                resources.c.resource_type == resource_type, resources.c.id == rid, *_kept(condition)
            )
        ).first()
    if row is None:
        raise NotFound(f"{resource_type}/{rid} is not known")
    found = current_of(row)
    if found.deleted:
        raise Gone(f"{resource_type}/{rid} was deleted (version {found.version_id})")
    if audit:
        context.accessed("read", [(resource_type, rid)])
    return found


def vread(
    db: Engine | Connection, context: RequestContext, resource_type: str, rid: str, version_id: str
) -> Stored:
    known_type(resource_type)
    context.permit("vread", resource_type)
    if not DIGITS.fullmatch(version_id) or int(version_id) > INT32:
        raise NotFound(f"{resource_type}/{rid} has no version {version_id!r}")
    condition = context.visible(history.c.resource_type, history.c.id)
    with connection(db, write=False) as con:
        row = con.execute(
            select(history).where(
                history.c.resource_type == resource_type,
                history.c.id == rid,
                history.c.version_id == int(version_id),
                *_kept(condition),
            )
        ).first()
    if row is None:
        raise NotFound(f"{resource_type}/{rid} has no version {version_id}")
    found = _version(row)
    if found.deleted:
        raise Gone(f"version {version_id} of {resource_type}/{rid} is its deletion")
    context.accessed("vread", [(resource_type, rid)])
    return found


def _version(row: Any) -> Stored:
    return Stored(
        row.resource_type,
        row.id,
        row.version_id,
        _utc(row.last_updated),
        row.deleted,
        row.content,
        row.method,
    )


def history_of(
    db: Engine,
    context: RequestContext,
    resource_type: str | None = None,
    rid: str | None = None,
    since: datetime | None = None,
    till: datetime | None = None,
    count: int = 50,
    offset: int = 0,
) -> tuple[list[Stored], int]:
    """Versions newest first (of one resource, one type, or everything), and how many there are in all.
    ``till`` pins the newest version a page may show, so later writes do not shift the pages."""
    if resource_type is not None:
        known_type(resource_type)
    context.permit("history", resource_type)
    conditions = _kept(context.visible(history.c.resource_type, history.c.id))
    if resource_type is not None:
        conditions.append(history.c.resource_type == resource_type)
    if rid is not None:
        conditions.append(history.c.id == rid)
    if since is not None:
        conditions.append(history.c.last_updated >= since)
    if till is not None:
        conditions.append(history.c.last_updated <= till)
    where = and_(True, *conditions)
    with db.connect() as con:
        total = con.execute(select(func.count()).select_from(history).where(where)).scalar()
        rows = con.execute(
            select(history)
            .where(where)
            .order_by(history.c.last_updated.desc(), history.c.resource_type, history.c.id)
            .order_by(history.c.version_id.desc())
            .limit(count)
            .offset(offset)
        ).all()
    if rid is not None and not rows and offset == 0 and since is None:
        raise NotFound(f"{resource_type}/{rid} is not known")
    versions = [_version(r) for r in rows]
    context.accessed("history", [(v.resource_type, v.id) for v in versions])
    return versions, int(total or 0)
