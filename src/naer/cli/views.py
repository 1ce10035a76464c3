"""``naer views``: run SQL on FHIR ViewDefinitions over bulk NDJSON or Parquet with DuckDB."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from naer.errors import UserError
from naer.progress import bar

views_app = typer.Typer(
    help=(
        "SQL on FHIR v2 views: flat tables from FHIR resources, defined as ViewDefinition JSON and run on "
        "DuckDB. The platform's own views are in src/naer/views/library."
    ),
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

_RUN_HELP = (
    "Run one ViewDefinition (VIEW.json) and write its rows to --out (.ndjson, .csv or .parquet, by suffix), "
    "or run every view of a folder into the DuckDB file --warehouse, one table per view, in one transaction. "
    "--input is a data folder as written by `naer synth` or a bulk export (NDJSON, plain or .gz, or "
    "Parquet), or a single NDJSON file. A folder's *.sql files (one SELECT each, over the view tables) "
    "become SQL views "
    "of the same name, made after the tables."
)


@views_app.command("run", help=_RUN_HELP)
def run(
    view: Annotated[Path, typer.Argument(help="A ViewDefinition .json file, or a folder of them.")],
    input_path: Annotated[Path, typer.Option("--input", help="Data folder or NDJSON file.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output file for one view.")] = None,
    warehouse: Annotated[Path | None, typer.Option("--warehouse", help="DuckDB file for a folder.")] = None,
) -> None:
    """Run views (help text: ``_RUN_HELP``)."""
    from naer.views.definition import load_view
    from naer.views.run import derived_queries, load_folder, run_to_file, run_to_warehouse

    began = time.perf_counter()
    if view.is_dir() or warehouse is not None:
        if warehouse is None:
            raise UserError("a folder of views needs --warehouse FILE.duckdb")
        if out is not None:
            raise UserError("give --out for one view or --warehouse for a folder, not both")
        views = load_folder(view) if view.is_dir() else [(view, load_view(view))]
        derived = derived_queries(view) if view.is_dir() else []
        with bar("[bold]views[/] {task.description}", err) as progress:
            task = progress.add_task(str(warehouse), total=len(views) + len(derived))
            results = run_to_warehouse(
                views, input_path, warehouse, lambda name: progress.advance(task), derived
            )
        table = Table(title=f"{warehouse}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for r in results:
            table.add_row(r.view, f"{r.rows:,}")
        console.print(table)
        console.print(f"{len(results)} views in {time.perf_counter() - began:.1f} s -> {warehouse}")
        return
    if out is None:
        raise UserError("give --out FILE (.ndjson, .csv, .parquet) for one view, or --warehouse FILE.duckdb")
    result = run_to_file(load_view(view), input_path, out)
    seconds = time.perf_counter() - began
    console.print(f"{result.view}: {result.rows:,} rows in {seconds:.1f} s -> {out}")


@views_app.command("sql", help="Print the DuckDB SQL a ViewDefinition runs (over --input, if given).")
def sql(
    view: Annotated[Path, typer.Argument(help="A ViewDefinition .json file.")],
    input_path: Annotated[Path | None, typer.Option("--input", help="Data folder or NDJSON file.")] = None,
) -> None:
    from naer.views.definition import load_view
    from naer.views.run import view_sql

    print(view_sql(load_view(view), input_path))
