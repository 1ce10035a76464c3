"""Search index rows of a resource: the values its search parameters select, in the forms search compares.

- token: (system, code) of a code, Coding, CodeableConcept, Identifier, ContactPoint or boolean;
- string: the value lower-cased with accents removed (FHIR string search is case- and accent-insensitive)
  and the value as written (for ``:exact``); a HumanName or Address gives each of its parts;
- reference: (target type, target id) of ``Type/id`` references, relative or absolute; other references
  (urn:uuid, canonical URLs without a type) keep the whole string as the id and no type;
- date: the range [low, high] a date, dateTime, instant or Period covers, in microseconds since 1970 UTC
  (a date to the day covers the whole day; a Period without an end reaches to the end of time);
- number: [low, high] of a number (low = high) or of a Range;
- quantity: system, code (the unit text when there is no code), [low, high], and for a UCUM unit the
  range in SI base units with their name (units.py), so that 1 g and 1000 mg are found alike;
- composite: the second component's row (any of the above) under a key made of the parameter's name
  and the first component's code (``composite_key``), once per base element, so that both components
  must hold in the same element (the code and the value of one Observation.component).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from calendar import isleap, monthrange
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from naer.store.search.definitions import Path_, SearchParam, params_of
from naer.store.search.units import UCUM, to_canonical

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOWEST = -(2**62)
HIGHEST = 2**62
DATE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

Rows = dict[str, set[tuple[Any, ...]]]
KINDS = ("token", "string", "reference", "date", "number", "quantity")
BOUND = 1e300  # a Range without one end reaches this far; numbers beyond it are not searchable


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
    A time without a zone is taken as UTC. Counted in whole microseconds, so the edges of the calendar
    (9999-12-31, 0001-01-01T00:00:00+14:00) give a range instead of an overflow."""
    if len(text) >= 19 and text[10] == "T" and text[16] == ":" and DATE.match(text):
        # A time to the second or finer (most of what is stored): the C parser does it.
        moment = datetime.fromisoformat(text)
        offset = moment.utcoffset()
        low = _micros(moment.replace(tzinfo=UTC)) - (_whole_micros(offset) if offset else 0)
        return low, low + (0 if text[19:20] == "." else 999_999)
    match = DATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a FHIR date, dateTime or instant")
    g = match.groupdict()
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    fraction = g["f"] or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    hour, minute, second = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
    start = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)  # ValueError if no such day
    low = _micros(start)
    if g["tz"] and g["tz"] != "Z":
        sign = 1 if g["tz"][0] == "+" else -1
        low -= sign * (int(g["tz"][1:3]) * 3600 + int(g["tz"][4:6]) * 60) * 1_000_000
    day_micros = 86_400_000_000
    if g["m"] is None:
        length = (366 if isleap(year) else 365) * day_micros
    elif g["d"] is None:
        length = monthrange(year, month)[1] * day_micros
    elif g["H"] is None:
        length = day_micros
    elif g["S"] is None:
        length = 60_000_000
    elif not fraction:
        length = 1_000_000
    else:
        length = 1
    return low, low + length - 1


def _whole_micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _values(resource: dict[str, Any], path: Path_) -> list[Any]:
    """The values at a dotted path, lists flattened at every step (and filtered where a step says)."""
    found: list[Any] = [resource]
    for step, keep in path:
        nxt: list[Any] = []
        for node in found:
            if isinstance(node, dict):
                value = node.get(step)
                if isinstance(value, list):
                    nxt.extend(value)
                elif value is not None:
                    nxt.append(value)
        if keep is not None:
            key, wanted = keep
            nxt = [v for v in nxt if isinstance(v, dict) and v.get(key) == wanted]
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


def number(value: Any) -> float | None:
    """A JSON number as a float the index can keep, or None (booleans, text, beyond +-1e300)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        found = float(value)
    except OverflowError:
        return None
    return found if math.isfinite(found) and abs(found) <= BOUND else None


def _numbers(name: str, value: Any, out: set[tuple[Any, ...]]) -> None:
    if isinstance(value, dict):  # a Range of numbers (RiskAssessment.prediction.probabilityRange)
        low = number((value.get("low") or {}).get("value")) if isinstance(value.get("low"), dict) else None
        high = number((value.get("high") or {}).get("value")) if isinstance(value.get("high"), dict) else None
        if low is not None or high is not None:
            out.add((name, -BOUND if low is None else low, BOUND if high is None else high))
        return
    found = number(value)
    if found is not None:
        out.add((name, found, found))


def _unit(quantity: Any) -> tuple[str | None, str | None]:
    if not isinstance(quantity, dict):
        return None, None
    if "currency" in quantity:  # Money
        currency = quantity["currency"]
        return "urn:iso:std:iso:4217", currency if isinstance(currency, str) else None
    system, code = quantity.get("system"), quantity.get("code") or quantity.get("unit")
    return system if isinstance(system, str) else None, code if isinstance(code, str) else None


def _quantities(name: str, value: Any, out: set[tuple[Any, ...]]) -> None:
    if not isinstance(value, dict):
        return
    if "low" in value or "high" in value:  # a Range: its ends share a unit
        ends = [value.get("low"), value.get("high")]
        low, high = (number(e.get("value")) if isinstance(e, dict) else None for e in ends)
        if low is None and high is None:
            return
        system, code = _unit(ends[0] if isinstance(ends[0], dict) and low is not None else ends[1])
        low, high = (-BOUND if low is None else low), (BOUND if high is None else high)
    else:
        point = number(value.get("value"))
        if point is None:
            return
        low = high = point
        system, code = _unit(value)
    canonical, clow, chigh = None, None, None
    if system == UCUM and code is not None:
        at_low, at_high = to_canonical(low, code), to_canonical(high, code)
        if at_low is not None and at_high is not None:
            canonical, clow, chigh = at_low[0], at_low[1], at_high[1]
    out.add((name, system, code, low, high, canonical, clow, chigh))


@lru_cache(maxsize=65_536)
def composite_key(name: str, system: str | None, code: str) -> str:
    """The key a composite's rows are kept under for one code of its first component: the name and a
    digest of ``system|code`` (``system`` None: any system), short enough for the param column."""
    text = ("\x00" if system is None else system) + "|" + code
    return f"{name}${hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]}"


def _extract(
    kind: str, name: str, values: list[Any], out: set[tuple[Any, ...]], targets: tuple[str, ...]
) -> None:
    """Index rows of ``values`` of a parameter of type ``kind`` (uri as token) into ``out``."""
    if kind in ("token", "uri"):
        for value in values:
            _tokens(name, value, out)
    elif kind == "reference":
        for value in values:
            _references(name, value, out, targets)
    elif kind == "date":
        for value in values:
            _dates(name, value, out)
    elif kind == "number":
        for value in values:
            _numbers(name, value, out)
    elif kind == "quantity":
        for value in values:
            _quantities(name, value, out)
    else:
        for value in values:
            _strings(name, value, out)


def _composites(param: SearchParam, resource: dict[str, Any], out: set[tuple[Any, ...]]) -> None:
    first, second = param.components
    wanted = _heads(second.paths)
    for base in param.paths:
        for node in _values(resource, base) if base else [resource]:
            if not isinstance(node, dict) or wanted.isdisjoint(node):  # no value: no row, whatever the code
                continue
            codes: set[tuple[Any, ...]] = set()
            _extract(first.type, "", [v for p in first.paths for v in _values(node, p)], codes, ())
            if not codes:
                continue
            found: set[tuple[Any, ...]] = set()
            _extract(second.type, "", [v for p in second.paths for v in _values(node, p)], found, ())
            for _, system, code in codes:
                keys = {composite_key(param.name, None, code), composite_key(param.name, system or "", code)}
                out.update((key, *row[1:]) for key in keys for row in found)


@cache
def _heads(paths: tuple[Path_, ...]) -> frozenset[str]:
    return frozenset(path[0][0] for path in paths if path)


@cache
def _plan(resource_type: str) -> dict[str, tuple[tuple[SearchParam, Path_], ...]]:
    """The (parameter, path) pairs of a type by the path's first element: a resource is walked only along
    the elements it has (an Observation has a dozen of the hundred its parameters could reach)."""
    plan: dict[str, list[tuple[SearchParam, Path_]]] = {}
    for param in params_of(resource_type).values():
        if param.type != "composite":
            for path in param.paths:
                plan.setdefault(path[0][0], []).append((param, path))
    return {head: tuple(pairs) for head, pairs in plan.items()}


@cache
def _composite_params(resource_type: str) -> tuple[SearchParam, ...]:
    return tuple(p for p in params_of(resource_type).values() if p.type == "composite")


def index_rows(resource: dict[str, Any]) -> Rows:
    """Rows for the index tables (without the resource's type and id), without repeats."""
    rows: Rows = {kind: set() for kind in KINDS}
    kind = resource["resourceType"]
    plan = _plan(kind)
    for head in resource:
        for param, path in plan.get(head, ()):
            values = _values(resource, path)
            if param.truthy:  # 'false' too when no path gives a value that is not false (below)
                if any(v is not False for v in values):
                    rows["token"].add((param.name, None, "true"))
                continue
            if values:
                _extract(param.type, param.name, values, rows[param.table], param.targets)
    for param in _composite_params(kind):
        _composites(param, resource, rows[param.table])
    for name in _truthy(kind):
        if (name, None, "true") not in rows["token"]:
            rows["token"].add((name, None, "false"))
    return rows


@cache
def _truthy(resource_type: str) -> tuple[str, ...]:
    return tuple(p.name for p in params_of(resource_type).values() if p.truthy)
