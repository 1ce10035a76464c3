"""``naer db`` and ``naer serve``: the FHIR store's schema and the API server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from naer.errors import UserError
from naer.progress import bar
from naer.store.db import database_url

db_app = typer.Typer(
    help="The FHIR store's database (NAER_DATABASE_URL: PostgreSQL; default: DATA_DIR/store.sqlite).",
    no_args_is_help=True,
)
console = Console()


def _shown(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


@db_app.command("upgrade", help="Apply every schema migration the store's database lacks (Alembic).")
def upgrade_command(
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    resolved = database_url(url)
    revision = _upgrade(resolved)
    console.print(f"{_shown(resolved)} is at schema revision {revision}")


def _upgrade(resolved: str) -> str:
    """Migrate, with a progress bar while the search index is rebuilt (new definitions, or a new index)."""
    from naer.store.migrate import upgrade

    with bar("re-indexing for search", console, transient=True) as progress:
        task = progress.add_task("index", total=None)
        return upgrade(resolved, on_batch=lambda n: progress.advance(task, n))


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Start the platform: the population dashboard at / and the FHIR API under /fhir, after bringing the
    store's schema up to date. The dashboard shows NAER_INDICATOR_RESULTS (default
    data/indicators.parquet, made by `naer indicators ... --by every --period every --out FILE`)."""
    import os

    import uvicorn

    resolved = database_url(url)
    _upgrade(resolved)
    os.environ["NAER_DATABASE_URL"] = resolved  # the worker processes build the app from the settings
    from naer.settings import get_settings

    results = get_settings().results_path()
    shown = "" if results.is_file() else f" - no results yet at {results}, make them with naer indicators"
    console.print(f"Nær dashboard on http://{host}:{port}/ (indicators: {results}{shown})")
    console.print(f"Nær FHIR API on http://{host}:{port}/fhir (store: {_shown(resolved)})")
    uvicorn.run(
        "naer.web.main:app", host=host, port=port, workers=workers, log_level="warning", access_log=False
    )


def _lines(path: Path) -> int | None:
    """Lines of a plain NDJSON file (fast, for the progress bar); None for gzip."""
    if path.name.endswith(".gz"):
        return None
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            count += chunk.count(b"\n")
    return count


def load_command(
    source: Annotated[
        list[Path],
        typer.Argument(help="Folders of NDJSON files (plain or .gz), or files; one or more."),
    ],
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes that parse and validate (default: NAER_WORKERS).")
    ] = None,
) -> None:
    """Load FHIR bulk NDJSON into the store: every resource validated, ids kept, all in one transaction
    (a bad line anywhere loads nothing). A resource already stored gets a new version."""
    from naer.access.audit import record_job
    from naer.store.bulk import files_of, load
    from naer.store.context import Internal
    from naer.store.db import engine

    resolved = database_url(url)
    _upgrade(resolved)
    files = files_of(source)
    sizes = [_lines(f) for f in files]
    total = None if None in sizes else sum(s or 0 for s in sizes)
    began = time.perf_counter()
    with bar("loading", console) as progress:
        task = progress.add_task("load", total=total)
        result = load(
            engine(resolved),
            Internal(actor="naer load"),
            source,
            workers=workers,
            on_batch=lambda n: progress.advance(task, n),
        )
    seconds = time.perf_counter() - began
    named = ", ".join(str(s) for s in source)
    record_job(engine(resolved), "import", "naer load", f"{result.total} resources from {named}")
    table = Table("resource type", "loaded")
    for kind, count in sorted(result.counts.items()):
        table.add_row(kind, f"{count:,}")
    console.print(table)
    console.print(
        f"{result.total:,} resources from {result.files} files into {_shown(resolved)} in {seconds:.1f} s "
        f"({result.total / max(seconds, 1e-9):,.0f}/s)"
    )


def export_command(
    out: Annotated[Path, typer.Argument(help="Folder to write Type.ndjson files into (must not exist).")],
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="Comma-separated resource types (default: all).")
    ] = None,
) -> None:
    """Export the current version of every stored resource as FHIR bulk NDJSON, one file per type."""
    import shutil

    from naer.access.audit import record_job
    from naer.store.bulk import export
    from naer.store.context import Internal
    from naer.store.db import engine

    if out.exists():
        raise UserError(f"{out} exists; export writes a new folder")
    resolved = database_url(url)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    began = time.perf_counter()
    try:
        counts = export(
            engine(resolved),
            Internal(actor="naer export"),
            tmp,
            types=types.split(",") if types else None,
            on_type=lambda kind, n: console.print(f"{kind}: {n:,}"),
        )
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - began
    total = sum(counts.values())
    record_job(engine(resolved), "export", "naer export", f"{total} resources to {out}")
    console.print(f"{total:,} resources to {out} in {seconds:.1f} s ({total / max(seconds, 1e-9):,.0f}/s)")
