"""Run indicator definitions over a views warehouse (DuckDB): events, person-time, and their rates.

The warehouse is opened read-only; everything the indicators build lives in temporary tables of the
connection, so a failed run leaves the warehouse as it was. Counting happens in DuckDB; the statistics of
the (small) aggregated table happen in numpy (``stats``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from naer.errors import UserError
from naer.indicators import stats
from naer.indicators.definition import SQL, Indicator, groupings
from naer.views.run import WAREHOUSE_FORMAT

GROUPINGS = ("all", "municipality", "cluster", "gp_clinic", "age_band", "sex", "education")
PERIODS = ("year", "quarter", "month")
MEMORY_LIMIT = "3GB"
LINK_HOURS = 4  # eSundhed: attendances 4 hours apart or less are one stay
MIN_STAY_HOURS = 12  # eSundhed: a stay of 12 hours or more is an admission
NEEDED = (
    "encounter",
    "encounter_detail",
    "encounter_diagnosis_code",
    "patient",
    "residence",
    "organization",
    "social_fact",
)

_GROUP_COLUMN = {
    "all": "'all'",
    "municipality": "coalesce(municipality_code, 'unknown')",
    "cluster": "cluster",
    "gp_clinic": "coalesce(gp_clinic_id, 'unknown')",
    "sex": "coalesce(sex, 'unknown')",
    "education": "coalesce(education, 'unknown')",
}
_MONTH_OF = "strftime({d}, '%Y-%m')"  # the month label of a date column; quarters and years roll up
_PARAM = re.compile(r"\$([a-z_]+)")
_COMMENT = re.compile(r"--[^\n]*")


@dataclass(frozen=True)
class Window:
    """The days counted: ``start`` included, ``end`` excluded."""

    start: date
    end: date


def check_choice(by: str, period: str) -> None:
    if by not in GROUPINGS:
        raise UserError(f"unknown grouping {by!r}; choose one of {', '.join(GROUPINGS)}")
    if period not in PERIODS:
        raise UserError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")


def choices(text: str, known: tuple[str, ...], what: str) -> list[str]:
    """``municipality,sex`` or ``every`` -> the list; an unknown name is an error that lists the known."""
    if text == "every":
        return list(known)
    picked = [t.strip() for t in text.split(",") if t.strip()]
    for name in picked:
        if name not in known:
            raise UserError(f"unknown {what} {name!r}; choose one of {', '.join(known)} (or every)")
    if not picked:
        raise UserError(f"no {what} given")
    return picked


def check_warehouse(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """A clear error for a warehouse without the views the indicators read, or from an older Nær."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    version = 1
    if "naer_warehouse" in tables:
        row = con.execute("SELECT value FROM naer_warehouse WHERE key = 'format'").fetchone()
        version = int(row[0]) if row else 1
    if version < WAREHOUSE_FORMAT:
        raise UserError(
            f"{where} was built by an older version of Nær (warehouse format {version}, the indicators need "
            f"{WAREHOUSE_FORMAT}): build it again with `naer indicators --input DATA_DIR --warehouse {where}`"
        )
    missing = [t for t in NEEDED if t not in tables]
    if missing:
        raise UserError(f"{where} lacks the view tables {', '.join(missing)}: build it from the view library")


@contextmanager
def open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not path.is_file():
        raise UserError(
            f"no warehouse {path}: make it with `naer indicators --input DATA_DIR --warehouse {path}`"
        )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        raise UserError(f"cannot open the warehouse {path}: {str(error).splitlines()[0]}") from None
    try:
        check_warehouse(con, str(path))
        con.execute("SET TimeZone = 'Europe/Copenhagen'")
        # DuckDB takes up to 80 % of the machine by default; the indicators' joins fit in less (spilling to
        # disk when they must), which keeps the whole run well under the 6 GB the platform allows itself.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute("SET preserve_insertion_order = false")  # every result is ordered explicitly
        con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/naer-duckdb-spill'")
        yield con
    finally:
        con.close()


def statements(path: Path) -> list[str]:
    """The statements of a SQL file, separated by lines holding only ";"."""
    text = path.read_text(encoding="utf-8")
    return [s.strip() for s in re.split(r"^;\s*$", text, flags=re.M) if s.strip()]


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """Run ``sql`` with the parameters it names ($name) and return the connection to fetch from; the SQL
    files' comments are not SQL (a comment may name a parameter the statement does not use)."""
    sql = _COMMENT.sub("", sql)
    used = {name: params[name] for name in _PARAM.findall(sql) if name in params}
    missing = sorted(set(_PARAM.findall(sql)) - set(params))
    if missing:
        raise UserError(f"indicator SQL needs the parameters {', '.join(missing)}")
    return con.execute(sql, used)


def data_window(con: duckdb.DuckDBPyConnection) -> Window:
    """The window of the data in whole months: from the first of the month of the first contact to the end of
    the last month the data covers to its last day (a last month begun but not ended is left out, so its
    few days do not show as a period of its own)."""
    row = con.execute(
        """SELECT TRY_CAST(left(min("start"), 10) AS DATE), TRY_CAST(left(max("start"), 10) AS DATE)
           FROM encounter WHERE patient_id IS NOT NULL AND "start" >= '0001'"""
    ).fetchone()
    if not row or row[0] is None:
        raise UserError("the data holds no Encounters with a start: there is nothing to count")
    first, last = row
    after = date.fromordinal(last.toordinal() + 1)
    end = after if after.day == 1 else date(last.year, last.month, 1)
    start = date(first.year, first.month, 1)
    if end <= start:
        end = after
    return Window(start, end)


def prepare(
    con: duckdb.DuckDBPyConnection, window: Window | None = None, on_step: Callable[[str], None] | None = None
) -> Window:
    """Make the shared tables (attendances, stays, admissions, GP contacts, residence spans and their
    age-band segments) once for every indicator."""
    window = window or data_window(con)
    if window.end <= window.start:
        raise UserError(f"the period {window.start} to {window.end} is empty")
    g = groupings()
    clusters = [(code, name) for name, codes in g["clusters"].items() for code in codes]
    con.execute("CREATE OR REPLACE TEMP TABLE cluster_of (municipality_code VARCHAR, cluster VARCHAR)")
    con.executemany("INSERT INTO cluster_of VALUES (?, ?)", clusters)
    params = {
        "window_start": window.start,
        "window_end": window.end,
        "link_hours": LINK_HOURS,
        "min_stay_hours": MIN_STAY_HOURS,
    }
    for statement in statements(SQL / "base.sql"):
        run_sql(con, statement, params)
        if on_step:
            on_step(statement.split("TABLE", 1)[1].split()[0] if "TABLE" in statement else "step")
    bands = g["age_bands"]
    values = ", ".join(
        f"({i}, {lo}, {bands[i + 1] if i + 1 < len(bands) else 'NULL'})" for i, lo in enumerate(bands)
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE segment AS
            WITH band(band, lo, hi) AS (VALUES {values})
            SELECT s.*, coalesce(c.cluster, 'unknown') AS cluster, b.band,
                   greatest(s.s, CAST(s.birth + to_years(b.lo) AS DATE)) AS seg_s,
                   least(s.e, coalesce(CAST(s.birth + to_years(b.hi) AS DATE), s.e)) AS seg_e
            FROM span AS s
            CROSS JOIN band AS b
            LEFT JOIN cluster_of AS c ON c.municipality_code = s.municipality_code
            WHERE greatest(s.s, CAST(s.birth + to_years(b.lo) AS DATE))
                  < least(s.e, coalesce(CAST(s.birth + to_years(b.hi) AS DATE), s.e))"""
    )
    _make_periods(con, window)
    return window


def _make_periods(con: duckdb.DuckDBPyConnection, window: Window) -> None:
    """The months of the window (the first and last clipped to it); quarters and years are sums of them."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE period AS
            SELECT {_MONTH_OF.format(d="p_s")} AS period,
                   greatest(p_s, $start) AS p_s, least(CAST(p_s + INTERVAL 1 MONTH AS DATE), $end) AS p_e
            FROM (SELECT CAST(unnest(generate_series(
                      date_trunc('month', CAST($start AS DATE)), CAST($end AS DATE) - 1, INTERVAL 1 MONTH
                  )) AS DATE) AS p_s)""",
        {"start": window.start, "end": window.end},
    )


WITHIN = ("cluster", "municipality")
# Which groupings can be split by an area: a grouping the area contains (a cluster holds municipalities).
_CROSSES = {
    "cluster": ("municipality", "gp_clinic", "age_band", "sex", "education"),
    "municipality": ("gp_clinic", "age_band", "sex", "education"),
}


def crossable(by: str, within: str | None) -> bool:
    return within is None or by in _CROSSES[within]


def _group_expr(by: str, within: str | None) -> str:
    """The SQL of a segment's group: the grouping's value, prefixed by its area's code when split by one
    (``0741|basic``)."""
    grp = "CAST(band AS VARCHAR)" if by == "age_band" else _GROUP_COLUMN[by]
    return grp if within is None else f"{_GROUP_COLUMN[within]} || '|' || {grp}"


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _person_time(con: duckdb.DuckDBPyConnection, by: str, within: str | None = None) -> str:
    """Person-days by (group, band, period), from the days each segment starts and ends: the number living
    changes only on those days, so summing runs of equal counts is as exact as counting every day."""
    name = f"pt_{by}_{within or 'all'}"
    if _exists(con, name):
        return name
    grp = _group_expr(by, within)
    con.execute(
        f"""CREATE TEMP TABLE {name} AS
        WITH delta AS (
            SELECT grp, band, day, sum(d) AS d FROM (
                SELECT {grp} AS grp, band, seg_s AS day, 1 AS d FROM segment
                UNION ALL
                SELECT {grp} AS grp, band, seg_e AS day, -1 AS d FROM segment
            ) GROUP BY ALL
        ),
        runs AS (
            SELECT grp, band, day AS r_s, lead(day) OVER w AS r_e, sum(d) OVER w AS n
            FROM delta WINDOW w AS (PARTITION BY grp, band ORDER BY day)
        )
        SELECT r.grp, r.band, p.period,
               sum(r.n * date_diff('day', greatest(r.r_s, p.p_s), least(r.r_e, p.p_e))) AS days
        FROM runs AS r
        JOIN period AS p ON r.r_s < p.p_e AND r.r_e > p.p_s
        WHERE r.n > 0
        GROUP BY ALL"""
    )
    return name


def events(con: duckdb.DuckDBPyConnection, indicator: Indicator, window: Window) -> str:
    """The indicator's events (or units), made once per connection and kept for every grouping (and for the
    risk models, which learn the same outcomes): the name of their table."""
    name = "ev_" + indicator.id.replace("-", "_")
    if _exists(con, name):
        return name
    con.execute("CREATE OR REPLACE TEMP TABLE codes (grp VARCHAR, prefix VARCHAR)")
    rows = indicator.code_rows()
    if rows:
        con.executemany("INSERT INTO codes VALUES (?, ?)", rows)
    params = {
        **indicator.params,
        "window_start": window.start,
        "window_end": window.end,
        "min_age": indicator.min_age,
    }
    sql = indicator.sql_text().strip().rstrip(";")
    try:
        run_sql(con, f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", params)
    except duckdb.Error as error:
        raise UserError(f"indicator {indicator.id} ({indicator.sql}): {str(error).splitlines()[0]}") from None
    return name


def _cells(
    con: duckdb.DuckDBPyConnection, indicator: Indicator, by: str, window: Window, within: str | None = None
) -> str:
    """The indicator's cells by month: (group, band, month) with events x, their sum of squares x2, the
    largest single value xmax, and the denominator n (citizen-years, or units). Months add up to quarters
    and years, so every period is a sum of these and the heavy joins run once per grouping."""
    name = f"cells_{indicator.id.replace('-', '_')}_{by}_{within or 'all'}"
    if _exists(con, name):
        return name
    table = events(con, indicator, window)
    grp = _group_expr(by, within)
    first_band = groupings()["age_bands"].index(indicator.min_age)
    month = _MONTH_OF.format(d="ev.day")
    if indicator.kind == "rate":
        pt = _person_time(con, by, within)
        sql = f"""
        WITH ev AS (
            SELECT {grp} AS grp, band, {month} AS period, sum(value) AS x, sum(value * value) AS x2,
                   max(value) AS xmax
            FROM (SELECT s.*, ev.day, ev.value
                  FROM {table} AS ev JOIN segment AS s
                    ON s.patient_id = ev.patient_id AND ev.day >= s.seg_s AND ev.day < s.seg_e) AS ev
            WHERE band >= {first_band}
            GROUP BY ALL
        )
        SELECT pt.grp, pt.band, pt.period, coalesce(ev.x, 0) AS x, coalesce(ev.x2, 0) AS x2,
               coalesce(ev.xmax, 1) AS xmax, pt.days / 365.25 AS n
        FROM {pt} AS pt LEFT JOIN ev USING (grp, band, period)
        WHERE pt.band >= {first_band}"""
    else:
        sql = f"""
        SELECT grp, band, period, sum(CAST(outcome AS INTEGER)) AS x, sum(CAST(outcome AS INTEGER)) AS x2,
               1 AS xmax, count(*) AS n
        FROM (SELECT {grp} AS grp, s.band, {month} AS period, ev.outcome
              FROM {table} AS ev JOIN segment AS s
                ON s.patient_id = ev.patient_id AND ev.day >= s.seg_s AND ev.day < s.seg_e)
        WHERE band >= {first_band}
        GROUP BY ALL"""
    con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
    return name


_ROLL_UP = {
    "month": "period",
    "quarter": "left(period, 4) || '-Q' || CAST((CAST(right(period, 2) AS INTEGER) + 2) // 3 AS VARCHAR)",
    "year": "left(period, 4)",
}


def compute(
    con: duckdb.DuckDBPyConnection,
    indicators: list[Indicator],
    by: str,
    period: str,
    window: Window,
    on_indicator: Callable[[str], None] | None = None,
    within: str | None = None,
) -> pa.Table:
    """One row per indicator, period and group: counts, the value with its 95 % interval, the directly
    age-standardised value with its interval, and the indirectly standardised ratio the funnel plot uses.
    ``within`` (cluster or municipality) splits the groups by area: each area's GP clinics, age bands ...;
    the standardisation's reference is then the whole data, as it is for the areas themselves."""
    check_choice(by, period)
    if within is not None and within not in WITHIN:
        raise UserError(f"unknown area {within!r}; choose one of {', '.join(WITHIN)}")
    if not crossable(by, within):
        raise UserError(f"{by} cannot be split by {within}")
    parts: list[dict[str, np.ndarray]] = []
    for indicator in indicators:
        cells = _cells(con, indicator, by, window, within)
        rolled = con.execute(
            f"""SELECT grp, band, {_ROLL_UP[period]} AS period, sum(x) AS x, sum(x2) AS x2, max(xmax) AS xmax,
                       sum(n) AS n
                FROM {cells} GROUP BY ALL ORDER BY period, grp, band"""
        ).fetchnumpy()
        first_band = groupings()["age_bands"].index(indicator.min_age)
        parts.append(stats.summarise(indicator, rolled, first_band))
        if on_indicator:
            on_indicator(indicator.id)
    table = pa.concat_tables([pa.table(p) for p in parts]) if parts else pa.table({})
    return _with_labels(con, table, by, period, within)


def _labels(con: duckdb.DuckDBPyConnection, by: str) -> dict[str, str]:
    g = groupings()
    if by == "age_band":
        return {str(i): label for i, label in enumerate(g["age_band_labels"])}
    if by == "education":
        return dict(g["education_labels"])
    if by in ("municipality", "gp_clinic"):
        column = "municipality_code" if by == "municipality" else "id"
        where = (
            "kind = 'municipality'"
            if by == "municipality"
            else "kind = 'gp-clinic' OR sector = 'general-practice'"
        )
        rows = con.execute(
            f"SELECT {column}, name FROM organization WHERE {where} AND name IS NOT NULL"
        ).fetchall()
        return dict(rows)
    return {}


def _with_labels(
    con: duckdb.DuckDBPyConnection, table: pa.Table, by: str, period: str, within: str | None
) -> pa.Table:
    keys = table.column("group").to_pylist() if table.num_rows else []
    if within is None:
        areas, groups = ["all"] * len(keys), keys
    else:
        split = [k.split("|", 1) for k in keys]
        areas, groups = [a for a, _ in split], [g for _, g in split]
        table = table.set_column(table.column_names.index("group"), "group", pa.array(groups, pa.string()))
    labels, area_labels = _labels(con, by), _labels(con, within) if within else {}
    n = table.num_rows
    return (
        table.append_column("group_label", pa.array([labels.get(v, v) for v in groups], pa.string()))
        .append_column("by", pa.array([by] * n, pa.string()))
        .append_column("period_kind", pa.array([period] * n, pa.string()))
        .append_column("within", pa.array([within or "all"] * n, pa.string()))
        .append_column("area", pa.array(areas, pa.string()))
        .append_column("area_label", pa.array([area_labels.get(a, a) for a in areas], pa.string()))
    )
