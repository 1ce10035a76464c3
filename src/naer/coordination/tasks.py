"""Moving a workflow's Task from one state to the next, the same way for every workflow: read it as the
asker (404 for one the asker may not know of, or of another workflow), refuse a stale ``If-Match`` (412),
ask the state machine whether this party may take this transition from this state, check the text the
transition carries, and give the Task its new state. The workflow modules add what is theirs (a message,
a new deadline) and write it in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer.coordination import values as v
from naer.coordination.machine import Transition, Workflow
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Invalid, NotFound, PreconditionFailed, Unprocessable


def read(
    db: Engine | Connection, context: RequestContext, flow: Workflow, task_id: str
) -> tuple[store.Stored, dict[str, Any]]:
    """The Task ``task_id`` of ``flow`` as the asker may see it."""
    found = store.read(db, context, "Task", v.ident(task_id, "task"))
    task = v.load(found)
    if not v.is_workflow(task, flow):
        title = flow.title.lower()
        raise NotFound(f"Task/{task_id} is not {'an' if title[:1] in 'aeiou' else 'a'} {title}")
    return found, task


def fresh(found: store.Stored, if_match: int | None) -> None:
    """Refuse a move made on an older version than the stored one (the If-Match the mover sent)."""
    if if_match is not None and if_match != found.version_id:
        raise PreconditionFailed(
            f"Task/{found.id} is at version {found.version_id}, not {if_match} (If-Match): read it again"
        )


def step(
    flow: Workflow, task: dict[str, Any], transition: str, parties: set[str], text: Any
) -> tuple[Transition, str | None]:
    """The transition, if these parties may take it from the Task's state, and its checked text."""
    move = flow.step(v.state_of(task, flow) or flow.start, transition, parties)
    if move.text == "none":
        if text not in (None, ""):
            raise Invalid(f"{transition} carries no text", where="text")
        return move, None
    return move, v.text(text, "text", required=move.text == "required")


def moved(flow: Workflow, task: dict[str, Any], to: str, now: datetime) -> dict[str, Any]:
    """The Task in state ``to``: its status, businessStatus and lastModified (meta left to the store)."""
    state = flow.state(to)
    task = dict(task)
    task.pop("meta", None)
    task["status"] = state.task
    task["businessStatus"] = v.state_concept(flow, to)
    task["lastModified"] = v.instant(now)
    return task


def noted(task: dict[str, Any], author: dict[str, str], text: str, now: datetime) -> dict[str, Any]:
    """The Task with a note added (who wrote it, when)."""
    note = {"authorReference": author, "time": v.instant(now), "text": text}
    return {**task, "note": [*(task.get("note") or []), note]}


@dataclass
class Thread:
    """One request as the asker may see it: its Task (with the version for If-Match), the request
    resource (a CommunicationRequest for advice, a ServiceRequest for a referral) and the messages in the
    order they were written."""

    task: dict[str, Any]
    version: int
    request: dict[str, Any]
    messages: list[dict[str, Any]]

    @property
    def state(self) -> str:
        """The workflow state (the Task's businessStatus code)."""
        codings = (self.task.get("businessStatus") or {}).get("coding") or [{}]
        return str(codings[0].get("code", ""))

    def bundle(self) -> dict[str, Any]:
        """The thread as a FHIR Bundle (collection): the Task, the request, then each message."""
        items = [self.task, self.request, *self.messages]
        return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in items]}


def messages(
    db: Engine | Connection, context: RequestContext, request: dict[str, Any]
) -> list[dict[str, Any]]:
    """The thread's messages (Communications ``basedOn`` the request), oldest first, as the asker may see."""
    from naer.store.search.query import search

    based_on = f"{request['resourceType']}/{request['id']}"
    found = search(
        db, context, "Communication", [("based-on", based_on), ("_sort", "sent"), ("_count", "1000")]
    )
    return [v.load(m) for m in found.matches]


def write_message(
    con: Connection, context: Any, request: dict[str, Any], recipients: list[Any], text: str, transition: str
) -> dict[str, Any]:
    """A message of the thread from the signed-in person (a Communication ``basedOn`` the request, its
    transition kept as a note), written in the move's transaction."""
    from naer import clock

    communication = {
        "resourceType": "Communication",
        "status": "completed",
        "basedOn": [{"reference": f"{request['resourceType']}/{request['id']}"}],
        "category": request.get("category"),
        "subject": request.get("subject"),
        "sent": v.instant(clock.now()),
        "sender": v.asker_ref(context.principal),
        "recipient": [r for r in recipients if r],
        "payload": [{"contentString": text}],
        "note": [{"text": transition}],
    }
    return v.load(store.create(con, context, "Communication", communication))


def focus(
    db: Engine | Connection, context: RequestContext, task: dict[str, Any], kind: str
) -> dict[str, Any]:
    """The request a workflow's Task is about (its ``focus``: a CommunicationRequest, a ServiceRequest)."""
    rid = v.ref_id(task.get("focus"), kind)
    if rid is None:
        raise Unprocessable(f"Task/{task.get('id')} names no {kind} as its focus")
    return v.load(store.read(db, context, kind, rid))


def follow(con: Connection, context: Any, request: dict[str, Any], status: str | None) -> dict[str, Any]:
    """The request with the status its Task's new state gives it (written only when it changes)."""
    if not status or request.get("status") == status:
        return request
    changed = {k: val for k, val in request.items() if k != "meta"}
    changed["status"] = status
    return v.load(store.update(con, context, str(request["resourceType"]), str(request["id"]), changed))


def unit_parties(p: Any, task: dict[str, Any]) -> set[str]:
    """``requester`` (the person who sent the Task, or a colleague in the unit named as its
    requesting-unit input) and/or ``owner`` (the owner itself, or anyone in the owning organisation)."""
    found: set[str] = set()
    unit = v.ref_id(v.inputs(task).get("requesting-unit", {}).get("valueReference"), "Organization")
    if (task.get("requester") or {}).get("reference") in v.mine(p) or (
        p.organization and unit == p.organization
    ):
        found.add("requester")
    owner = task.get("owner") or {}
    if owner.get("reference") in v.mine(p) or (
        p.organization and v.ref_id(owner, "Organization") == p.organization
    ):
        found.add("owner")
    return found
