"""The ``naer`` command: one Typer app, Rich output, clear errors (exit code 2) for user mistakes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from naer import __version__
from naer.cli.options import day
from naer.errors import UserError
from naer.settings import get_settings

if TYPE_CHECKING:
    from naer.evaluation.register import Initiative
    from naer.synth.run import SynthRequest

app = typer.Typer(
    name="naer",
    help=(
        "Nær: an open, FHIR-native platform for the Danish near and coherent health system.\n\n"
        "Start with `naer synth` to generate a synthetic Danish population as FHIR R4 bulk NDJSON."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        console.print(f"naer {__version__}")
        raise typer.Exit()


_SYNTH_HELP = (
    "Generate a synthetic Danish population as FHIR R4 bulk NDJSON (one file per resource type).\n\n"
    "The data set holds Organizations (region, hospitals, municipalities, GP clinics), GPs, citizens "
    "with synthetic CPR numbers, chronic conditions, contacts in every sector, social facts and home "
    "measurements, plus truth/acute_admission_hazard.csv (each citizen's true yearly hazard; not FHIR)."
)


@app.command(help=_SYNTH_HELP)
def synth(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: NAER_DATA_DIR/AREA, e.g. data/samsoe)."),
    ] = None,
    area: Annotated[
        str,
        typer.Option(help="samsoe, region-midt, denmark, or municipality codes such as 741,727."),
    ] = "samsoe",
    start: Annotated[str, typer.Option(help="First day simulated (YYYY-MM-DD).")] = "2015-01-01",
    end: Annotated[str, typer.Option(help="Last day simulated (YYYY-MM-DD).")] = "2024-12-31",
    seed: Annotated[int, typer.Option(help="Random seed: same seed and arguments, same bytes.")] = 1,
    scale: Annotated[float, typer.Option(help="Multiply every population by this (0.01 = 1 %).")] = 1.0,
    full: Annotated[
        list[str] | None,
        typer.Option(
            "--full",
            help="A municipality kept at full size whatever --scale says (code, repeat); the scaled ones' "
            "citizens go to Type.sample.ndjson beside it.",
        ),
    ] = None,
    at_least: Annotated[
        int,
        typer.Option(
            "--at-least",
            help="Least citizens of a scaled municipality, so small ones have numbers to compare.",
        ),
    ] = 1,
    gzip: Annotated[bool, typer.Option("--gzip", help="Write .ndjson.gz instead of .ndjson.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Processes to use (default NAER_WORKERS or all cores).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Do not generate: measure the data set in this folder against the targets."),
    ] = None,
    initiative: Annotated[
        str | None,
        typer.Option(
            "--initiative",
            help="Plant this initiative's effect (its id in the register, or a file with a planted section) "
            "and write its true effect on each indicator to truth/planted.json.",
        ),
    ] = None,
) -> None:
    """Generate a data set, or with ``--report`` measure one (help text: ``_SYNTH_HELP``)."""
    from naer.synth.report import measure, render_report

    if report is not None:
        rows = measure(report)
        render_report(console, rows, report)
        return
    from naer.synth.run import SynthRequest, check_request, synthesize

    plan_of = None
    planted = None
    if initiative is not None:
        from naer.evaluation.register import find
        from naer.evaluation.truth import planted_change

        plan_of = find(initiative)
        planted = planted_change(plan_of)
    settings = get_settings()
    target = out if out is not None else settings.data_dir / area.replace(",", "-")
    request = SynthRequest(
        area=area,
        start=day(start, "--start"),
        end=day(end, "--end"),
        seed=seed,
        out=target,
        scale=scale,
        full=tuple(full or ()),
        at_least=at_least,
        force=force,
        gzip=gzip,
        workers=workers if workers is not None else settings.workers,
        planted=planted,
    )
    if request.workers < 1:
        raise UserError("--workers must be at least 1")
    check_request(request)
    if plan_of is not None:
        from naer.evaluation.truth import check

        check(request, plan_of)
    began = time.perf_counter()
    with Progress(
        TextColumn("[bold]synth[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("citizens"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(area, total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = synthesize(request, on_progress=tick)
    seconds = time.perf_counter() - began
    table = Table(title=f"{result.area_name}: {request.start} to {request.end}, seed {seed}, scale {scale:g}")
    table.add_column("resource type")
    table.add_column("file")
    table.add_column("resources", justify="right")
    for kind, name in result.files.items():
        table.add_row(kind, name, f"{result.counts[kind]:,}")
    for kind, name in result.sample.items():
        table.add_row(kind, name, f"{result.sample_counts[kind]:,}")
    total = sum(result.counts.values()) + sum(result.sample_counts.values())
    table.add_row("[bold]all[/]", "", f"[bold]{total:,}[/]")
    console.print(table)
    console.print(
        f"{result.citizens_at_start:,} citizens at start; {total:,} resources in {seconds:.1f} s "
        f"({total / max(seconds, 1e-9):,.0f}/s) -> {result.out}"
    )
    console.print(f"Check it against the published figures: naer synth --report {result.out}")
    if plan_of is not None:
        _planted_truth(request, plan_of, result.planted)


def _planted_truth(request: SynthRequest, initiative: Initiative, changed: int) -> None:
    """Measure and show the planted initiative's true effect (the area again, with and without it)."""
    from naer.evaluation.truth import TRUTH, measure

    with err.status(f"measuring the true effect of {initiative.id} (its area with and without it)"):
        truth = measure(request, initiative)
    table = Table(title=f"The true effect of {initiative.id}: {changed:,} acute admissions changed")
    table.add_column("indicator")
    table.add_column("without", justify="right")
    table.add_column("true effect", justify="right")
    for name, found in truth["effects"].items():
        table.add_row(name, f"{found['without']:.2f}", f"{found['effect']:+.2f}")
    console.print(table)
    console.print(
        f"Evaluate it against the truth: naer evaluate {initiative.id} --truth {request.out / TRUTH}"
    )


from naer.cli.views import views_app  # noqa: E402 - registered after the app exists

app.add_typer(views_app, name="views")

from naer.cli.store import db_app, export_command, load_command, serve  # noqa: E402

app.add_typer(db_app, name="db")
app.command("serve")(serve)
app.command("load")(load_command)
app.command("export")(export_command)

from naer.cli.indicators import _HELP as _INDICATORS_HELP  # noqa: E402
from naer.cli.indicators import indicators_command  # noqa: E402

app.command("indicators", help=_INDICATORS_HELP)(indicators_command)

from naer.cli.risk import risk_app  # noqa: E402

app.add_typer(risk_app, name="risk")

from naer.cli.access import audit_app, token_command, users_app  # noqa: E402

app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.command("token")(token_command)

from naer.cli.coordination import coordination_app  # noqa: E402

app.add_typer(coordination_app, name="coordination")

from naer.cli.messages import messages_app  # noqa: E402

app.add_typer(messages_app, name="messages")

from naer.cli.evaluation import evaluate_command  # noqa: E402

app.command("evaluate")(evaluate_command)


def main() -> None:
    """Entry point: user mistakes become one clear line on stderr and exit code 2."""
    try:
        today = get_settings().today()
        if today is not None:  # the demo's clock (NAER_TODAY, or the data folder's today file)
            from naer import clock

            clock.start_at(today)
        app()
    except UserError as exc:
        err.print(
            "[bold red]error:[/] " + escape(str(exc)), highlight=False
        )  # (the user's text is not markup)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted; nothing was left half-written")
        raise SystemExit(130) from None
