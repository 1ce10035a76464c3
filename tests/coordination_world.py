"""A small Samsø for the workflow tests, built through the store's own write path (SYSTEM), with an
account and a token for each person and the clock fixed on a Monday morning.

- Region Midtjylland (DK-82) > Aarhus Universitetshospital > its medical and geriatric departments;
  the medical department has an on-call role (``role-oncall``, held by ``oncall``).
- Samsø Kommune (0741) > home care (``nurse`` and her colleague ``nurse2``); another municipality's home
  care (``nurse-other``); a GP clinic (``gp``); a planner; a citizen.
- Citizens: ``p-home`` in Samsø's home care, listed with the GP; ``p-discharged`` in home care too,
  discharged home from the geriatric department 30 hours ago after five days (the 72-hour rule);
  ``p-admitted`` in home care and admitted to the medical department now; ``p-none`` with no relation
  to anyone here.
- Samsø's rehabilitation unit and the region's psychiatry, for follow-up after discharge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from naer import clock
from naer.access import accounts, tokens
from naer.fhir.systems import (
    ACT_CODE,
    DISCHARGE_DISPOSITION,
    MUNICIPALITY_CODES,
    MUNICIPALITY_EXTENSION,
    ORG_KIND,
    SECTOR,
    SECTOR_EXTENSION,
)
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.db import engine

# Monday 7 December 2026, 10:00 in Denmark (CET, UTC+1).
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ROLE_CODES = "https://naer.example.org/fhir/CodeSystem/practitioner-role"

# person: (role, organisation, practitioner or None, practitioner role id or None, patient)
PEOPLE: dict[str, tuple[str, str | None, str | None, str | None, str | None]] = {
    "nurse": ("home-care-nurse", "home-0741", "pr-nurse", "role-nurse", None),
    "nurse2": ("home-care-nurse", "home-0741", "pr-nurse2", "role-nurse2", None),
    "nurse-other": ("home-care-nurse", "home-0727", "pr-nurse-other", "role-nurse-other", None),
    "acute-nurse": ("acute-bed-nurse", "acute-0741", "pr-acute-nurse", "role-acute-nurse", None),
    "gp": ("gp", "gp-0741", "pr-gp", "role-gp", None),
    "phys": ("hospital-physician", "dept-med", "pr-phys", "role-phys", None),
    "phys-geri": ("hospital-physician", "dept-geri", "pr-phys-geri", "role-phys-geri", None),
    "oncall": ("hospital-physician", "dept-oncall-pool", "pr-oncall", "role-oncall", None),
    "planner": ("planner", "region", None, None, None),
    "admin": ("admin", "region", None, None, None),
    "citizen": ("citizen", None, None, None, "p-home"),
}


def _org(
    rid: str, name: str, sector: str, kind: str, part_of: str | None = None, **more: Any
) -> dict[str, Any]:
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": rid,
        "active": True,
        "name": name,
        "extension": [{"url": SECTOR_EXTENSION, "valueCoding": {"system": SECTOR, "code": sector}}],
        "type": [{"coding": [{"system": ORG_KIND, "code": kind}]}],
        **more,
    }
    if part_of:
        org["partOf"] = {"reference": f"Organization/{part_of}"}
    return org


def muni(code: str) -> dict[str, str]:
    return {"system": MUNICIPALITY_CODES, "value": code}


def _patient(rid: str, municipality: str, gp: str) -> dict[str, Any]:
    code = {"coding": [{"system": MUNICIPALITY_CODES, "code": municipality}]}
    return {
        "resourceType": "Patient",
        "id": rid,
        "name": [{"family": rid.title(), "given": ["Test"]}],
        "gender": "female",
        "birthDate": "1938-03-02",
        "address": [{"use": "home", "city": "Samsø", "extension": [
            {"url": MUNICIPALITY_EXTENSION, "valueCodeableConcept": code}]}],
        "generalPractitioner": [{"reference": f"Organization/{gp}"}],
    }  # fmt: skip


def _encounter(
    rid: str, patient: str, klass: str, status: str, provider: str, start: datetime,
    end: datetime | None = None, disposition: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    made: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": rid,
        "status": status,
        "class": {"system": ACT_CODE, "code": klass},
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": f"Organization/{provider}"},
        "period": {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})},
    }
    if disposition:
        made["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": DISCHARGE_DISPOSITION, "code": disposition}]}
        }
    return made


def world_resources() -> list[dict[str, Any]]:
    h = timedelta(hours=1)
    dk82 = [{"country": "DK", "state": "DK-82"}]
    made: list[dict[str, Any]] = [
        _org("region", "Region Midtjylland", "region", "region", address=dk82),
        _org("hosp", "Aarhus Universitetshospital", "region", "hospital", "region"),
        _org("dept-med", "Medicinsk afdeling", "region", "department-medicine", "hosp"),
        _org("dept-geri", "Geriatrisk afdeling", "region", "department-geriatrics", "hosp"),
        _org("dept-oncall-pool", "Vagtlægepuljen", "region", "department-medicine", "hosp"),
        _org("psych", "Psykiatrien, Region Midtjylland", "region", "psychiatric-hospital", "region"),
        _org("muni-0741", "Samsø Kommune", "municipality", "municipality", identifier=[muni("0741")]),
        _org("home-0741", "Hjemmesygeplejen, Samsø", "municipality", "municipal-homecare", "muni-0741"),
        _org("rehab-0741", "Genoptræning, Samsø", "municipality", "municipal-rehab", "muni-0741"),
        _org("acute-0741", "Samsø Sundheds- og Akuthus, akutpladser", "municipality", "municipal-acutebeds",
             "muni-0741"),
        _org("acute-small", "Akutpladsen (én seng)", "municipality", "municipal-acutebeds", "muni-0741"),
        _org("muni-0727", "Odder Kommune", "municipality", "municipality", identifier=[muni("0727")]),
        _org("home-0727", "Hjemmesygeplejen, Odder", "municipality", "municipal-homecare", "muni-0727"),
        _org("gp-0741", "Lægehuset Samsø", "general-practice", "gp-clinic"),
        _patient("p-home", "0741", "gp-0741"),
        _patient("p-discharged", "0741", "gp-0741"),
        _patient("p-none", "0727", "gp-other"),
        _patient("p-admitted", "0741", "gp-0741"),
        _encounter("e-home-hh", "p-home", "HH", "in-progress", "home-0741", NOW - 60 * 24 * h),
        _encounter("e-dis-hh", "p-discharged", "HH", "in-progress", "home-0741", NOW - 60 * 24 * h),
        _encounter("e-adm-hh", "p-admitted", "HH", "in-progress", "home-0741", NOW - 60 * 24 * h),
        _encounter("e-adm-imp", "p-admitted", "IMP", "in-progress", "dept-med", NOW - 96 * h),
        _encounter("e-old-imp", "p-admitted", "IMP", "finished", "dept-med", NOW - 400 * h, NOW - 300 * h,
                   "home"),
        _encounter("e-dis-imp", "p-discharged", "IMP", "finished", "dept-geri", NOW - 150 * h, NOW - 30 * h,
                   "home"),
    ]  # fmt: skip
    for person, (_, org, practitioner, role, _) in PEOPLE.items():
        if practitioner and role:
            made.append({"resourceType": "Practitioner", "id": practitioner, "name": [{"family": person}]})
            made.append(
                {
                    "resourceType": "PractitionerRole",
                    "id": role,
                    "active": True,
                    "practitioner": {"reference": f"Practitioner/{practitioner}"},
                    "organization": {"reference": f"Organization/{org}"},
                }
            )
    # The medical department's on-call role, held by "oncall" (who signs in from the on-call pool).
    for item in made:
        if item["resourceType"] == "PractitionerRole" and item["id"] == "role-oncall":
            item["organization"] = {"reference": "Organization/dept-med"}
            item["code"] = [{"coding": [{"system": ROLE_CODES, "code": "on-call"}]}]
    return made


@dataclass
class World:
    url: str
    db: Engine
    tokens: dict[str, str]

    def headers(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[person]}", "Content-Type": "application/json"}


def build(url: str) -> World:
    db = engine(url)
    clock.set_clock(NOW)
    for resource in world_resources():
        store.update(db, SYSTEM, resource["resourceType"], resource["id"], resource)
    issued: dict[str, str] = {}
    for person, (role, org, practitioner, practitioner_role, patient) in PEOPLE.items():
        scopes = "patient/*.rs" if role == "citizen" else "user/*.cruds"
        accounts.add(
            db, person, f"Test {person}", role, password=None, practitioner=practitioner,
            practitioner_role=practitioner_role, organization=org, patient=patient, scopes=scopes,
        )  # fmt: skip
        issued[person] = tokens.issue(person, scopes, 7 * 24 * 60)  # the tests move the clock days ahead
    return World(url, db, issued)


def worlds(
    request: Any, tmp_path_factory: Any, name: str, prepare: Any = None
) -> Iterator[tuple[World, Any]]:
    """The world on the store kind the fixture's parameter names (sqlite, postgresql), with the API over
    it as a test client; ``prepare(world)`` adds what one test module needs. For a module's ``world``
    fixture: ``yield from worlds(request, tmp_path_factory, "beds")``."""
    from fastapi.testclient import TestClient

    from naer.api.app import create_app
    from tests.conftest import new_store

    with new_store(request.param, tmp_path_factory.mktemp(name)) as url:
        made = build(url)
        if prepare is not None:
            prepare(made)
        try:
            with TestClient(create_app(url, migrate=False)) as api:
                yield made, api
        finally:
            clock.set_clock(None)


@pytest.fixture(autouse=True)
def monday_morning() -> Iterator[None]:
    """Every test starts on the world's Monday morning (import it into a test module to use it)."""
    clock.set_clock(NOW)
    yield
    clock.set_clock(NOW)


def post(api: Any, w: World, person: str, path: str, if_match: str | None = None, **body: Any) -> Any:
    """POST a JSON body to the API as ``person`` (with If-Match when given)."""
    import orjson

    headers = w.headers(person)
    if if_match is not None:
        headers["If-Match"] = if_match
    return api.post(path, headers=headers, content=orjson.dumps(body))
