"""Home measurements against the citizen's thresholds: the weight, blood pressure and oxygen saturation
citizens measure at home (Observations, LOINC) are checked against the limits the care plan sets for that
citizen (the care plan's thresholds section: a measure with a low and/or high limit, or a rise over some
days — weight up 2 kg in 3 days for heart failure); a measurement outside them becomes a Task for whoever
is responsible: the holder of the medical responsibility for treatment at home (delegation.py), else the
citizen's GP clinic.

Checking is idempotent — one Task per measurement (its ``focus``), however often a measurement is
checked — so the server's rounds and `naer coordination measurements` can run as often as they like.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Engine

from naer import clock
from naer.access.context import AccessContext
from naer.coordination import careplan, delegation
from naer.coordination import values as v
from naer.errors import UserError
from naer.fhir.systems import LOINC, NAER
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Invalid, NotFound
from naer.store.search.query import search

MEASURES_FILE = Path(__file__).with_name("measurements.yaml")
THRESHOLDS = f"{NAER}/StructureDefinition/care-plan-thresholds"
ANSWER_WITHIN = timedelta(hours=24)
LOOK_BACK = timedelta(days=14)


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str
    title_da: str
    code: str
    unit: str
    component: str | None = None


@cache
def measures() -> dict[str, Measure]:
    try:
        raw = yaml.safe_load(MEASURES_FILE.read_text(encoding="utf-8"))
        return {str(k): Measure.model_validate(value) for k, value in raw.items()}
    except (OSError, yaml.YAMLError, AttributeError, ValidationError) as error:
        raise UserError(f"{MEASURES_FILE.name}: {error}") from None


@dataclass(frozen=True)
class Threshold:
    measure: str
    low: float | None = None
    high: float | None = None
    rise: float | None = None  # more than this over ``days`` days is outside
    days: int = 3

    def as_extension(self) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"url": "measure", "valueCode": self.measure}]
        for name in ("low", "high", "rise"):
            value = getattr(self, name)
            if value is not None:
                parts.append({"url": name, "valueDecimal": value})
        if self.rise is not None:
            parts.append({"url": "days", "valueInteger": self.days})
        return {"url": "threshold", "extension": parts}


def checked(items: list[dict[str, Any]]) -> list[Threshold]:
    """Thresholds as a clinician sends them, checked: a known measure, at least one limit, low below
    high, a rise over 1 to 30 days."""
    if not 1 <= len(items) <= 20:
        raise Invalid("give 1 to 20 thresholds", where="thresholds")
    found = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        where = f"thresholds.{n}"
        measure = str(item.get("measure", ""))
        if measure not in measures():
            known = ", ".join(measures())
            raise Invalid(f"{where}: unknown measure {measure!r} (known: {known})", where=where)
        if measure in seen:
            raise Invalid(f"{where}: {measure} has thresholds already: give each measure once", where=where)
        seen.add(measure)
        low, high, rise, days = item.get("low"), item.get("high"), item.get("rise"), item.get("days")
        for name, value in (("low", low), ("high", high), ("rise", rise)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Invalid(f"{where}: {name} must be a number", where=where)
        if low is None and high is None and rise is None:
            raise Invalid(f"{where}: give low, high or rise", where=where)
        if low is not None and high is not None and low >= high:
            raise Invalid(f"{where}: low must lie below high", where=where)
        if rise is not None and rise <= 0:
            raise Invalid(f"{where}: a rise is more than 0", where=where)
        if (rise is None) != (days is None):
            raise Invalid(f"{where}: a rise goes with days (over how many days it counts)", where=where)
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 30):
            raise Invalid(f"{where}: days must be a whole number from 1 to 30", where=where)
        found.append(Threshold(measure, _num(low), _num(high), _num(rise), int(days or 3)))
    return found


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def thresholds_of(plan: dict[str, Any]) -> list[Threshold]:
    """The thresholds a CarePlan's section holds."""
    found = []
    for section in plan.get("extension") or []:
        if section.get("url") != THRESHOLDS:
            continue
        for item in section.get("extension") or []:
            parts = {p.get("url"): p for p in item.get("extension") or []}
            measure = (parts.get("measure") or {}).get("valueCode")
            if measure not in measures():
                continue
            value = {k: (parts.get(k) or {}).get("valueDecimal") for k in ("low", "high", "rise")}
            days = (parts.get("days") or {}).get("valueInteger") or 3
            found.append(
                Threshold(str(measure), _num(value["low"]), _num(value["high"]), _num(value["rise"]), days)
            )
    return found


def value_of(observation: dict[str, Any], measure: Measure) -> float | None:
    """The measurement's value for ``measure`` (its own or its component's), when it is one."""
    if measure.code not in v.codes(observation.get("code"), LOINC):
        return None
    holder = observation
    if measure.component:
        holder = next((c for c in observation.get("component") or []
                       if measure.component in v.codes(c.get("code"), LOINC)), {})  # fmt: skip
    value = (holder.get("valueQuantity") or {}).get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _when(observation: dict[str, Any]) -> datetime | None:
    try:
        return v.aware(str(observation.get("effectiveDateTime", "")))
    except ValueError:
        return None


def outside(threshold: Threshold, observation: dict[str, Any], earlier: list[dict[str, Any]]) -> str | None:
    """Why the measurement lies outside the threshold (in Danish, for the Task), or None."""
    measure = measures()[threshold.measure]
    value = value_of(observation, measure)
    if value is None:
        return None
    shown = f"{measure.title_da} {value:g} {measure.unit}".replace(".", ",")
    if threshold.low is not None and value < threshold.low:
        return f"{shown} (grænse mindst {threshold.low:g} {measure.unit})".replace(".", ",")
    if threshold.high is not None and value > threshold.high:
        return f"{shown} (grænse højst {threshold.high:g} {measure.unit})".replace(".", ",")
    if threshold.rise is not None:
        at = _when(observation)
        if at is None:
            return None
        start = at - timedelta(days=threshold.days)
        window = [value_of(e, measure) for e in earlier if (w := _when(e)) is not None and start <= w < at]
        base = min((x for x in window if x is not None), default=None)
        if base is not None and value - base > threshold.rise:
            return (f"{shown}: steget {value - base:g} {measure.unit} på {threshold.days} dage "
                    f"(grænse {threshold.rise:g} {measure.unit})").replace(".", ",")  # fmt: skip
    return None


def responsible(db: Engine, context: RequestContext, patient: dict[str, Any]) -> dict[str, str] | None:
    """Whoever answers for the citizen's treatment at home now: the holder of an active medical
    responsibility (home), else the GP clinic."""
    now = clock.now().date().isoformat()
    for team in delegation.responsibilities(db, context, str(patient["id"])):
        period = team.get("period") or {}
        home = v.codes(team.get("reasonCode"), delegation.SETTING) == ["home"]
        current = str(period.get("start", "")) <= now and (not period.get("end") or now <= str(period["end"]))
        if team.get("status") == "active" and home and current:
            holder = (team.get("participant") or [{}])[0]
            org = v.ref_id(holder.get("onBehalfOf"), "Organization") or v.ref_id(
                holder.get("member"), "Organization"
            )
            if org:
                return {"reference": f"Organization/{org}"}
    clinic = next((v.ref_id(r, "Organization") for r in patient.get("generalPractitioner") or []), None)
    return {"reference": f"Organization/{clinic}"} if clinic else None


def check(db: Engine, patient_id: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Check the citizen's measurements since ``since`` (default: the last 14 days) against the care
    plan's thresholds; a Task for each measurement outside them that has none yet. As Nær itself."""
    context = AccessContext(v.COORDINATION, db, None)
    patient_id = v.ident(patient_id, "patient")
    try:
        plan = v.load(store.read(db, context, "CarePlan", careplan.plan_id(patient_id), audit=False))
    except NotFound:
        return []
    limits = thresholds_of(plan)
    if not limits:
        return []
    now = clock.now()
    since = since or now - LOOK_BACK
    longest = max((t.days for t in limits if t.rise is not None), default=0)
    codes = ",".join(sorted({f"{LOINC}|{m.code}" for m in measures().values()}))
    found = search(
        db, context, "Observation",
        [("patient", f"Patient/{patient_id}"), ("code", codes),
         ("date", f"ge{v.instant(since - timedelta(days=longest))}"), ("_sort", "date"), ("_count", "1000")],
    )  # fmt: skip
    observations = [v.load(m) for m in found.matches]
    patient = v.load(store.read(db, context, "Patient", patient_id, audit=False))
    owner = responsible(db, context, patient)
    made = []
    for n, observation in enumerate(observations):
        at = _when(observation)
        if at is None or at < since:
            continue
        reasons = [r for t in limits if (r := outside(t, observation, observations[:n]))]
        if owner is None or not reasons or _alerted(db, context, observation["id"]):
            continue
        task = {
            "resourceType": "Task", "status": "requested", "intent": "order", "priority": "urgent",
            "code": {"coding": [{"system": v.WORKFLOW_CODES, "code": "measurement-alert",
                                 "display": "Hjemmemåling uden for grænsen"}]},
            "description": "; ".join(reasons),
            "focus": {"reference": f"Observation/{observation['id']}"},
            "for": {"reference": f"Patient/{patient_id}"},
            "authoredOn": v.instant(now), "owner": owner,
            "requester": {"reference": f"Device/{v.COORDINATION.account}", "display": v.COORDINATION.display},
            "restriction": {"period": {"end": v.instant(now + ANSWER_WITHIN)}},
        }  # fmt: skip
        made.append(v.load(store.create(db, context, "Task", task)))
    return made


def _alerted(db: Engine, context: RequestContext, observation_id: str) -> bool:
    found = search(db, context, "Task", [("focus", f"Observation/{observation_id}"), ("_summary", "count")])
    return bool(found.total)


def check_all(db: Engine, since: datetime | None = None) -> list[dict[str, Any]]:
    """Check every citizen whose care plan sets thresholds (the server's rounds, the command)."""
    context = AccessContext(v.COORDINATION, db, None)
    made: list[dict[str, Any]] = []
    offset = 0
    while True:
        plans = search(
            db, context, "CarePlan",
            [("category", f"{careplan.PLAN_CATEGORY}|shared-care-plan"), ("_count", "500"),
             ("_offset", str(offset)), ("_sort", "_id")],
        )  # fmt: skip
        for match in plans.matches:
            plan = v.load(match)
            patient = v.ref_id(plan.get("subject"), "Patient")
            if patient and thresholds_of(plan):
                made += check(db, patient, since)
        if len(plans.matches) < 500:
            return made
        offset += 500
