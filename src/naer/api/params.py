"""Query parameters several interactions share, read one way with one kind of error."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from naer.store.errors import Invalid


def instant_param(request: Request, name: str) -> datetime | None:
    """A FHIR instant (with a time zone) from the query, or None when the parameter is absent."""
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name} must be an instant such as 2026-01-31T12:00:00Z, not {value!r}") from None
    if moment.tzinfo is None:
        raise Invalid(f"{name} needs a time zone (Z or +01:00): {value!r}")
    return moment
