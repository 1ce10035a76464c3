"""One clock for everything that depends on "now" (the 72-hour window, break-the-glass expiry, audit
times, the demo's "today"): tests set it instead of waiting, and the demo starts it on the last day of its
synthetic data and lets it run on from there (``start_at``, from ``NAER_TODAY`` or the data folder's
``today`` file: settings.today)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current moment, aware, in UTC."""
    return _now()


def set_clock(moment: datetime | Callable[[], datetime] | None) -> None:
    """Fix the clock at ``moment`` (or follow a function); None goes back to real time."""
    global _now
    if moment is None:
        _now = lambda: datetime.now(UTC)  # noqa: E731
    elif isinstance(moment, datetime):
        fixed = moment.astimezone(UTC)
        _now = lambda: fixed  # noqa: E731
    else:
        _now = moment


def start_at(moment: datetime) -> None:
    """Run the clock from ``moment`` on: now is ``moment`` plus the real time passed since this call."""
    offset = moment.astimezone(UTC) - datetime.now(UTC)
    set_clock(lambda: datetime.now(UTC) + offset)


def parse_today(text: str) -> datetime:
    """The demo's today as written in NAER_TODAY or the data folder's ``today`` file: an ISO date-time with
    its zone (2024-12-31T10:00:00+01:00), or a date (10:00 Danish time that day)."""
    from zoneinfo import ZoneInfo

    value = text.strip()
    try:
        if len(value) == 10:
            from datetime import date, time

            return datetime.combine(date.fromisoformat(value), time(10), ZoneInfo("Europe/Copenhagen"))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"today must be a date or a date-time with its zone, not {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"today needs its time zone (2024-12-31T10:00:00+01:00), not {value[:40]!r}")
    return moment


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """The clock stands at ``moment`` inside the block and runs as before after it (the demo writes things
    that happened hours ago)."""
    global _now
    saved = _now
    set_clock(moment)
    try:
        yield
    finally:
        _now = saved
