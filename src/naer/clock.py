"""One clock for everything that depends on "now" (the 72-hour window, break-the-glass expiry, audit
times, the demo's "today"): tests set it instead of waiting."""

from __future__ import annotations

from collections.abc import Callable
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
