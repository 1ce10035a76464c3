"""The access policy's care relations kept as rows (``care_relation``), so that listing the citizens an
asker may see is one index range over the asker's own rows instead of a walk over every resource that
names the asker (a hospital department's 10,000 open requests: 150 ms walked, a few ms kept).

The rows are derived from the search index by the policy's own conditions (``conditions.relation_rows``,
the same conditions ``_related`` asks at a moment, with the period kept as from-to columns), and written
with the index: in the same transaction as the resource that makes them, on every create, update, delete
and bulk load (there from the index rows in hand, ``made``; on a rebuild from the index, in SQL), so a
relation begins and ends with the write that makes or ends it. ``care_relation_state``
holds the digest of the policy's relations the rows were derived by; a process whose policy differs (a
changed policy.yaml before the upgrade that re-derives them, or a test's own policy) does not use them
(``current``) and decides as before, from the index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from naer.store.search.extract import HIGHEST, LOWEST, Rows
from naer.store.tables import care_relation, care_relation_state

if TYPE_CHECKING:
    from naer.access.policy import Policy, Relation


def _shipped() -> Policy:
    from naer.access.policy import policy  # (the access layer reads the store; imported when used)

    return policy()


def digest(policy: Policy) -> str:
    """The relations' definitions, as the rows depend on them."""
    text = repr(sorted((name, repr(r)) for name, r in policy.relations.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _kept_types() -> frozenset[str]:
    """The types whose resources make relations (asked at every write: found once)."""
    return frozenset(r.resource for r in _shipped().relations.values())


def written(con: Connection, resource_type: str, rid: str, rows: Rows | None) -> None:
    """Keep the relation rows of one resource just written, from its index rows (``None``: deleted, none
    left). Derived here from the rows in hand by the same conditions ``conditions.relation_rows`` asks
    of the index (a write then costs one insert, not a query per relation; the two derivations are
    tested to give the same rows: tests/test_access_kept.py)."""
    if resource_type not in _kept_types():
        return
    drop(con, [(resource_type, rid)])
    if rows is not None:
        add(con, made(resource_type, rid, rows))


def made(resource_type: str, rid: str, rows: Rows) -> list[tuple[object, ...]]:
    """The relation rows one resource makes, from its index rows (a bulk load's workers call it too)."""
    policy = _shipped()
    return [
        row
        for name, relation in policy.relations.items()
        if relation.resource == resource_type
        for row in _made(name, relation, rid, rows)
    ]


def drop(con: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Remove the relation rows of these resources (type, id)."""
    by_type: dict[str, list[str]] = {}
    for kind, rid in keys:
        by_type.setdefault(kind, []).append(rid)
    kept = _kept_types()
    for kind, ids in by_type.items():
        if kind in kept:
            con.execute(
                delete(care_relation).where(
                    care_relation.c.resource_type == kind, care_relation.c.id.in_(ids)
                )
            )


def add(con: Connection, rows: list[tuple[object, ...]]) -> None:
    if rows:
        con.execute(insert(care_relation), [dict(zip(_NAMES, row, strict=True)) for row in rows])


def _made(name: str, relation: Relation, rid: str, rows: Rows) -> list[tuple[object, ...]]:
    """The rows ``relation`` makes of one resource's index rows (``conditions.relation_rows``' conditions)."""
    from naer.access.policy import SELF

    references, tokens, dates = rows["reference"], rows["token"], rows["date"]

    def has(param: str, codes: tuple[str, ...]) -> bool:
        return any(p == param and code in codes for p, _system, code in tokens)

    if relation.status and not has("status", relation.status):
        return []
    if not all(has(param, codes) for param, codes in relation.where):
        return []
    parties = [(t, i) for p, t, i in references if p in relation.party and t is not None]
    if relation.patient == (SELF,):
        patients = [rid]
    else:
        patients = [i for p, t, i in references if p in relation.patient and t == "Patient"]
    longer = relation.longer_than
    if relation.period:
        periods = [(low, high + relation.after_end) for p, low, high in dates
                   if p == relation.period and (longer is None or high - low > longer)]  # fmt: skip
    else:
        periods = [(LOWEST, HIGHEST)]
    return [(name, relation.resource, rid, t, i, patient, low, high)
            for t, i in parties for patient in patients for low, high in periods]  # fmt: skip


def rebuild(con: Connection) -> None:
    """Derive every row again, by the shipped policy, and remember which policy that was."""
    policy = _shipped()
    from naer.access.conditions import relation_rows

    con.execute(delete(care_relation))
    for name, relation in policy.relations.items():  # in SQL, from the index: no resource read again
        con.execute(insert(care_relation).from_select(_COLUMNS, relation_rows(name, relation)))
    con.execute(delete(care_relation_state))
    con.execute(insert(care_relation_state).values(policy=digest(policy)))


def stale(con: Connection) -> bool:
    """The rows were derived by another policy than the shipped one (or never)."""
    return not current(con, _shipped())


def current(con: Connection, policy: Policy) -> bool:
    """The kept rows are ``policy``'s relations."""
    row = con.execute(select(care_relation_state.c.policy)).first()
    return row is not None and row.policy == digest(policy)


_NAMES = ("relation", "resource_type", "id", "party_type", "party_id", "patient_id", "low", "high")
_COLUMNS = [
    care_relation.c.relation,
    care_relation.c.resource_type,
    care_relation.c.id,
    care_relation.c.party_type,
    care_relation.c.party_id,
    care_relation.c.patient_id,
    care_relation.c.low,
    care_relation.c.high,
]
