"""Features of every citizen as of a reference day, from the data before it only, with the outcomes of the
year after it: the table a risk model learns from and scores.

The features reuse the indicators' shared tables (admissions with their 4-hour linking and 12-hour rule,
residence spans), so "an acute admission" means the same in a worklist as in the indicators.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from naer.errors import UserError
from naer.indicators import engine
from naer.indicators.definition import CodeGroup

HERE = Path(__file__).parent


@cache
def charlson() -> dict[str, Any]:
    """The Charlson conditions (charlson.yaml), each code group checked like an indicator's."""
    data: dict[str, Any] = yaml.safe_load((HERE / "charlson.yaml").read_text(encoding="utf-8"))
    for name, condition in data["conditions"].items():
        CodeGroup(label=condition["label"], codes=condition["codes"])  # raises on a malformed code
        replaced = condition.get("replaces")
        if replaced is not None and replaced not in data["conditions"]:
            raise UserError(f"charlson.yaml: {name} replaces the unknown condition {replaced}")
    return data


def _charlson_rows() -> list[tuple[str, str, int, str | None]]:
    rows = []
    for name, condition in charlson()["conditions"].items():
        group = CodeGroup(label=condition["label"], codes=condition["codes"])
        rows += [
            (name, prefix, int(condition["weight"]), condition.get("replaces")) for prefix in group.prefixes()
        ]
    return rows


def features(con: duckdb.DuckDBPyConnection, reference: date, window: engine.Window) -> pa.Table:
    """One row per citizen living in the area on ``reference`` (the indicators' shared tables must have been
    made by ``engine.prepare`` on ``con``), with the year after it as outcome."""
    if not window.start + timedelta(days=365) <= reference <= window.end:
        raise UserError(
            f"reference day {reference} is outside the data: it needs a year of history, "
            f"{window.start + timedelta(days=365)} to {window.end}"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE charlson_codes (condition VARCHAR, prefix VARCHAR, weight INTEGER, "
        "replaces VARCHAR)"
    )
    con.executemany("INSERT INTO charlson_codes VALUES (?, ?, ?, ?)", _charlson_rows())
    sql = (HERE / "sql" / "features.sql").read_text(encoding="utf-8")
    table: pa.Table = engine.run_sql(con, sql, {"reference": reference}).to_arrow_table()
    return table
