"""The shared care plan: one CarePlan per citizen across sectors, and the CareTeam that follows the Tasks.

- **The plan** (``CarePlan``, category shared-care-plan, one per citizen: id ``careplan-PATIENT``) holds
  the goals (``Goal`` resources in ``goal``), the activities owned by different sectors — also social and
  employment efforts, the whole life situation — (``activity.detail`` with the responsible organisation as
  ``performer``), a palliative section (preferred place of care and of death, the 24-hour contact), a
  psychiatric coordination section (the coordinator, the crisis plan) and the thresholds of the citizen's
  home measurements (measurements.py), each section a Nær extension on the CarePlan. Every change is a
  new version of the CarePlan (If-Match against lost updates), written as the signed-in clinician: the
  store checks their care relation and audits it.
- **The care team** (``CareTeam``, category shared-care-team, id ``careteam-PATIENT``) follows the Tasks:
  an organisation that accepts a follow-up Task joins it; when its last open Task about the citizen is
  done, refused or cancelled its membership ends (the member is taken off ``participant``, which is what
  the access policy's care-team relation reads, and the membership is kept in a note: who, from when, to
  when). So access by care team lasts exactly as long as an organisation has a part to do.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer import clock
from naer.access.context import AccessContext
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.fhir.systems import NAER
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid, NotFound, PreconditionFailed, Unprocessable
from naer.store.search.query import search

PLAN_CATEGORY = f"{NAER}/CodeSystem/care-plan-category"
TEAM_CATEGORY = f"{NAER}/CodeSystem/care-team-category"
LIFE_AREA = f"{NAER}/CodeSystem/life-area"
PALLIATIVE = f"{NAER}/StructureDefinition/care-plan-palliative"
PSYCHIATRY = f"{NAER}/StructureDefinition/care-plan-psychiatry"
AREAS = {
    "health": "Helbred",
    "function": "Funktionsevne og træning",
    "social": "Sociale forhold",
    "housing": "Bolig",
    "employment": "Beskæftigelse og uddannelse",
    "network": "Netværk og pårørende",
    "mental-health": "Psykisk helbred",
}
MAX_ITEMS = 200


def plan_id(patient: str) -> str:
    return f"careplan-{patient}"


def team_id(patient: str) -> str:
    return f"careteam-{patient}"


def _area(code: str) -> dict[str, Any]:
    if code not in AREAS:
        raise Invalid(f"unknown life area {code!r} (known: {', '.join(AREAS)})", where="area")
    return {"coding": [{"system": LIFE_AREA, "code": code, "display": AREAS[code]}]}


def _org_ref(db: Engine | Connection, rid: str, what: str) -> dict[str, str]:
    org = v.directory(db, "Organization", v.ident(rid, what))
    if org is None or org.get("active") is False:
        raise Unprocessable(f"there is no active Organization/{rid}", where=what)
    return {"reference": f"Organization/{rid}", "display": str(org.get("name", rid))}


def _read(
    db: Engine | Connection, context: RequestContext, kind: str, rid: str
) -> tuple[int, dict[str, Any]] | None:
    try:
        found = store.read(db, context, kind, rid)
    except NotFound:
        return None
    return found.version_id, v.load(found)


def plan(db: Engine, context: RequestContext, patient_id: str) -> tuple[dict[str, Any], int]:
    """The citizen's plan as a Bundle — the CarePlan (none while nothing is written), its Goals, the
    CareTeam — and the CarePlan's version (0: none yet); 404 for a citizen the asker may not know."""
    patient_id = v.ident(patient_id, "patient")
    store.read(db, context, "Patient", patient_id)
    found = _read(db, context, "CarePlan", plan_id(patient_id))
    entries: list[dict[str, Any]] = []
    version = 0
    if found is not None:
        version, careplan = found
        entries.append({"resource": careplan})
        goals = [v.ref_id(g, "Goal") for g in careplan.get("goal") or []]
        if goals:
            listed = search(
                db, context, "Goal", [("_id", ",".join(g for g in goals if g)), ("_count", str(MAX_ITEMS))]
            )
            entries += [{"resource": v.load(m)} for m in listed.matches]
    team = _read(db, context, "CareTeam", team_id(patient_id))
    if team is not None:
        entries.append({"resource": team[1]})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, version


def _empty(patient_id: str, author: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "id": plan_id(patient_id),
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": PLAN_CATEGORY, "code": "shared-care-plan",
                                  "display": "Fælles plan på tværs af sektorer"}]}],
        "title": "Fælles plan",
        "subject": {"reference": f"Patient/{patient_id}"},
        "author": author,
        "created": v.instant(clock.now()),
    }  # fmt: skip


Change = Literal["goal", "activity", "palliative", "psychiatry", "thresholds"]


def change(
    db: Engine,
    context: RequestContext,
    patient_id: str,
    what: Change,
    values: dict[str, Any],
    if_match: int | None,
) -> tuple[dict[str, Any], int]:
    """Add a goal or an activity to the citizen's plan, or set its palliative or psychiatric section, as
    the signed-in clinician; the plan is made on its first change. ``if_match``: the version the clinician
    read (0 for a plan not yet written)."""
    access = v.require_person(context)
    if access.rules.roles[access.principal.role].records != "relations":
        raise Forbidden("the shared care plan is written by the health professionals around the citizen")
    author = v.asker_ref(access.principal)
    patient_id = v.ident(patient_id, "patient")
    with db.begin() as con:
        store.read(con, access, "Patient", patient_id)
        found = _read(con, access, "CarePlan", plan_id(patient_id))
        version, careplan = found if found is not None else (0, _empty(patient_id, author))
        if if_match is not None and if_match != version:
            raise PreconditionFailed(f"the care plan is at version {version}, not {if_match}: read it again")
        careplan = {k: val for k, val in careplan.items() if k != "meta"}
        if len(careplan.get("activity") or []) + len(careplan.get("goal") or []) >= MAX_ITEMS:
            raise Unprocessable(f"the plan holds {MAX_ITEMS} goals and activities; close some first")
        if what == "goal":
            goal = _goal(patient_id, author, values)
            made = store.create(con, access, "Goal", goal)
            careplan["goal"] = [*(careplan.get("goal") or []), {"reference": f"Goal/{made.id}"}]
        elif what == "activity":
            careplan["activity"] = [*(careplan.get("activity") or []), {"detail": _activity(con, values)}]
        elif what == "palliative":
            careplan["extension"] = _section(careplan, PALLIATIVE, _palliative(con, values))
        elif what == "psychiatry":
            careplan["extension"] = _section(careplan, PSYCHIATRY, _psychiatry(con, values))
        elif what == "thresholds":
            from naer.coordination import measurements  # (it reads the plan this module writes)

            items = [t.as_extension() for t in measurements.checked(list(values.get("thresholds") or []))]
            section = {"url": measurements.THRESHOLDS, "extension": items}
            careplan["extension"] = _section(careplan, measurements.THRESHOLDS, section)
        else:
            raise Invalid(f"unknown change {what!r}")
        if found is None:
            written = store.update(con, access, "CarePlan", plan_id(patient_id), careplan)
        else:
            written = store.update(con, access, "CarePlan", plan_id(patient_id), careplan, if_match=version)
    return v.load(written), written.version_id


def _goal(patient_id: str, author: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    description = v.text(values.get("description"), "description")
    goal: dict[str, Any] = {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "category": [_area(str(values.get("area") or "health"))],
        "description": {"text": description},
        "subject": {"reference": f"Patient/{patient_id}"},
        "expressedBy": author,
        "startDate": clock.now().astimezone(DANISH_TIME).date().isoformat(),
    }
    if values.get("due"):
        goal["target"] = [{"dueDate": str(values["due"])}]
    return goal


def _activity(con: Connection, values: dict[str, Any]) -> dict[str, Any]:
    description = v.text(values.get("description"), "description")
    detail: dict[str, Any] = {
        "kind": "Task",
        "code": _area(str(values.get("area") or "health")),
        "status": "not-started",
        "description": description,
        "performer": [_org_ref(con, str(values.get("organization") or ""), "organization")],
    }
    start, end = values.get("start"), values.get("end")
    if start or end:
        if start and end and str(end) < str(start):
            raise Invalid("the activity ends before it starts", where="end")
        detail["scheduledPeriod"] = {
            **({"start": str(start)} if start else {}),
            **({"end": str(end)} if end else {}),
        }
    return detail


def _palliative(con: Connection, values: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for key in ("place_of_care", "place_of_death"):
        text = v.text(values.get(key), key, required=False)
        if text:
            parts.append({"url": key.replace("_", "-"), "valueString": text})
    contact = v.text(values.get("contact"), "contact")
    parts.append({"url": "contact-24h", "valueString": contact})
    if values.get("contact_organization"):
        org = _org_ref(con, str(values["contact_organization"]), "contact_organization")
        parts.append({"url": "contact-organization", "valueReference": org})
    return {"url": PALLIATIVE, "extension": parts}


def _psychiatry(con: Connection, values: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {
            "url": "coordinator",
            "valueReference": _org_ref(con, str(values.get("coordinator") or ""), "coordinator"),
        }
    ]
    crisis = v.text(values.get("crisis_plan"), "crisis_plan", required=False)
    if crisis:
        parts.append({"url": "crisis-plan", "valueString": crisis})
    return {"url": PSYCHIATRY, "extension": parts}


def _section(careplan: dict[str, Any], url: str, section: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's extensions with the section ``url`` replaced by ``section``."""
    return [*(e for e in careplan.get("extension") or [] if e.get("url") != url), section]


# -- the care team follows the Tasks ----------------------------------------------------------------------


def _platform(con: Connection) -> AccessContext:
    """Nær itself keeps the care team (audited as naer-coordination): the rule is the platform's, and the
    organisation whose part ends may have no relation left to write with."""
    return AccessContext(v.COORDINATION, con.engine, None)


def join(con: Connection, patient_id: str, organization: str, why: str) -> None:
    """``organization`` joins the citizen's care team (when it accepts a Task about the citizen)."""
    context = _platform(con)
    found = _read(con, context, "CareTeam", team_id(patient_id))
    now = clock.now().astimezone(DANISH_TIME).date().isoformat()
    ref = f"Organization/{organization}"
    if found is None:
        team: dict[str, Any] = {
            "resourceType": "CareTeam", "id": team_id(patient_id), "status": "active",
            "category": [{"coding": [{"system": TEAM_CATEGORY, "code": "shared-care-team",
                                      "display": "Borgerens tværsektorielle team"}]}],
            "name": "Borgerens team", "subject": {"reference": f"Patient/{patient_id}"}, "participant": [],
        }  # fmt: skip
        version = None
    else:
        version, team = found
        team = {k: val for k, val in team.items() if k != "meta"}
        if any((p.get("member") or {}).get("reference") == ref for p in team.get("participant") or []):
            return
    org = v.directory(con, "Organization", organization) or {}
    member = {"reference": ref, "display": str(org.get("name", organization))}
    team["participant"] = [*(team.get("participant") or []),
                           {"member": member, "period": {"start": now}, "role": [{"text": why}]}]  # fmt: skip
    store.update(con, context, "CareTeam", team_id(patient_id), team, if_match=version)


def leave(con: Connection, patient_id: str, organization: str) -> None:
    """``organization`` leaves the citizen's care team (its part is done), unless it still has an open Task
    about the citizen; the membership is kept in a note."""
    context = _platform(con)
    open_tasks = search(
        con, context, "Task",
        [("patient", f"Patient/{patient_id}"), ("owner", f"Organization/{organization}"),
         ("status", v.OPEN_TASK), ("_summary", "count")],
    )  # fmt: skip
    if open_tasks.total:
        return
    found = _read(con, context, "CareTeam", team_id(patient_id))
    if found is None:
        return
    version, team = found
    ref = f"Organization/{organization}"
    staying: list[dict[str, Any]] = []
    leaving: list[dict[str, Any]] = []
    for p in team.get("participant") or []:
        (leaving if (p.get("member") or {}).get("reference") == ref else staying).append(p)
    if not leaving:
        return
    now = clock.now().astimezone(DANISH_TIME).date().isoformat()
    team = {k: val for k, val in team.items() if k != "meta"}
    team["participant"] = staying
    for p in leaving:
        since = (p.get("period") or {}).get("start", "?")
        shown = (p.get("member") or {}).get("display", ref)
        team["note"] = [*(team.get("note") or []), {"text": f"{shown} ({ref}) deltog {since} til {now}"}]
    store.update(con, context, "CareTeam", team_id(patient_id), team, if_match=version)
