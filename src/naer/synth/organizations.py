"""The health organisations of an area as FHIR resources: region, hospitals and departments,
municipalities and their units, out-of-hours service, GP clinics with their GPs.

Every Organization has a synthetic SOR-style identifier (15 digits, starting with 9, never a real SOR
code), a sector, and a ``partOf`` chain up to the region or the municipality, so every contact's
``serviceProvider`` tells which sector it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from naer.fhir import systems as S
from naer.synth.areas import Municipality
from naer.synth.model import Model

DEPARTMENTS = {
    "emergency": "Akutafdeling",
    "medicine": "Medicinsk afdeling",
    "geriatrics": "Geriatrisk afdeling",
    "cardiology": "Hjertesygdomme",
    "orthopaedics": "Ortopædkirurgi",
    "surgery": "Kirurgisk afdeling",
    "oncology": "Kræftafdelingen",
}
MUNICIPAL_UNITS = {
    "homecare": "Hjemmepleje og sygepleje",
    "acuteteam": "Akutteam",
    "acutebeds": "Akutpladser",
    "rehab": "Træning og rehabilitering",
}
GP_LIST_SIZE = 1600  # citizens per GP (PLO / Danish Regions, approx.)


@dataclass
class MunicipalityOrgs:
    """What a chunk of citizens in one municipality needs to know about its organisations."""

    code: str
    org_id: str
    units: dict[str, str]
    hospital: str  # hospital key
    department_ids: dict[str, str]
    psychiatry_id: str
    out_of_hours_id: str
    clinics: list[str] = field(default_factory=list)
    clinic_gps: list[int] = field(default_factory=list)
    clinic_effect: list[float] = field(default_factory=list)
    clinic_practitioners: list[list[str]] = field(default_factory=list)


def _org(
    oid: str,
    name: str,
    sor: str,
    sector: str,
    kind: str,
    part_of: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Organization",
        "id": oid,
        "meta": {"tag": [S.SYNTHETIC_TAG]},
        "extension": [{"url": S.SECTOR_EXTENSION, "valueCoding": {"system": S.SECTOR, "code": sector}}],
        "identifier": [{"system": S.SOR, "value": sor}],
        "active": True,
        "type": [{"coding": [{"system": S.ORG_KIND, "code": kind}]}],
        "name": name,
    }
    if part_of:
        res["partOf"] = {"reference": f"Organization/{part_of}"}
    if extra:
        res.update(extra)
    return res


def build_organizations(
    model: Model, municipalities: list[Municipality], citizens: dict[str, int], seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], dict[str, MunicipalityOrgs]]:
    """Organizations, Practitioners, PractitionerRoles, and a per-municipality index for the engine."""
    rng = np.random.default_rng([seed, 7])
    serial = iter(range(1, 10_000_000))

    def sor() -> str:
        return f"9{next(serial):07d}1000016"

    orgs: list[dict[str, Any]] = []
    practitioners: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    regions = sorted({m.region for m in municipalities})
    hospitals = sorted({m.hospital for m in municipalities})
    hosp_table = model.areas["hospitals"]
    region_table = model.areas["regions"]
    dept_ids: dict[str, dict[str, str]] = {}

    for region in regions:
        rname = region_table[region]["name"]
        rid = f"region-{region.lower()}"
        orgs.append(
            _org(
                rid,
                rname,
                sor(),
                "region",
                "region",
                extra={"address": [{"country": "DK", "state": region}]},
            )
        )
        orgs.append(
            _org(
                f"{rid}-psychiatry",
                f"Psykiatrien, {rname}",
                sor(),
                "region",
                "psychiatric-hospital",
                rid,
            )
        )
        orgs.append(_org(f"{rid}-ooh", f"Lægevagten, {rname}", sor(), "region", "out-of-hours", rid))
    for key in hospitals:
        h = hosp_table[key]
        rid = f"region-{h['region'].lower()}"
        hid = f"hosp-{key}"
        orgs.append(
            _org(
                hid,
                h["name"],
                sor(),
                "region",
                "hospital",
                rid,
                extra={"address": [{"city": h["town"], "postalCode": h["postal"], "country": "DK"}]},
            )
        )
        dept_ids[key] = {}
        for dkey, dname in DEPARTMENTS.items():
            did = f"{hid}-{dkey}"
            orgs.append(_org(did, f"{dname}, {h['name']}", sor(), "region", f"department-{dkey}", hid))
            dept_ids[key][dkey] = did

    index: dict[str, MunicipalityOrgs] = {}
    for m in municipalities:
        mid = f"muni-{m.code}"
        muni_ext = {
            "address": [{"city": m.name, "postalCode": m.postal[0], "country": "DK", "state": m.region}],
        }
        orgs.append(_org(mid, f"{m.name} Kommune", sor(), "municipality", "municipality", None, muni_ext))
        orgs[-1]["identifier"].append({"system": S.MUNICIPALITY_CODES, "value": m.code})
        units = {}
        for ukey, uname in MUNICIPAL_UNITS.items():
            uid = f"{mid}-{ukey}"
            label = f"{uname}, {m.name} Kommune"
            if m.code == "0741" and ukey == "acutebeds":
                label = "Samsø Sundheds- og Akuthus, akutpladser"
            orgs.append(_org(uid, label, sor(), "municipality", f"municipal-{ukey}", mid))
            units[ukey] = uid
        rid = f"region-{m.region.lower()}"
        mo = MunicipalityOrgs(
            code=m.code,
            org_id=mid,
            units=units,
            hospital=m.hospital,
            department_ids=dept_ids[m.hospital],
            psychiatry_id=f"{rid}-psychiatry",
            out_of_hours_id=f"{rid}-ooh",
        )
        n_gps = max(1, round(citizens[m.code] / GP_LIST_SIZE))
        k = 0
        while n_gps > 0:
            size = int(min(n_gps, rng.choice([1, 2, 3, 4], p=[0.35, 0.30, 0.20, 0.15])))
            n_gps -= size
            k += 1
            cid = f"gp-{m.code}-{k:03d}"
            postal = m.postal[int(rng.integers(len(m.postal)))]
            orgs.append(
                _org(
                    cid,
                    f"Lægehuset {m.name} {k}",
                    sor(),
                    "general-practice",
                    "gp-clinic",
                    None,
                    {"address": [{"city": m.name, "postalCode": postal, "country": "DK"}]},
                )
            )
            docs = []
            for j in range(size):
                pid = f"gpdoc-{m.code}-{k:03d}-{j + 1}"
                sex = "female" if rng.random() < 0.55 else "male"
                given = _pick(rng, model.names[sex])
                family = _pick(rng, model.names["family"])
                practitioners.append(
                    {
                        "resourceType": "Practitioner",
                        "id": pid,
                        "meta": {"tag": [S.SYNTHETIC_TAG]},
                        "active": True,
                        "name": [{"use": "official", "family": family, "given": [given]}],
                        "gender": sex,
                    }
                )
                roles.append(
                    {
                        "resourceType": "PractitionerRole",
                        "id": f"gprole-{m.code}-{k:03d}-{j + 1}",
                        "meta": {"tag": [S.SYNTHETIC_TAG]},
                        "active": True,
                        "practitioner": {"reference": f"Practitioner/{pid}"},
                        "organization": {"reference": f"Organization/{cid}"},
                        "code": [
                            {
                                "coding": [
                                    {
                                        "system": S.SNOMED,
                                        "code": "62247001",
                                        "display": "General practitioner",
                                    }
                                ]
                            }
                        ],
                    }
                )
                docs.append(pid)
            mo.clinics.append(cid)
            mo.clinic_gps.append(size)
            # A clinic's own level of acute admissions among its patients (unobserved practice style).
            mo.clinic_effect.append(float(np.exp(rng.normal(0.0, 0.12))))
            mo.clinic_practitioners.append(docs)
        index[m.code] = mo
    return orgs, practitioners, roles, index


def _pick(rng: np.random.Generator, table: dict[str, float]) -> str:
    keys = list(table)
    p = np.asarray([table[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]
