"""Inboxes: what is new, due and overdue for an organisation or a person, and what they asked that has
been answered — each list a search of the store as the signed-in asker (so the access condition is
inside every query and each citizen shown is audited), newest deadline first, with its count.

The lists overlap on purpose: a request that has not been received yet and whose answer time has passed
is both new and overdue, as a clinician would want to see it in both places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Engine

from naer import clock
from naer.access.context import AccessContext
from naer.coordination import values as v
from naer.coordination.advice import advice_workflow
from naer.coordination.machine import workflow
from naer.store.context import RequestContext
from naer.store.errors import Forbidden
from naer.store.resources import instant
from naer.store.search.query import search

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
    # listed from the asker's side), not once per row of each list (25 s for 10,000 items before).
    context = context.listing()
    at = at or clock.now()
    owner = _owner(context.principal, whose)
    flow = advice_workflow()
    states = v.state_system(flow)
    # What one asked and waits for or may read now: advice requests and diagnostic referrals.
    threads = [flow, workflow("referral")]
    asking = ",".join(f"{v.WORKFLOW_CODES}|{f.code}" for f in threads)
    answered = ",".join(f"{v.state_system(f)}|answered" for f in threads)
    waiting = ",".join(f"{v.state_system(f)}|{name}" for f in threads for name, s in f.states.items()
                       if s.waiting_for == "owner")  # fmt: skip
    mine = ("owner", owner)
    # An organisation's advice requests are found by the unit that sent them; a person's by the requester.
    asked = ("focus:CommunicationRequest.sender", owner) if whose == "organization" else ("requester", owner)
    queries: dict[str, list[tuple[str, str]]] = {
        "overdue": [mine, ("status", v.OPEN_TASK), ("deadline", f"lt{instant(at)}")],
        "due": [mine, ("status", v.OPEN_TASK), ("deadline", f"ge{instant(at)}"),
                ("deadline", f"lt{instant(at + DUE_WITHIN)}")],
        "new": [mine, ("status", "requested")],
        "escalated": [("recipient", owner) if whose == "person" else mine, ("status", v.OPEN_TASK),
                      ("business-status", f"{states}|escalated")],
        "answered": [asked, ("code", asking), ("business-status", answered)],
        "waiting": [asked, ("code", asking), ("business-status", waiting)],
    }  # fmt: skip
    lists: dict[str, Listing] = {}
    patients: dict[str, dict[str, Any]] = {}
    for name, pairs in queries.items():
        found = search(
            db,
            context,
            "Task",
            [*pairs, ("_sort", "deadline"), ("_count", str(limit)), ("_total", "accurate"),
             ("_include", "Task:patient")],
        )  # fmt: skip
        lists[name] = Listing(found.total or 0, [orjson.loads(m.content or "{}") for m in found.matches])
        for p in found.included:
            if p.resource_type == "Patient" and p.content:
                patients[f"Patient/{p.id}"] = orjson.loads(p.content)
    return Inbox(whose, owner, at, lists, patients)
