"""A small world of citizens, each in one relation state to the askers of the access matrix, built in a
store through the store's own write path (SYSTEM), with accounts and tokens for every asker.

Citizens (their Patient ids) and what each asker may see, written out by hand from policy.yaml as a
clinician would read it (the oracle of tests/test_access.py):

- ``c-active``: GP clinic A; open home care by home-care unit A; an open admission at department OPEN;
  discharged home 48 h ago from department D48 after 3 days; discharged 96 h ago from D96.
- ``c-ended``: GP clinic C (no asker); home care by unit A finished; discharged 10 days ago from OPEN;
  a CareTeam with GP B whose period ended.
- ``c-blocked``: GP clinic A, open home care by unit A and an open admission at OPEN, but blocks: clinic A
  (the organisation), nurse A (the person) and the hospital above OPEN with its sub-units. The
  physician at OPEN has broken the glass (past the block).
- ``c-glass``: GP clinic C; GP B broke the glass an hour ago (running).
- ``c-expired``: GP clinic C; nurse B broke the glass 5 hours ago (expired after 4).
- ``c-none``: GP clinic C and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from naer import clock
from naer.access import accounts, audit, glass, tokens
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.db import engine

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CITIZENS = ("c-active", "c-ended", "c-blocked", "c-glass", "c-expired", "c-none")
ACTCODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
LOINC = "http://loinc.org"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
BLOCK_ROLE = "https://naer.example.org/fhir/CodeSystem/block-role"

# asker: (role, organisation, practitioner, scopes)
ASKERS: dict[str, tuple[str, str | None, str | None, str]] = {
    "gp-a": ("gp", "clinic-a", "doc-gp-a", "user/*.cruds"),
    "gp-b": ("gp", "clinic-b", "doc-gp-b", "user/*.cruds"),
    "nurse-a": ("home-care-nurse", "home-a", "nurse-a", "user/*.cruds"),
    "nurse-b": ("home-care-nurse", "home-b", "nurse-b", "user/*.cruds"),
    "phys-open": ("hospital-physician", "dept-open", "doc-open", "user/*.cruds"),
    "phys-48": ("hospital-physician", "dept-48", "doc-48", "user/*.cruds"),
    "phys-96": ("hospital-physician", "dept-96", "doc-96", "user/*.cruds"),
    "phys-never": ("hospital-physician", "dept-never", "doc-never", "user/*.cruds"),
    "citizen": ("citizen", None, None, "patient/*.rs"),
    "other-citizen": ("citizen", None, None, "patient/*.rs"),
    "planner": ("planner", "region", None, "user/*.rs"),
    "system": ("system", None, None, "system/*.cruds"),
}
CITIZEN_OF = {"citizen": "c-active", "other-citizen": "c-none"}

# The oracle: the citizens each asker may see (anonymous: none, with 401).
SEES: dict[str, set[str]] = {
    "gp-a": {"c-active"},
    "gp-b": {"c-glass"},
    "nurse-a": {"c-active"},
    "nurse-b": set(),
    "phys-open": {"c-active", "c-blocked"},
    "phys-48": {"c-active"},
    "phys-96": set(),
    "phys-never": set(),
    "citizen": {"c-active"},
    "other-citizen": {"c-none"},
    "planner": set(),
    "system": set(CITIZENS),
}
# May write records (create/update) of the citizens they see.
WRITES = {
    a for a, (role, *_) in ASKERS.items() if role in ("gp", "home-care-nurse", "hospital-physician", "system")
}
DELETES = {"system"}


def _org(rid: str, name: str, part_of: str | None = None) -> dict[str, Any]:
    org: dict[str, Any] = {"resourceType": "Organization", "id": rid, "name": name, "active": True}
    if part_of:
        org["partOf"] = {"reference": f"Organization/{part_of}"}
    return org


def _encounter(
    rid: str, patient: str, klass: str, status: str, provider: str, start: datetime, end: datetime | None,
    disposition: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    period: dict[str, str] = {"start": start.isoformat()}
    if end is not None:
        period["end"] = end.isoformat()
    made: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": rid,
        "status": status,
        "class": {"system": ACTCODE, "code": klass},
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": f"Organization/{provider}"},
        "period": period,
    }
    if disposition:
        made["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": DISPOSITION, "code": disposition}]}
        }
    return made


def _block(rid: str, patient: str, actor: str, sub_units: bool = False) -> dict[str, Any]:
    role = "with-sub-units" if sub_units else "blocked"
    return {
        "resourceType": "Consent",
        "id": rid,
        "status": "active",
        "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": {
            "type": "deny",
            "actor": [
                {
                    "role": {"coding": [{"system": BLOCK_ROLE, "code": role}]},
                    "reference": {"reference": actor},
                }
            ],
        },
    }  # fmt: skip


def observation(rid: str, patient: str, code: str = "8867-4") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "identifier": [{"system": "urn:naer:test", "value": rid}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def world_resources() -> list[dict[str, Any]]:
    h = timedelta(hours=1)
    enc = _encounter
    made: list[dict[str, Any]] = [
        _org("clinic-a", "Lægehuset A"),
        _org("clinic-b", "Lægehuset B"),
        _org("clinic-c", "Lægehuset C"),
        _org("kommune-a", "Kommune A"),
        _org("home-a", "Hjemmeplejen A", "kommune-a"),
        _org("home-b", "Hjemmeplejen B"),
        _org("hospital", "Hospitalet"),
        _org("dept-open", "Afdeling OPEN", "hospital"),
        _org("dept-48", "Afdeling D48", "hospital-2"),
        _org("hospital-2", "Hospital 2"),
        _org("dept-96", "Afdeling D96"),
        _org("dept-never", "Afdeling NEVER"),
        _org("region", "Regionen"),
    ]
    for asker, (_, org, person, _) in ASKERS.items():
        if person:
            made.append({"resourceType": "Practitioner", "id": person, "name": [{"family": asker}]})
            made.append(
                {
                    "resourceType": "PractitionerRole",
                    "id": f"role-{person}",
                    "practitioner": {"reference": f"Practitioner/{person}"},
                    "organization": {"reference": f"Organization/{org}"},
                }
            )
    gp = {"c-active": "clinic-a", "c-blocked": "clinic-a"}
    for c in CITIZENS:
        made.append(
            {
                "resourceType": "Patient",
                "id": c,
                "gender": "female",
                "birthDate": "1940-01-01",
                "name": [{"family": c}],
                "generalPractitioner": [{"reference": f"Organization/{gp.get(c, 'clinic-c')}"}],
            }
        )
        made.append(observation(f"obs-{c}", c))
    made += [
        enc("e-active-hh", "c-active", "HH", "in-progress", "home-a", NOW - 30 * 24 * h, None),
        enc("e-active-open", "c-active", "IMP", "in-progress", "dept-open", NOW - 50 * h, None),
        enc("e-active-48", "c-active", "IMP", "finished", "dept-48", NOW - 120 * h, NOW - 48 * h, "home"),
        enc("e-active-96", "c-active", "IMP", "finished", "dept-96", NOW - 170 * h, NOW - 96 * h, "home"),
        enc("e-ended-hh", "c-ended", "HH", "finished", "home-a", NOW - 90 * 24 * h, NOW - 20 * 24 * h),
        enc("e-ended-imp", "c-ended", "IMP", "finished", "dept-open", NOW - 300 * h, NOW - 240 * h, "home"),
        enc("e-blocked-hh", "c-blocked", "HH", "in-progress", "home-a", NOW - 30 * 24 * h, None),
        enc("e-blocked-imp", "c-blocked", "IMP", "in-progress", "dept-open", NOW - 20 * h, None),
        {
            "resourceType": "CareTeam",
            "id": "team-ended",
            "status": "active",
            "subject": {"reference": "Patient/c-ended"},
            "period": {"start": (NOW - 400 * h).isoformat(), "end": (NOW - 100 * h).isoformat()},
            "participant": [{"member": {"reference": "Practitioner/doc-gp-b"}}],
        },
        _block("block-clinic", "c-blocked", "Organization/clinic-a"),
        _block("block-nurse", "c-blocked", "Practitioner/nurse-a"),
        _block("block-hospital", "c-blocked", "Organization/hospital", sub_units=True),
        {
            "resourceType": "Group",
            "id": "everyone",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{c}"}} for c in CITIZENS],
        },
        {
            "resourceType": "Group",
            "id": "active-only",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": "Patient/c-active"}}],
        },
    ]  # fmt: skip
    return made


@dataclass
class World:
    url: str
    db: Engine
    tokens: dict[str, str]

    def headers(self, asker: str) -> dict[str, str]:
        if asker == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.tokens[asker]}"}


def _grant(db: Engine, asker: str, patient: str, at: datetime) -> None:
    clock.set_clock(at)
    try:
        account = accounts.get(db, asker)
        assert account is not None
        principal = accounts.principal(db, account, None, "127.0.0.1")
        entry = audit.Entry(
            action="break-glass",
            actor=asker,
            who=principal.reference,
            display=account.display,
            role=account.role,
            organization=account.organization,
            address="127.0.0.1",
        )
        glass.open_record(
            db, principal, entry, patient, "akut forværring, ingen relation registreret", "ETREAT"
        )
    finally:
        clock.set_clock(NOW)


def build(url: str) -> World:
    """The world in the (migrated) store at ``url``, with the clock fixed at NOW."""
    db = engine(url)
    clock.set_clock(NOW)
    for resource in world_resources():
        store.update(db, SYSTEM, resource["resourceType"], resource["id"], resource)
    issued: dict[str, str] = {}
    for asker, (role, org, person, scopes) in ASKERS.items():
        accounts.add(
            db,
            asker,
            f"Test {asker}",
            role,
            password=None,
            practitioner=person,
            practitioner_role=f"role-{person}" if person else None,
            organization=org,
            patient=CITIZEN_OF.get(asker),
            scopes=scopes,
        )
        issued[asker] = tokens.issue(asker, scopes)
    _grant(db, "gp-b", "c-glass", NOW - timedelta(hours=1))
    _grant(db, "nurse-b", "c-expired", NOW - timedelta(hours=5))
    _grant(db, "phys-open", "c-blocked", NOW - timedelta(minutes=10))
    return World(url, db, issued)
