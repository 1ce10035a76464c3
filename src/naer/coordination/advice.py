"""Advice requests (rådgivning): a municipal nurse or a GP asks a hospital department about a named
citizen, the department answers, and the thread stays together — with the answer time of the
agreement between the region and the citizen's municipality, escalation of an overdue request to the
department's on-call role, and the 72-hour rule (a request about a citizen discharged in the last 72
hours goes to the discharging department by itself).

In FHIR a request is three kinds of resource in the store, written together in one transaction:
- a CommunicationRequest: the question, who asked (``requester``: the person's PractitionerRole;
  ``sender``: their unit), whom (``recipient``: the department), about whom (``subject``) and how urgent;
  while it is active, both parties have the policy's advice-request relation with the citizen;
- a Task (``code`` advice, ``focus`` the CommunicationRequest): the workflow's state (``status`` and
  ``businessStatus``, from workflows/advice.yaml), the department as ``owner``, the deadline as
  ``restriction.period.end``, the agreement and urgency as ``input``;
- a Communication for each answer and each further question (``basedOn`` the CommunicationRequest).

Every read and write goes through the store as the signed-in asker (its access condition and audit),
and every move is checked by the state machine first (machine.py): what the definition does not allow
never reaches the store.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer import clock
from naer.access.context import AccessContext
from naer.access.policy import policy
from naer.access.principal import Principal
from naer.coordination import agreements, tasks
from naer.coordination import values as v
from naer.coordination.machine import Workflow, workflow
from naer.coordination.tasks import Thread
from naer.errors import UserError
from naer.fhir.systems import (
    DISCHARGE_DISPOSITION,
    NAER,
    ORG_KIND,
)
from naer.store import resources as store
from naer.store.context import SYSTEM, RequestContext
from naer.store.errors import Forbidden, Invalid, PreconditionFailed, StoreError, Unprocessable
from naer.store.search.query import search

URGENCY = f"{NAER}/CodeSystem/advice-urgency"
ROUTING = f"{NAER}/CodeSystem/advice-routing"


def advice_workflow() -> Workflow:
    return workflow("advice")


@dataclass(frozen=True)
class Question:
    """What an asker sends: about whom, to which department (optional within 72 hours of a discharge),
    how urgent (an urgency code of the agreement) and the question itself."""

    patient: str
    urgency: str
    text: str
    department: str | None = None


# -- small helpers -------------------------------------------------------------------------------------


# -- who the asker is to a request ---------------------------------------------------------------------


def parties(p: Principal, task: dict[str, Any], request: dict[str, Any]) -> set[str]:
    """``requester`` and/or ``owner``: what the asker is to this request. The requester is the person who
    asked or a colleague in the unit that asked (the CommunicationRequest's sender); the owner is anyone
    in the department asked, or the person holding the role an overdue request was escalated to (a
    recipient in the Task's restriction)."""
    found: set[str] = set()
    mine = {f"PractitionerRole/{p.practitioner_role}", f"Practitioner/{p.practitioner}"}
    requester = (task.get("requester") or {}).get("reference")
    sender = v.ref_id(request.get("sender"), "Organization")
    if requester in mine or (p.organization and sender == p.organization):
        found.add("requester")
    if p.organization and v.ref_id(task.get("owner"), "Organization") == p.organization:
        found.add("owner")
    recipients = {(r or {}).get("reference") for r in (task.get("restriction") or {}).get("recipient") or []}
    if recipients & mine:
        found.add("owner")
    return found


# -- where a request goes and by when ------------------------------------------------------------------


def _region_of(db: Engine | Connection, org: dict[str, Any]) -> str | None:
    """The region (DK-8x) an organisation belongs to: the ``address.state`` of the first organisation up
    its ``partOf`` chain that has one (the region itself)."""
    for found in v.chain(db, org):
        for address in found.get("address") or []:
            state = address.get("state")
            if isinstance(state, str) and re.match(r"^DK-8[1-5]$", state):
                return state
    return None


def department(db: Engine | Connection, rid: str) -> tuple[dict[str, Any], str]:
    """The hospital department ``rid`` and its region, or a clear refusal (nothing is written)."""
    org = v.directory(db, "Organization", rid)
    if org is None or org.get("active") is False:
        raise Unprocessable(f"there is no active department Organization/{rid}", where="department")
    kinds = v.codes(org.get("type"), ORG_KIND)
    if v.sector(org) != "region" or not any(k.startswith("department") for k in kinds):
        raise Unprocessable(
            f"Organization/{rid} ({org.get('name', rid)}) is not a hospital department", where="department"
        )
    region = _region_of(db, org)
    if region is None:
        raise Unprocessable(f"Organization/{rid} belongs to no region", where="department")
    return org, region


def discharged_from(db: Engine | Connection, patient: str, at: datetime) -> dict[str, Any] | None:
    """The Encounter of a discharge within the 72 hours before ``at`` that gives the discharging
    department the extended treatment responsibility, by the same rule as the access policy's
    ``discharge-72-hours`` relation (policy.yaml: an inpatient stay of more than 24 hours, discharged
    home or to a municipal or nursing bed); the latest such discharge."""
    rule = policy().relations["discharge-72-hours"]
    where = dict(rule.where)
    found = search(
        db,
        SYSTEM,
        "Encounter",
        [
            ("patient", f"Patient/{patient}"),
            ("status", ",".join(rule.status)),
            ("class", ",".join(where.get("class", ("IMP",)))),
            ("date", f"ge{v.instant(at - timedelta(microseconds=rule.after_end))}"),
            ("_count", "100"),
        ],
    )
    best: tuple[datetime, dict[str, Any]] | None = None
    for match in found.matches:
        encounter = v.load(match)
        period = encounter.get("period") or {}
        try:
            start, end = v.aware(period["start"]), v.aware(period["end"])
        except (KeyError, TypeError, ValueError):
            continue
        dispositions = v.codes(
            (encounter.get("hospitalization") or {}).get("dischargeDisposition"), DISCHARGE_DISPOSITION
        )
        if not set(dispositions) & set(where.get("discharge-disposition", ())):
            continue
        long_enough = rule.longer_than is None or end - start > timedelta(microseconds=rule.longer_than)
        within = end <= at <= end + timedelta(microseconds=rule.after_end)
        if long_enough and within and (best is None or end > best[0]):
            best = (end, encounter)
    return best[1] if best else None


# -- the workflow ---------------------------------------------------------------------------------------


def ask(db: Engine, context: RequestContext, question: Question) -> Thread:
    """Send an advice request: the CommunicationRequest and its Task, in one transaction."""
    access = v.require_person(context)
    asker = access.principal
    patient_id = v.ident(question.patient, "patient")
    text = v.text(question.text, "question")
    urgency_code = v.text(question.urgency, "urgency")
    wanted = v.ident(question.department, "department") if question.department is not None else None
    requester = v.asker_ref(asker)
    if not asker.organization:
        raise Forbidden("an advice request is sent from a unit: the account has no organisation")
    now = clock.now()
    patient = v.load(store.read(db, access, "Patient", patient_id))  # 404 for a citizen one may not know
    routed = discharged_from(db, patient_id, now)
    routing = "discharge-72-hours" if routed is not None else "chosen"
    target = v.ref_id((routed or {}).get("serviceProvider"), "Organization") if routed else wanted
    if target is None:
        raise Invalid(
            "name the department to ask (the citizen was not discharged in the last 72 hours, so no "
            "department holds the extended treatment responsibility)",
            where="department",
        )
    org, region = department(db, target)
    try:
        agreement = agreements.choose(region, v.municipality(patient))
        urgency = agreement.urgency(str(urgency_code))
    except StoreError:
        raise
    except UserError as error:  # no agreement covers the parties, or it has no such urgency
        raise Unprocessable(str(error), where="urgency") from None
    deadline = urgency.deadline(now, agreement.calendar)
    flow = advice_workflow()
    start = flow.state(flow.start)
    request_id = str(uuid.uuid4())
    patient_ref = {"reference": f"Patient/{patient_id}"}
    department_ref = {"reference": f"Organization/{target}", "display": str(org.get("name", target))}
    request: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "status": start.request,
        "category": [{"coding": [{"system": v.WORKFLOW_CODES, "code": flow.code}]}],
        "priority": urgency.priority,
        "subject": patient_ref,
        "payload": [{"contentString": text}],
        "authoredOn": v.instant(now),
        "requester": requester,
        "sender": {"reference": f"Organization/{asker.organization}"},
        "recipient": [department_ref],
    }
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": start.task,
        "businessStatus": v.state_concept(advice_workflow(), flow.start),
        "intent": "order",
        "priority": urgency.priority,
        "code": {"coding": [{"system": v.WORKFLOW_CODES, "code": flow.code, "display": flow.title_da}]},
        "description": _headline(str(text)),
        "focus": {"reference": f"CommunicationRequest/{request_id}"},
        "for": patient_ref,
        "authoredOn": v.instant(now),
        "lastModified": v.instant(now),
        "requester": requester,
        "owner": department_ref,
        "restriction": {"period": {"end": v.instant(deadline)}},
        "input": [
            {"type": v.input_type("agreement"), "valueString": f"{agreement.id}|{agreement.version}"},
            {"type": v.input_type("urgency"), "valueCoding": {"system": URGENCY, "code": urgency.code,
                                                         "display": urgency.label_da}},
            {"type": v.input_type("routing"), "valueCoding": {"system": ROUTING, "code": routing}},
        ],
    }  # fmt: skip
    if routed is not None:
        task["input"].append(
            {"type": v.input_type("discharge"), "valueReference": {"reference": f"Encounter/{routed['id']}"}}
        )
    with db.begin() as con:
        made_request = store.create(con, access, "CommunicationRequest", request, rid=request_id)
        made_task = store.create(con, access, "Task", task)
    return Thread(v.load(made_task), made_task.version_id, v.load(made_request), [])


def _headline(text: str, most: int = 120) -> str:
    """The question's first line, shortened, as the Task's description (what an inbox shows)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= most else first[: most - 1].rstrip() + "…"


def thread(db: Engine | Connection, context: RequestContext, task_id: str) -> Thread:
    """The request, its question and every message, as far as the asker may see them."""
    found, task = tasks.read(db, context, advice_workflow(), task_id)
    request = tasks.focus(db, context, task, "CommunicationRequest")
    return Thread(task, found.version_id, request, tasks.messages(db, context, request))


def move(
    db: Engine,
    context: RequestContext,
    task_id: str,
    transition: str,
    text: Any = None,
    if_match: int | None = None,
) -> Thread:
    """Take ``transition`` on the request as the asker: checked by the state machine, then written (the
    Task, the CommunicationRequest's status, the message) in one transaction; a Task changed since the
    asker read it (If-Match) is refused with 412 and nothing is written."""
    access = v.require_person(context)
    flow = advice_workflow()
    with db.begin() as con:
        found, task = tasks.read(con, access, flow, task_id)
        request = tasks.focus(con, access, task, "CommunicationRequest")
        who = parties(access.principal, task, request)
        flow.may(transition, who)
        tasks.fresh(found, if_match)
        step, message = tasks.step(flow, task, transition, who, text)
        messages = tasks.messages(con, access, request)
        written = _apply(con, access, flow, task, found.version_id, request, step.to, message, transition)
    # What was written, not read again: a move may end the mover's own relation with the citizen (an
    # on-call physician's answer completes the Task that gave the access), and must not fail for that.
    return Thread(v.load(written.task), written.task.version_id, written.request, messages + written.messages)


def _apply(
    con: Connection,
    context: AccessContext | RequestContext,
    flow: Workflow,
    task: dict[str, Any],
    version: int,
    request: dict[str, Any],
    to: str,
    message: str | None,
    transition: str,
    recipient: dict[str, str] | None = None,
) -> Written:
    now = clock.now()
    state = flow.state(to)
    task = tasks.moved(flow, task, to, now)
    if flow.transitions[transition].deadline == "restart":
        restriction = dict(task.get("restriction") or {})
        restriction["period"] = {"end": v.instant(_new_deadline(task, now))}
        task["restriction"] = restriction
    if recipient is not None:
        restriction = dict(task.get("restriction") or {})
        restriction["recipient"] = [*(restriction.get("recipient") or []), recipient]
        task["restriction"] = restriction
    messages = []
    if message is not None and isinstance(context, AccessContext):
        addressed = [task.get("requester")] if transition == "answer" else [task.get("owner")]
        made = tasks.write_message(con, context, request, addressed, message, transition)
        messages.append(made)
        if transition == "answer":
            answer = {"reference": f"Communication/{made['id']}"}
            task["output"] = [
                *(task.get("output") or []),
                {"type": v.input_type("answer"), "valueReference": answer},
            ]
    stored = store.update(con, context, "Task", task["id"], task, if_match=version)
    return Written(stored, tasks.follow(con, context, request, state.request), messages)


@dataclass
class Written:
    """What one move wrote: the Task's new version, the CommunicationRequest as it now is, new messages."""

    task: store.Stored
    request: dict[str, Any]
    messages: list[dict[str, Any]]


def sent_under(task: dict[str, Any]) -> tuple[str, str]:
    """The agreement (its id) and the urgency (its code) an advice request was sent under (its inputs)."""
    found = v.inputs(task)
    agreement = str((found.get("agreement") or {}).get("valueString", "")).split("|")[0]
    urgency = str(((found.get("urgency") or {}).get("valueCoding") or {}).get("code", ""))
    return agreement, urgency


def _new_deadline(task: dict[str, Any], now: datetime) -> datetime:
    agreement_id, urgency = sent_under(task)
    agreement = agreements.by_id(agreement_id)
    if agreement is None or not urgency:
        raise Unprocessable(f"Task/{task.get('id')} names no agreement and urgency Nær knows")
    return agreement.urgency(urgency).deadline(now, agreement.calendar)


# -- the clock: escalation ------------------------------------------------------------------------------


def on_call_role(db: Engine | Connection, department_id: str, code: str) -> dict[str, str] | None:
    """The department's on-call role (an active PractitionerRole of the organisation with the agreement's
    ``escalate_to`` code), as a reference; None when the department registers none."""
    found = search(
        db, SYSTEM, "PractitionerRole",
        [("organization", f"Organization/{department_id}"), ("role", f"{v.ROLE_CODES}|{code}"),
         ("active", "true"), ("_count", "1"), ("_sort", "_id")],
    )  # fmt: skip
    if not found.matches:
        return None
    role = v.load(found.matches[0])
    return {"reference": f"PractitionerRole/{role['id']}", "display": "Vagthavende"}


def escalate_overdue(db: Engine, at: datetime | None = None) -> list[str]:
    """Escalate every request whose answer time has passed without an answer: its state becomes
    escalated and the department's on-call role is added as a recipient. Nær does this as a system
    client (audited); a request another writer changed meanwhile is left for the next round."""
    from naer.store.errors import Conflict

    at = at or clock.now()
    context = AccessContext(v.COORDINATION, db, None)
    flow = advice_workflow()
    escalate = flow.transitions["escalate"]
    waiting = ",".join(f"{v.state_system(advice_workflow())}|{s}" for s in escalate.from_)
    found = search(
        db, context, "Task",
        [("code", f"{v.WORKFLOW_CODES}|{flow.code}"), ("business-status", waiting),
         ("deadline", f"lt{v.instant(at)}"), ("_count", "1000"), ("_sort", "deadline")],
    )  # fmt: skip
    done = []
    for match in found.matches:
        task = v.load(match)
        try:
            with db.begin() as con:
                request = tasks.focus(con, context, task, "CommunicationRequest")
                flow.step(v.state_of(task, advice_workflow()) or flow.start, "escalate", {"system"})
                owner = v.ref_id(task.get("owner"), "Organization")
                agreement = agreements.by_id(sent_under(task)[0])
                role = on_call_role(con, owner, agreement.escalate_to) if owner and agreement else None
                _apply(
                    con, context, flow, task, match.version_id, request, "escalated", None, "escalate", role
                )
            done.append(str(task["id"]))
        except (Conflict, PreconditionFailed):
            continue
    return done
