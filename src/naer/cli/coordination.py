"""``naer coordination``: the workflows' jobs on the clock, for a scheduler (cron) beside or instead of
the server's own rounds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from naer.store.db import database_url

coordination_app = typer.Typer(
    help="Working together around one citizen: the workflows' jobs (escalation, home measurements) and "
    "set-up (acute beds).",
    no_args_is_help=True,
)
console = Console()


@coordination_app.command("escalate")
def escalate(
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    """Escalate every advice request whose answer time has passed to the department's on-call role
    (the server does this once a minute too)."""
    from naer.coordination.advice import escalate_overdue
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    done = escalate_overdue(engine(resolved))
    console.print(f"escalated {len(done)} overdue advice request{'s' if len(done) != 1 else ''}")
    for task in done:
        console.print(f"  Task/{task}")


@coordination_app.command("beds")
def provide_beds(
    unit: Annotated[str, typer.Argument(help="The acute unit's Organization id (muni-0741-acutebeds).")],
    count: Annotated[int, typer.Option("--beds", help="How many beds the unit has.")],
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    """Give an acute unit its beds (Locations) in the store; run again with another number to change it (a
    bed no longer counted is set inactive, never deleted)."""
    from naer.coordination.beds import provide_beds as provide
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    made = provide(engine(resolved), unit, count)
    console.print(f"{unit}: {len(made)} beds")


@coordination_app.command("measurements")
def check_measurements(
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    """Check the home measurements of the last 14 days of every citizen whose care plan sets thresholds;
    a Task for whoever is responsible for each measurement outside them (once per measurement)."""
    from naer.coordination.measurements import check_all
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    made = check_all(engine(resolved))
    console.print(f"{len(made)} home measurement{'s' if len(made) != 1 else ''} outside their thresholds")


@coordination_app.command("demo")
def demo(
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    """Write the demo's live workflows on the demo's today, as the demo's people (`make demo` runs it once
    after `naer users demo`): advice, follow-up, responsibility, delegation, care plan, referral, beds."""
    from naer.coordination.demo import make_demo
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    made = make_demo(engine(resolved))
    console.print("demo workflows: " + ", ".join(f"{n} {what}" for what, n in made.items()))
