"""The shared competence register: the courses and skills each person holds (what, from when, valid
until), across employers, as FHIR ``Practitioner.qualification`` — the person's, not the employer's, so a
competence follows a nurse from home care to the acute beds. The catalogue of competences is data
(competences.yaml). Coverage ("how many nurses on Samsø can give IV antibiotics tonight") and expiry
warnings are read from the same place, and a delegated treatment is assigned only to a nurse who holds its
competence on the day (delegation.py)."""

from __future__ import annotations

import calendar as months
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer import clock
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.errors import UserError
from naer.fhir.systems import NAER
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Forbidden, Invalid, Unprocessable
from naer.store.search.query import search

CATALOGUE = Path(__file__).with_name("competences.yaml")
COMPETENCE = f"{NAER}/CodeSystem/competence"
MAX_SUB_UNITS = 200


class Competence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str
    title_da: str
    valid_months: int = Field(ge=1, le=120)


@cache
def competences() -> dict[str, Competence]:
    try:
        raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
        return {str(k): Competence.model_validate(value) for k, value in raw.items()}
    except (OSError, yaml.YAMLError, AttributeError, ValidationError) as error:
        raise UserError(f"{CATALOGUE.name}: {error}") from None


def known(code: str) -> Competence:
    found = competences().get(code)
    if found is None:
        raise Invalid(f"unknown competence {code!r} (known: {', '.join(competences())})", where="competence")
    return found


def add_months(day: date, n: int) -> date:
    """``day`` plus ``n`` months (the last day of a shorter month: 31 January + 1 month = 28/29 February)."""
    month = day.month - 1 + n
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, months.monthrange(year, month)[1]))


def today() -> date:
    return clock.now().astimezone(DANISH_TIME).date()


@dataclass(frozen=True)
class Held:
    """One competence a person holds: which, from and until which day (inclusive)."""

    code: str
    start: date
    end: date

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


def held(practitioner: dict[str, Any]) -> list[Held]:
    """The competences registered on a Practitioner (its qualifications in the competence code system)."""
    found = []
    for q in practitioner.get("qualification") or []:
        codes = v.codes(q.get("code"), COMPETENCE)
        period = q.get("period") or {}
        try:
            start = date.fromisoformat(str(period.get("start", ""))[:10])
            end = date.fromisoformat(str(period.get("end", ""))[:10])
        except ValueError:
            continue
        found += [Held(code, start, end) for code in codes]
    return found


def holds(practitioner: dict[str, Any], code: str, day: date) -> bool:
    return any(h.code == code and h.covers(day) for h in held(practitioner))


def _may_register(context: RequestContext) -> None:
    access = v.require_person(context)
    if not access.rules.roles[access.principal.role].competences:
        raise Forbidden("the competence register is kept by administrators")


def register(
    db: Engine,
    context: RequestContext,
    practitioner_id: str,
    code: str,
    completed: date,
    valid_until: date | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    """Register that a person completed a course: a qualification on their Practitioner, valid until
    ``valid_until`` or the catalogue's period after ``completed``. Written as the signed-in administrator
    (the store checks the role may change the directory, and audits it)."""
    _may_register(context)
    competence = known(code)
    if completed > today():
        raise Invalid(
            f"the course cannot be completed in the future ({completed.isoformat()})", where="completed"
        )
    end = valid_until or add_months(completed, competence.valid_months)
    if end < completed:
        raise Invalid("valid_until lies before the day the course was completed", where="valid_until")
    with db.begin() as con:
        found = store.read(con, context, "Practitioner", v.ident(practitioner_id, "practitioner"))
        practitioner = v.load(found)
        qualification: dict[str, Any] = {
            "code": {"coding": [{"system": COMPETENCE, "code": code, "display": competence.title_da}],
                     "text": competence.title},
            "period": {"start": completed.isoformat(), "end": end.isoformat()},
        }  # fmt: skip
        if issuer:
            org = v.directory(con, "Organization", v.ident(issuer, "issuer"))
            if org is None:
                raise Unprocessable(
                    f"there is no Organization/{issuer} to have issued the course", where="issuer"
                )
            qualification["issuer"] = {
                "reference": f"Organization/{issuer}",
                "display": str(org.get("name", issuer)),
            }
        practitioner.pop("meta", None)
        practitioner["qualification"] = [*(practitioner.get("qualification") or []), qualification]
        written = store.update(
            con, context, "Practitioner", practitioner_id, practitioner, if_match=found.version_id
        )
    return v.load(written)


def units(db: Engine | Connection, context: RequestContext, organization: str) -> list[str]:
    """``organization`` and its sub-units (two levels: a municipality's home care, acute team, beds)."""
    if v.directory(db, "Organization", organization) is None:
        raise Unprocessable(f"there is no Organization/{organization}", where="organization")
    found = [organization]
    frontier = [organization]
    for _ in range(2):
        if not frontier:
            break
        refs = ",".join(f"Organization/{o}" for o in frontier)
        below = search(db, context, "Organization", [("partof", refs), ("_count", str(MAX_SUB_UNITS))])
        frontier = [m.id for m in below.matches]
        found += frontier
    return found


def _people(db: Engine, context: RequestContext, organization: str) -> dict[str, dict[str, Any]]:
    """The Practitioners with an active role in ``organization`` or its units, by id."""
    listed = ",".join(f"Organization/{u}" for u in units(db, context, v.ident(organization, "organization")))
    pairs = [("organization", listed), ("active", "true"), ("_count", "1000")]
    roles = search(db, context, "PractitionerRole", [*pairs, ("_include", "PractitionerRole:practitioner")])
    return {p.id: v.load(p) for p in roles.included if p.resource_type == "Practitioner"}


def name_of(practitioner: dict[str, Any]) -> str:
    """A person's name as written (given names, family name), else their id."""
    name = (practitioner.get("name") or [{}])[0]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or str(practitioner.get("id"))


@dataclass
class Coverage:
    competence: str
    organization: str
    day: date
    holders: list[dict[str, Any]]  # {practitioner, name, end}
    people: int  # everyone with a role in the organisation and its units


def coverage(db: Engine, context: RequestContext, code: str, organization: str, day: date) -> Coverage:
    """Who of the people working in ``organization`` (and its units) hold ``code`` on ``day``."""
    known(code)
    people = _people(db, context, organization)
    holders = []
    for pid, practitioner in sorted(people.items()):
        spans = [h for h in held(practitioner) if h.code == code and h.covers(day)]
        if spans:
            holders.append(
                {
                    "practitioner": pid,
                    "name": name_of(practitioner),
                    "until": max(h.end for h in spans).isoformat(),
                }
            )
    return Coverage(code, organization, day, holders, len(people))


def expiring(
    db: Engine, context: RequestContext, organization: str, within_days: int, day: date | None = None
) -> list[dict[str, Any]]:
    """Competences of the organisation's people that end within ``within_days`` of ``day`` (or have
    ended in the last ``within_days``): who (id and name), which, when, by the end day."""
    day = day or today()
    if not 1 <= within_days <= 366:
        raise Invalid("within must lie between 1 and 366 days", where="within")
    found = []
    for pid, practitioner in _people(db, context, organization).items():
        latest: dict[str, Held] = {}
        for h in held(practitioner):
            if h.code not in latest or h.end > latest[h.code].end:
                latest[h.code] = h
        for h in latest.values():
            if abs((h.end - day).days) <= within_days:
                found.append({"practitioner": pid, "name": name_of(practitioner), "competence": h.code,
                              "end": h.end.isoformat(), "expired": h.end < day})  # fmt: skip
    return sorted(found, key=lambda f: (f["end"], f["practitioner"], f["competence"]))


def parse_day(value: str | None, what: str) -> date | None:
    """A day from a query (YYYY-MM-DD only, from 1900 to 2100), or None when not given."""
    if value is None or value == "":
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{what} must be a date such as 2024-12-31 (YYYY-MM-DD), not {value[:40]!r}", where=what
        ) from None
    if not 1900 <= day.year <= 2100:
        raise Invalid(f"{what} lies from 1900 to 2100, not {value!r}", where=what)
    return day
