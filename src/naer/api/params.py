"""Query parameters and request bodies several interactions share, read one way with one kind of error."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from naer.settings import get_settings
from naer.store.checks import DIGITS, INT32
from naer.store.errors import Invalid, TooLarge


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
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{name} lies outside the calendar (years 1 to 9999 in UTC): {value!r}") from None


async def raw_body(request: Request) -> bytes:
    """The request body, refused before it is read in full when it is larger than NAER_MAX_BODY_MB."""
    limit = get_settings().max_body_mb * 1024 * 1024
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def if_match(request: Request) -> int | None:
    """The version an ``If-Match`` header names (W/"3" -> 3), or None when there is none."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not DIGITS.fullmatch(digits) or int(digits) > INT32:
        raise Invalid(f'If-Match must be an ETag such as W/"3", not {value!r}', where="If-Match")
    return int(digits)
