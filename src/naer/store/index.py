"""Search index rows of a resource: the values its search parameters select, in the forms search compares.

- token: (system, code) of a code, Coding, CodeableConcept, Identifier, ContactPoint or boolean;
- string: the value lower-cased with accents removed (FHIR string search is case- and accent-insensitive)
  and the value as written (for ``:exact``); a HumanName or Address gives each of its parts;
- reference: (target type, target id) of ``Type/id`` references, relative or absolute; other references
  (urn:uuid, canonical URLs without a type) keep the whole string as the id and no type;
- date: the range [low, high] a date, dateTime, instant or Period covers, in microseconds since 1970 UTC
  (a date to the day covers the whole day; a Period without an end reaches to the end of time).
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from typing import Any

from naer.store.searchparams import SearchParam, params_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOWEST = -(2**62)
HIGHEST = 2**62
DATE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

Rows = dict[str, set[tuple[Any, ...]]]


STRING_KEPT = 200  # characters of a string value kept for prefix search (a B-tree key must stay small)


def normalise(text: str) -> str:
    """Case- and accent-insensitive form of a string (å -> a, É -> e; æ and ø stay letters of their own),
    cut to the length the index keeps."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))[:STRING_KEPT]


def _micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=65_536)
def date_range(text: str) -> tuple[int, int]:
    """The range a FHIR date/dateTime/instant covers, to its precision; ValueError if it is none of them.
    A time without a zone is taken as UTC."""
    if len(text) >= 19 and text[10] == "T" and text[16] == ":" and DATE.match(text):
        # A time to the second or finer (most of what is stored): the C parser does it.
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        low = _micros(moment.astimezone(UTC))
        return low, low + (0 if text[19:20] == "." else 999_999)
    match = DATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a FHIR date, dateTime or instant")
    g = match.groupdict()
    year = int(g["y"])
    if g["m"] is None:
        start = datetime(year, 1, 1, tzinfo=UTC)
        end = datetime(year + 1, 1, 1, tzinfo=UTC)
    elif g["d"] is None:
        month = int(g["m"])
        start = datetime(year, month, 1, tzinfo=UTC)
        end = start + timedelta(days=monthrange(year, month)[1])
    elif g["H"] is None:
        start = datetime(year, int(g["m"]), int(g["d"]), tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        zone: timezone = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        fraction = g["f"] or ""
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        local = datetime(
            year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), int(g["S"] or 0), micro, tzinfo=zone
        )
        start = local.astimezone(UTC)
        if g["S"] is None:
            end = start + timedelta(minutes=1)
        elif not fraction:
            end = start + timedelta(seconds=1)
        else:
            end = start + timedelta(microseconds=1)
    return _micros(start), _micros(end) - 1


def _values(resource: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    """The values at a dotted path, lists flattened at every step."""
    found: list[Any] = [resource]
    for step in path:
        nxt: list[Any] = []
        for node in found:
            if isinstance(node, dict):
                value = node.get(step)
                if isinstance(value, list):
                    nxt.extend(value)
                elif value is not None:
                    nxt.append(value)
        if not nxt:
            return nxt
        found = nxt
    return found


def _tokens(name: str, value: Any, out: set[tuple[Any, ...]]) -> None:
    if isinstance(value, bool):
        out.add((name, None, "true" if value else "false"))
    elif isinstance(value, str | int):
        out.add((name, None, str(value)))
    elif isinstance(value, dict):
        codings = value.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                if isinstance(coding, dict) and coding.get("code") is not None:
                    out.add((name, coding.get("system"), str(coding["code"])))
        elif value.get("code") is not None:  # Coding
            out.add((name, value.get("system"), str(value["code"])))
        elif value.get("value") is not None:  # Identifier, ContactPoint
            out.add((name, value.get("system"), str(value["value"])))


NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(name: str, value: Any, out: set[tuple[Any, ...]]) -> None:
    if isinstance(value, str):
        out.add((name, normalise(value), value))
    elif isinstance(value, dict):
        for part in NAME_PARTS if "family" in value or "given" in value else ADDRESS_PARTS:
            found = value.get(part)
            for item in found if isinstance(found, list) else [found]:
                if isinstance(item, str):
                    out.add((name, normalise(item), item))


def parse_reference(reference: str) -> tuple[str | None, str]:
    """(type, id) of a ``Type/id`` reference (relative, absolute, or with ``/_history/n``), else
    (None, the reference as written)."""
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2:
        kind, rid = parts[-2], parts[-1]
        if kind[:1].isupper() and kind.isalpha() and ID.fullmatch(rid):
            return kind, rid
    return None, reference


def _references(name: str, value: Any, out: set[tuple[Any, ...]], targets: tuple[str, ...]) -> None:
    text = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(text, str) or text.startswith("#"):
        return
    kind, rid = parse_reference(text)
    if not targets or kind in targets:
        out.add((name, kind, rid))


def _dates(name: str, value: Any, out: set[tuple[Any, ...]]) -> None:
    try:
        if isinstance(value, str):
            out.add((name, *date_range(value)))
        elif isinstance(value, dict) and ("start" in value or "end" in value):
            low = date_range(value["start"])[0] if "start" in value else LOWEST
            high = date_range(value["end"])[1] if "end" in value else HIGHEST
            out.add((name, low, high))
    except ValueError:
        return  # validation let it through; it is simply not searchable as a date


@cache
def _plan(resource_type: str) -> tuple[tuple[SearchParam, tuple[str, ...]], ...]:
    return tuple((p, path) for p in params_of(resource_type).values() for path in p.paths)


def index_rows(resource: dict[str, Any]) -> Rows:
    """Rows for the four index tables (without the resource's type and id), without repeats."""
    rows: Rows = {"token": set(), "string": set(), "reference": set(), "date": set()}
    for param, path in _plan(resource["resourceType"]):
        values = _values(resource, path)
        if not values:
            continue
        out, name = rows[param.table], param.name
        if param.table == "token":
            for value in values:
                _tokens(name, value, out)
        elif param.type == "reference":
            for value in values:
                _references(name, value, out, param.targets)
        elif param.type == "date":
            for value in values:
                _dates(name, value, out)
        else:
            for value in values:
                _strings(name, value, out)
    return rows
