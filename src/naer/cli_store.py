"""``naer db`` and ``naer serve``: the FHIR store's schema and the API server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

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
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    revision = upgrade(resolved)
    console.print(f"{_shown(resolved)} is at schema revision {revision}")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Start the FHIR API (under /fhir) after bringing the store's schema up to date."""
    import os

    import uvicorn

    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    os.environ["NAER_DATABASE_URL"] = resolved  # the worker processes build the app from the settings
    console.print(f"Nær FHIR API on http://{host}:{port}/fhir (store: {_shown(resolved)})")
    uvicorn.run(
        "naer.api.main:app", host=host, port=port, workers=workers, log_level="warning", access_log=False
    )
