"""The demo's named users on Samsø, chosen from the synthetic data in the store so that each has real
care relations: a citizen with open municipal home care and an open hospital admission, that citizen's
GP, a home-care nurse and an acute-bed nurse at Samsø Sundheds- og Akuthus (Samsø Municipality's
units), a physician at the department where the citizen is admitted and the department's on-call physician
(overdue advice requests are escalated to that role), a planner, an administrator, and a
system client for the message gateway. The nurses and the physician get a Practitioner and a
PractitionerRole of their own (the synthetic data has GPs only).

Only ``naer users demo`` (``make demo``) calls this; a deployment has no default account or password.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from sqlalchemy import Engine

from naer.access import accounts
from naer.errors import UserError
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.search.query import search

SAMSOE = "0741"
HOME_CARE = f"muni-{SAMSOE}-homecare"
ACUTE_BEDS = f"muni-{SAMSOE}-acutebeds"
REGION = "region-midtjylland"
ON_CALL_SYSTEM = (
    "https://naer.example.org/fhir/CodeSystem/practitioner-role"  # coordination.values.ROLE_CODES
)
ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no look-alikes, no leading dash


def _find(db: Engine, kind: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    found = search(db, SYSTEM, kind, [*pairs, ("_count", "1000")])
    return [orjson.loads(m.content) for m in found.matches if m.content]


def _ref(resource: dict[str, Any], key: str) -> str:
    value = resource.get(key) or {}
    return str(value.get("reference", "")).split("/", 1)[-1] if isinstance(value, dict) else ""


def _person(
    db: Engine, rid: str, family: str, given: str, organization: str, code: str, shown: str,
    system: str = "http://snomed.info/sct",
) -> None:  # fmt: skip
    store.update(
        db,
        SYSTEM,
        "Practitioner",
        rid,
        {
            "resourceType": "Practitioner",
            "id": rid,
            "active": True,
            "name": [{"family": family, "given": [given]}],
        },
    )
    store.update(
        db,
        SYSTEM,
        "PractitionerRole",
        f"role-{rid}",
        {
            "resourceType": "PractitionerRole",
            "id": f"role-{rid}",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{rid}"},
            "organization": {"reference": f"Organization/{organization}"},
            "code": [{"coding": [{"system": system, "code": code, "display": shown}]}],
        },
    )


def _name(resource: dict[str, Any]) -> str:
    name = (resource.get("name") or [{}])[0]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or resource["id"]


def make_demo_users(db: Engine) -> list[dict[str, str]]:
    """Create the demo accounts (and the people they are); their names and new passwords."""
    home = {
        _ref(e, "subject"): e for e in _find(db, "Encounter", [("status", "in-progress"), ("class", "HH")])
    }
    stays = _find(
        db,
        "Encounter",
        [("status", "in-progress"), ("class", "IMP"), ("type", "acute-admission,planned-admission")],
    )
    admitted = [
        e for e in stays if _ref(e, "subject") in home and _ref(e, "serviceProvider").startswith("hosp-")
    ]
    if not admitted:
        admitted = [e for e in stays if _ref(e, "serviceProvider").startswith("hosp-")]
    if not home or not admitted:
        raise UserError("the store holds no Samsø citizen in home care or admitted: load the demo data first")
    stay = sorted(admitted, key=lambda e: e["id"])[0]
    patient_id = _ref(stay, "subject")
    patient = orjson.loads(store.read(db, SYSTEM, "Patient", patient_id, audit=False).content or "{}")
    clinic = str((patient.get("generalPractitioner") or [{}])[0].get("reference", "")).split("/", 1)[-1]
    roles = _find(db, "PractitionerRole", [("organization", f"Organization/{clinic}")])
    if not roles:
        raise UserError(f"the citizen's GP clinic {clinic} has no GP in the store")
    gp_role = sorted(roles, key=lambda r: r["id"])[0]
    gp = orjson.loads(
        store.read(db, SYSTEM, "Practitioner", _ref(gp_role, "practitioner"), audit=False).content or "{}"
    )
    department = _ref(stay, "serviceProvider")
    dept = orjson.loads(store.read(db, SYSTEM, "Organization", department, audit=False).content or "{}")
    _person(db, "demo-nurse-home", "Holm", "Karen", HOME_CARE, "224535009", "Registered nurse")
    _person(db, "demo-nurse-acute", "Bech", "Mette", ACUTE_BEDS, "224535009", "Registered nurse")
    _person(db, "demo-physician", "Krogh", "Anders", department, "309343006", "Physician")
    _person(db, "demo-oncall", "Lund", "Sofie", department, "on-call", "Vagthavende læge", ON_CALL_SYSTEM)
    people: list[dict[str, Any]] = [
        {"name": "laege", "role": "gp", "display": f"{_name(gp)}, praktiserende læge",
         "practitioner": gp["id"], "practitioner_role": gp_role["id"], "organization": clinic,
         "about": f"GP at {clinic} (the citizen's clinic)"},
        {"name": "hjemmesygeplejerske", "role": "home-care-nurse", "display": "Karen Holm, sygeplejerske",
         "practitioner": "demo-nurse-home", "practitioner_role": "role-demo-nurse-home",
         "organization": HOME_CARE,
         "about": "home-care nurse, Samsø Kommune"},
        {"name": "akutsygeplejerske", "role": "acute-bed-nurse", "display": "Mette Bech, sygeplejerske",
         "practitioner": "demo-nurse-acute", "practitioner_role": "role-demo-nurse-acute",
         "organization": ACUTE_BEDS, "about": "acute-bed nurse, Samsø Sundheds- og Akuthus"},
        {"name": "overlaege", "role": "hospital-physician", "display": "Anders Krogh, overlæge",
         "practitioner": "demo-physician", "practitioner_role": "role-demo-physician",
         "organization": department,
         "about": f"physician, {dept.get('name', department)} (the citizen is admitted there)"},
        {"name": "vagtlaege", "role": "hospital-physician", "display": "Sofie Lund, vagthavende læge",
         "practitioner": "demo-oncall", "practitioner_role": "role-demo-oncall", "organization": department,
         "about": f"on-call physician, {dept.get('name', department)} (overdue advice is escalated here)"},
        {"name": "planlaegger", "role": "planner", "display": "Planlægger, Region Midtjylland",
         "organization": REGION, "about": "planner: the dashboard, never a record"},
        {"name": "borger", "role": "citizen", "display": _name(patient), "patient": patient_id,
         "about": f"the citizen Patient/{patient_id}"},
        {"name": "admin", "role": "admin", "display": "Administrator", "organization": REGION,
         "about": "administrator: accounts, audit log, break-the-glass review"},
        {"name": "medcom-gateway", "role": "system", "display": "MedCom-gateway", "scopes": "system/*.cruds",
         "about": "system client (client credentials at /oauth/token)"},
    ]  # fmt: skip
    made = []
    for person in people:
        password = "".join(secrets.choice(ALPHABET) for _ in range(16))
        about = person.pop("about")
        if accounts.get(db, person["name"]) is not None:  # made before: a new password
            accounts.set_password(db, person["name"], password)
        else:
            accounts.add(db, person["name"], person["display"], person["role"], password,
                         person.get("practitioner"), person.get("practitioner_role"),
                         person.get("organization"), person.get("patient"), person.get("scopes"))  # fmt: skip
        made.append({"name": person["name"], "password": password, "role": person["role"], "about": about})
    return made
