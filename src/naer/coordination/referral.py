"""Fast diagnostic referral from general practice (hurtig udredning): a GP refers a citizen to a hospital
department on the fast track (or the standard track), the department receives it, books the first
examination and answers with the result and its advice to the GP; the thread stays together.

In FHIR: a ServiceRequest (category diagnostic-referral, intent order, priority from the track, the GP
as requester, the department as performer, the suspicion as reasonCode), its Task (code
diagnostic-referral, the workflow's state, the department as owner, the track's answer time as the
deadline) and a Communication for the booking and for the answer (``basedOn`` the ServiceRequest). The
state machine is workflows/referral.yaml; the tracks and their answer times are referrals.yaml. While the
ServiceRequest is active the department has the policy's service-request relation with the citizen.
"""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer import clock
from naer.access.principal import Principal
from naer.coordination import advice, tasks
from naer.coordination import values as v
from naer.coordination.agreements import Urgency
from naer.coordination.calendar import WorkingCalendar
from naer.coordination.machine import Workflow, workflow
from naer.coordination.tasks import Thread
from naer.errors import UserError
from naer.fhir.systems import NAER
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid

TRACKS_FILE = Path(__file__).with_name("referrals.yaml")
CATEGORY = f"{NAER}/CodeSystem/request-category"
TRACK = f"{NAER}/CodeSystem/referral-track"
CALENDAR = WorkingCalendar(also_closed=frozenset({(6, 5), (12, 24), (12, 31)}))  # as the agreements close


def referral_workflow() -> Workflow:
    return workflow("referral")


@cache
def tracks() -> dict[str, Urgency]:
    try:
        raw = yaml.safe_load(TRACKS_FILE.read_text(encoding="utf-8"))
        return {u.code: u for u in TypeAdapter(list[Urgency]).validate_python(raw)}
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise UserError(f"{TRACKS_FILE.name}: {error}") from None


def refer(
    db: Engine, context: RequestContext, patient_id: str, department_id: str, track: str, suspicion: str
) -> Thread:
    """A GP's referral of the citizen to ``department_id`` for diagnostic work-up on ``track``."""
    access = v.require_person(context)
    asker: Principal = access.principal
    if asker.role != "gp":
        raise Forbidden("a diagnostic referral is sent from general practice")
    requester = v.asker_ref(asker)
    chosen = tracks().get(track)
    if chosen is None:
        raise Invalid(f"unknown track {track!r} (known: {', '.join(tracks())})", where="track")
    reason = v.text(suspicion, "suspicion")
    patient_id = v.ident(patient_id, "patient")
    store.read(db, access, "Patient", patient_id)  # 404 for a citizen one may not know
    org, _ = advice.department(db, v.ident(department_id, "department"))
    now = clock.now()
    flow = referral_workflow()
    start = flow.state(flow.start)
    request_id = str(uuid.uuid4())
    department_ref = {
        "reference": f"Organization/{department_id}",
        "display": str(org.get("name", department_id)),
    }
    request = {
        "resourceType": "ServiceRequest",
        "status": start.request,
        "intent": "order",
        "category": [{"coding": [{"system": CATEGORY, "code": "diagnostic-referral",
                                  "display": "Henvisning til udredning"}]}],
        "priority": chosen.priority,
        "code": {"coding": [{"system": TRACK, "code": chosen.code, "display": chosen.label_da}],
                 "text": chosen.label},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": v.instant(now),
        "requester": requester,
        "performer": [department_ref],
        "reasonCode": [{"text": reason}],
    }  # fmt: skip
    task = {
        "resourceType": "Task",
        "status": start.task,
        "businessStatus": v.state_concept(flow, flow.start),
        "intent": "order",
        "priority": chosen.priority,
        "code": {"coding": [{"system": v.WORKFLOW_CODES, "code": flow.code, "display": flow.title_da}]},
        "description": f"{chosen.label_da}: {advice._headline(str(reason))}",
        "focus": {"reference": f"ServiceRequest/{request_id}"},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": v.instant(now),
        "lastModified": v.instant(now),
        "requester": requester,
        "owner": department_ref,
        "restriction": {"period": {"end": v.instant(chosen.deadline(now, CALENDAR))}},
        "input": [{"type": v.input_type("requesting-unit"),
                   "valueReference": {"reference": f"Organization/{asker.organization}"}}],
    }  # fmt: skip
    with db.begin() as con:
        made_request = store.create(con, access, "ServiceRequest", request, rid=request_id)
        made_task = store.create(con, access, "Task", task)
    return Thread(v.load(made_task), made_task.version_id, v.load(made_request), [])


def parties(p: Principal, task: dict[str, Any]) -> set[str]:
    """``requester``: the GP who referred, or a colleague at the clinic; ``owner``: the department."""
    return tasks.unit_parties(p, task)


def thread(db: Engine | Connection, context: RequestContext, task_id: str) -> Thread:
    """The referral, its Task and every message, as far as the asker may see them."""
    found, task = tasks.read(db, context, referral_workflow(), task_id)
    request = tasks.focus(db, context, task, "ServiceRequest")
    return Thread(task, found.version_id, request, tasks.messages(db, context, request))


def move(
    db: Engine,
    context: RequestContext,
    task_id: str,
    transition: str,
    text: Any = None,
    if_match: int | None = None,
) -> Thread:
    """Take ``transition`` on the referral as the asker (checked by the state machine; the booking or the
    answer as a Communication to the GP), in one transaction; a stale If-Match changes nothing."""
    access = v.require_person(context)
    flow = referral_workflow()
    now = clock.now()
    with db.begin() as con:
        found, task = tasks.read(con, access, flow, task_id)
        request = tasks.focus(con, access, task, "ServiceRequest")
        who = parties(access.principal, task)
        flow.may(transition, who)
        tasks.fresh(found, if_match)
        step, message = tasks.step(flow, task, transition, who, text)
        messages = tasks.messages(con, access, request)
        changed = tasks.moved(flow, task, step.to, now)
        made: list[dict[str, Any]] = []
        if message is not None:
            addressed = [task.get("requester")] if transition in ("book", "answer") else [task.get("owner")]
            made.append(tasks.write_message(con, access, request, addressed, message, transition))
        written = store.update(con, access, "Task", task["id"], changed, if_match=found.version_id)
        request = tasks.follow(con, access, request, flow.state(step.to).request)
    return Thread(v.load(written), written.version_id, request, messages + made)
