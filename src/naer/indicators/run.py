"""From a data folder or a warehouse to indicator tables and files: what ``naer indicators`` and the
dashboard share."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from naer.errors import UserError
from naer.indicators import engine
from naer.indicators.definition import Indicator
from naer.indicators.measurereport import measure_reports
from naer.indicators.numbers import without_nan

LIBRARY = Path(__file__).resolve().parent.parent / "views" / "library"
FORMATS = ("table", "measurereport")


def build_warehouse(input_path: Path, warehouse: Path, on_view: Callable[[str], None] | None = None) -> None:
    """Run the platform's view library over ``input_path`` into ``warehouse`` (one transaction)."""
    from naer.views.run import derived_queries, load_folder, run_to_warehouse

    if not input_path.exists():
        raise UserError(f"no input {input_path}")
    views = load_folder(LIBRARY)
    available = {p.name.split(".")[0] for p in input_path.iterdir()} if input_path.is_dir() else set()
    needed = {"Patient", "Encounter"}
    if input_path.is_dir() and not needed <= available:
        raise UserError(
            f"{input_path} has no {' or '.join(sorted(needed - available))} NDJSON file: the indicators need "
            "Patient and Encounter resources (and Condition, Organization, Observation where there are any)"
        )
    run_to_warehouse(views, input_path, warehouse, on_view, derived_queries(LIBRARY))


def view_count() -> int:
    from naer.views.run import derived_queries

    return len(list(LIBRARY.glob("*.json"))) + len(derived_queries(LIBRARY))


@contextmanager
def warehouse_for(
    input_path: Path | None, warehouse: Path | None, on_view: Callable[[str], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse to count in: built from ``input_path`` (into ``warehouse``, or a temporary file), or
    ``warehouse`` as it is."""
    if input_path is None and warehouse is None:
        raise UserError("give --input DATA_DIR (and --warehouse FILE to keep the views), or --warehouse FILE")
    if input_path is None:
        assert warehouse is not None
        with engine.open_warehouse(warehouse) as con:
            yield con
        return
    with tempfile.TemporaryDirectory(prefix="naer-indicators-") as tmp:
        target = warehouse or Path(tmp) / "warehouse.duckdb"
        build_warehouse(input_path, target, on_view)
        with engine.open_warehouse(target) as con:
            yield con


SOURCE_KEY = b"naer.source"  # the Parquet file's note of the data set it was made from (data_set)


def data_set(input_path: Path | None) -> dict[str, Any] | None:
    """What a ``naer synth`` folder says of itself (its manifest's area, scale and municipalities), kept
    with the results so that the pages can say which data they show; None for other data."""
    if input_path is None or not (input_path / "manifest.json").is_file():
        return None
    try:
        about = orjson.loads((input_path / "manifest.json").read_bytes()).get("naer")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(about, dict) or about.get("synthetic") is not True:
        return None
    kept = {k: about[k] for k in ("areaName", "scale", "atLeast", "citizensAtStart") if k in about}
    towns = about.get("municipalities")
    if isinstance(towns, list):
        kept["municipalities"] = [
            {
                "name": str(m.get("name", "")),
                "citizens": int(m.get("citizens", 0)),
                "full": bool(m.get("full")),
            }
            for m in towns
            if isinstance(m, dict) and isinstance(m.get("citizens", 0), int)
        ]
    return kept


def write(
    table: pa.Table,
    out: Path,
    fmt: str,
    indicators: dict[str, Indicator],
    area: pa.Table,
    by: str,
    source: dict[str, Any] | None = None,
) -> None:
    """Write ``out`` whole or not at all (a temporary file renamed into place); a Parquet file keeps
    ``source`` (data_set) in its metadata."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    suffix = out.suffix.lower()
    if fmt == "measurereport" and suffix not in (".ndjson", ".json"):
        raise UserError("--format measurereport writes FHIR NDJSON (.ndjson) or a Bundle (.json)")
    if fmt == "table" and suffix not in (".csv", ".parquet", ".ndjson"):
        raise UserError(f"--out {out}: the suffix must be .csv, .parquet or .ndjson")
    if not out.parent.exists():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "measurereport":
            from datetime import datetime

            made = datetime.now(UTC).isoformat(timespec="seconds")
            reports = measure_reports(indicators, area, table, by, made)
            if suffix == ".ndjson":
                tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in reports))
            else:
                bundle = {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": r} for r in reports],
                }
                tmp.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
        elif suffix == ".csv":
            pacsv.write_csv(table, tmp)
        elif suffix == ".parquet":
            if source is not None:
                table = table.replace_schema_metadata(
                    {**(table.schema.metadata or {}), SOURCE_KEY: orjson.dumps(source)}
                )
            pq.write_table(table, tmp)
        else:
            tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in without_nan(table.to_pylist())))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
