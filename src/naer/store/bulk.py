"""Bulk load of FHIR NDJSON into the store, and bulk export of the store as NDJSON.

Load: every line is parsed, validated with the FHIR library and turned into search index rows in worker
processes (validation is most of the cost), then written in one transaction — with PostgreSQL's COPY
into the history and index tables and a staging table that is merged into the current one — so a bad
line anywhere leaves the store as it was. A resource keeps its id; one that is already stored gets a
new version, as an update would.
"""

from __future__ import annotations

import ctypes
import gzip
import io
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, Index, and_, bindparam, false, or_, select, text
from sqlalchemy.engine import Connection

from naer.errors import UserError
from naer.fhir import jsontext
from naer.fhir.ndjson import json_object, open_ndjson
from naer.fhir.validate import is_resource_type, validation_errors
from naer.settings import get_settings
from naer.store import citizens, relations
from naer.store.checks import shape
from naer.store.citizens import patients_of
from naer.store.compartment import compartment_types, in_compartment
from naer.store.context import RequestContext
from naer.store.db import is_postgres
from naer.store.errors import Invalid, TooLarge
from naer.store.resources import ID_CHARS, by_type, now, stamp
from naer.store.search import index as search_index
from naer.store.search.extract import Rows, index_rows
from naer.store.search.index import COLUMNS
from naer.store.tables import INDEX_TABLES, history, resources

BATCH = 2000
# Loads at least this large refresh the planner's statistics; a small $import into a large store should
# not pay for sampling every table (PostgreSQL's autovacuum catches up with small changes by itself).
ANALYSE_AFTER = 10_000
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")


class LoadError(UserError):
    """A line of the input that is not a valid FHIR resource: nothing was loaded."""


@dataclass
class LoadResult:
    counts: dict[str, int] = field(default_factory=dict)
    files: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def ndjson_files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise UserError(f"no such folder or file {folder}")
    if folder.is_file():
        return [folder]
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    if not found:
        raise UserError(f"{folder} holds no NDJSON files (*.ndjson, *.ndjson.gz)")
    return found


def files_of(sources: Path | Sequence[Path]) -> list[Path]:
    """The NDJSON files of one or several sources (folders or files), each once, in the order given."""
    found: dict[Path, None] = {}
    for source in [sources] if isinstance(sources, Path) else sources:
        found.update(dict.fromkeys(ndjson_files(source)))
    return list(found)


def _batches(files: list[Path]) -> Iterator[tuple[str, list[int], list[bytes]]]:
    """(file, line numbers, lines) in batches, blank lines skipped but counted."""
    for path in files:
        try:
            with open_ndjson(path) as handle:
                numbered = ((n, line) for n, line in enumerate(handle, 1) if line.strip())
                while True:
                    chunk = list(itertools.islice(numbered, BATCH))
                    if not chunk:
                        break
                    yield str(path), [n for n, _ in chunk], [line for _, line in chunk]
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            # EOFError would otherwise reach the command line as click's bare "Aborted."
            raise LoadError(
                f"{path}: the gzip file is cut short or damaged ({error}); nothing was loaded"
            ) from None
        except OSError as error:
            raise LoadError(
                f"{path}: cannot be read ({error.strerror or error}); nothing was loaded"
            ) from None


@dataclass
class Prepared:
    """A validated batch: each resource's (type, id) and JSON stamped as version 1 at ``moment``, and the
    search index rows of the batch — as COPY text per table for PostgreSQL, as tuples for SQLite (made in
    the worker, so the loading process only streams them)."""

    keys: list[tuple[str, str]]
    contents: list[str]
    moment: datetime
    index: list[tuple[str, str, Rows]]
    index_copy: dict[str, bytes]
    citizens: list[tuple[str, str, set[str]]]  # the Patients each resource belongs to (citizens.py)
    relations: list[tuple[object, ...]]  # the care relations the resources make (relations.py)


def _text(value: str | None) -> str:
    """A text field in COPY's text format: backslash, tab, newline and carriage return escaped, NULL as
    \\N. Most values need no escape, and ``isprintable`` finds the control characters in one pass."""
    if value is None:
        return "\\N"
    if "\\" in value or not value.isprintable():
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_text(index: list[tuple[str, str, Rows]]) -> dict[str, bytes]:
    """COPY text of the index rows per table. Types, ids and parameter names are FHIR ids and names (no
    character to escape) and dates are integers; only the values are escaped."""
    token: list[str] = []
    string: list[str] = []
    reference: list[str] = []
    date: list[str] = []
    number: list[str] = []
    quantity: list[str] = []
    for rt, rid, rows in index:
        key = f"{rt}\t{rid}\t"
        token.extend(f"{key}{p}\t{_text(system)}\t{_text(code)}\n" for p, system, code in rows["token"])
        string.extend(f"{key}{p}\t{_text(value)}\t{_text(exact)}\n" for p, value, exact in rows["string"])
        reference.extend(
            f"{key}{p}\t{_text(kind)}\t{_text(target)}\n" for p, kind, target in rows["reference"]
        )
        date.extend(f"{key}{p}\t{low}\t{high}\n" for p, low, high in rows["date"])
        number.extend(f"{key}{p}\t{low!r}\t{high!r}\n" for p, low, high in rows["number"])
        quantity.extend(
            f"{key}{p}\t{_text(system)}\t{_text(code)}\t{low!r}\t{high!r}\t{_text(unit)}\t{_float(clow)}"
            f"\t{_float(chigh)}\n"
            for p, system, code, low, high, unit, clow, chigh in rows["quantity"]
        )
    return {
        "token": "".join(token).encode(),
        "string": "".join(string).encode(),
        "reference": "".join(reference).encode(),
        "date": "".join(date).encode(),
        "number": "".join(number).encode(),
        "quantity": "".join(quantity).encode(),
    }


def _float(value: float | None) -> str:
    return "\\N" if value is None else repr(value)


def prepare(where: str, numbers: list[int], lines: list[bytes], copy: bool = False) -> Prepared | str:
    """Parse, validate, stamp and index a batch, or give the message for its first bad line. ``copy``:
    index rows as PostgreSQL COPY text."""
    keys: list[tuple[str, str]] = []
    contents: list[str] = []
    index: dict[tuple[str, str], Rows] = {}  # a resource twice in a batch: its last version's rows
    moment = now()
    settings = get_settings()
    for number, line in zip(numbers, lines, strict=True):
        resource = json_object(line)
        if isinstance(resource, str):
            return f"{where}, line {number}: {resource}"
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not is_resource_type(kind):
            return f"{where}, line {number}: unknown resourceType {kind!r}"
        try:  # the same limits as the API: NUL, nesting, list length
            shape(resource, settings.max_depth, settings.max_array)
        except (Invalid, TooLarge) as error:
            return f"{where}, line {number}: {error}"
        rid = resource.get("id")
        if not isinstance(rid, str) or not rid:
            return f"{where}, line {number}: the resource has no id (bulk data keeps its ids)"
        if len(rid) > 64 or not set(rid) <= ID_CHARS:
            shown = f"{rid[:40]!r}... ({len(rid)} characters)" if len(rid) > 64 else repr(rid)
            return f"{where}, line {number}: {shown} is not a FHIR id (1-64 letters, digits, '-' and '.')"
        problems = validation_errors(resource)
        if problems:
            return f"{where}, line {number}: not valid FHIR R4: {'; '.join(problems[:3])}"
        keys.append((kind, rid))
        contents.append(stamp(resource, rid, 1, moment))
        indexed = index_rows(resource)
        made = sum(len(r) for r in indexed.values())
        if made > settings.max_index_rows:
            return (
                f"{where}, line {number}: {kind}/{rid} would make {made:,} search index rows; the limit is "
                f"{settings.max_index_rows:,} (NAER_MAX_INDEX_ROWS)"
            )
        index[(kind, rid)] = indexed
    rows = [(kind, rid, found) for (kind, rid), found in index.items()]
    belongs = [(kind, rid, patients_of(kind, rid, found)) for kind, rid, found in rows]
    kept = [row for kind, rid, found in rows for row in relations.made(kind, rid, found)]
    if copy:
        return Prepared(keys, contents, moment, [], _copy_text(rows), belongs, kept)
    return Prepared(keys, contents, moment, rows, {}, belongs, kept)


def _prepared(files: list[Path], workers: int, copy: bool) -> Iterator[Prepared]:
    batches = _batches(files)
    if workers <= 1:
        for where, numbers, lines in batches:
            yield _ok(prepare(where, numbers, lines, copy))
        return
    # Spawned, not forked: a forked worker would inherit the open database connection's socket.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, spawn, initializer=_end_with, initargs=(os.getpid(),)) as pool:
        # A bounded window of batches in flight: memory stays flat however large the input is.
        window: list[Any] = []
        for where, numbers, lines in batches:
            window.append(pool.submit(prepare, where, numbers, lines, copy))
            if len(window) >= workers * 2:
                yield _ok(window.pop(0).result())
        for future in window:
            yield _ok(future.result())


def _end_with(parent: int) -> None:
    """Run in each worker: end when the loading process ends, however it ends (kill -9 included), instead
    of waiting on its pipe for ever. Linux tells the worker (PR_SET_PDEATHSIG); elsewhere it looks."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)
    if not sys.platform.startswith("linux"):

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


def _ok(result: Prepared | str) -> Prepared:
    if isinstance(result, str):
        raise LoadError(f"{result}; nothing was loaded")
    return result


def _existing(
    con: Connection, keys: list[tuple[str, str]], stored_types: dict[str, bool]
) -> dict[tuple[str, str], int]:
    """Stored versions of a batch's resources. A type the store held none of when the load reached it
    needs no lookup (ids repeated within the load are counted by the caller): a first load is linear."""
    found: dict[tuple[str, str], int] = {}
    for kind, ids in by_type(keys).items():
        if kind not in stored_types:
            any_row = select(resources.c.id).where(resources.c.resource_type == kind).limit(1)
            stored_types[kind] = con.execute(any_row).first() is not None
        if not stored_types[kind]:
            continue
        query = select(resources.c.id, resources.c.version_id).where(
            and_(resources.c.resource_type == kind, resources.c.id.in_(bindparam("ids", expanding=True)))
        )
        for row in con.execute(query, {"ids": ids}):
            found[(kind, row.id)] = int(row.version_id)
    return found


Row = tuple[str, str, int, datetime, bool, str, str]


@dataclass
class Written:
    """What a batch writes: history rows, and the resources stored before (whose old index rows go)."""

    rows: list[Row]
    batch: Prepared
    replaced: list[tuple[str, str]]


def _restamp(content: str, rid: str, version: int, moment: datetime) -> str:
    return stamp(jsontext.loads(content), rid, version, moment)


def _rows(
    con: Connection, batch: Prepared, seen: dict[tuple[str, str], int], stored_types: dict[str, bool]
) -> Written:
    """History rows of a batch: version 1, or one more than stored (or than loaded earlier this run)."""
    stored = _existing(con, [k for k in batch.keys if k not in seen], stored_types)
    rows: list[Row] = []
    replaced: set[tuple[str, str]] = set()
    fresh: set[tuple[str, str]] = set()
    for (kind, rid), content in zip(batch.keys, batch.contents, strict=True):
        key = (kind, rid)
        version = seen.get(key, stored.get(key, 0)) + 1
        if version > 1:
            if key not in fresh:  # stored before this batch: its index rows go
                replaced.add(key)
            content = _restamp(content, rid, version, batch.moment)
        fresh.add(key)
        seen[key] = version
        method = "POST" if version == 1 else "PUT"
        rows.append((kind, rid, version, batch.moment, False, method, content))
    return Written(rows, batch, sorted(replaced))


def _drop_index(con: Connection, replaced: list[tuple[str, str]]) -> None:
    for kind, ids in by_type(replaced).items():
        search_index.drop(con, kind, ids)


def _latest(rows: list[Row]) -> list[Row]:
    latest: dict[tuple[str, str], Row] = {}
    for row in rows:
        latest[(row[0], row[1])] = row
    return list(latest.values())


def _write_postgres(con: Connection, written: Written) -> None:
    rows = written.rows
    raw = con.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        for kind, columns in COLUMNS.items():
            names = ", ".join(("resource_type", "id", "param", *columns))
            with cur.copy(f"COPY search_{kind} ({names}) FROM STDIN") as copy:
                copy.write(written.batch.index_copy[kind])
        with cur.copy(
            "COPY resource_history (resource_type, id, version_id, last_updated, deleted, method, content) "
            "FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        with cur.copy(
            "COPY load_current (resource_type, id, version_id, last_updated, deleted, content) FROM STDIN"
        ) as copy:
            for kind, rid, version, moment, deleted, _, content in _latest(rows):
                copy.write_row((kind, rid, version, moment, deleted, content))
        cur.execute(
            "INSERT INTO resources SELECT * FROM load_current ON CONFLICT (resource_type, id) DO UPDATE SET "
            "version_id = excluded.version_id, last_updated = excluded.last_updated, deleted = FALSE, "
            "content = excluded.content"
        )
        cur.execute("TRUNCATE load_current")


def _write_sqlite(con: Connection, written: Written) -> None:
    rows = written.rows
    search_index.add(con, written.batch.index)
    con.execute(
        history.insert(),
        [
            dict(resource_type=k, id=i, version_id=v, last_updated=m, deleted=d, method=method, content=c)
            for k, i, v, m, d, method, c in rows
        ],
    )
    con.execute(
        text(
            "INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content) "
            "VALUES (:k, :i, :v, :m, 0, :c) ON CONFLICT (resource_type, id) DO UPDATE SET "
            "version_id = excluded.version_id, last_updated = excluded.last_updated, deleted = 0, "
            "content = excluded.content"
        ),
        [{"k": k, "i": i, "v": v, "m": m, "c": c} for k, i, v, m, _, _, c in _latest(rows)],
    )


def _defer_indexes(con: Connection) -> list[Index]:
    """On a first load (empty search index), drop the index tables' B-trees and build them once at the
    end: far cheaper than keeping them up to date row by row. DDL is transactional in PostgreSQL, so a
    failed load gets them back; searches wait for the load meanwhile (the tables are locked). Not on
    SQLite: its driver runs a DROP INDEX outside the transaction, so a failed load would lose them."""
    if any(con.execute(select(table.c.id).limit(1)).first() for table in INDEX_TABLES.values()):
        return []
    dropped = [index for table in INDEX_TABLES.values() for index in table.indexes]
    for index in dropped:
        index.drop(con)
    return dropped


def load(
    db: Engine,
    context: RequestContext,
    source: Path | Sequence[Path],
    workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> LoadResult:
    """Load every NDJSON file of ``source`` (folders or files) in one transaction."""
    context.permit("import", None)
    files = files_of(source)
    result = LoadResult(files=len(files))
    seen: dict[tuple[str, str], int] = {}
    stored_types: dict[str, bool] = {}
    postgres = is_postgres(db)
    deferred: list[Index] = []
    with db.begin() as con:
        if postgres:
            con.exec_driver_sql(
                "CREATE TEMP TABLE IF NOT EXISTS load_current (LIKE resources INCLUDING DEFAULTS) "
                "ON COMMIT DROP"
            )
            # The table grows inside this transaction, unseen by the statistics, and psycopg prepares a
            # statement it runs often: a generic plan made while the table was small scans every row of
            # the type for each batch's lookup of stored versions (quadratic time). Plan each one anew.
            con.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            con.exec_driver_sql("SET LOCAL enable_seqscan = off")
            deferred = _defer_indexes(con)  # (not on SQLite: pysqlite runs DDL outside the transaction)
        for batch in _prepared(files, workers or get_settings().workers, copy=postgres):
            written = _rows(con, batch, seen, stored_types)
            if written.replaced:
                _drop_index(con, written.replaced)
                relations.drop(con, written.replaced)
            (_write_postgres if postgres else _write_sqlite)(con, written)
            citizens.remember(con, batch.citizens)
            relations.add(con, batch.relations)
            for kind, _ in batch.keys:
                result.counts[kind] = result.counts.get(kind, 0) + 1
            if on_batch:
                on_batch(len(batch.keys))
        if deferred:
            con.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            for index in deferred:
                index.create(con)
    if result.total >= ANALYSE_AFTER:
        analyse(db)
    return result


def analyse(db: Engine) -> None:
    """Refresh the planner's statistics after a bulk change: without them a query planner (SQLite's
    above all) does not know which index narrows a search most."""
    with db.begin() as con:
        for table in (
            "resources",
            "resource_history",
            "resource_patient",
            "care_relation",
            *(f"search_{kind}" for kind in COLUMNS),
        ):
            con.exec_driver_sql(f"ANALYZE {table}")


def export(
    db: Engine,
    context: RequestContext,
    out: Path,
    types: list[str] | None = None,
    since: datetime | None = None,
    on_type: Callable[[str, int], None] | None = None,
    patients: Sequence[str] | Literal["all"] | None = None,
) -> dict[str, int]:
    """Write the current version of every resource (of ``types``, changed since ``since``) to
    ``out/{type}.ndjson``, streaming from the database; return the count per type. ``patients``: only
    the compartments of these patients ("all": of every patient) — Patient- and Group-level export."""
    context.permit("export", None)
    out.mkdir(parents=True, exist_ok=True)
    conditions: list[ColumnElement[bool]] = [resources.c.deleted.is_(False)]
    visible = context.visible(resources.c.resource_type, resources.c.id, many=True)
    if visible is not None:
        conditions.append(visible)
    if patients is not None:
        chosen = None if patients == "all" else patients
        kinds = [t for t in compartment_types() if not types or t in types]
        conditions.append(
            or_(false(), *(and_(resources.c.resource_type == t, in_compartment(t, chosen)) for t in kinds))
        )
    elif types:
        conditions.append(resources.c.resource_type.in_(types))
    if since is not None:
        conditions.append(resources.c.last_updated >= since)
    query = (
        select(resources.c.resource_type, resources.c.id, resources.c.content)
        .where(and_(*conditions))
        .order_by(resources.c.resource_type, resources.c.id)
    )
    counts: dict[str, int] = {}
    exported: list[tuple[str, str]] = []
    handle: io.BufferedWriter | None = None
    current = None
    try:
        with db.connect() as con:
            rows = con.execution_options(stream_results=True, yield_per=5000).execute(query)
            for kind, rid, content in rows:
                exported.append((kind, rid))
                if kind != current:
                    if handle is not None:
                        handle.close()
                        if on_type and current:
                            on_type(current, counts[current])
                    current = kind
                    handle = (out / f"{kind}.ndjson").open("wb")
                    counts[kind] = 0
                assert handle is not None
                handle.write(content.encode())
                handle.write(b"\n")
                counts[kind] += 1
    finally:
        if handle is not None:
            handle.close()
    if on_type and current:
        on_type(current, counts[current])
    context.accessed("export", exported, "$export")
    return counts
