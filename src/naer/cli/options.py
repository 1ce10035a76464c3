"""What every `naer` command reads the same way from its options."""

from __future__ import annotations

from datetime import date

from naer.errors import UserError


def day(value: str, option: str) -> date:
    """A YYYY-MM-DD option as a date, or one clear line naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None
