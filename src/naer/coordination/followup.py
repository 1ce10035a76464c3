"""Discharge follow-up: at discharge the hospital department hands over each follow-up need — also
needs other than the admission's cause — to the organisation responsible for it, with a due date; each
need becomes a Task owned by that organisation (workflows/follow-up.yaml), all of one hand-over written in
one transaction and grouped by one ``groupIdentifier``.

Only the requester (the discharging department) creates the Tasks and may cancel one; only the owner
moves a Task on (accept, done, refuse with a reason), with If-Match against lost updates. Where the
department does not name the organisation, sectors.yaml says how it is found from the citizen (their GP
clinic, their municipality's home care or rehabilitation, the region's psychiatry).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer import clock
from naer.access.principal import Principal
from naer.coordination import careplan, tasks
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.coordination.machine import Workflow, workflow
from naer.errors import UserError
from naer.fhir.systems import NAER, ORG_KIND
from naer.store import resources as store
from naer.store.context import SYSTEM, RequestContext
from naer.store.errors import Conflict, Forbidden, Invalid, Unprocessable
from naer.store.search.query import search

SECTORS_FILE = Path(__file__).with_name("sectors.yaml")
SECTOR_CODES = f"{NAER}/CodeSystem/follow-up-sector"
HANDOVER = f"{NAER}/identifier/discharge-handover"
MUNICIPALITY_IDS = "http://hl7.dk/fhir/core/CodeSystem/dk-core-municipality-codes"
INPATIENT = {"IMP", "ACUTE", "NONAC"}
MAX_NEEDS = 30
LONGEST = timedelta(days=366)
HAND_OVER_WINDOW = timedelta(hours=72)


class Sector(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str
    title_da: str
    find: Literal["general-practitioner", "municipality", "municipality-unit", "region-unit"]
    kind: str | None = None


@cache
def sectors() -> dict[str, Sector]:
    try:
        raw = yaml.safe_load(SECTORS_FILE.read_text(encoding="utf-8"))
        found = {str(k): Sector.model_validate(value) for k, value in raw.items()}
    except (OSError, yaml.YAMLError, AttributeError, ValidationError) as error:
        raise UserError(f"{SECTORS_FILE.name}: {error}") from None
    for name, sector in found.items():
        if sector.find.endswith("-unit") and not sector.kind:
            raise UserError(f"{SECTORS_FILE.name}: {name}: find {sector.find} needs a kind")
    return found


def follow_up_workflow() -> Workflow:
    return workflow("follow-up")


@dataclass(frozen=True)
class Need:
    """One follow-up need: which sector takes it (and optionally which organisation), what, by when, and
    whether it is about the admission's own cause."""

    sector: str
    text: str
    due: date
    about_admission: bool = True
    organization: str | None = None


def _end_of(day: date) -> datetime:
    """The end of a due day in Denmark, as the deadline (23:59:59 Danish time)."""
    return datetime.combine(day, time(23, 59, 59), DANISH_TIME)


def _unit(db: Engine | Connection, pairs: list[tuple[str, str]]) -> dict[str, Any] | None:
    found = search(
        db, SYSTEM, "Organization", [*pairs, ("active", "true"), ("_sort", "_id"), ("_count", "1")]
    )
    return v.load(found.matches[0]) if found.matches else None


def responsible(
    db: Engine | Connection, name: str, patient: dict[str, Any], department: dict[str, Any]
) -> dict[str, Any]:
    """The organisation responsible for the citizen in sector ``name``, or a clear refusal."""
    sector = sectors().get(name)
    if sector is None:
        raise Invalid(f"unknown sector {name!r} (known: {', '.join(sectors())})", where="sector")
    found: dict[str, Any] | None = None
    code = v.municipality(patient)
    if sector.find == "general-practitioner":
        clinic = next(
            (v.ref_id(r, "Organization") for r in patient.get("generalPractitioner") or []
             if v.ref_id(r, "Organization")), None,
        )  # fmt: skip
        found = v.directory(db, "Organization", clinic) if clinic else None
    elif sector.find in ("municipality", "municipality-unit") and code:
        municipality = _unit(db, [("identifier", f"{MUNICIPALITY_IDS}|{code}")])
        if municipality is not None and sector.find == "municipality-unit":
            found = _unit(
                db, [("partof", f"Organization/{municipality['id']}"), ("type", f"{ORG_KIND}|{sector.kind}")]
            )
        else:
            found = municipality
    elif sector.find == "region-unit":
        region = v.chain(db, department)[-1]  # the department's region: the top of its chain
        found = _unit(db, [("partof", f"Organization/{region['id']}"), ("type", f"{ORG_KIND}|{sector.kind}")])
    if found is None:
        raise Unprocessable(
            f"no {sector.title.lower()} is registered for this citizen (municipality {code or 'unknown'}): "
            "name the organisation",
            where="organization",
        )
    return found


def _need(raw: Need, today: date) -> Need:
    if raw.sector not in sectors():
        raise Invalid(f"unknown sector {raw.sector!r} (known: {', '.join(sectors())})", where="sector")
    if raw.due < today:
        raise Invalid(f"the due date {raw.due.isoformat()} has passed", where="due")
    if raw.due > today + LONGEST:
        raise Invalid(f"the due date {raw.due.isoformat()} is more than a year ahead", where="due")
    text = v.text(raw.text, "need")
    organization = v.ident(raw.organization, "organization") if raw.organization is not None else None
    return Need(raw.sector, str(text), raw.due, raw.about_admission, organization)


def hand_over(
    db: Engine, context: RequestContext, encounter_id: str, needs: list[Need]
) -> list[dict[str, Any]]:
    """Hand the follow-up needs of the discharge ``encounter_id`` over: one Task per need, owned by the
    responsible organisation, all or none."""
    access = v.require_person(context)
    asker: Principal = access.principal
    requester = v.asker_ref(asker)
    if not needs:
        raise Invalid("a hand-over lists at least one follow-up need", where="needs")
    if len(needs) > MAX_NEEDS:
        raise Invalid(f"a hand-over lists at most {MAX_NEEDS} needs", where="needs")
    encounter = v.load(store.read(db, access, "Encounter", v.ident(encounter_id, "encounter")))
    klass = (encounter.get("class") or {}).get("code")
    department_id = v.ref_id(encounter.get("serviceProvider"), "Organization")
    if klass not in INPATIENT:
        raise Unprocessable(
            f"Encounter/{encounter_id} is not a hospital stay (class {klass})", where="encounter"
        )
    if not asker.organization or department_id != asker.organization:
        raise Forbidden("only the department that discharges the citizen hands over the follow-up")
    _at_discharge(encounter, encounter_id)
    patient_id = v.ref_id(encounter.get("subject"), "Patient")
    if patient_id is None:
        raise Unprocessable(f"Encounter/{encounter_id} names no citizen", where="encounter")
    patient = v.load(store.read(db, access, "Patient", patient_id))
    department = v.directory(db, "Organization", department_id) or {"id": department_id}
    now = clock.now()
    today = now.astimezone(DANISH_TIME).date()
    checked = [_need(n, today) for n in needs]
    flow = follow_up_workflow()
    group = {"system": HANDOVER, "value": str(uuid.uuid4())}
    made = []
    with db.begin() as con:
        for need in checked:
            if need.organization:
                owner = v.directory(con, "Organization", need.organization)
                if owner is None or owner.get("active") is False:
                    raise Unprocessable(
                        f"there is no active Organization/{need.organization}", where="organization"
                    )
            else:
                owner = responsible(con, need.sector, patient, department)
            task = _task(flow, need, encounter, patient_id, requester, department_id, owner, group, now)
            made.append(v.load(store.create(con, access, "Task", task)))
    return made


def _at_discharge(encounter: dict[str, Any], encounter_id: str) -> None:
    """A hand-over belongs to a discharge: the stay is still open, or ended within the last 72 hours (the
    discharging department's extended responsibility); a stay that ended long ago is refused."""
    status = encounter.get("status")
    if status in ("planned", "arrived", "triaged", "in-progress", "onleave"):
        return
    end = (encounter.get("period") or {}).get("end")
    try:
        ended = v.aware(str(end)) if end else None
    except ValueError:
        ended = None
    if status == "finished" and ended is not None and clock.now() - ended <= HAND_OVER_WINDOW:
        return
    shown = f"ended {ended.date().isoformat()}" if ended else f"is {status}"
    raise Conflict(f"Encounter/{encounter_id} {shown}: a hand-over is made at discharge (within 72 hours)")


def _task(
    flow: Workflow, need: Need, encounter: dict[str, Any], patient_id: str, requester: dict[str, str],
    department_id: str, owner: dict[str, Any], group: dict[str, str], now: datetime,
) -> dict[str, Any]:  # fmt: skip
    sector = sectors()[need.sector]
    return {
        "resourceType": "Task",
        "groupIdentifier": group,
        "status": flow.state(flow.start).task,
        "businessStatus": v.state_concept(flow, flow.start),
        "intent": "order",
        "code": {"coding": [{"system": v.WORKFLOW_CODES, "code": flow.code, "display": flow.title_da}]},
        "description": need.text,
        "for": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter['id']}"},
        "authoredOn": v.instant(now),
        "lastModified": v.instant(now),
        "requester": requester,
        "owner": {"reference": f"Organization/{owner['id']}", "display": str(owner.get("name", owner["id"]))},
        "restriction": {"period": {"end": _end_of(need.due).isoformat()}},
        "input": [
            {"type": v.input_type("sector"),
             "valueCoding": {"system": SECTOR_CODES, "code": need.sector, "display": sector.title_da}},
            {"type": v.input_type("about-admission"), "valueBoolean": need.about_admission},
            {"type": v.input_type("requesting-unit"),
             "valueReference": {"reference": f"Organization/{department_id}"}},
        ],
    }  # fmt: skip


def parties(p: Principal, task: dict[str, Any]) -> set[str]:
    """``requester`` (the person who handed over, or a colleague in the discharging department) and/or
    ``owner`` (anyone in the responsible organisation)."""
    return tasks.unit_parties(p, task)


def move(
    db: Engine,
    context: RequestContext,
    task_id: str,
    transition: str,
    text: Any = None,
    if_match: int | None = None,
) -> tuple[dict[str, Any], int]:
    """Take ``transition`` on a follow-up Task as the asker (its text kept as a note, a refusal's also as
    the status reason); the Task and its new version."""
    access = v.require_person(context)
    flow = follow_up_workflow()
    now = clock.now()
    with db.begin() as con:
        found, task = tasks.read(con, access, flow, task_id)
        who = parties(access.principal, task)
        flow.may(transition, who)
        tasks.fresh(found, if_match)
        step, message = tasks.step(flow, task, transition, who, text)
        changed = tasks.moved(flow, task, step.to, now)
        if message:
            changed = tasks.noted(changed, v.asker_ref(access.principal), message, now)
            if step.to == "refused":
                changed["statusReason"] = {"text": message}
        written = store.update(con, access, "Task", task["id"], changed, if_match=found.version_id)
        patient = v.ref_id(task.get("for"), "Patient")
        owner = v.ref_id(task.get("owner"), "Organization")
        if patient and owner:  # the care team follows the Tasks
            if step.to == "accepted":
                sector = (v.inputs(task).get("sector") or {}).get("valueCoding", {}).get("display", "")
                careplan.join(con, patient, owner, f"Opfølgning efter udskrivelse: {sector}".strip(": "))
            elif flow.state(step.to).waiting_for is None:
                careplan.leave(con, patient, owner)
    return v.load(written), written.version_id


def of_handover(db: Engine, context: RequestContext, group: str) -> list[dict[str, Any]]:
    """The Tasks of one hand-over the asker may see (its groupIdentifier's value)."""
    found = search(
        db,
        context,
        "Task",
        [("group-identifier", f"{HANDOVER}|{v.ident(group, 'handover')}"), ("_count", "100")],
    )
    return [v.load(m) for m in found.matches]
