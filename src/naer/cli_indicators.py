"""``naer indicators``: the national indicators of the near health system, from views to tables and files."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from naer.errors import UserError

console = Console()
err = Console(stderr=True)

_HELP = (
    "Compute the indicators (preventable admissions 65+, preventable admissions for chronic conditions, "
    "acute readmission within 30 days, acute admissions, bed days, municipal acute-bed stays, GP follow-up "
    "within 14 days of discharge) by period and by municipality, cluster, GP clinic, age band, sex or "
    "education, with 95 % intervals and direct age-standardisation. Definitions: "
    "src/naer/indicators/definitions and docs/indicators.md."
)


def number(value: float | None, digits: int, danish: bool) -> str:
    """A number for people: thousands separated, Danish style (1.234,5) when asked."""
    if value is None or value != value:
        return "–"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".") if danish else text


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def indicators_command(
    input_path: Annotated[
        Path | None, typer.Option("--input", help="Data folder (FHIR bulk NDJSON, e.g. from naer synth).")
    ] = None,
    warehouse: Annotated[
        Path | None,
        typer.Option("--warehouse", help="DuckDB warehouse: built here from --input, or read as it is."),
    ] = None,
    indicator: Annotated[
        list[str] | None, typer.Option("--indicator", help="An indicator id (repeat; default: all).")
    ] = None,
    by: Annotated[
        str, typer.Option(help="all, municipality, cluster, gp_clinic, age_band, sex or education.")
    ] = "municipality",
    period: Annotated[str, typer.Option(help="year, quarter or month.")] = "year",
    start: Annotated[
        str | None, typer.Option("--from", help="First day counted (default: the data's).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day counted (default: the data's).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the rows: .csv, .parquet or .ndjson.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table (rows) or measurereport (FHIR, .ndjson or .json Bundle).")
    ] = "table",
    danish: Annotated[bool, typer.Option("--danish", help="Danish number format on the terminal.")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the indicators and stop.")] = False,
) -> None:
    """Compute indicators (help text: ``_HELP``)."""
    from naer.indicators import engine
    from naer.indicators.definition import catalogue, pick
    from naer.indicators.run import view_count, warehouse_for, write

    if list_only:
        table = Table(title="Indicators")
        for column in ("id", "title", "unit"):
            table.add_column(column)
        for i in catalogue().values():
            table.add_row(i.id, f"{i.title}\n[dim]{i.title_da}[/]", i.unit)
        console.print(table)
        return
    chosen = pick(indicator)
    engine.check_choice(by, period)
    first, last = _day(start, "--from"), _day(end, "--to")
    began = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        views = progress.add_task("views", total=view_count() if input_path else 0, visible=bool(input_path))
        with warehouse_for(input_path, warehouse, lambda _name: progress.advance(views)) as con:
            shared = progress.add_task("shared tables", total=6)
            window = engine.data_window(con)
            if first or last:
                window = engine.Window(
                    first or window.start, date.fromordinal(last.toordinal() + 1) if last else window.end
                )
            window = engine.prepare(con, window, lambda _step: progress.advance(shared))
            progress.update(shared, completed=6)
            task = progress.add_task("indicators", total=len(chosen) * (2 if by != "all" else 1))
            result = engine.compute(con, chosen, by, period, window, lambda _i: progress.advance(task))
            area = (
                result
                if by == "all"
                else engine.compute(con, chosen, "all", period, window, lambda _i: progress.advance(task))
            )
    if out is not None:
        write(result, out, fmt, {i.id: i for i in chosen}, area, by)
    elif fmt != "table":
        raise UserError("--format measurereport needs --out FILE (.ndjson or .json)")
    _print(result, by, danish)
    seconds = time.perf_counter() - began
    where = f" -> {out}" if out else ""
    console.print(
        f"{result.num_rows:,} rows ({len(chosen)} indicators by {by} and {period}) in {seconds:.1f} s{where}"
    )


def _print(result: pa.Table, by: str, danish: bool) -> None:
    """The last period of each indicator on the terminal (all periods are in --out)."""
    if result.num_rows == 0:
        console.print("no rows: the data has no citizens in the period")
        return
    last = max(result.column("period").to_pylist())
    rows = result.filter(pc.equal(result["period"], last))
    table = Table(title=f"Indicators by {by}, {last} (all periods: --out FILE)")
    for column, justify in (
        ("indicator", "left"),
        (by, "left"),
        ("events", "right"),
        ("denominator", "right"),
        ("value", "right"),
        ("95 % CI", "right"),
        ("age-std.", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in rows.to_pylist()[:200]:
        table.add_row(
            r["indicator"],
            r["group_label"],
            number(r["numerator"], 0, danish),
            number(r["denominator"], 1, danish),
            number(r["value"], 1, danish),
            f"{number(r['ci_low'], 1, danish)}–{number(r['ci_high'], 1, danish)}",
            number(r["std_value"], 1, danish),
        )
    console.print(table)
    if rows.num_rows > 200:
        console.print(f"(first 200 of {rows.num_rows} rows shown)")
