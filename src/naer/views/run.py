"""Run compiled views with DuckDB: one view to a file, or a folder of views into a DuckDB warehouse.

Output is all-or-nothing: a file is written under a temporary name and renamed when complete; a warehouse is
filled in one transaction, so a view that fails leaves the tables as they were.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson

from naer.errors import UserError
from naer.fhir.ndjson import json_object, open_ndjson
from naer.settings import get_settings
from naer.views.compile import Compiled, compile_view, is_sql_name, quote
from naer.views.definition import View, load_view
from naer.views.expressions import sql_string
from naer.views.source import files_for, source_sql

FORMATS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv", ".parquet": "parquet"}


class ViewRunError(UserError):
    """A view that failed while running (bad input data, a value that breaks a rule of the view)."""


@dataclass(frozen=True)
class RunResult:
    view: str
    rows: int
    files: int


def compiled_query(view: View, input_path: Path) -> tuple[Compiled, str, list[Path]]:
    """The view compiled for the files that hold its resource type: typed STRUCT reads for NDJSON files of
    that one type, JSON for a mixed file or Parquet."""
    files, kind = files_for(input_path, view.resource)
    compiled = compile_view(view, structs=kind == "ndjson")
    return compiled, compiled.sql(source_sql(files, kind, compiled.fields)), files


def _first_bad_line(path: Path) -> str | None:
    """Find the first line of an NDJSON file that is not a JSON object (DuckDB reports only a byte offset)."""
    with open_ndjson(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            value = json_object(line)
            if isinstance(value, str):
                return f"line {number} is {value}"
    return None


def explain(error: duckdb.Error, view: View, files: list[Path]) -> ViewRunError:
    """Turn a DuckDB error into a message that names the view and, for bad data, the file and line."""
    text = str(error)
    text = re.sub(r"^[A-Za-z ]*Error: ", "", text)
    m = re.search(r'file "([^"]+)"', text)
    if "Malformed JSON" in text or ("JSON" in text and m):
        candidates = [Path(m.group(1))] if m else files
        for path in candidates:
            where = _first_bad_line(path)
            if where:
                return ViewRunError(f"view {view.label}: {path}, {where}")
    if text.startswith(f"view {view.label}"):
        return ViewRunError(text.splitlines()[0])
    return ViewRunError(f"view {view.label}: {text.splitlines()[0]}")


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(database)
    con.execute(f"SET threads = {get_settings().workers}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _copy_options(fmt: str) -> str:
    return {
        "ndjson": "FORMAT JSON",
        "csv": "FORMAT CSV, HEADER",
        "parquet": "FORMAT PARQUET, COMPRESSION ZSTD",
    }[fmt]


def _csv_safe(compiled: Compiled, query: str) -> str:
    """CSV has no lists or objects: write those columns as JSON text."""
    cols = []
    for c in compiled.columns:
        name = quote(c.name)
        cols.append(
            f"CAST(to_json({name}) AS VARCHAR) AS {name}" if c.collection or c.type == "JSON" else name
        )
    return f"SELECT {', '.join(cols)} FROM ({query})"


@contextmanager
def _replacing(out: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; move it over ``out`` only if the block succeeds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def run_to_file(view: View, input_path: Path, out: Path) -> RunResult:
    """Run one view and write its rows to ``out`` (.ndjson, .csv or .parquet, by suffix)."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UserError(f"{out}: the output must end in .ndjson, .csv or .parquet")
    compiled, query, files = compiled_query(view, input_path)
    if fmt == "csv":
        query = _csv_safe(compiled, query)
    con = connect()
    try:
        with _replacing(out) as tmp:
            rows = con.execute(f"COPY ({query}) TO '{tmp}' ({_copy_options(fmt)})").fetchone()
    except duckdb.Error as error:
        raise explain(error, view, files) from None
    finally:
        con.close()
    return RunResult(view.label, int(rows[0]) if rows else 0, len(files))


def query_rows(view: View, input_path: Path) -> tuple[list[str], list[dict[str, object]]]:
    """Run a view and return its column names and rows (JSON columns parsed), for tests and small results."""
    compiled, query, files = compiled_query(view, input_path)
    con = connect()
    try:
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description or []]
        raw = cursor.fetchall()
    except duckdb.Error as error:
        raise explain(error, view, files) from None
    finally:
        con.close()
    json_columns = {c.name for c in compiled.columns if c.type == "JSON"}
    rows = []
    for values in raw:
        row = dict(zip(names, values, strict=True))
        for name in json_columns:
            if isinstance(row[name], str):
                row[name] = orjson.loads(row[name])
        rows.append(row)
    return names, rows


def table_name(view: View, path: Path) -> str:
    name = view.name or path.stem
    if not is_sql_name(name):
        raise UserError(f"view {view.label}: its name {name!r} cannot be a table name (letters, digits, _)")
    return name


def load_folder(folder: Path) -> list[tuple[Path, View]]:
    if not folder.is_dir():
        raise UserError(f"no folder of views {folder}")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise UserError(f"no ViewDefinition (*.json) in {folder}")
    return [(p, load_view(p)) for p in paths]


def derived_queries(folder: Path) -> list[tuple[str, str]]:
    """The folder's ``*.sql`` files: each one SELECT over the view tables, made a SQL view named after it.

    They hold what a ViewDefinition cannot (a view reads one resource type, so joins such as a contact with
    the sector of its provider live here), kept as reviewable files beside the views they join.
    """
    out = []
    for path in sorted(folder.glob("*.sql")):
        if not is_sql_name(path.stem):
            raise UserError(f"{path}: the file name must be a table name (letters, digits, _)")
        text = path.read_text(encoding="utf-8").strip().rstrip(";")
        if not text:
            raise UserError(f"{path} is empty")
        out.append((path.stem, text))
    return out


# Version of what a warehouse holds, written into its table naer_warehouse; readers (the indicators) refuse
# an older one. 2: the residence view (home addresses with their periods) was added.
WAREHOUSE_FORMAT = 2


def run_to_warehouse(
    views: list[tuple[Path, View]],
    input_path: Path,
    warehouse: Path,
    on_view: Callable[[str], None] | None = None,
    derived: list[tuple[str, str]] | None = None,
) -> list[RunResult]:
    """Write each view as a table of the DuckDB file ``warehouse``, then the ``derived`` SQL views, all in one
    transaction: if anything fails, the warehouse keeps the tables it had."""
    # Every view is compiled for its input files before the warehouse is opened.
    compiled = [(table_name(v, p), v, *compiled_query(v, input_path)[1:]) for p, v in views]
    names = [n for n, _, _, _ in compiled] + [n for n, _ in derived or []]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"two views would make the same table: {', '.join(repeated)}")
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = connect(str(warehouse))
    except duckdb.Error as error:
        raise UserError(f"cannot open the warehouse {warehouse}: {str(error).splitlines()[0]}") from None
    # (name, statement, how a failure is told, input files): the view tables first, then the SQL views.
    steps: list[tuple[str, str, Callable[[duckdb.Error], ViewRunError], list[Path]]] = []
    for name, view, query, files in compiled:
        steps.append(
            (name, f"CREATE OR REPLACE TABLE {quote(name)} AS {query}", _explainer(view, files), files)
        )
    for name, sql in derived or []:
        steps.append((name, f"CREATE OR REPLACE VIEW {quote(name)} AS {sql}", _sql_file_error(name), []))
    tables = ", ".join(f"'{n}'" for n in names)
    stamp = (
        "CREATE OR REPLACE TABLE naer_warehouse AS SELECT * FROM (VALUES "
        f"('format', '{WAREHOUSE_FORMAT}'), ('input', {sql_string(str(input_path))}), "
        f"('tables', {sql_string(tables)})) AS t(key, value)"
    )
    results: list[RunResult] = []
    try:
        con.execute("BEGIN TRANSACTION")
        for name, statement, fail, files in steps:
            try:
                con.execute(statement)
                count = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()
            except duckdb.Error as error:
                con.execute("ROLLBACK")
                raise fail(error) from None
            results.append(RunResult(name, int(count[0]) if count else 0, len(files)))
            if on_view:
                on_view(name)
        con.execute(stamp)
        con.execute("COMMIT")
    finally:
        con.close()
    return results


def _explainer(view: View, files: list[Path]) -> Callable[[duckdb.Error], ViewRunError]:
    return lambda error: explain(error, view, files)


def _sql_file_error(name: str) -> Callable[[duckdb.Error], ViewRunError]:
    return lambda error: ViewRunError(f"{name}.sql: {str(error).splitlines()[0]}")


def view_sql(view: View, input_path: Path | None) -> str:
    if input_path is None:
        compiled = compile_view(view, structs=True)
        source = source_sql([Path(f"<DATA_DIR>/{view.resource}.ndjson")], "ndjson", compiled.fields)
        return compiled.sql(source)
    return compiled_query(view, input_path)[1]
