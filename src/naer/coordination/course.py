"""The citizen's course on one page: for a clinician with a care relation, a timeline across sectors of
one year (contacts, admissions and acute-bed stays, advice, follow-up and other tasks, delegations,
measurements outside their thresholds) with the years before as counts, and who is responsible for what
now (the GP clinic, medical responsibilities, the care team, the open stays) beside the shared care plan;
for the citizen, their own plan and who is responsible for what.

Every read is the signed-in asker's, decided once for this citizen (AccessContext.about): a citizen the
asker may not know answers 404, and every query's rows are tested against that one decision, so ten
years of history cost what one year's rows cost to read, not a policy evaluation per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Engine

from naer import clock
from naer.coordination import careplan, delegation
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.coordination.machine import by_code
from naer.fhir.systems import CONTACT_TYPE, LOINC
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import NotFound
from naer.store.search.query import search

SECTORS = {  # contact type -> the sector it belongs to (when its organisation does not say)
    "gp-consultation": "general-practice", "gp-phone": "general-practice", "gp-email": "general-practice",
    "gp": "general-practice", "out-of-hours": "region", "outpatient": "region", "acute-admission": "region",
    "planned-admission": "region", "ed-visit": "region", "home-care": "municipality",
    "acute-bed": "municipality", "rehabilitation": "municipality", "admission": "region",
}  # fmt: skip
CLASSES = {"HH": "home-care", "AMB": "outpatient", "EMER": "ed-visit", "IMP": "admission"}  # no type given
OPEN = ("planned", "arrived", "triaged", "in-progress", "onleave")
PAGE = 500


@dataclass
class Item:
    """One line of the timeline: when, in which sector, what kind of thing (``kind``: contact, task or
    delegation; ``code``: its contact type, workflow or treatment), with the words the data give
    (``detail``: the place, the task's description, the delegation's period), its status, and its Task."""

    when: str
    sector: str  # region, municipality, general-practice, or "" when not known
    kind: str
    code: str
    detail: str
    status: str
    task: str = ""  # the Task's id, for a Task (its page is the web's to name)


@dataclass
class Responsible:
    """Who is responsible for what now: ``what`` is gp, responsibility (``code`` its setting), stay
    (``code`` the contact type) or team (``detail`` the team role's words)."""

    what: str
    code: str
    who: str
    since: str
    detail: str = ""


@dataclass
class Course:
    patient: dict[str, Any]
    year: int
    years: dict[int, int]  # contacts per year, the whole history
    items: list[Item]
    responsible: list[Responsible]
    plan: dict[str, Any] | None
    goals: list[dict[str, Any]] = field(default_factory=list)
    team: dict[str, Any] | None = None


def _all(
    db: Engine, context: RequestContext, kind: str, pairs: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Every match of a search, a page at a time (bounded: ten years of a citizen's contacts)."""
    found: list[dict[str, Any]] = []
    for offset in range(0, 20 * PAGE, PAGE):
        page = search(db, context, kind, [*pairs, ("_count", str(PAGE)), ("_offset", str(offset))])
        found += [v.load(m) for m in page.matches]
        if len(page.matches) < PAGE:
            break
    return found


def _sector_of(org: dict[str, Any] | None) -> str:
    return v.sector(org) or "" if org else ""


def course(db: Engine, context: RequestContext, patient_id: str, year: int | None = None) -> Course:
    """The course of the citizen ``patient_id`` in ``year`` (default: this year) as the asker may see it."""
    access = v.require_person(context).about(v.ident(patient_id, "patient"))
    patient = v.load(store.read(db, access, "Patient", patient_id))  # 404 for a citizen one may not know
    ref = f"Patient/{patient_id}"
    today = clock.now().astimezone(DANISH_TIME).date()
    year = year or today.year
    start = datetime.combine(date(year, 1, 1), time(0), DANISH_TIME)
    end = datetime.combine(date(year, 12, 31), time(23, 59, 59), DANISH_TIME)
    span = [("date", f"ge{v.instant(start)}"), ("date", f"le{v.instant(end)}")]

    # The whole history as counts per year (one light pass over the citizen's contacts).
    encounters = _all(db, access, "Encounter", [("patient", ref), ("_sort", "-date")])
    years: dict[int, int] = {}
    for e in encounters:
        begun = str((e.get("period") or {}).get("start", ""))[:4]
        if begun.isdigit():
            years[int(begun)] = years.get(int(begun), 0) + 1
    orgs = _organisations(db, encounters)
    items: list[Item] = []
    for e in encounters:
        period = e.get("period") or {}
        begun = str(period.get("start", ""))
        if begun[:4] != str(year):
            continue
        code = _kind(e)
        provider = v.ref_id(e.get("serviceProvider"), "Organization")
        org = orgs.get(provider or "")
        place = str((org or {}).get("name", provider or ""))
        sector = _sector_of(org) or SECTORS.get(code, "")
        items.append(Item(begun, sector, "contact", code, place, str(e.get("status", ""))))
    authored = [("patient", ref), ("authored-on", span[0][1]), ("authored-on", span[1][1])]
    for task in _all(db, access, "Task", authored):
        code = (v.codes(task.get("code"), v.WORKFLOW_CODES) or [""])[0]
        owner = (task.get("owner") or {}).get("display") or (task.get("owner") or {}).get("reference", "")
        detail = " · ".join(x for x in (str(task.get("description") or ""), owner) if x)
        sector = _sector_of(_organisation(db, orgs, v.ref_id(task.get("owner"), "Organization")))
        state = _state(task, code) or str(task.get("status", ""))
        items.append(Item(str(task.get("authoredOn", "")), sector, "task", code, detail, state, task["id"]))
    requested = [("patient", ref), ("authored", span[0][1]), ("authored", span[1][1])]
    for request in _all(db, access, "ServiceRequest", requested):
        if v.codes(request.get("category"), delegation.REQUEST_CATEGORY) == ["framework-delegation"]:
            treatment = ((request.get("code") or {}).get("coding") or [{}])[0].get("display", "")
            period = request.get("occurrencePeriod") or {}
            detail = f"{treatment} ({period.get('start')} – {period.get('end')})"
            when, status = str(request.get("authoredOn", "")), str(request.get("status", ""))
            items.append(Item(when, "", "delegation", "framework-delegation", detail, status))
    items += _measurements(db, access, ref, span)
    moment = v.instant(clock.now())  # nothing after now (the demo's clock stands inside its data)
    items = [i for i in items if _before(i.when, moment)]
    items.sort(key=lambda i: i.when, reverse=True)
    plan, goals, team = _plan(db, access, patient_id)
    responsible = _responsible(db, access, patient, encounters, orgs, team)
    return Course(patient, year, dict(sorted(years.items())), items, responsible, plan, goals, team)


def _measurements(db: Engine, context: RequestContext, ref: str, span: list[tuple[str, str]]) -> list[Item]:
    """The year's home measurements, one line a month: how many, and each measure's lowest and highest
    value (a telemonitored citizen measures daily: a line each would bury everything else)."""
    from naer.coordination.measurements import measures, value_of

    known = measures()
    codes = ",".join(sorted({f"{LOINC}|{m.code}" for m in known.values()}))
    found = _all(db, context, "Observation", [("patient", ref), ("code", codes), *span, ("_sort", "date")])
    months: dict[str, dict[str, list[float]]] = {}
    counts: dict[str, int] = {}
    for observation in found:
        month = str(observation.get("effectiveDateTime", ""))[:7]
        if len(month) != 7:
            continue
        counts[month] = counts.get(month, 0) + 1
        for name, measure in known.items():
            value = value_of(observation, measure)
            if value is not None:
                months.setdefault(month, {}).setdefault(name, []).append(value)
    made = []
    for month, values in sorted(months.items()):
        parts = []
        for name, found_values in values.items():
            low, high = min(found_values), max(found_values)
            shown = f"{low:g}" if low == high else f"{low:g}–{high:g}"
            parts.append(f"{known[name].title_da.lower()} {shown} {known[name].unit}".replace(".", ","))
        made.append(
            Item(
                f"{month}-01",
                "",
                "measurement",
                "home-measurements",
                f"{counts[month]}: " + "; ".join(parts),
                "",
            )
        )
    return made


def _state(task: dict[str, Any], code: str) -> str | None:
    """The Task's state in its workflow as ``state:CODE:STATE`` (the page names it from the workflow's
    definition, in its own language), or None for a Task of no workflow here."""
    flow = by_code(code)
    state = v.state_of(task, flow) if flow else None
    return f"state:{code}:{state}" if flow and state in flow.states else None


def _before(when: str, moment: str) -> bool:
    try:
        return v.aware(when) <= v.aware(moment)
    except ValueError:
        return True


def _kind(encounter: dict[str, Any]) -> str:
    """The contact's type (Nær's contact types), else what its class says."""
    found = v.codes(encounter.get("type"), CONTACT_TYPE)
    if found:
        return found[0]
    klass = str((encounter.get("class") or {}).get("code", ""))
    return CLASSES.get(klass, klass)


def _organisation(db: Engine, known: dict[str, dict[str, Any]], rid: str | None) -> dict[str, Any] | None:
    """An organisation from the directory, each read once per page (``known`` keeps them)."""
    if not rid:
        return None
    if rid not in known:
        org = v.directory(db, "Organization", rid)
        if org is None:
            return None
        known[rid] = org
    return known[rid]


def _organisations(db: Engine, encounters: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The organisations the contacts were with (the directory, read once each)."""
    found: dict[str, dict[str, Any]] = {}
    for e in encounters:
        _organisation(db, found, v.ref_id(e.get("serviceProvider"), "Organization"))
    return found


def _responsible(
    db: Engine, context: RequestContext, patient: dict[str, Any], encounters: list[dict[str, Any]],
    orgs: dict[str, dict[str, Any]], team: dict[str, Any] | None,
) -> list[Responsible]:  # fmt: skip
    """Who is responsible for what now: the GP clinic, the medical responsibilities in force, the open
    stays and home care, the care team's organisations."""
    found = []
    for ref in patient.get("generalPractitioner") or []:
        rid = v.ref_id(ref, "Organization")
        org = v.directory(db, "Organization", rid) if rid else None
        found.append(Responsible("gp", "", str((org or {}).get("name", rid or "")), ""))
    today = clock.now().astimezone(DANISH_TIME).date().isoformat()
    for holder in delegation.responsibilities(db, context, str(patient["id"])):
        period = holder.get("period") or {}
        running = str(period.get("start", "")) <= today <= str(period.get("end") or "9999")
        if holder.get("status") != "active" or not running:
            continue
        setting = (v.codes(holder.get("reasonCode"), delegation.SETTING) or [""])[0]
        member = ((holder.get("participant") or [{}])[0].get("member") or {}).get("display", "")
        found.append(Responsible("responsibility", setting, member, str(period.get("start", ""))))
    for e in encounters:
        if e.get("status") in OPEN:
            code = _kind(e)
            rid = v.ref_id(e.get("serviceProvider"), "Organization") or ""
            since = str((e.get("period") or {}).get("start", ""))[:10]
            found.append(Responsible("stay", code, str(orgs.get(rid, {}).get("name", rid)), since))
    for p in (team or {}).get("participant") or []:
        why = ((p.get("role") or [{}])[0]).get("text", "")
        since = str((p.get("period") or {}).get("start", ""))
        found.append(Responsible("team", "", (p.get("member") or {}).get("display", ""), since, why))
    return found


Plan = tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]


def _plan(db: Engine, context: RequestContext, patient_id: str) -> Plan:
    try:
        plan = v.load(store.read(db, context, "CarePlan", careplan.plan_id(patient_id)))
    except NotFound:
        plan = None
    goals = []
    ids = [v.ref_id(g, "Goal") for g in (plan or {}).get("goal") or []]
    if any(ids):
        found = search(db, context, "Goal", [("_id", ",".join(i for i in ids if i)), ("_count", "200")])
        goals = [v.load(m) for m in found.matches]
    try:
        team = v.load(store.read(db, context, "CareTeam", careplan.team_id(patient_id)))
    except NotFound:
        team = None
    return plan, goals, team
