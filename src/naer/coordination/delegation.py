"""Medical responsibility and framework delegation (rammedelegation).

- **Who holds medical responsibility** for a citizen's treatment at home or in a municipal acute bed,
  from when to when: a CareTeam of the citizen (category medical-responsibility, the setting as its
  ``reasonCode``) whose one participant is the responsible physician or clinic, for the period. Two
  responsibilities for the same setting may not overlap; the CareTeam gives the responsible physician
  the policy's care-team relation for its period.
- **A framework delegation** lets municipal nurses give a treatment (treatments.yaml) on a physician's
  behalf: a ServiceRequest (category framework-delegation, intent order) from the physician, for a
  citizen or a citizen group (a Group), valid from and to, with the conditions as notes, the competence
  the nurse must hold as ``performerType``, and its written instruction as a versioned DocumentReference
  (``supportingInfo``). A treatment that cannot be delegated (prescribing, death certificates, coercive
  measures) is refused.
- **A delegated treatment is assigned** to a nurse for a day as a Task (code delegated-treatment,
  ``basedOn`` the delegation, ``owner`` the nurse's PractitionerRole) only when the delegation is in force
  that day and the nurse's competence record (competence.py) covers the treatment that day.
"""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Engine

from naer import clock
from naer.access.principal import Principal
from naer.coordination import competence
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.errors import UserError
from naer.fhir.systems import NAER
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Conflict, Forbidden, Invalid, Unprocessable
from naer.store.search.query import search

TREATMENTS_FILE = Path(__file__).with_name("treatments.yaml")
TREATMENT = f"{NAER}/CodeSystem/delegable-treatment"
CARE_TEAM_CATEGORY = f"{NAER}/CodeSystem/care-team-category"
SETTING = f"{NAER}/CodeSystem/treatment-setting"
REQUEST_CATEGORY = f"{NAER}/CodeSystem/request-category"
INSTRUCTION = f"{NAER}/identifier/delegation-instruction"
PHYSICIANS = ("gp", "hospital-physician")
SETTINGS = {"home": "Behandling i eget hjem", "acute-bed": "Akutplads"}
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_INSTRUCTION = 100_000
BACKDATE = timedelta(days=30)  # how late a responsibility may be registered: it gives a care relation


class Treatment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str
    title_da: str
    delegable: bool
    competence: str | None = None


@cache
def treatments() -> dict[str, Treatment]:
    try:
        raw = yaml.safe_load(TREATMENTS_FILE.read_text(encoding="utf-8"))
        found = {str(k): Treatment.model_validate(value) for k, value in raw.items()}
    except (OSError, yaml.YAMLError, AttributeError, ValidationError) as error:
        raise UserError(f"{TREATMENTS_FILE.name}: {error}") from None
    for name, t in found.items():
        if t.delegable and (t.competence is None or t.competence not in competence.competences()):
            raise UserError(f"{TREATMENTS_FILE.name}: {name}: a delegable treatment names a known competence")
    return found


def _physician(context: RequestContext) -> Principal:
    access = v.require_person(context)
    if access.principal.role not in PHYSICIANS:
        raise Forbidden("medical responsibility and delegations are a physician's")
    return access.principal


def _period_overlaps(a: tuple[date, date | None], b: tuple[date, date | None]) -> bool:
    far = date.max
    return a[0] <= (b[1] or far) and b[0] <= (a[1] or far)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


# -- medical responsibility -----------------------------------------------------------------------------


def responsibilities(db: Engine, context: RequestContext, patient_id: str) -> list[dict[str, Any]]:
    """The citizen's registered medical responsibilities (every CareTeam of that category), newest first
    (404 for a citizen the asker may not know)."""
    store.read(db, context, "Patient", v.ident(patient_id, "patient"))
    found = search(
        db, context, "CareTeam",
        [("patient", f"Patient/{v.ident(patient_id, 'patient')}"),
         ("category", f"{CARE_TEAM_CATEGORY}|medical-responsibility"), ("_sort", "-date"), ("_count", "100")],
    )  # fmt: skip
    return [v.load(m) for m in found.matches]


def take_responsibility(
    db: Engine,
    context: RequestContext,
    patient_id: str,
    setting: Literal["home", "acute-bed"],
    start: date,
    end: date | None = None,
) -> dict[str, Any]:
    """Register that the signed-in physician holds the medical responsibility for the citizen's treatment
    in ``setting`` from ``start`` (to ``end``); refused when another responsibility for the same setting
    overlaps it."""
    asker = _physician(context)
    if setting not in SETTINGS:
        raise Invalid(f"setting must be one of {', '.join(SETTINGS)}", where="setting")
    if end is not None and end < start:
        raise Invalid("the responsibility ends before it starts", where="end")
    today = competence.today()
    if not today - BACKDATE <= start <= today + timedelta(days=366):
        raise Invalid(
            f"a responsibility starts from {(today - BACKDATE).isoformat()} (registered at most "
            f"{BACKDATE.days} days late) to a year ahead, not {start.isoformat()}",
            where="start",
        )
    patient_id = v.ident(patient_id, "patient")
    store.read(db, context, "Patient", patient_id)  # 404 for a citizen one may not know
    for team in responsibilities(db, context, patient_id):
        if team.get("status") != "active" or v.codes(team.get("reasonCode"), SETTING) != [setting]:
            continue
        period = team.get("period") or {}
        held = (_day(period.get("start")) or date.min, _day(period.get("end")))
        if _period_overlaps(held, (start, end)):
            who = ((team.get("participant") or [{}])[0].get("member") or {}).get(
                "display", "another physician"
            )
            raise Conflict(
                f"{who} holds the medical responsibility ({setting}) from {held[0].isoformat()}"
                f"{' to ' + held[1].isoformat() if held[1] else ''}: end it first"
            )
    member = v.asker_ref(asker)
    period = {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})}
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": CARE_TEAM_CATEGORY, "code": "medical-responsibility",
                                  "display": "Lægeligt behandlingsansvar"}]}],
        "name": f"Lægeligt behandlingsansvar: {SETTINGS[setting]}",
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": period,
        "participant": [{"role": [{"text": "Behandlingsansvarlig læge"}], "member": member, "period": period,
                         **({"onBehalfOf": {"reference": f"Organization/{asker.organization}"}}
                            if asker.organization else {})}],
        "reasonCode": [{"coding": [{"system": SETTING, "code": setting, "display": SETTINGS[setting]}]}],
    }  # fmt: skip
    return v.load(store.create(db, context, "CareTeam", team))


def end_responsibility(
    db: Engine, context: RequestContext, team_id: str, end: date, patient_id: str | None = None
) -> dict[str, Any]:
    """End a responsibility the asker holds (or their clinic holds) on ``end`` (``patient_id``: the
    citizen the asker means; a responsibility for another is refused)."""
    asker = _physician(context)
    found = store.read(db, context, "CareTeam", v.ident(team_id, "responsibility"))
    team = v.load(found)
    if v.codes(team.get("category"), CARE_TEAM_CATEGORY) != ["medical-responsibility"]:
        raise Invalid(f"CareTeam/{team_id} is not a medical responsibility", where="responsibility")
    subject = (team.get("subject") or {}).get("reference")
    if patient_id is not None and subject != f"Patient/{patient_id}":
        raise Unprocessable(
            f"CareTeam/{team_id} is the responsibility for {subject}, not Patient/{patient_id}",
            where="responsibility",
        )
    member = ((team.get("participant") or [{}])[0].get("member") or {}).get("reference")
    on_behalf = v.ref_id(((team.get("participant") or [{}])[0].get("onBehalfOf")), "Organization")
    if member not in v.mine(asker) and not (asker.organization and on_behalf == asker.organization):
        raise Forbidden("only the responsible physician (or the clinic) ends the responsibility")
    start = _day((team.get("period") or {}).get("start")) or date.min
    if end < start:
        raise Invalid("the responsibility cannot end before it started", where="end")
    current = _day((team.get("period") or {}).get("end"))
    if current is not None and end > current:
        raise Conflict(
            f"the responsibility ends on {current.isoformat()} already: ending it can only bring that day "
            "forward (register a new responsibility to go on)"
        )
    team.pop("meta", None)
    team["period"] = {**(team.get("period") or {}), "end": end.isoformat()}
    team["participant"][0]["period"] = team["period"]
    if end < competence.today():
        team["status"] = "inactive"
    return v.load(store.update(db, context, "CareTeam", team_id, team, if_match=found.version_id))


# -- framework delegation -------------------------------------------------------------------------------


def delegate(
    db: Engine,
    context: RequestContext,
    treatment: str,
    start: date,
    end: date,
    conditions: str,
    instruction_title: str,
    instruction_text: str,
    instruction_version: str = "1",
    patient_id: str | None = None,
    group_id: str | None = None,
) -> dict[str, Any]:
    """A physician's framework delegation of ``treatment`` for a citizen (or a Group of citizens), in force
    from ``start`` to ``end``, under ``conditions``, with its written instruction; refused for a treatment
    that cannot be delegated."""
    asker = _physician(context)
    known = treatments().get(treatment)
    if known is None:
        raise Invalid(
            f"unknown treatment {treatment!r} (known: {', '.join(treatments())})", where="treatment"
        )
    if not known.delegable:
        raise Unprocessable(
            f"{known.title.lower()} cannot be delegated: it stays with the physician", where="treatment"
        )
    if end < start:
        raise Invalid("the delegation ends before it starts", where="end")
    if (patient_id is None) == (group_id is None):
        raise Invalid(
            "a delegation is for one citizen (patient) or one citizen group (group)", where="patient"
        )
    text = v.text(conditions, "conditions")
    title = v.text(instruction_title, "instruction title")
    if (
        not isinstance(instruction_text, str)
        or not instruction_text.strip()
        or len(instruction_text) > MAX_INSTRUCTION
    ):
        raise Invalid(f"the instruction is text of 1 to {MAX_INSTRUCTION:,} characters", where="instruction")
    if not SLUG.match(instruction_version):
        raise Invalid(
            "the instruction's version is a short code such as 1 or 2026-2", where="instruction_version"
        )
    if patient_id is not None:
        subject = f"Patient/{v.ident(patient_id, 'patient')}"
        store.read(db, context, "Patient", patient_id)
    else:
        subject = f"Group/{v.ident(group_id, 'group')}"
        store.read(db, context, "Group", str(group_id))
    needed = competence.competences()[str(known.competence)]
    requester = v.asker_ref(asker)
    now = v.instant(clock.now())
    with db.begin() as con:
        document = {
            "resourceType": "DocumentReference",
            "status": "current",
            "masterIdentifier": {"system": INSTRUCTION, "value": f"{treatment}|{instruction_version}"},
            "type": {"text": "Instruks for rammedelegation"},
            "description": f"{title} (version {instruction_version})",
            "date": now,
            "author": [requester],
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "language": "da",
                                        "title": title, "data": _base64(instruction_text)}}],
            **({"subject": {"reference": subject}} if patient_id else {}),
        }  # fmt: skip
        instruction = store.create(con, context, "DocumentReference", document)
        request = {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": REQUEST_CATEGORY, "code": "framework-delegation",
                                      "display": "Rammedelegation"}]}],
            "code": {"coding": [{"system": TREATMENT, "code": treatment, "display": known.title_da}],
                     "text": known.title},
            "subject": {"reference": subject},
            "occurrencePeriod": {"start": start.isoformat(), "end": end.isoformat()},
            "authoredOn": now,
            "requester": requester,
            "performerType": {"coding": [{"system": competence.COMPETENCE, "code": known.competence,
                                          "display": needed.title_da}]},
            "note": [{"text": text}],
            "supportingInfo": [{"reference": f"DocumentReference/{instruction.id}"}],
        }  # fmt: skip
        return v.load(store.create(con, context, "ServiceRequest", request))


def _delegation(db: Engine, context: RequestContext, delegation_id: str) -> dict[str, Any]:
    found = v.load(store.read(db, context, "ServiceRequest", v.ident(delegation_id, "delegation")))
    if v.codes(found.get("category"), REQUEST_CATEGORY) != ["framework-delegation"]:
        raise Invalid(f"ServiceRequest/{delegation_id} is not a framework delegation", where="delegation")
    return found


def assign(
    db: Engine, context: RequestContext, delegation_id: str, patient_id: str, nurse_role: str, day: date
) -> dict[str, Any]:
    """Assign the delegated treatment for one citizen on ``day`` to the nurse holding ``nurse_role``: only
    while the delegation is in force that day and only to a nurse whose competence covers it that day."""
    access = v.require_person(context)
    delegation = _delegation(db, context, delegation_id)
    treatment = (v.codes(delegation.get("code"), TREATMENT) or [""])[0]
    known = treatments().get(treatment)
    if delegation.get("status") != "active" or known is None or not known.delegable:
        raise Unprocessable(
            f"ServiceRequest/{delegation_id} is not a delegation in force", where="delegation"
        )
    period = delegation.get("occurrencePeriod") or {}
    start, end = _day(period.get("start")), _day(period.get("end"))
    if start is None or end is None or not start <= day <= end:
        raise Unprocessable(
            f"the delegation is in force from {period.get('start')} to {period.get('end')}, "
            f"not on {day.isoformat()}",
            where="day",
        )
    patient_id = v.ident(patient_id, "patient")
    subject = (delegation.get("subject") or {}).get("reference", "")
    if subject.startswith("Patient/") and subject != f"Patient/{patient_id}":
        raise Unprocessable(f"the delegation is for {subject}, not Patient/{patient_id}", where="patient")
    if subject.startswith("Group/"):
        group = v.load(store.read(db, context, "Group", subject.split("/", 1)[1]))
        members = {
            (m.get("entity") or {}).get("reference")
            for m in group.get("member") or []
            if not m.get("inactive")
        }
        if f"Patient/{patient_id}" not in members:
            raise Unprocessable(
                f"Patient/{patient_id} is not in the delegation's group {subject}", where="patient"
            )
    store.read(db, context, "Patient", patient_id)
    role = v.directory(db, "PractitionerRole", v.ident(nurse_role, "nurse"))
    practitioner_id = v.ref_id((role or {}).get("practitioner"), "Practitioner")
    practitioner = v.directory(db, "Practitioner", practitioner_id) if practitioner_id else None
    if role is None or practitioner is None or role.get("active") is False:
        raise Unprocessable(f"there is no active nurse with PractitionerRole/{nurse_role}", where="nurse")
    needed = str(known.competence)
    if not competence.holds(practitioner, needed, day):
        title = competence.competences()[needed].title.lower()
        raise Unprocessable(
            f"the nurse does not hold the competence {needed!r} ({title}) on {day.isoformat()}: "
            "it is missing or has expired in the competence register",
            where="nurse",
        )
    begin = datetime.combine(day, time(0, 0), DANISH_TIME)
    finish = datetime.combine(day, time(23, 59, 59), DANISH_TIME)
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": v.WORKFLOW_CODES, "code": "delegated-treatment",
                             "display": "Delegeret behandling"}]},
        "description": f"{known.title_da} efter rammedelegation",
        "basedOn": [{"reference": f"ServiceRequest/{delegation['id']}"}],
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": v.instant(clock.now()),
        "requester": v.asker_ref(access.principal),
        "owner": {"reference": f"PractitionerRole/{nurse_role}",
                  "display": competence.name_of(practitioner)},
        "restriction": {"period": {"start": begin.isoformat(), "end": finish.isoformat()}},
    }  # fmt: skip
    return v.load(store.create(db, context, "Task", task))


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
