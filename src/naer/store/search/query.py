"""FHIR search over the index tables: parameters parsed, checked and turned into one SQL query.

What is supported (the CapabilityStatement claims exactly this; docs/store.md lists it):
- each type's parameters of ``search/parameters.json`` plus ``_id``, ``_lastUpdated``, ``_tag``,
  ``_profile``, ``_security``; repeated parameters AND, comma-separated values OR;
- token ``code``, ``system|code``, ``|code``, ``system|`` and ``:not``; string prefix (case- and accent-
  insensitive), ``:exact``, ``:contains``; reference ``Type/id``, ``id``, absolute URL and ``:Type``;
  date with the prefixes eq, ne, lt, le, gt, ge, sa, eb; number and quantity with those and ``ap``,
  ``eq`` by the value's precision (``100`` is 99.5 to 100.5), quantity as ``n``, ``n|system|code`` or
  ``n||code`` and, for UCUM units, in any unit of the same dimension; composite ``code$value``;
  ``:missing`` on all but composites;
- one level of chaining (``patient.identifier=...``, ``subject:Patient.name=...``) and reverse chaining
  ``_has:Type:reference:parameter=value``, nested;
- ``_sort``, ``_count``, ``_offset`` (paging), ``_total``, ``_summary`` (count, true, data, text, false),
  ``_elements``, ``_include`` and ``_revinclude`` (one level, not ``:iterate``).
A standard parameter the store does not answer (``definitions.unsupported``, with the reason) and an
unknown one are refused under ``Prefer: handling=strict`` and reported otherwise — except a parameter that
narrows the search to citizens (any patient-compartment parameter, ``_has``), which is always refused:
ignoring it would answer with every citizen's resources. An unknown modifier or a malformed value is
always refused (400).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qsl

from sqlalchemy import ColumnElement, Engine, Select, Table, and_, func, not_, or_, select, true, tuple_
from sqlalchemy.engine import Connection

from naer.store.checks import no_nul, whole
from naer.store.context import SYSTEM, RequestContext
from naer.store.errors import Invalid, NotSupported
from naer.store.resources import Stored, connection, current_of, current_versions, known_type
from naer.store.search.definitions import (
    SearchParam,
    citizen_parameters,
    params_of,
    searchable_types,
    unsupported,
)
from naer.store.search.extract import BOUND, EPOCH, composite_key, date_range, normalise, parse_reference
from naer.store.search.units import UCUM, to_canonical
from naer.store.tables import INDEX_TABLES, resources

DECIMAL = frozenset("0123456789")
PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
NUMBER_PREFIXES = (*PREFIXES, "ap")
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
RESULT_PARAMETERS = (
    "_count",
    "_offset",
    "_sort",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
)
IGNORED = ("_format", "_pretty")  # about the response's form, which is always JSON here
MODIFIERS = {
    "token": ("missing", "not"),
    "uri": ("missing",),
    "string": ("missing", "exact", "contains"),
    "reference": ("missing",),  # and :Type
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "composite": (),
}
MAX_COUNT = 1000
MAX_HAS = 4  # levels of _has in one parameter: each is a subquery (and a frame of Python's stack)
DEFAULT_COUNT = 50
TOP = "\U0010ffff"  # above every character: a string prefix p is the range [p, p + TOP)


@dataclass(frozen=True)
class Include:
    source: str
    param: str
    target: str | None


@dataclass
class Query:
    resource_type: str
    where: list[ColumnElement[bool]] = field(default_factory=list)
    order: list[Any] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    total: str = "accurate"
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # as given, for the self link
    ignored: list[str] = field(default_factory=list)
    context: RequestContext = SYSTEM  # whose search: what it may see is a condition in every subquery

    def visible(self, table: Table) -> list[ColumnElement[bool]]:
        """The asker's condition on the rows of ``table`` (which has resource_type and id columns)."""
        condition = self.context.visible(table.c.resource_type, table.c.id)
        return [] if condition is None else [condition]


@dataclass
class Result:
    query: Query
    matches: list[Stored]
    included: list[Stored]
    total: int | None


def split_values(value: str) -> list[str]:
    """A parameter value's comma-separated alternatives (``\\,`` is a literal comma)."""
    return [v.replace("\\,", ",") for v in re.split(r"(?<!\\),", value)]


def _whole(name: str, value: str, lowest: int, highest: int) -> int:
    return whole(name, value, lowest, highest, clamp=True)


def _date_value(name: str, raw: str) -> tuple[str, int, int]:
    prefix, text = "eq", raw
    if raw[:2] in PREFIXES and raw[2:3] in DECIMAL:
        prefix, text = raw[:2], raw[2:]
    elif raw[:2] in PREFIXES and not raw[2:]:
        raise Invalid(f"{name}: the prefix {raw[:2]!r} needs a date after it, such as {raw[:2]}2024-05-17")
    elif raw[:2].isalpha():
        raise Invalid(f"{name}: unknown date prefix {raw[:2]!r} (use one of {', '.join(PREFIXES)})")
    try:
        low, high = date_range(text)
    except ValueError:
        example = "2024, 2024-05, 2024-05-17 or 2024-05-17T10:00"
        raise Invalid(f"{name}: {raw!r} is not a date such as {example}") from None
    return prefix, low, high


def _date_match(prefix: str, low: Any, high: Any, tl: Any, th: Any) -> ColumnElement[bool]:
    """FHIR's prefixes over ranges: the search range [low, high] against the target's [tl, th]."""
    inside = and_(tl >= low, th <= high)
    match prefix:
        case "eq":
            return inside
        case "ne":
            return not_(inside)
        case "gt":
            return cast(ColumnElement[bool], th > high)
        case "lt":
            return cast(ColumnElement[bool], tl < low)
        case "ge":
            return or_(th > high, inside)
        case "le":
            return or_(tl < low, inside)
        case "sa":
            return cast(ColumnElement[bool], tl > high)
        case _:  # "eb"
            return cast(ColumnElement[bool], th < low)


def _moment(micros: int) -> datetime:
    """A moment from microseconds since 1970, held within the calendar Python and the databases know."""
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if micros < 0 else datetime.max.replace(tzinfo=UTC)


def _token_match(table: Table, raw: str) -> ColumnElement[bool]:
    parts = re.split(r"(?<!\\)\|", raw, maxsplit=1)
    if len(parts) == 1:
        return table.c.code == raw.replace("\\|", "|")
    system, code = (p.replace("\\|", "|") for p in parts)
    conditions = [table.c.system.is_(None) if system == "" else table.c.system == system]
    if code:
        conditions.append(table.c.code == code)
    return and_(*conditions)


def _string_match(table: Table, raw: str, modifier: str | None) -> ColumnElement[bool]:
    if modifier == "exact":
        return table.c.exact == raw
    value = normalise(raw)
    if modifier == "contains":
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return table.c.value.like(f"%{escaped}%", escape="\\")
    return and_(table.c.value >= value, table.c.value < value + TOP)


def _reference_match(table: Table, raw: str, kind: str | None) -> ColumnElement[bool]:
    if kind is None and "/" in raw:
        kind, rid = parse_reference(raw)
    else:
        rid = raw
    condition = table.c.target_id == rid
    return and_(condition, table.c.target_type == kind) if kind else condition


def _number_value(name: str, raw: str) -> tuple[str, Decimal]:
    """(prefix, value) of a number search value; its precision is kept (``100`` is 99.5 to 100.5)."""
    prefix, text = "eq", raw
    if raw[:2] in NUMBER_PREFIXES and not raw[2:3].isalpha():
        prefix, text = raw[:2], raw[2:]
    elif raw[:2].isalpha():
        raise Invalid(f"{name}: unknown prefix {raw[:2]!r} (use one of {', '.join(NUMBER_PREFIXES)})")
    if len(text) > 64 or not NUMBER.fullmatch(text):
        raise Invalid(f"{name}: {raw!r} is not a number such as 100, 0.5 or 1e3")
    value = Decimal(text)
    if abs(value) > Decimal(BOUND):
        raise Invalid(f"{name}: {raw!r} is beyond the numbers this store compares (1e300)")
    return prefix, value


def _number_match(prefix: str, value: Decimal, tl: Any, th: Any, convert: Any = float) -> ColumnElement[bool]:
    """FHIR's prefixes for numbers and quantities: eq and ne by the search value's precision, the others
    by the value itself, ap within 10 %; the target is the range [tl, th] (a point: tl = th)."""
    exponent = value.as_tuple().exponent
    half = Decimal(5).scaleb((exponent if isinstance(exponent, int) else 0) - 1)
    point, low, high = convert(value), convert(value - half), convert(value + half)
    match prefix:
        case "eq":
            return and_(tl >= low, th < high)
        case "ne":
            return not_(and_(tl >= low, th < high))
        case "gt":
            return cast(ColumnElement[bool], th > point)
        case "lt":
            return cast(ColumnElement[bool], tl < point)
        case "ge":
            return cast(ColumnElement[bool], th >= point)
        case "le":
            return cast(ColumnElement[bool], tl <= point)
        case "sa":
            return cast(ColumnElement[bool], tl > point)
        case "eb":
            return cast(ColumnElement[bool], th < point)
        case _:  # "ap"
            near = max(abs(value) / 10, half)
            return and_(tl <= convert(value + near), th >= convert(value - near))


def _quantity_match(table: Table, raw: str, name: str) -> ColumnElement[bool]:
    """``[prefix]number``, ``[prefix]number|system|code`` or ``[prefix]number||code``; a UCUM unit
    also finds the same amount in any unit of the same dimension (1 g = 1000 mg)."""
    parts = [p.replace("\\|", "|") for p in re.split(r"(?<!\\)\|", raw, maxsplit=2)]
    if len(parts) == 2:
        raise Invalid(f"{name}: write number, number|system|code or number||code, not {raw!r}")
    prefix, value = _number_value(name, parts[0])
    system, code = (parts[1] or None, parts[2] or None) if len(parts) == 3 else (None, None)
    written = [_number_match(prefix, value, table.c.low, table.c.high)]
    if system is not None:
        written.append(table.c.system == system)
    if code is not None:
        written.append(table.c.code == code)
    if system == UCUM and code is not None and to_canonical(1.0, code) is not None:

        def based(amount: Decimal) -> float:
            found = to_canonical(float(amount), code)
            return found[1] if found else float(amount)

        unit = cast(tuple[str, float], to_canonical(1.0, code))[0]
        converted = _number_match(prefix, value, table.c.canonical_low, table.c.canonical_high, based)
        return or_(and_(table.c.canonical == unit, converted), and_(*written))
    return and_(*written)


def _composite_match(param: SearchParam, raw: str, name: str) -> ColumnElement[bool]:
    """``code$value`` or ``system|code$value``: the value under the key of that code
    (extract.composite_key)."""
    parts = re.split(r"(?<!\\)\$", raw)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise Invalid(f"{name}: a composite value is code$value (system|code$value), not {raw!r}")
    pieces = [p.replace("\\|", "|").replace("\\$", "$") for p in re.split(r"(?<!\\)\|", parts[0], maxsplit=1)]
    system, code = (None, pieces[0]) if len(pieces) == 1 else (pieces[0], pieces[1])
    if not code:
        raise Invalid(f"{name}: the code before $ is missing in {raw!r} (system| alone is not answered)")
    component = param.components[1]
    table = INDEX_TABLES[param.table]
    inner = SearchParam(name, component.type, component.paths)
    value = parts[1].replace("\\$", "$")
    return and_(
        table.c.param == composite_key(param.name, system, code),
        _value_match(inner, table, value, None, name),
    )


def _value_match(param: SearchParam, table: Table, raw: str, modifier: str | None, name: str) -> Any:
    if raw == "":
        raise Invalid(f"{name} has an empty value")
    if param.type == "composite":
        return _composite_match(param, raw, name)
    if param.table == "token":
        return _token_match(table, raw)
    if param.type == "string":
        return _string_match(table, raw, modifier)
    if param.type == "reference":
        return _reference_match(table, raw, modifier)
    if param.type == "number":
        prefix, value = _number_value(name, raw)
        return _number_match(prefix, value, table.c.low, table.c.high)
    if param.type == "quantity":
        return _quantity_match(table, raw, name)
    prefix, low, high = _date_value(name, raw)
    return _date_match(prefix, low, high, table.c.low, table.c.high)


def _has(resource_type: str, param: SearchParam, condition: Any) -> ColumnElement[bool]:
    """The resource has an index row of ``param`` meeting ``condition``.

    Reference and token conditions are usually selective (a patient, a code): written as ``id IN (...)``
    they let the database start from the index rows. Date and string conditions are usually broad (a
    year, a name prefix): written as a correlated ``EXISTS`` they are checked on the rows the other
    conditions found. PostgreSQL plans both as semi-joins; SQLite follows the form.
    """
    table = INDEX_TABLES[param.table]
    named = true() if param.type == "composite" else table.c.param == param.name  # a key in the condition
    rows = select(table.c.id).where(table.c.resource_type == resource_type, named, condition)
    if param.table in ("reference", "token") or param.type == "composite":
        return resources.c.id.in_(rows)
    return rows.where(table.c.id == resources.c.id).exists()


def _modifier(param: SearchParam, modifier: str | None, name: str) -> str | None:
    if modifier is None:
        return None
    if param.type == "reference" and modifier != "missing":
        if modifier not in searchable_types():
            raise Invalid(f"{name}: unknown modifier or type :{modifier}")
        return modifier
    if modifier not in MODIFIERS[param.type]:
        allowed = ", ".join(f":{m}" for m in MODIFIERS[param.type]) or "none"
        raise Invalid(f"{name}: a {param.type} parameter takes no :{modifier} (supported: {allowed})")
    return modifier


def _filter(resource_type: str, name: str, value: str, strict: bool, query: Query) -> bool:
    """Add the condition of one parameter to ``query``; False if it is unknown and ignored."""
    if "." in name:
        return _chained(resource_type, name, value, strict, query)
    code, _, modifier_text = name.partition(":")
    if code == "_has":
        return _reverse_chained(resource_type, name, value, query)
    modifier = modifier_text or None
    values = split_values(value)
    if code == "_id":
        if modifier:
            raise Invalid(f"{name}: _id takes no modifier")
        query.where.append(resources.c.id.in_(values))
        return True
    if code == "_lastUpdated":
        if modifier:
            raise Invalid(f"{name}: _lastUpdated takes no modifier")
        options = []
        for raw in values:
            prefix, low, high = _date_value(name, raw)
            moment = resources.c.last_updated
            options.append(_date_match(prefix, _moment(low), _moment(high), moment, moment))
        query.where.append(or_(*options))
        return True
    param = params_of(resource_type).get(code)
    if param is None:
        return _unknown(resource_type, name, strict, query)
    modifier = _modifier(param, modifier, name)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise Invalid(f"{name} must be true or false, not {value!r}")
        present = _has(resource_type, param, true())
        query.where.append(not_(present) if value == "true" else present)
        return True
    table = INDEX_TABLES[param.table]
    condition = or_(*(_value_match(param, table, raw, modifier, name) for raw in values))
    if modifier == "not":
        query.where.append(not_(_has(resource_type, param, condition)))
    else:
        query.where.append(_has(resource_type, param, condition))
    return True


def _chained(resource_type: str, name: str, value: str, strict: bool, query: Query) -> bool:
    head, chain = name.split(".", 1)
    code, _, kind = head.partition(":")
    param = params_of(resource_type).get(code)
    if param is None:
        return _unknown(resource_type, name, strict, query)
    if param.type != "reference":
        raise Invalid(f"{name}: only a reference parameter can be chained, and {code} is a {param.type}")
    if "." in chain:
        raise NotSupported(f"{name}: one level of chaining is supported, not more")
    chain_code, _, chain_modifier_text = chain.partition(":")
    targets = (kind,) if kind else param.targets or tuple(searchable_types())
    holders = [t for t in targets if chain_code == "_id" or chain_code in params_of(t)]
    if not holders:
        raise Invalid(f"{name}: none of {', '.join(targets)} has a search parameter {chain_code!r}")
    values = split_values(value)
    links = INDEX_TABLES["reference"]
    if chain_code == "_id":
        known = select(resources.c.resource_type, resources.c.id).where(
            resources.c.resource_type.in_(holders), resources.c.id.in_(values), *query.visible(resources)
        )
        found = tuple_(links.c.target_type, links.c.target_id).in_(known)
    else:
        chained = params_of(holders[0])[chain_code]
        if chained.type == "composite":
            raise NotSupported(f"{name}: a composite parameter is not answered inside a chain")
        modifier = _modifier(chained, chain_modifier_text or None, name)
        if modifier in ("missing", "not"):
            raise NotSupported(f"{name}: :{modifier} is not supported inside a chain")
        table = INDEX_TABLES[chained.table]
        condition = or_(*(_value_match(chained, table, raw, modifier, name) for raw in values))
        inner = select(table.c.resource_type, table.c.id).where(
            table.c.resource_type.in_(holders), table.c.param == chain_code, condition, *query.visible(table)
        )
        found = tuple_(links.c.target_type, links.c.target_id).in_(inner)
    query.where.append(_has(resource_type, param, found))
    return True


def _reverse_chained(resource_type: str, name: str, value: str, query: Query) -> bool:
    """``_has:Type:reference:filter=value``: resources that a ``Type`` meeting the filter refers to by
    ``reference`` (the filter may be another ``_has``). It narrows, so nothing in it is ever ignored."""
    if name.count("_has:") > MAX_HAS:
        raise NotSupported(f"{name[:80]}...: _has nests at most {MAX_HAS} deep", where="_has")
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise Invalid(f"{name}: write _has:Type:reference:parameter=value", where=name)
    _, source, link, rest = parts
    if source not in searchable_types():
        raise Invalid(f"{name}: unknown resource type {source!r}", where=name)
    param = params_of(source).get(link)
    if param is None or param.type != "reference":
        raise Invalid(f"{name}: {source} has no reference search parameter {link!r}", where=name)
    if param.targets and resource_type not in param.targets:
        raise Invalid(f"{name}: {source}.{link} never refers to a {resource_type}", where=name)
    code = re.split(r"[.:]", rest, maxsplit=1)[0]
    if code not in ("_id", "_lastUpdated", "_has") and code not in params_of(source):
        raise Invalid(
            f"{name}: {source} has no search parameter {code!r} that this store answers; a _has filter "
            "narrows the search, so it is never ignored",
            where=name,
        )
    inner = Query(source, context=query.context)
    _filter(source, rest, value, True, inner)
    sources = (
        select(resources.c.id)
        .where(
            resources.c.resource_type == source,
            resources.c.deleted.is_(False),
            *inner.where,
            *query.visible(resources),
        )
        .correlate(None)
    )
    links = INDEX_TABLES["reference"]
    targets = select(links.c.target_id).where(
        links.c.resource_type == source,
        links.c.param == link,
        links.c.target_type == resource_type,
        links.c.id.in_(sources),
    )
    query.where.append(resources.c.id.in_(targets))
    return True


def _unknown(resource_type: str, name: str, strict: bool, query: Query) -> bool:
    """A parameter this store does not answer for the type: refused when strict, or when it would narrow
    the search to citizens (ignoring it would answer with everyone's resources); else reported."""
    code = re.split(r"[.:]", name, maxsplit=1)[0]
    reason = unsupported(resource_type).get(code)
    known = f"{code} is a standard {resource_type} parameter this store does not answer ({reason})"
    what = known if reason else f"unknown search parameter {name!r} for {resource_type}"
    if code in citizen_parameters():
        raise Invalid(f"{what}; it would narrow the search to citizens, so it is never ignored", where=name)
    if strict:
        raise Invalid(f"{what} (Prefer: handling=strict)", where=name)
    query.ignored.append(name)
    return False


def _sort_key(resource_type: str, spec: str) -> Any:
    descending = spec.startswith("-")
    code = spec.lstrip("-")
    if code == "_id":
        column: Any = resources.c.id
    elif code == "_lastUpdated":
        column = resources.c.last_updated
    else:
        param = params_of(resource_type).get(code)
        if param is None:
            raise Invalid(f"_sort: {resource_type} has no search parameter {code!r}")
        if param.type == "composite":
            raise Invalid(f"_sort: {code} is a composite parameter, which has no order")
        table = INDEX_TABLES[param.table]
        sort_column = {"token": "code", "string": "value", "reference": "target_id"}.get(
            param.table, "high" if descending else "low"
        )
        value: Any = table.c[sort_column]
        if param.table == "quantity":  # in base units where the unit is UCUM: 72500 g after 100 lb
            value = func.coalesce(table.c[f"canonical_{sort_column}"], value)
        pick = func.max if descending else func.min
        column = (
            select(pick(value))
            .where(
                table.c.resource_type == resource_type, table.c.id == resources.c.id, table.c.param == code
            )
            .scalar_subquery()
        )
    return column.desc().nulls_last() if descending else column.asc().nulls_last()


def _include(resource_type: str, value: str, reverse: bool) -> Include:
    parts = value.split(":")
    name = "_revinclude" if reverse else "_include"
    if value == "*" or len(parts) not in (2, 3):
        raise Invalid(f"{name}={value!r}: write SourceType:parameter[:TargetType] (* is not supported)")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    param = params_of(source).get(code) if source in searchable_types() else None
    if param is None or param.type != "reference":
        raise Invalid(f"{name}={value!r}: {source} has no reference search parameter {code!r}")
    if not reverse and source != resource_type:
        raise Invalid(f"_include={value!r}: the source must be the searched type {resource_type}")
    if reverse and param.targets and resource_type not in param.targets:
        raise Invalid(f"_revinclude={value!r}: {source}.{code} never refers to a {resource_type}")
    return Include(source, code, target)


def _result_parameter(resource_type: str, name: str, value: str, query: Query) -> None:
    if name == "_count":
        query.count = _whole(name, value, 0, MAX_COUNT)
    elif name == "_offset":
        query.offset = _whole(name, value, 0, 10**9)
    elif name == "_sort":
        for spec in value.split(","):
            query.order.append(_sort_key(resource_type, spec))
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise Invalid(f"_total must be none, estimate or accurate, not {value!r}")
        query.total = value
    elif name == "_summary":
        if value not in ("count", "true", "false", "data", "text"):
            raise Invalid(f"_summary must be count, true, data, text or false, not {value!r}")
        query.summary = None if value == "false" else value
    elif name == "_elements":
        query.elements = tuple(e.strip() for e in value.split(",") if e.strip())
    else:
        reverse = name == "_revinclude"
        for one in value.split(","):
            (query.revincludes if reverse else query.includes).append(_include(resource_type, one, reverse))


def parse(
    resource_type: str,
    pairs: Sequence[tuple[str, str]],
    strict: bool = False,
    context: RequestContext = SYSTEM,
) -> Query:
    """A query for ``resource_type`` from (name, value) pairs as the URL or form gave them, for the asker
    of ``context``."""
    query = Query(resource_type, context=context)
    for name, value in pairs:
        no_nul(name, name)
        no_nul(name, value)
        if name in IGNORED:
            continue
        if name in RESULT_PARAMETERS:
            _result_parameter(resource_type, name, value, query)
        elif name.startswith(("_include:", "_revinclude:")):
            if name.partition(":")[2] != "iterate":
                raise Invalid(f"{name}: the only modifier of {name.partition(':')[0]} is :iterate")
            raise NotSupported(f"{name}: :iterate is not supported; include one level")
        elif not _filter(resource_type, name, value, strict, query):
            continue
        query.used.append((name, value))
    return query


def _base(query: Query) -> Select[Any]:
    return select(resources).where(
        resources.c.resource_type == query.resource_type,
        resources.c.deleted.is_(False),
        *query.where,
        *query.visible(resources),
    )


def _included(con: Connection, query: Query, matches: list[Stored]) -> list[Stored]:
    if not matches or not (query.includes or query.revincludes):
        return []
    ids = [m.id for m in matches]
    links = INDEX_TABLES["reference"]
    keys: set[tuple[str, str]] = set()
    for inc in query.includes:
        rows = con.execute(
            select(links.c.target_type, links.c.target_id).where(
                links.c.resource_type == inc.source,
                links.c.param == inc.param,
                links.c.id.in_(ids),
                links.c.target_type.is_not(None)
                if inc.target is None
                else (links.c.target_type == inc.target),
            )
        )
        keys.update((kind, rid) for kind, rid in rows)
    for inc in query.revincludes:
        rows = con.execute(
            select(links.c.resource_type, links.c.id).where(
                links.c.resource_type == inc.source,
                links.c.param == inc.param,
                links.c.target_type == query.resource_type,
                links.c.target_id.in_(ids),
            )
        )
        keys.update((kind, rid) for kind, rid in rows)
    keys -= {(m.resource_type, m.id) for m in matches}
    return current_versions(con, keys, query.context)


def run(con: Connection, query: Query) -> Result:
    """Answer a parsed query: the page of matches, what they include, and the total when asked for."""
    base = _base(query)
    total: int | None = None
    matches: list[Stored] = []
    if query.summary != "count" and query.count > 0:
        ordered = base.order_by(*query.order, resources.c.id).limit(query.count).offset(query.offset)
        matches = [current_of(row) for row in con.execute(ordered)]
    wants_total = query.total != "none" or query.summary == "count" or query.count == 0
    if wants_total:
        if query.offset == 0 and 0 < len(matches) < query.count:
            total = len(matches)
        else:
            total = int(con.execute(select(func.count()).select_from(base.subquery())).scalar() or 0)
    return Result(query, matches, _included(con, query, matches), total)


def search(
    db: Engine | Connection,
    context: RequestContext,
    resource_type: str,
    pairs: Sequence[tuple[str, str]],
    strict: bool = False,
) -> Result:
    """Search one type with FHIR search parameters (``strict``: refuse unknown ones)."""
    known_type(resource_type)
    context.permit("search", resource_type)
    query = parse(resource_type, pairs, strict, context)
    with connection(db, write=False) as con:
        result = run(con, query)
    touched = [(s.resource_type, s.id) for s in (*result.matches, *result.included)]
    context.accessed("search", touched, "&".join(f"{k}={v}" for k, v in query.used))
    return result


def matching_ids(con: Connection, context: RequestContext, resource_type: str, criteria: str) -> list[str]:
    """Ids of the resources a conditional request's criteria (a query string) select, at most two (all a
    conditional create, update or delete needs to know: none, one, or several)."""
    context.permit("search", resource_type)
    pairs = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise Invalid(f"a conditional request needs search criteria, not {criteria!r}")
    query = parse(resource_type, pairs, strict=True, context=context)
    rows = con.execute(_base(query).with_only_columns(resources.c.id).order_by(resources.c.id).limit(2))
    return [row.id for row in rows]
