"""``naer indicators``: the national indicators of the near health system, from views to tables and files."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.console import Console
from rich.table import Table

from naer.cli.options import day
from naer.errors import UserError
from naer.indicators.numbers import number
from naer.progress import bar

console = Console()
err = Console(stderr=True)

_HELP = (
    "Compute the indicators (preventable admissions 65+, preventable admissions for chronic conditions, "
    "acute readmission within 30 days, acute admissions, bed days, municipal acute-bed stays, GP follow-up "
    "within 14 days of discharge) by period and by municipality, cluster, GP clinic, age band, sex or "
    "education, with 95 % intervals and direct age-standardisation. Definitions: "
    "src/naer/indicators/definitions and docs/indicators.md."
)


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
        str,
        typer.Option(
            help="all, municipality, cluster, gp_clinic, age_band, sex or education; several with commas, "
            "or every."
        ),
    ] = "municipality",
    period: Annotated[
        str, typer.Option(help="year, quarter or month; several with commas, or every.")
    ] = "year",
    within: Annotated[
        str,
        typer.Option(
            help="Also split each grouping by area: cluster, municipality (several with commas, every, or "
            "none): each municipality's GP clinics, age bands, sexes, education groups."
        ),
    ] = "none",
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
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Write charts of the first indicator: FILE.svg/.png/.json becomes FILE-funnel.svg (units of "
            "the first --by, last period) and FILE-time.svg (the whole area over the first --period).",
        ),
    ] = None,
    danish: Annotated[
        bool, typer.Option("--danish", help="Danish number format (terminal, charts).")
    ] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the indicators and stop.")] = False,
) -> None:
    """Compute indicators (help text: ``_HELP``)."""
    from naer.indicators import engine
    from naer.indicators.definition import catalogue, pick
    from naer.indicators.run import data_set, view_count, warehouse_for, write

    if list_only:
        table = Table(title="Indicators")
        for column in ("id", "title", "unit"):
            table.add_column(column)
        for i in catalogue().values():
            table.add_row(i.id, f"{i.title}\n[dim]{i.title_da}[/]", i.unit)
        console.print(table)
        return
    chosen = pick(indicator)
    groupings = engine.choices(by, engine.GROUPINGS, "grouping")
    periods = engine.choices(period, engine.PERIODS, "period")
    areas = [] if within == "none" else engine.choices(within, engine.WITHIN, "area")
    first = day(start, "--from") if start is not None else None
    last = day(end, "--to") if end is not None else None
    if chart is not None and chart.suffix.lower() not in (".svg", ".png", ".json"):
        raise UserError(f"--chart {chart}: the suffix must be .svg, .png or .json")
    began = time.perf_counter()
    with bar("[bold]{task.description}", err) as progress:
        views = progress.add_task("views", total=view_count() if input_path else 0, visible=bool(input_path))
        with warehouse_for(input_path, warehouse, lambda _name: progress.advance(views)) as con:
            progress.update(views, completed=progress.tasks[views].total)  # built: never left at 0/11
            shared = progress.add_task("shared tables", total=6)
            window = engine.data_window(con)
            if first or last:
                window = engine.Window(
                    first or window.start, date.fromordinal(last.toordinal() + 1) if last else window.end
                )
            window = engine.prepare(con, window, lambda _step: progress.advance(shared))
            progress.update(shared, completed=6)
            wanted = list(dict.fromkeys([*groupings, "all"]))
            crossed = [(b, w) for w in areas for b in groupings if b != "all" and engine.crossable(b, w)]
            total = len(chosen) * (len(wanted) + len(crossed)) * len(periods)
            task = progress.add_task("indicators", total=total)
            tables = {
                (b, p): engine.compute(con, chosen, b, p, window, lambda _i: progress.advance(task))
                for p in periods
                for b in wanted
            }
            split = [
                engine.compute(con, chosen, b, p, window, lambda _i: progress.advance(task), within=w)
                for p in periods
                for b, w in crossed
            ]
    result = pa.concat_tables([tables[(b, p)] for p in periods for b in groupings] + split)
    area = pa.concat_tables([tables[("all", p)] for p in periods])
    if out is not None:
        write(result, out, fmt, {i.id: i for i in chosen}, area, groupings[0], data_set(input_path))
    elif fmt != "table":
        raise UserError("--format measurereport needs --out FILE (.ndjson or .json)")
    if chart is not None:
        _charts(
            chart,
            chosen[0],
            tables[(groupings[0], periods[0])],
            tables[("all", periods[0])],
            groupings[0],
            danish,
        )
    _print(tables[(groupings[0], periods[0])], groupings[0], danish)
    seconds = time.perf_counter() - began
    where = f" -> {out}" if out else ""
    console.print(
        f"{result.num_rows:,} rows ({len(chosen)} indicators by {', '.join(groupings)} and "
        f"{', '.join(periods)}) in {seconds:.1f} s{where}"
    )


def _charts(path: Path, indicator: Any, units: pa.Table, area: pa.Table, by: str, danish: bool) -> None:
    from naer.indicators import charts

    mine = units.filter(pc.equal(units["indicator"], indicator.id)).to_pylist()
    whole = area.filter(pc.equal(area["indicator"], indicator.id)).to_pylist()
    if not whole:
        raise UserError(f"no rows for {indicator.id}: nothing to chart")
    last = whole[-1]
    stem, suffix = path.with_suffix(""), path.suffix
    charts.save(charts.time_series(indicator, whole), Path(f"{stem}-time{suffix}"), danish)
    if by != "all" and indicator.funnel:
        latest = [r for r in mine if r["period"] == last["period"]]
        charts.save(charts.funnel(indicator, latest, last, by), Path(f"{stem}-funnel{suffix}"), danish)


def _print(result: pa.Table, by: str, danish: bool) -> None:
    """The last period of each indicator on the terminal (all periods are in --out)."""
    if result.num_rows == 0:
        console.print("no rows: the data has no citizens in the period")
        return
    last = max(result.column("period").to_pylist())
    rows = result.filter(pc.equal(result["period"], last))
    table = Table(title=f"Indicators by {by}, {last} (all periods: --out FILE)")
    shown = rows.to_pylist()[:200]
    cells = [
        [
            number(r["numerator"], 0, danish),
            number(r["denominator"], 1, danish),
            number(r["value"], 1, danish),
            f"{number(r['ci_low'], 1, danish)}–{number(r['ci_high'], 1, danish)}",
            number(r["std_value"], 1, danish),
        ]
        for r in shown
    ]
    # Figures are never cut: each figure column is as wide as its widest figure, and the names wrap. By a
    # grouping, each indicator heads its own rows, so that the name of the unit has the room.
    ids = [str(r["indicator"]) for r in shown]
    first = "indicator" if by == "all" else by
    table.add_column(first, overflow="fold", min_width=max(map(len, ids)) if by == "all" else 12)
    for k, column in enumerate(("events", "denominator", "value", "95 % CI", "age-std.")):
        widest = max((len(c[k]) for c in cells), default=1)
        table.add_column(column, justify="right", no_wrap=True, min_width=widest)
    heading = None
    for r, figures in zip(shown, cells, strict=True):
        if by == "all":
            table.add_row(r["indicator"], *figures)
            continue
        if r["indicator"] != heading:
            heading = r["indicator"]
            table.add_row(f"[bold]{heading}[/]", end_section=False)
        table.add_row(f"  {r['group_label']}", *figures)
    console.print(table)
    if rows.num_rows > 200:
        console.print(f"(first 200 of {rows.num_rows} rows shown)")
