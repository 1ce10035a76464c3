"""The policy as SQL: for an asker at a moment, the condition a row (resource type, id) must meet to be
visible. It is put inside the store's queries (store/context.py), never applied to results afterwards.

A row is visible when every citizen it belongs to (``resource_patient``) is permitted:

    permitted(p) = break-the-glass grant active for (asker, p)
                   OR (some care relation of the asker's role holds for p AND no block of p names the asker)

Care relations and blocks are read from the search index (the parameters policy.yaml names), so they
change the moment the resources that make them are written, in the same transaction.

Building the condition takes milliseconds (hundreds of SQL nodes), more than the read it guards, so it is
built once per asker and kept (``_kept``): the moment it is decided at is not in it but a bound value read
at execution from a context variable that each public function here sets (``at``). One thread runs one
request at a time and builds its query just before running it, so the value is that request's moment.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    and_,
    bindparam,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles

from naer.access.policy import SELF, Blocks, Policy, Relation
from naer.access.principal import Principal
from naer.access.tables import grants
from naer.store.compartment import compartment_types
from naer.store.search.extract import EPOCH
from naer.store.tables import INDEX_TABLES, care_relation, resource_patient, resources

REFERENCE = INDEX_TABLES["reference"]
TOKEN = INDEX_TABLES["token"]
DATE = INDEX_TABLES["date"]
SEPARATOR = "\x1f"  # between the listed ids bound as one text (an id holds no control character)


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_MOMENT: ContextVar[datetime | None] = ContextVar("naer_access_moment", default=None)


def at(moment: datetime) -> None:
    """Decide the conditions this thread runs next at ``moment`` (the request's one clock)."""
    _MOMENT.set(moment)


def _moment() -> datetime:
    found = _MOMENT.get()
    if found is None:  # a kept condition run without its moment: never decide at some other time
        raise RuntimeError("an access condition ran without the moment it is decided at")
    return found


def _micros_now() -> int:
    return micros(_moment())


def _at_micros() -> Any:
    """The moment in the index's microseconds, bound when the query runs."""
    return bindparam(None, callable_=_micros_now, type_=BigInteger(), unique=True)


def _at_moment() -> Any:
    return bindparam(None, callable_=_moment, type_=grants.c.starts.type, unique=True)


PATIENT = bindparam("naer_patient", type_=resource_patient.c.patient_id.type)
"""A citizen's id given when the query runs (``{"naer_patient": id}``): one kept condition for them all."""


class Kept(ColumnElement[Any]):
    """A kept condition inside a query. SQLAlchemy would walk its hundreds of nodes at every execution
    to make the statement's cache key; this key is the condition's serial number instead, so the walk is
    skipped. That is sound because the condition is the same objects every time: its fixed values are its
    own, and its moment is read when the query runs (``at``)."""

    __visit_name__ = "naer_kept_condition"

    def __init__(self, inner: ColumnElement[Any], serial: int) -> None:
        self.inner = inner
        self.serial = serial
        self.type = inner.type

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> tuple[Any, ...]:
        return (Kept, self.serial)

    @property
    def _from_objects(self) -> list[Any]:
        return list(self.inner._from_objects)

    def get_children(self, **kw: Any) -> tuple[Any, ...]:
        return (self.inner,)


@compiles(Kept)
def _compile_kept(element: Kept, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.inner, **kw))


_serials = itertools.count(1)

_KEPT: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()
_KEPT_LOCK = threading.Lock()
KEEP = 512  # conditions kept (askers x query shapes); the oldest goes first


def asker(principal: Principal) -> tuple[Any, ...]:
    """What of the asker the conditions depend on (not the address, purpose or session)."""
    p = principal
    return (p.role, p.account, tuple(p.parties()), p.ancestors, p.patient, p.scopes.patient_context)


def _kept(kind: str, policy: Policy, principal: Principal, build: Callable[[], Any], *parts: Any) -> Any:
    """The condition ``build`` makes, made once per policy, asker and columns (the key holds the columns
    and the policy themselves, so an id is never reused for another)."""
    key = (kind, id(policy), asker(principal), *(id(x) for x in parts))
    with _KEPT_LOCK:
        found = _KEPT.get(key)
        if (
            found is not None
            and found[0] is policy
            and all(a is b for a, b in zip(found[1], parts, strict=True))
        ):
            _KEPT.move_to_end(key)
            return found[2]
    made = build()
    if isinstance(made, ColumnElement):
        made = Kept(made, next(_serials))
    with _KEPT_LOCK:
        _KEPT[key] = (policy, parts, made)
        while len(_KEPT) > KEEP:
            _KEPT.popitem(last=False)
    return made


def _among(column: Any, values: Any) -> ColumnElement[bool]:
    """``column IN (values)`` as plain comparisons: a kept condition's lists are fixed, and SQLAlchemy
    would otherwise expand each IN list again at every execution."""
    found = list(values)
    if not found:
        return false()
    return column == found[0] if len(found) == 1 else or_(*(column == v for v in found))


def _names_party(kind: str, id_column: Any, params: tuple[str, ...], parties: list[tuple[str, str]]) -> Any:
    link = REFERENCE.alias()
    named = or_(false(), *(and_(link.c.target_type == t, link.c.target_id == i) for t, i in parties))
    return exists().where(
        link.c.resource_type == kind, link.c.id == id_column, _among(link.c.param, params), named
    )


def _tokens(kind: str, id_column: Any, param: str, codes: tuple[str, ...]) -> Any:
    token = TOKEN.alias()
    return exists().where(
        token.c.resource_type == kind,
        token.c.id == id_column,
        token.c.param == param,
        _among(token.c.code, codes),
    )


def _in_period(kind: str, id_column: Any, param: str, at: Any, after_end: int, longer: int | None) -> Any:
    date = DATE.alias()
    conditions = [date.c.low <= at, date.c.high >= at - after_end]
    if longer is not None:
        conditions.append(date.c.high - date.c.low > longer)
    return exists().where(
        date.c.resource_type == kind, date.c.id == id_column, date.c.param == param, *conditions
    )


def relation_holds(relation: Relation, principal: Principal, patient: Any, at: Any) -> ColumnElement[bool]:
    """The relation holds between the asker and the citizen whose id is ``patient`` (a column)."""
    parties = principal.parties()
    if not parties:
        return false()
    kind = relation.resource

    def attached(id_column: Any) -> list[Any]:
        found = [_names_party(kind, id_column, relation.party, parties)]
        if relation.status:
            found.append(_tokens(kind, id_column, "status", relation.status))
        for param, codes in relation.where:
            found.append(_tokens(kind, id_column, param, codes))
        if relation.period:
            found.append(
                _in_period(kind, id_column, relation.period, at, relation.after_end, relation.longer_than)
            )
        return found

    if relation.patient == (SELF,):
        return and_(*attached(patient))
    who = REFERENCE.alias()
    return exists().where(
        who.c.resource_type == kind,
        _among(who.c.param, relation.patient),
        who.c.target_type == "Patient",
        who.c.target_id == patient,
        *attached(who.c.id),
    )


def blocked(blocks: Blocks, principal: Principal, patient: Any, at: Any) -> ColumnElement[bool]:
    """A block of the citizen names the asker: the person, the role, the organisation, or an
    organisation above it when the block reaches sub-units."""
    found = _blocks(blocks, principal, at)
    if found is None:
        return false()
    who, conditions = found
    return exists().where(*conditions, who.c.target_id == patient)


def _blocks(blocks: Blocks, principal: Principal, at: Any) -> tuple[Any, list[Any]] | None:
    """The citizen reference of a block (``who``) and the conditions that make it a block naming the
    asker; None when nothing could name the asker."""
    kind = blocks.resource
    who = REFERENCE.alias()
    direct = principal.parties()
    link = REFERENCE.alias()
    named = [and_(link.c.target_type == t, link.c.target_id == i) for t, i in direct]
    if principal.ancestors:
        named.append(
            and_(
                link.c.target_type == "Organization",
                _among(link.c.target_id, principal.ancestors),
                # link.c.id, not who.c.id: a subquery correlates with the query right around it only
                _tokens(kind, link.c.id, "actor-role", (blocks.sub_units_role,)),
            )
        )
    if not named:
        return None
    names = exists().where(
        link.c.resource_type == kind, link.c.id == who.c.id, _among(link.c.param, blocks.party), or_(*named)
    )
    conditions: list[ColumnElement[bool]] = [names]
    if blocks.status:
        conditions.append(_tokens(kind, who.c.id, "status", blocks.status))
    for param, codes in blocks.where:
        conditions.append(_tokens(kind, who.c.id, param, codes))
    if blocks.period:
        date = DATE.alias()
        any_period = exists().where(
            date.c.resource_type == kind, date.c.id == who.c.id, date.c.param == blocks.period
        )
        conditions.append(or_(not_(any_period), _in_period(kind, who.c.id, blocks.period, at, 0, None)))
    return who, [
        who.c.resource_type == kind,
        _among(who.c.param, blocks.patient),
        who.c.target_type == "Patient",
        *conditions,
    ]


def glass(principal: Principal, patient: Any, moment: Any) -> ColumnElement[bool]:
    """A break-the-glass grant of the asker for the citizen is running."""
    return exists().where(
        grants.c.patient == patient,
        grants.c.account == principal.account,
        grants.c.starts <= moment,
        grants.c.ends > moment,
    )


def permitted(policy: Policy, principal: Principal, patient: Any, moment: datetime) -> ColumnElement[bool]:
    """The asker may see the records of the citizen whose id is ``patient`` (a column or a value)."""
    at(moment)
    return _kept(  # type: ignore[no-any-return]
        "permitted", policy, principal, lambda: _permitted(policy, principal, patient), patient
    )


def _permitted(policy: Policy, principal: Principal, patient: Any) -> ColumnElement[bool]:
    role = policy.roles[principal.role]
    at, moment = _at_micros(), _at_moment()
    if role.records == "all":
        allowed: ColumnElement[bool] = true()
    elif role.records == "own":
        allowed = patient == principal.patient if principal.patient else false()
    elif role.records == "none":
        allowed = false()
    else:
        holds = [relation_holds(policy.relations[r], principal, patient, at) for r in role.relations]
        allowed = and_(or_(false(), *holds), not_(blocked(policy.blocks, principal, patient, at)))
        if role.break_glass:
            allowed = or_(glass(principal, patient, moment), allowed)
    if principal.patient and principal.scopes.patient_context and role.records != "own":
        allowed = and_(allowed, patient == principal.patient)  # a patient-context token: that citizen only
    return allowed


def visible(
    policy: Policy,
    principal: Principal,
    type_column: Any,
    id_column: Any,
    moment: datetime,
    many: bool = False,
) -> ColumnElement[bool] | None:
    """The condition on a row (its resource type and id columns); None when the asker sees every row.
    ``many``: for a query over a large part of the store (an export), the policy is decided once per
    Patient in the store (the database lists the citizens it allows once, and a row belonging to anyone
    not on that list is refused) instead of once per row; the same rows either way."""
    role = policy.roles[principal.role]
    if role.records == "all" and not principal.scopes.patient_context:
        return None
    at(moment)
    return _kept(  # type: ignore[no-any-return]
        "visible-many" if many else "visible", policy, principal,
        lambda: _visible(policy, principal, type_column, id_column, many), type_column, id_column,
    )  # fmt: skip


def _visible(
    policy: Policy, principal: Principal, type_column: Any, id_column: Any, many: bool = False
) -> ColumnElement[bool]:
    role = policy.roles[principal.role]
    rp = resource_patient.alias()
    belongs = and_(rp.c.resource_type == type_column, rp.c.id == id_column)
    if many:
        patients = resources.alias()
        allowed = select(patients.c.id).where(
            patients.c.resource_type == "Patient", _permitted(policy, principal, patients.c.id)
        )
        refused = exists().where(belongs, rp.c.patient_id.not_in(allowed))
    else:
        refused = exists().where(belongs, not_(_permitted(policy, principal, rp.c.patient_id)))
    condition = not_(refused)
    if role.records in ("own", "none") or principal.scopes.patient_context:
        # Only the citizen's own records, or none; of the rest only what is nobody's record (directory).
        own = exists().where(belongs) if role.records != "none" else false()
        condition = and_(condition, or_(own, type_column.not_in(compartment_types())))
    return condition


def permitted_ids(policy: Policy, principal: Principal, moment: datetime, kept: bool = False) -> Any:
    """A query for the ids of the citizens the asker may see now: ``permitted`` turned round. Each care
    relation is found from the asker's side (the resources that name the asker as a party, and the
    citizens they are about), blocks and break-the-glass likewise, so the policy is decided once for the
    whole set instead of once per row or per citizen. It may name ids of no Patient in the store (a
    reference to nothing); it is only ever used to test a row's citizens against. The same citizens as
    ``permitted`` decides one by one (tests/test_access_listed.py checks that, asker by asker)."""
    at(moment)
    return _kept(
        "permitted-ids-kept" if kept else "permitted-ids", policy, principal,
        lambda: _permitted_ids(policy, principal, kept),
    )  # fmt: skip


def _related(relation: Relation, principal: Principal, at: Any) -> Any:
    """The ids of the citizens with whom ``relation`` holds for the asker at ``at``, found in the index:
    the rows the relation makes (``relation_rows``) that name the asker and whose period holds."""
    return _holding(relation_rows(relation.name, relation).subquery(), principal, at)


def _holding(rows: Any, principal: Principal, at: Any) -> Any:
    """The citizens of relation ``rows`` (derived or kept) that name the asker as a party at ``at``."""
    parties = principal.parties()
    named = or_(false(), *(and_(rows.c.party_type == t, rows.c.party_id == i) for t, i in parties))
    return select(rows.c.patient_id.label("patient")).where(named, rows.c.low <= at, rows.c.high >= at)


def relation_rows(name: str, relation: Relation) -> Any:
    """The rows ``relation`` makes (relation, resource type, id, party type, party id, citizen, from, to)
    for every resource of its type that names a party, has the relation's status and codes, and names a
    citizen; from and to are the period's ends in microseconds with ``after_end`` added (unbounded
    without a period). Kept by naer.store.relations (a rebuild inserts them), and asked at a moment by
    ``_related`` where the kept rows are not the running policy's."""
    from sqlalchemy import literal

    from naer.store.search.extract import HIGHEST, LOWEST

    kind = relation.resource
    link = REFERENCE.alias()
    found = [
        link.c.resource_type == kind,
        _among(link.c.param, relation.party),
        link.c.target_type.is_not(None),
    ]
    if relation.status:
        found.append(_tokens(kind, link.c.id, "status", relation.status))
    for param, codes in relation.where:
        found.append(_tokens(kind, link.c.id, param, codes))
    froms: list[Any] = [link]
    low: Any = literal(LOWEST)
    high: Any = literal(HIGHEST)
    if relation.period:
        date = DATE.alias()
        froms.append(date)
        found += [date.c.resource_type == kind, date.c.id == link.c.id, date.c.param == relation.period]
        if relation.longer_than is not None:
            found.append(date.c.high - date.c.low > relation.longer_than)
        low, high = date.c.low, date.c.high + relation.after_end
    if relation.patient == (SELF,):
        patient: Any = link.c.id
    else:
        who = REFERENCE.alias()
        froms.append(who)
        found += [who.c.resource_type == kind, who.c.id == link.c.id, _among(who.c.param, relation.patient),
                  who.c.target_type == "Patient"]  # fmt: skip
        patient = who.c.target_id
    columns = [
        literal(name).label("relation"), literal(kind).label("resource_type"), link.c.id,
        link.c.target_type.label("party_type"), link.c.target_id.label("party_id"),
        patient.label("patient_id"), low.label("low"), high.label("high"),
    ]  # fmt: skip
    return select(*columns).select_from(*froms).where(*found)


def _related_kept(name: str, principal: Principal, at: Any) -> Any:
    """The ids of the citizens with whom relation ``name`` holds for the asker, from the kept rows."""
    kept = select(care_relation).where(care_relation.c.relation == name).subquery()
    return _holding(kept, principal, at)


def _permitted_ids(policy: Policy, principal: Principal, kept: bool = False) -> Any:
    from sqlalchemy import literal, union

    role = policy.roles[principal.role]
    at, moment = _at_micros(), _at_moment()
    patients = resources.alias()
    nobody = select(patients.c.id.label("patient")).where(false())
    if role.records == "all":
        found: Any = select(patients.c.id.label("patient")).where(patients.c.resource_type == "Patient")
    elif role.records == "own":
        found = select(literal(principal.patient).label("patient")) if principal.patient else nobody
    elif role.records == "none" or not principal.parties():
        found = nobody
    else:
        related = union(
            *(_related_kept(r, principal, at) if kept else _related(policy.relations[r], principal, at)
              for r in role.relations)
        ).subquery()  # fmt: skip
        found = select(related.c.patient)
        blocks = _blocks(policy.blocks, principal, at)
        if blocks is not None:
            who, conditions = blocks
            found = found.where(related.c.patient.not_in(select(who.c.target_id).where(*conditions)))
    if role.break_glass and role.records == "relations":
        running = select(grants.c.patient.label("patient")).where(
            grants.c.account == principal.account, grants.c.starts <= moment, grants.c.ends > moment
        )
        found = union(found, running)
    if principal.patient and principal.scopes.patient_context and role.records != "own":
        inner = found.subquery()
        found = select(inner.c.patient).where(inner.c.patient == principal.patient)
    return found


def among_listed(
    type_column: Any, id_column: Any, citizens: tuple[str, ...], dialect: str, own_or_none: str | None
) -> ColumnElement[bool]:
    """A row is visible when every citizen it belongs to is in ``citizens`` (the asker's permitted ids,
    found once for the request): one list, bound as one value, that the database hashes once per query.
    ``own_or_none``: the asker's role reaches only the own records or none (or the token is for one
    citizen), so of the rest only what is nobody's record (the directory) is visible, as in ``visible``."""
    from sqlalchemy import column, func
    from sqlalchemy.dialects.postgresql import ARRAY

    rp = resource_patient.alias()
    belongs = and_(rp.c.resource_type == type_column, rp.c.id == id_column)
    if dialect == "postgresql" and not any(SEPARATOR in c for c in citizens):
        # One text, split by the database: psycopg quotes an array's thousands of values one by one (9 ms
        # for 4,400 ids, each time the list is bound); the separator is no character an id may hold.
        joined = bindparam(None, value=SEPARATOR.join(citizens), type_=Text(), unique=True)
        listed: Any = select(func.unnest(func.string_to_array(joined, SEPARATOR)).column_valued("patient"))
    elif dialect == "postgresql":
        values = bindparam(None, value=list(citizens), type_=ARRAY(rp.c.patient_id.type), unique=True)
        listed = select(func.unnest(values).column_valued("patient"))
    else:  # SQLite: the list as one JSON text, its values read by json_each
        import orjson

        values = bindparam(None, value=orjson.dumps(list(citizens)).decode(), unique=True)
        listed = select(column("value")).select_from(func.json_each(values))
    condition: ColumnElement[bool] = not_(exists().where(belongs, rp.c.patient_id.not_in(listed)))
    if own_or_none is not None:
        own = exists().where(belongs) if own_or_none != "none" else false()
        condition = and_(condition, or_(own, type_column.not_in(compartment_types())))
    return condition


def relation_of(policy: Policy, principal: Principal, patient: Any, moment: datetime) -> ColumnElement[Any]:
    """A query for the name of the first relation (in policy order) by which the asker sees the citizen
    whose id is ``patient`` (a column): break-the-glass, a relation, own, all, or none."""
    at(moment)
    return _kept(  # type: ignore[no-any-return]
        "relation", policy, principal, lambda: _relation_of(policy, principal, patient), patient
    )


def _relation_of(policy: Policy, principal: Principal, patient: Any) -> ColumnElement[Any]:
    from sqlalchemy import case, literal

    role = policy.roles[principal.role]
    at, moment = _at_micros(), _at_moment()
    if role.records in ("all", "own"):
        return literal(role.records)
    if role.records == "none":
        return literal("none")
    whens = []
    if role.break_glass:
        whens.append((glass(principal, patient, moment), literal("break-the-glass")))
    for name in role.relations:
        whens.append((relation_holds(policy.relations[name], principal, patient, at), literal(name)))
    return case(*whens, else_=literal("none")) if whens else literal("none")


def selected(expression: Any) -> Any:
    return select(expression)
