"""``naer evaluate``: the effect of an initiative of the register, against a counterfactual."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from naer.errors import UserError

console = Console(highlight=False)


def evaluate_command(
    initiative: Annotated[
        str, typer.Argument(help="An initiative's id in the register (samsoe-2019), or a YAML file of one.")
    ] = "",
    warehouse: Annotated[
        Path | None,
        typer.Option("--warehouse", help="The views warehouse (DuckDB) the indicators are counted in."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The report's folder (report.html, results.json).")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="A planted true effect (truth/planted.json from naer synth --initiative), shown beside "
            "the estimates.",
        ),
    ] = None,
    list_them: Annotated[
        bool, typer.Option("--list", help="List the register's initiatives and stop.")
    ] = False,
) -> None:
    """Estimate the effect of an initiative on each indicator it names, by difference in differences,
    synthetic control and interrupted time series, with 95 % intervals, the minimum detectable effect,
    the resources before and during, and which design to trust and why (docs/evaluation.md)."""
    from naer.evaluation.register import find, register

    if list_them:
        for item in register().values():
            console.print(
                f"{item.id}: {item.name_da} ({item.start} til {item.end}, {item.state})", markup=False
            )
        return
    if not initiative:
        raise UserError("name an initiative (naer evaluate --list shows the register)")
    if warehouse is None or out is None:
        raise UserError("--warehouse and --out are needed")
    chosen = find(initiative)
    _writable(out)
    from naer.evaluation.truth import read

    known = read(truth) if truth is not None else None
    from naer.evaluation.report import write
    from naer.evaluation.run import evaluate

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task(f"{chosen.id}: counting the indicators", total=None)
        found = evaluate(
            chosen, warehouse, lambda step: bar.update(task, description=f"{chosen.id}: {step}"), known
        )
        bar.update(task, description=f"{chosen.id}: writing the report")
        try:
            write(out, found)
        except OSError as exc:
            raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    for o in found.outcomes:
        trusted = next((e for e in o.estimates if e.design == o.trusted), None)
        if trusted is None:
            console.print(f"{o.indicator}: no design can be trusted", markup=False)
            continue
        console.print(
            f"{o.indicator}: {trusted.effect:+.2f} ({trusted.low:+.2f} to {trusted.high:+.2f}) per {o.per}, "
            f"{trusted.relative * 100:+.0f} %, by {o.trusted} "
            f"(detectable: {o.mde.get(o.trusted or '', float('nan')):.2f})"
            + (
                ""
                if o.truth is None
                else f"; planted truth {o.truth:+.2f}, "
                + ("inside" if trusted.low <= o.truth <= trusted.high else "outside")
                + " the interval"
            ),
            markup=False,
        )
    console.print(f"report: {out / 'report.html'}", markup=False)


def _writable(out: Path) -> None:
    """The report's folder can be made (checked before the work, not after it)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create {parent} ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"--out {out}: {parent} is not writable")
