"""``naer risk``: train the risk models on one reference day, evaluate them on a later one, and make the
proactive worklists."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from naer.cli.options import day
from naer.errors import UserError
from naer.progress import bar

console = Console()
err = Console(stderr=True)

risk_app = typer.Typer(
    help="Population risk stratification: who is at risk of an acute admission within 12 months (and of a "
    "preventable admission, and of a readmission at discharge), why, and what to do. See docs/risk.md and "
    "docs/model-card.md.",
    no_args_is_help=True,
)

InputOption = Annotated[
    Path | None, typer.Option("--input", help="Data folder (FHIR bulk NDJSON, e.g. from naer synth).")
]
WarehouseOption = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        help="DuckDB warehouse of the views: read as it is if it exists, else built here from --input.",
    ),
]
ModelOption = Annotated[Path, typer.Option("--model", help="The model file (JSON).")]


@contextlib.contextmanager
def _prepared(input_path: Path | None, warehouse: Path | None, label: str) -> Iterator[tuple[Any, Any, Any]]:
    """The warehouse (an existing --warehouse as it is; else the views run over --input) with the risk tables
    made, inside a progress display."""
    from naer.indicators.run import view_count, warehouse_for
    from naer.risk.features import prepare

    if input_path is not None and not input_path.is_dir():
        raise UserError(f"no data folder {input_path}")
    build = input_path if warehouse is None or not warehouse.exists() else None
    if build is None and warehouse is not None and input_path is not None:
        err.print(
            f"[dim]using the existing warehouse {warehouse} "
            f"(delete it to build it again from {input_path})[/]"
        )
    with bar("[bold]{task.description}", err) as progress:
        views = progress.add_task("views", total=view_count() if build else 0, visible=bool(build))
        with warehouse_for(build, warehouse, lambda _name: progress.advance(views)) as con:
            progress.update(views, completed=progress.tasks[views].total)  # built: never left at 0/11
            shared = progress.add_task("shared tables", total=9)
            window = prepare(con, None, lambda _step: progress.advance(shared))
            progress.update(shared, completed=9)
            task = progress.add_task(label, total=None)
            yield con, window, (progress, task)


@risk_app.command("train")
def train_command(
    reference_date: Annotated[
        list[str],
        typer.Option(
            "--reference-date",
            help="Learn from the citizens of this day and the year after it; repeat to learn from several "
            "years (the last is the model's day).",
        ),
    ],
    model: ModelOption,
    input_path: InputOption = None,
    warehouse: WarehouseOption = None,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the trees.")] = 1,
) -> None:
    """Train the models (12-month acute admission, 12-month preventable admission for 65+, 30-day readmission
    at discharge) and the age + Charlson baseline on one or more reference days; write them to --model."""
    from naer.risk import model as models
    from naer.risk.train import train

    references = [day(value, "--reference-date") for value in reference_date]
    if model.suffix.lower() != ".json":
        raise UserError(f"--model {model}: the model file is JSON (give a name ending in .json)")
    began = time.perf_counter()
    with _prepared(input_path, warehouse, "training") as (con, window, (progress, task)):
        progress.update(task, total=4)
        bundle = train(con, window, references, lambda _s: progress.advance(task), seed)
    models.save(model, bundle)
    table = Table(title=f"Models trained on {', '.join(bundle['reference_dates'])}")
    for column in ("outcome", "rows", "events", "trees"):
        table.add_column(column, justify="left" if column == "outcome" else "right")
    for name, m in bundle["models"].items():
        t = m["trained"]
        table.add_row(name, f"{t['rows']:,}", f"{t['events']:,}", str(t["trees"]))
    console.print(table)
    console.print(f"trained in {time.perf_counter() - began:.1f} s -> {model}")


@risk_app.command("evaluate")
def evaluate_command(
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html, metrics.json and the charts.")],
    input_path: InputOption = None,
    warehouse: WarehouseOption = None,
    reference_date: Annotated[
        str | None,
        typer.Option("--reference-date", help="Test on this day (default: a year after the training day)."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="The generator's true hazards (default: truth/acute_admission_hazard.csv[.gz] in --input).",
        ),
    ] = None,
) -> None:
    """Evaluate the models on a later reference day (temporal validation) against the baselines and the
    oracle, overall and by sex, age band, education and municipality; write the report."""
    from naer.risk import model as models
    from naer.risk import report
    from naer.risk.evaluate import evaluate, truth_file

    bundle = models.load(model)
    trained = date.fromisoformat(bundle["reference_date"])
    reference = (
        day(reference_date, "--reference-date") if reference_date else trained.replace(year=trained.year + 1)
    )
    if truth is not None and not truth.is_file():
        raise UserError(f"no truth file {truth}")
    truth = truth or truth_file(input_path)
    with _prepared(input_path, warehouse, "evaluation") as (con, window, (progress, task)):
        progress.update(task, total=5)
        result, curves = evaluate(con, window, bundle, reference, truth, lambda _s: progress.advance(task))
    written = report.write(out, result, curves)
    _summary(result)
    console.print(f"{len(written)} files -> {out} (open {out / 'report.html'})")


def _summary(m: dict[str, Any]) -> None:
    table = Table(
        title=f"Evaluation on {m['reference_date']} (trained on {', '.join(m['trained_reference_dates'])})"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("95 % CI", justify="right")

    def row(name: str, value: float | None, ci: list[float] | None = None, fmt: str = "{:.3f}") -> None:
        shown = "–" if value is None else fmt.format(value)
        table.add_row(name, shown, "" if not ci else f"{fmt.format(ci[0])}–{fmt.format(ci[1])}")

    row("AUROC", m["auroc"], m["auroc_ci"])
    row("AUROC, oracle", m.get("auroc_oracle"), m.get("auroc_oracle_ci"))
    row(
        "AUROC, age + Charlson",
        m["baselines"]["age_charlson"]["auroc"],
        m["baselines"]["age_charlson"]["auroc_ci"],
    )
    row("calibration slope", m["calibration_slope"], m["calibration_slope_ci"])
    row("calibration intercept", m["calibration_intercept"], m["calibration_intercept_ci"])
    row("Brier score", m["brier"], m["brier_ci"], "{:.4f}")
    row("precision, top 1 %", m["precision_top"]["1%"]["value"])
    r = m["readmission_30d"]
    row("readmission AUROC", r["auroc"], r["auroc_ci"])
    row("readmission AUROC, LACE", r["auroc_lace"], r["auroc_lace_ci"])
    row("readmission AUROC, HOSPITAL", r["auroc_hospital"], r["auroc_hospital_ci"])
    console.print(table)
    if m["flags"]:
        console.print(f"[yellow]{len(m['flags'])} fairness flags[/] (report.html lists them)")


@risk_app.command("worklist")
def worklist_command(
    model: ModelOption,
    out: Annotated[
        Path,
        typer.Option("--out", help="Write the worklist: .ndjson (FHIR Tasks), .csv or .parquet (rows)."),
    ],
    input_path: InputOption = None,
    warehouse: WarehouseOption = None,
    reference_date: Annotated[
        str | None,
        typer.Option("--reference-date", help="Score the citizens of this day (default: the data's last)."),
    ] = None,
    organization: Annotated[
        list[str] | None,
        typer.Option(
            "--organization",
            help="Only this GP clinic or municipality (Organization id, or a municipality code); repeat. "
            "Default: every GP clinic and municipality.",
        ),
    ] = None,
    living_in: Annotated[
        list[str] | None,
        typer.Option(
            "--living-in",
            help="Only citizens living in this municipality (code, e.g. 741); repeat. Default: everyone.",
        ),
    ] = None,
    top: Annotated[
        int | None, typer.Option("--top", help="The N citizens most at risk on each list.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Everyone at or above this probability (0-1).")
    ] = None,
    fhir: Annotated[
        str | None,
        typer.Option(
            "--fhir", help="Also send the Tasks to this FHIR server (e.g. http://127.0.0.1:8000/fhir)."
        ),
    ] = None,
    tasks_out: Annotated[
        Path | None,
        typer.Option("--tasks", help="Also write the FHIR Tasks here (.ndjson), for naer load."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="NAER_FHIR_TOKEN",
            help="The Bearer token --fhir sends (a system client's: naer token CLIENT).",
        ),
    ] = None,
) -> None:
    """Score the citizens of a reference day and make each GP clinic's and municipality's worklist: reasons
    in plain words, a suggested action (src/naer/risk/actions.yaml), FHIR Tasks."""
    from naer.risk import model as models
    from naer.risk import worklist as wl
    from naer.risk.features import features

    suffix = out.suffix.lower()
    if suffix not in (".ndjson", ".csv", ".parquet"):
        raise UserError(f"--out {out}: the suffix must be .ndjson (FHIR Tasks), .csv or .parquet")
    if top is None and threshold is None:
        top = 20
    wl.check_limits(top, threshold)  # mistakes in the command before the minute of preparing the data
    chosen_day = day(reference_date, "--reference-date") if reference_date else None
    bundle = models.load(model)
    wl.rules()
    with _prepared(input_path, warehouse, "scoring") as (con, window, (progress, task)):
        progress.update(task, total=3)
        reference = chosen_day or date.fromordinal(window.end.toordinal() - 1)
        orgs = wl.organizations(con)
        population = features(con, reference, window, outcome=False)
        progress.advance(task)
        m = bundle["models"]["acute_admission_12m"]
        probability = m.predict(population)
        progress.advance(task)
        chosen = wl.select(population, probability, top, threshold, organization, orgs, living_in)
        rows = wl.rows(population, probability, m, chosen, orgs, reference)
        progress.advance(task)
    tasks = wl.tasks(rows, reference)
    _write_worklist(out, rows, tasks)
    if tasks_out is not None:
        _write_worklist(tasks_out.with_suffix(".ndjson"), rows, tasks)
    console.print(f"{len(rows):,} citizens on {len({o for r in rows for o in r['lists']}):,} lists -> {out}")
    if fhir:
        counts = wl.publish(tasks, fhir, token=token)
        console.print(
            f"sent to {fhir}: {counts['created']:,} Tasks created, {counts['existing']:,} already there"
        )


def _write_worklist(out: Path, rows: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        if out.suffix.lower() == ".ndjson":
            tmp.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
        else:
            if out.suffix.lower() == ".csv":  # CSV has no lists: the lists and reasons joined
                flat = [
                    {**r, "lists": " ".join(r["lists"]), "reasons": "; ".join(r["reasons"]),
                     "reasons_da": "; ".join(r.get("reasons_da") or [])}
                    for r in rows
                ]  # fmt: skip
                pacsv.write_csv(pa.Table.from_pylist(flat), tmp)
            else:
                pq.write_table(pa.Table.from_pylist(rows), tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
