"""Features of every citizen as of a reference day, from the data before it only, with the outcomes of the
year after it (the table the 12-month models learn from and score); and features of each discharge, with
whether an acute readmission followed within 30 days (the table of the model at discharge).

The features reuse the indicators' shared tables (admissions with their 4-hour linking and 12-hour rule,
residence spans) and code groups, so "an acute admission", "a preventable admission" and "a readmission"
mean the same in a worklist as in the indicators.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from naer.errors import UserError
from naer.indicators import engine
from naer.indicators.definition import CodeGroup, pick

HERE = Path(__file__).parent
SCHEMES = ("charlson", "elixhauser", "chronic")
YEAR = timedelta(days=365)


@cache
def scheme(name: str) -> dict[str, Any]:
    """A code scheme (charlson.yaml, elixhauser.yaml, chronic.yaml), each code group checked like an
    indicator's."""
    data: dict[str, Any] = yaml.safe_load((HERE / f"{name}.yaml").read_text(encoding="utf-8"))
    for key, condition in data["conditions"].items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            raise UserError(f"{name}.yaml: {key!r} is not a lower-case name")
        CodeGroup(label=condition["label"], codes=condition["codes"])  # raises on a malformed code
        replaced = condition.get("replaces")
        if replaced is not None and replaced not in data["conditions"]:
            raise UserError(f"{name}.yaml: {key} replaces the unknown condition {replaced}")
    return data


def charlson() -> dict[str, Any]:
    return scheme("charlson")


def chronic_conditions() -> list[str]:
    return list(scheme("chronic")["conditions"])


def _code_rows() -> list[tuple[str, str, str, int, str | None]]:
    rows = []
    for name in SCHEMES:
        for key, condition in scheme(name)["conditions"].items():
            group = CodeGroup(label=condition["label"], codes=condition["codes"])
            weight = int(condition.get("weight", 1))
            rows += [(name, key, prefix, weight, condition.get("replaces")) for prefix in group.prefixes()]
    return rows


def _sql(name: str) -> str:
    """A feature query with one boolean column per chronic condition in place of its chronic_flags mark (each
    query names its comorbidity table ``cm``)."""
    flags = ",\n       ".join(
        f"coalesce(list_contains(cm.chronic, '{name}'), false) AS {name}" for name in chronic_conditions()
    )
    text = (HERE / "sql" / f"{name}.sql").read_text(encoding="utf-8")
    return text.replace("{chronic_flags}", flags)


def prepare(
    con: duckdb.DuckDBPyConnection,
    window: engine.Window | None = None,
    on_step: Callable[[str], None] | None = None,
) -> engine.Window:
    """Make the indicators' shared tables and the risk tables (conditions by first day, contacts and home
    measurements by day) once; every reference day and discharge year then reads them."""
    window = engine.prepare(con, window, on_step)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE risk_codes (scheme VARCHAR, condition VARCHAR, prefix VARCHAR, "
        "weight INTEGER, replaces VARCHAR)"
    )
    con.executemany("INSERT INTO risk_codes VALUES (?, ?, ?, ?, ?)", _code_rows())
    _codes_table(con, "preventable_codes", "preventable-65plus")
    for statement in engine.statements(HERE / "sql" / "prepare.sql"):
        engine.run_sql(con, statement, {})
        if on_step:
            on_step(statement.split("TABLE", 1)[1].split()[0])
    return window


def _codes_table(con: duckdb.DuckDBPyConnection, table: str, indicator: str) -> None:
    """The code groups of an indicator as a table (grp, prefix): the risk outcomes use its definition."""
    rows = pick([indicator])[0].code_rows()
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (grp VARCHAR, prefix VARCHAR)")
    con.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)


def check_reference(reference: date, window: engine.Window, outcome: bool) -> None:
    """A reference day needs a year of data before it, and a year after it when its outcomes are used."""
    first = window.start + YEAR
    last = window.end - YEAR if outcome else window.end
    span = f"{window.start} to {window.end - timedelta(days=1)}"
    if not first <= reference <= last:
        need = (
            "a year of data before it and a year after it (for the outcome)"
            if outcome
            else "a year of data before it"
        )
        raise UserError(
            f"reference day {reference} is outside the data ({span}): "
            f"it needs {need}, so a day from {first} to {last}"
            if first <= last
            else f"reference day {reference}: the data ({span}) is too short; it needs {need}"
        )


def features(
    con: duckdb.DuckDBPyConnection, reference: date, window: engine.Window, outcome: bool = True
) -> pa.Table:
    """One row per citizen living in the area on ``reference`` (``prepare`` must have run on ``con``), with
    the year after it as outcome (``outcome=False`` to score the present, where no year after exists)."""
    check_reference(reference, window, outcome)
    params = {"reference": reference, "window_start": window.start}
    table: pa.Table = engine.run_sql(con, _sql("features"), params).to_arrow_table()
    return table


def discharges(con: duckdb.DuckDBPyConnection, start: date, end: date, window: engine.Window) -> pa.Table:
    """The index admissions discharged on a day in [start, end), with features at the discharge and whether an
    acute readmission followed within 30 days."""
    events = engine.events(con, pick(["readmission-30d"])[0], window)
    sql = _sql("discharges").replace("{events}", events)
    table: pa.Table = engine.run_sql(con, sql, {"from": start, "to": end}).to_arrow_table()
    return table
