"""``naer evaluate``: the effect of an initiative of the register, against a counterfactual."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from naer.errors import UserError

if TYPE_CHECKING:
    from naer.evaluation.register import Initiative

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
    power_only: Annotated[
        bool,
        typer.Option(
            "--power",
            help="Before a trial: the minimum detectable effect of each indicator and design at 80 % power "
            "for a trial as long as the initiative's, in its area, from the data there is (--out optional).",
        ),
    ] = False,
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
    if warehouse is None or (out is None and not power_only):
        raise UserError("--warehouse and --out are needed")
    chosen = find(initiative)
    if power_only:
        _power(chosen, warehouse, out)
        return
    assert out is not None
    _writable(out)
    from naer.evaluation.truth import read

    known = read(truth, chosen.id) if truth is not None else None
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


def _power(chosen: Initiative, warehouse: Path, out: Path | None) -> None:
    import json

    from rich.table import Table

    from naer.evaluation.run import power

    if out is not None:
        _writable(out)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        bar.add_task(f"{chosen.id}: what a trial could show", total=None)
        months, found = power(chosen, warehouse)
    designs = list(chosen.designs)
    table = Table(
        title=f"{chosen.id}: the smallest effect found in 80 % of {months}-month trials (5 %, two-sided)"
    )
    table.add_column("indicator")
    table.add_column("level now", justify="right")
    for design in designs:
        table.add_column(design, justify="right")
    for row in found:
        cells = [
            f"{row.detectable[d]:.2f} ({row.detectable[d] / row.level * 100:.0f} %)" if row.level else "-"
            for d in designs
        ]
        table.add_row(f"{row.indicator} (per {row.per})", f"{row.level:.2f}", *cells)
    console.print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        rows = [{"indicator": r.indicator, "per": r.per, "level": r.level, "minimum_detectable": r.detectable}
                for r in found]  # fmt: skip
        try:
            (out / "power.json").write_text(
                json.dumps({"initiative": chosen.id, "months": months, "indicators": rows}, indent=1) + "\n",
                encoding="utf-8",
            )
        except OSError as exc:
            raise UserError(f"cannot write {out / 'power.json'}: {exc.strerror or exc}") from None
        console.print(f"power: {out / 'power.json'}", markup=False)


REPORT_FILE = re.compile(r"^(report\.html|results\.json|power\.json|[a-z0-9-]+\.svg)$")


def _writable(out: Path) -> None:
    """The report's folder can be made (checked before the work, not after it), and replacing it loses
    nothing but an earlier report: a folder holding anything else is refused."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        others = [p.name for p in out.iterdir() if not (p.is_file() and REPORT_FILE.match(p.name))]
        if others:
            raise UserError(
                f"--out {out} holds more than an earlier report ({others[0]}, ...): choose an empty or a new "
                "folder"
            )
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create {parent} ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"--out {out}: {parent} is not writable")
