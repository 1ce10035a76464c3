"""Writes the indicators' hand-made test population (the NDJSON files beside this script).

Every citizen is one case of one rule; CASES says which, and tests/test_indicators.py asserts the exact
counts that follow. Run `python tests/data/indicators/build.py` after changing a case; the files are
committed so that a reader can open them.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
SKS = "urn:oid:1.2.208.176.2.4"
MUNI_EXT = "http://hl7.dk/fhir/core/StructureDefinition/dk-core-municipalityCodes"
MUNI = "http://hl7.dk/fhir/core/CodeSystem/dk-core-municipality-codes"
NAER = "https://naer.example.org/fhir"

organizations = []
patients = []
encounters = []
conditions = []
observations = []


def org(
    oid: str, name: str, kind: str, sector: str, municipality: str | None = None, part_of: str | None = None
) -> None:
    o: dict = {
        "resourceType": "Organization",
        "id": oid,
        "name": name,
        "extension": [{"url": f"{NAER}/StructureDefinition/sector", "valueCoding": {"code": sector}}],
        "type": [{"coding": [{"system": f"{NAER}/CodeSystem/organization-kind", "code": kind}]}],
    }
    if municipality:
        o["identifier"] = [{"system": MUNI, "value": municipality}]
    if part_of:
        o["partOf"] = {"reference": f"Organization/{part_of}"}
    organizations.append(o)


org("muni-0741", "Samsø Kommune", "municipality", "municipality", "0741")
org("muni-0727", "Odder Kommune", "municipality", "municipality", "0727")
org("acutebeds-0741", "Samsø Akutpladser", "municipal-acutebeds", "municipality", part_of="muni-0741")
org("auh", "Aarhus Universitetshospital", "hospital", "region")
org("auh-med", "AUH Medicin", "department-medicine", "region", part_of="auh")
org("auh-surg", "AUH Kirurgi", "department-surgery", "region", part_of="auh")
org("gp-a", "Lægehuset Tranebjerg", "gp-clinic", "general-practice")
org("gp-b", "Lægerne i Odder", "gp-clinic", "general-practice")


def patient(
    pid: str,
    birth: str,
    *,
    sex: str = "female",
    gp: str = "gp-a",
    homes: list[tuple[str, str | None, str | None]] | None = None,
    died: str | None = None,
    education: str | None = None,
) -> None:
    homes = homes or [("0741", None, None)]
    addresses = []
    for code, start, end in homes:
        a: dict = {
            "use": "home",
            "extension": [
                {"url": MUNI_EXT, "valueCodeableConcept": {"coding": [{"system": MUNI, "code": code}]}}
            ],
        }
        period = {k: v for k, v in (("start", start), ("end", end)) if v}
        if period:
            a["period"] = period
        addresses.append(a)
    p: dict = {
        "resourceType": "Patient",
        "id": pid,
        "gender": sex,
        "birthDate": birth,
        "address": addresses,
        "generalPractitioner": [{"reference": f"Organization/{gp}"}],
    }
    if died:
        p["deceasedDateTime"] = died
    patients.append(p)
    if education:
        observations.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-edu",
                "status": "final",
                "category": [{"coding": [{"code": "social-history"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "82589-3"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": "2020-01-01",
                "valueCodeableConcept": {"coding": [{"code": education}]},
            }
        )


def contact(
    eid: str,
    pid: str,
    start: str,
    end: str,
    *,
    kind: str = "acute-admission",
    diagnoses: list[str] | None = None,
    provider: str = "auh-med",
    disposition: str = "home",
    part_of: str | None = None,
) -> None:
    cls = {"acute-admission": "IMP", "planned-admission": "IMP", "acute-bed": "IMP", "ed-visit": "EMER"}.get(
        kind, "AMB"
    )
    priority = {"acute-admission": "EM", "acute-bed": "EM", "ed-visit": "EM", "planned-admission": "EL"}.get(
        kind
    )
    e: dict = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": cls},
        "type": [{"coding": [{"system": f"{NAER}/CodeSystem/contact-type", "code": kind}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start, "end": end},
        "serviceProvider": {"reference": f"Organization/{provider}"},
    }
    if priority:
        e["priority"] = {"coding": [{"code": priority}]}
    if cls == "IMP":
        e["hospitalization"] = {"dischargeDisposition": {"coding": [{"code": disposition}]}}
    if part_of:
        e["partOf"] = {"reference": f"Encounter/{part_of}"}
    if diagnoses:
        e["diagnosis"] = []
        for rank, code in enumerate(diagnoses, start=1):
            cid = f"{eid}-dx{rank}"
            conditions.append(
                {
                    "resourceType": "Condition",
                    "id": cid,
                    "subject": {"reference": f"Patient/{pid}"},
                    "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
                    "code": {"coding": [{"system": SKS, "code": code}]},
                }
            )
            e["diagnosis"].append({"condition": {"reference": f"Condition/{cid}"}, "rank": rank})
    encounters.append(e)


def gp(eid: str, pid: str, day: str, clinic: str = "gp-a") -> None:
    contact(
        eid, pid, f"{day}T10:00:00+01:00", f"{day}T10:15:00+01:00", kind="gp-consultation", provider=clinic
    )


T = "T{}:00+01:00"


def at(day: str, hour: str = "10:00") -> str:
    return day + T.format(hour)


# ---- Preventable admissions among citizens 65+ -----------------------------------------------------
patient("p01", "1958-03-10", education="basic")  # 65 on the day of admission: counts
contact("e01", "p01", at("2023-03-10"), at("2023-03-13"), diagnoses=["DE869"])
patient("p02", "1958-03-11", education="higher")  # 64 on the day of admission: does not count
contact("e02", "p02", at("2023-03-10"), at("2023-03-13"), diagnoses=["DE869"])
patient("p03", "1953-01-01", sex="male")  # planned, not acute: does not count
contact("e03", "p03", at("2023-04-01"), at("2023-04-03"), kind="planned-admission", diagnoses=["DN390"])
patient("p04", "1953-01-01")  # the preventable code in rank 2: does not count
contact("e04", "p04", at("2023-04-01"), at("2023-04-04"), diagnoses=["DR509", "DJ189"])
patient("p05", "1953-01-01")  # a stay of 6 hours is no admission: does not count anywhere
contact("e05", "p05", at("2023-04-01", "08:00"), at("2023-04-01", "14:00"), diagnoses=["DJ189"])
patient("p06", "1951-01-01", homes=[("0741", None, "2023-06-30"), ("0219", "2023-06-30", None)])
contact("e06", "p06", at("2023-08-01"), at("2023-08-05"), diagnoses=["DK590"])  # moved away: not counted
# ---- Readmission within 30 days ---------------------------------------------------------------------
patient("p07", "1943-05-05", sex="male")  # fracture (preventable 65+); readmitted on day 30: counts
contact("e07a", "p07", at("2023-04-05"), at("2023-04-10", "12:00"), diagnoses=["DS720"])
contact("e07b", "p07", at("2023-05-10"), at("2023-05-12"), diagnoses=["DR074"])
patient("p08", "1943-05-05", sex="male")  # readmitted on day 31: not a readmission
contact("e08a", "p08", at("2023-04-05"), at("2023-04-10", "12:00"), diagnoses=["DR074"])
contact("e08b", "p08", at("2023-05-11"), at("2023-05-13"), diagnoses=["DR074"])
patient("p09", "1960-01-01")  # a transfer within 4 hours is one admission, not a readmission
contact("e09a", "p09", at("2023-06-01"), at("2023-06-03", "12:00"), diagnoses=["DI489"])
contact(
    "e09b",
    "p09",
    at("2023-06-03", "14:00"),
    at("2023-06-08"),
    provider="auh-surg",
    part_of="e09a",
    diagnoses=["DK802"],
)
patient("p10", "1940-01-01", died="2023-07-05T09:00:00+02:00")  # died during the admission: no index
contact("e10", "p10", at("2023-07-01"), at("2023-07-05", "09:00"), diagnoses=["DJ189"], disposition="exp")
patient("p11", "1950-02-02")  # readmitted for cancer: not a readmission
contact("e11a", "p11", at("2023-02-01"), at("2023-02-05"), diagnoses=["DJ441"])
contact("e11b", "p11", at("2023-02-15"), at("2023-02-20"), diagnoses=["DC349"])
patient("p12", "1950-02-02")  # index admission for cancer: excluded, its readmission not counted
contact("e12a", "p12", at("2023-02-01"), at("2023-02-05"), kind="planned-admission", diagnoses=["DC189"])
contact("e12b", "p12", at("2023-02-10"), at("2023-02-14"), diagnoses=["DJ189"])
patient("p13", "1970-07-07")  # a planned admission within 30 days is no readmission
contact("e13a", "p13", at("2023-03-01"), at("2023-03-03"), diagnoses=["DK802"])
contact("e13b", "p13", at("2023-03-20"), at("2023-03-22"), kind="planned-admission", diagnoses=["DK802"])
# ---- GP follow-up within 14 days (65+) --------------------------------------------------------------
patient("p14", "1945-01-01")  # GP contact on day 14: followed up
contact("e14", "p14", at("2023-08-28"), at("2023-09-01", "11:00"), diagnoses=["DR074"])
gp("g14", "p14", "2023-09-15")
patient("p15", "1945-01-01")  # GP contact on day 15: not followed up
contact("e15", "p15", at("2023-08-28"), at("2023-09-01", "11:00"), diagnoses=["DR074"])
gp("g15", "p15", "2023-09-16")
patient("p16", "1950-06-06", died="2023-09-05T12:00:00+02:00")  # died within 14 days: left out
contact("e16", "p16", at("2023-08-28"), at("2023-09-01", "11:00"), diagnoses=["DR074"])
# ---- Chronic conditions (all ages) ------------------------------------------------------------------
patient("p17", "1983-01-01", sex="male", education="upper-secondary")  # diabetes, acute: counts
contact("e17", "p17", at("2023-10-01"), at("2023-10-03"), diagnoses=["DE111"])
patient("p18", "1993-01-01", sex="male")  # asthma, planned: does not count
contact("e18", "p18", at("2023-10-01"), at("2023-10-03"), kind="planned-admission", diagnoses=["DJ459"])
# ---- Acute beds, births, another municipality -------------------------------------------------------
patient("p19", "1940-01-01")  # a stay at the municipal acute beds
contact("e19", "p19", at("2023-02-01"), at("2023-02-04"), kind="acute-bed", provider="acutebeds-0741")
patient("p20", "2023-05-01", sex="male")  # born in the year: person-time from birth
patient("p21", "1933-01-01", gp="gp-b", homes=[("0727", None, None)])  # Odder, 90: dehydration counts
contact("e21", "p21", at("2023-11-01"), at("2023-11-04"), diagnoses=["DE869"])
# An admission that starts in 2022 and ends in 2023: its bed days belong to 2023, the admission to 2022.
patient("p22", "1948-12-24")
contact("e22", "p22", at("2022-12-28"), at("2023-01-03"), diagnoses=["DR509"])


def write() -> None:
    for name, rows in (
        ("Organization", organizations),
        ("Patient", patients),
        ("Encounter", encounters),
        ("Condition", conditions),
        ("Observation", observations),
    ):
        text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        (HERE / f"{name}.ndjson").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
