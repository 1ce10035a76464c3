"""Keep the search index tables in step with the current versions of resources.

Every write replaces a resource's index rows in the same transaction as the resource itself. When the
search definitions change (or the index is new), ``rebuild`` derives every row again from the stored
resources; ``stale`` says whether that is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import Engine, and_, bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection

from naer.settings import get_settings
from naer.store import citizens, relations
from naer.store.errors import TooLarge
from naer.store.search.definitions import DEFINITIONS
from naer.store.search.extract import Rows, index_rows
from naer.store.tables import INDEX_TABLES, history, resources, search_index_state

# Bump when extract.py changes how values are turned into rows: the index is then rebuilt on upgrade.
INDEX_FORMAT = "3"  # 3: resource_patient kept beside the index
COLUMNS = {
    "token": ("system", "code"),
    "string": ("value", "exact"),
    "reference": ("target_type", "target_id"),
    "date": ("low", "high"),
    "number": ("low", "high"),
    "quantity": ("system", "code", "low", "high", "canonical", "canonical_low", "canonical_high"),
}


def digest() -> str:
    return hashlib.sha256(INDEX_FORMAT.encode() + DEFINITIONS.read_bytes()).hexdigest()


def drop(con: Connection, resource_type: str, ids: list[str]) -> None:
    """Remove the index rows of these resources of one type."""
    for table in INDEX_TABLES.values():
        con.execute(
            delete(table).where(
                and_(table.c.resource_type == resource_type, table.c.id.in_(bindparam("ids", expanding=True)))
            ),
            {"ids": ids},
        )


def add(con: Connection, items: Iterable[tuple[str, str, Rows]]) -> None:
    """Insert the index rows of (type, id, rows) items (one multi-row INSERT per table)."""
    for kind, table in INDEX_TABLES.items():
        names = ("resource_type", "id", "param", *COLUMNS[kind])
        values = [
            dict(zip(names, (rt, rid, *row), strict=True)) for rt, rid, rows in items for row in rows[kind]
        ]
        if values:
            con.execute(insert(table), values)


def rows_of(resource_type: str, rid: str, resource: dict[str, Any]) -> Rows:
    """The index rows of one resource, refused when there are more than a resource may make."""
    rows = index_rows(resource)
    made, limit = sum(len(r) for r in rows.values()), get_settings().max_index_rows
    if made > limit:
        raise TooLarge(
            f"{resource_type}/{rid} would make {made:,} search index rows; the limit is {limit:,} "
            "(NAER_MAX_INDEX_ROWS)"
        )
    return rows


def write(con: Connection, resource_type: str, rid: str, rows: Rows | None, fresh: bool) -> None:
    """Replace the index rows of one resource (``None``: deleted, no rows); ``fresh``: it had none. The
    citizens the rows name are remembered (citizens.py), and the care relations it makes (relations.py)."""
    if not fresh:
        drop(con, resource_type, [rid])
    if rows is not None:
        add(con, [(resource_type, rid, rows)])
        citizens.remember(con, [(resource_type, rid, citizens.patients_of(resource_type, rid, rows))])
    relations.written(con, resource_type, rid, rows)  # the care relations it makes, from the rows in hand


def stale(con: Connection) -> bool:
    row = con.execute(select(search_index_state.c.definitions)).first()
    return row is None or row.definitions != digest()


def rebuild(db: Engine, on_batch: Callable[[int], None] | None = None, batch: int = 2000) -> int:
    """Derive every index row again from the current resources, in one transaction, and the citizens of
    every version ever stored; return how many resources were indexed."""
    done = 0
    with db.begin() as con:
        for table in INDEX_TABLES.values():
            con.execute(delete(table))
        query = select(resources.c.resource_type, resources.c.id, resources.c.content).where(
            resources.c.deleted.is_(False)
        )
        with db.connect() as reader:
            rows = reader.execution_options(stream_results=True, yield_per=batch).execute(query)
            for chunk in rows.partitions(batch):
                items = [(kind, rid, index_rows(orjson.loads(content))) for kind, rid, content in chunk]
                add(con, items)
                citizens.remember(con, [(k, i, citizens.patients_of(k, i, r)) for k, i, r in items])
                done += len(chunk)
                if on_batch:
                    on_batch(len(chunk))
            old = select(history.c.resource_type, history.c.id, history.c.content).where(
                history.c.content.is_not(None), history.c.version_id > 1
            )
            versions = reader.execution_options(stream_results=True, yield_per=batch).execute(old)
            for chunk in versions.partitions(batch):
                citizens.remember(
                    con,
                    [
                        (kind, rid, citizens.patients_of(kind, rid, index_rows(orjson.loads(content))))
                        for kind, rid, content in chunk
                    ],
                )
        relations.rebuild(con)
        con.execute(delete(search_index_state))
        con.execute(insert(search_index_state).values(definitions=digest()))
    return done


def resource_count(db: Engine) -> int:
    with db.connect() as con:
        return int(con.execute(select(func.count()).select_from(resources)).scalar() or 0)
