"""The progress bar every long `naer` job shows (Rich): a label, the bar, done of total, time taken."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def bar(label: str, console: Console, transient: bool = False) -> Progress:
    """``label`` may use ``{task.description}`` (Rich markup allowed)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
