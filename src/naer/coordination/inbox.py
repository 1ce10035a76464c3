"""Inboxes: what is new, due and overdue for an organisation or a person, and what they asked that has
been answered, each list with its count and its first items by deadline.

One query finds every Task an inbox may list, with the asker's access condition inside it (the citizens
the asker may see, listed once for the request), and returns only what the lists are decided on: status,
business status and deadline. The lists are classified from those rows here, and only the Tasks shown
are read whole, by a search as the asker that audits each citizen shown. Six searches with their counts
and sorts took 1.5 to 2 s for an inbox of 10,000 items; docs/coordination.md has the figures.

The lists overlap on purpose: a request that has not been received yet and whose answer time has passed
is both new and overdue, as a clinician would want to see it in both places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, Engine, and_, literal, select, union_all

from naer import clock
from naer.access.conditions import micros
from naer.access.context import AccessContext
from naer.coordination import values as v
from naer.coordination.advice import advice_workflow
from naer.coordination.machine import workflow
from naer.store.context import RequestContext
from naer.store.errors import Forbidden
from naer.store.resources import connection, instant, planned_each_time
from naer.store.search.query import search
from naer.store.tables import INDEX_TABLES

DUE_WITHIN = timedelta(hours=24)
LISTS = ("overdue", "due", "new", "escalated", "answered", "waiting")
Whose = Literal["organization", "person"]


@dataclass
class Listing:
    """One list of an inbox: its first ``limit`` items (Tasks, by deadline) and how many there are."""

    count: int
    tasks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Inbox:
    whose: Whose
    owner: str  # the reference the inbox is for (Organization/x or PractitionerRole/y)
    at: datetime
    lists: dict[str, Listing]
    patients: dict[str, dict[str, Any]]  # the citizens the listed Tasks are for, as far as one may see

    def as_json(self) -> dict[str, Any]:
        return {
            "whose": self.whose,
            "owner": self.owner,
            "at": instant(self.at),
            "lists": {
                name: {"count": listing.count, "tasks": listing.tasks} for name, listing in self.lists.items()
            },
            "patients": self.patients,
        }


def _owner(principal: Any, whose: Whose) -> str:
    if whose == "organization":
        if not principal.organization:
            raise Forbidden("the account belongs to no organisation, so it has no organisation inbox")
        return f"Organization/{principal.organization}"
    if principal.practitioner_role:
        return f"PractitionerRole/{principal.practitioner_role}"
    if principal.practitioner:
        return f"Practitioner/{principal.practitioner}"
    raise Forbidden("the account is no health professional, so it has no personal inbox")


def _candidates(owner: str, whose: Whose, asking: list[str]) -> Any:
    """The ids of the Tasks an inbox may list, each with where it came from: ``mine`` (owned by the
    inbox's owner), ``called`` (the owner is its named recipient, an on-call role after escalation) and
    ``asked`` (what the owner asked: for an organisation the requests its unit sent and what its people
    asked, such as a clinic's referrals; for a person what they asked), the last limited to the workflows
    one waits on an answer in."""
    kind, _, rid = owner.partition("/")
    ref, code = INDEX_TABLES["reference"], INDEX_TABLES["token"]

    def naming(table: Any, param: str) -> list[ColumnElement[bool]]:
        return [table.c.resource_type == "Task", table.c.param == param,
                table.c.target_type == kind, table.c.target_id == rid]  # fmt: skip

    mine = select(ref.c.id, literal("mine").label("source")).where(*naming(ref, "owner"))
    called = select(ref.c.id, literal("called").label("source")).where(*naming(ref, "recipient"))
    if whose == "organization":  # requests the unit sent, and what its people asked (their referrals)
        focus, sender = ref.alias(), ref.alias()
        sent = select(focus.c.id).where(
            focus.c.resource_type == "Task", focus.c.param == "focus",
            focus.c.target_type == "CommunicationRequest",
            sender.c.resource_type == "CommunicationRequest", sender.c.id == focus.c.target_id,
            sender.c.param == "sender", sender.c.target_type == kind, sender.c.target_id == rid,
        )  # fmt: skip
        requester, staff = ref.alias(), ref.alias()
        by_staff = select(requester.c.id).where(
            requester.c.resource_type == "Task", requester.c.param == "requester",
            requester.c.target_type == "PractitionerRole",
            staff.c.resource_type == "PractitionerRole", staff.c.id == requester.c.target_id,
            staff.c.param == "organization", staff.c.target_type == kind, staff.c.target_id == rid,
        )  # fmt: skip
        asking_ids: Any = union_all(sent, by_staff).subquery()
    else:
        asking_ids = select(ref.c.id).where(*naming(ref, "requester")).subquery()
    asked = select(asking_ids.c.id, literal("asked").label("source")).where(
        asking_ids.c.id.in_(
            select(code.c.id).where(
                code.c.resource_type == "Task", code.c.param == "code",
                code.c.system == v.WORKFLOW_CODES, code.c.code.in_(asking),
            )
        )
    )  # fmt: skip
    return union_all(mine, called, asked).subquery()


@dataclass(frozen=True, slots=True)
class _Row:
    """What an inbox decides a Task's lists on."""

    sources: set[str]
    status: str | None
    business: tuple[str | None, str] | None
    deadline: int | None  # microseconds since the epoch, as the search index holds it


def _rows(db: Engine, context: AccessContext, owner: str, whose: Whose, asking: list[str]) -> dict[str, _Row]:
    """Every Task the inbox may list that the asker may see, by id: one query."""
    found = _candidates(owner, whose, asking)
    token, date = INDEX_TABLES["token"], INDEX_TABLES["date"]
    status, business, deadline = token.alias(), token.alias(), date.alias()

    def of(table: Any, param: str) -> ColumnElement[bool]:
        return and_(table.c.resource_type == "Task", table.c.id == found.c.id, table.c.param == param)

    # The index holds current, undeleted resources only: the candidates need no look at the resources.
    visible = context.visible(literal("Task"), found.c.id)
    query = (
        select(found.c.id, found.c.source, status.c.code, business.c.system, business.c.code, deadline.c.low)
        .select_from(
            found.outerjoin(status, of(status, "status"))
            .outerjoin(business, of(business, "business-status"))
            .outerjoin(deadline, of(deadline, "deadline"))
        )
        .where(*([] if visible is None else [visible]))
    )
    with connection(db, write=False) as con, planned_each_time(con):
        found_rows = con.execute(query).all()
    rows: dict[str, _Row] = {}
    for rid, source, state, system, code, low in found_rows:
        row = rows.get(rid)
        if row is None:
            rows[rid] = _Row({source}, state, None if code is None else (system, code), low)
        else:  # one Task from two sources (owned by the unit and asked by it)
            row.sources.add(source)
    return rows


def inbox(
    db: Engine,
    context: RequestContext,
    whose: Whose = "organization",
    limit: int = 50,
    at: datetime | None = None,
) -> Inbox:
    """The inbox of the asker's organisation (``organization``) or of the asker (``person``)."""
    if not isinstance(context, AccessContext):
        raise Forbidden("an inbox belongs to a signed-in person")
    # Thousands of open Tasks: the policy decided once for the request (the citizens the asker may see,
    # listed from the asker's side), not once per row (25 s for 10,000 items that way).
    context = context.listing()
    at = at or clock.now()
    owner = _owner(context.principal, whose)
    flow = advice_workflow()
    escalated = (v.state_system(flow), "escalated")
    # What one asked and waits for or may read now: advice requests and diagnostic referrals.
    threads = [flow, workflow("referral")]
    answered = {(v.state_system(f), "answered") for f in threads}
    waiting = {(v.state_system(f), name) for f in threads for name, s in f.states.items()
               if s.waiting_for == "owner"}  # fmt: skip
    rows = _rows(db, context, owner, whose, [f.code for f in threads])
    now, soon = micros(at), micros(at + DUE_WITHIN)
    open_states = set(v.OPEN_TASK.split(","))
    addressed = "called" if whose == "person" else "mine"  # escalated to the person, or in the unit

    def lists_of(r: _Row) -> list[str]:
        """The lists a Task is on (they overlap on purpose: new and overdue, say)."""
        found = []
        mine, opened = "mine" in r.sources, r.status in open_states
        if mine and opened and r.deadline is not None:
            if r.deadline < now:
                found.append("overdue")
            elif r.deadline < soon:
                found.append("due")
        if mine and r.status == "requested":
            found.append("new")
        if opened and r.business == escalated and addressed in r.sources:
            found.append("escalated")
        if "asked" in r.sources and r.business in answered:
            found.append("answered")
        if "asked" in r.sources and r.business in waiting:
            found.append("waiting")
        return found

    # The search's order by deadline: earliest first, those without one last, then by id.
    order = sorted(rows, key=lambda rid: (rows[rid].deadline is None, rows[rid].deadline or 0, rid))
    every: dict[str, list[str]] = {name: [] for name in LISTS}
    for rid in order:
        for name in lists_of(rows[rid]):
            every[name].append(rid)
    counts = {name: len(ids) for name, ids in every.items()}
    chosen = {name: ids[:limit] for name, ids in every.items()}
    shown = sorted({rid for ids in chosen.values() for rid in ids})
    tasks: dict[str, dict[str, Any]] = {}
    patients: dict[str, dict[str, Any]] = {}
    if shown:  # the Tasks shown, read as the asker: the citizen of each audited
        found = search(db, context, "Task", [("_id", ",".join(shown)), ("_count", str(len(shown))),
                                             ("_include", "Task:patient")])  # fmt: skip
        tasks = {m.id: orjson.loads(m.content or "{}") for m in found.matches}
        for p in found.included:
            if p.resource_type == "Patient" and p.content:
                patients[f"Patient/{p.id}"] = orjson.loads(p.content)
    lists = {
        name: Listing(counts[name], [tasks[rid] for rid in chosen[name] if rid in tasks]) for name in LISTS
    }
    return Inbox(whose, owner, at, lists, patients)
