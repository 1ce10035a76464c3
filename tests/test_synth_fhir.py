"""Every generated resource is valid FHIR (checked by a FHIR library) and every reference resolves."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from naer.fhir import cpr
from naer.fhir import systems as S
from naer.fhir.validate import validation_errors
from naer.synth.run import RESOURCE_TYPES
from tests.conftest import read_ndjson, resources

SKS_DIAGNOSIS = re.compile(r"^D[A-Z][0-9]{2,4}$")


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_references(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_references(item))
    return found


def test_every_resource_validates_with_the_fhir_library(samsoe: Path) -> None:
    kinds: Counter[str] = Counter()
    problems = []
    for resource in resources(samsoe):
        kinds[resource["resourceType"]] += 1
        problems += validation_errors(resource)
    assert not problems[:20]
    for kind in RESOURCE_TYPES:
        assert kinds[kind] > 0, kind


def test_the_validator_rejects_what_is_not_fhir() -> None:
    assert validation_errors({"resourceType": "Patient", "gender": "female", "birthDate": "1950-13-45"})
    assert validation_errors({"resourceType": "Encounter", "status": "finished"})  # class is required
    assert validation_errors({"resourceType": "Patient", "colour": "blue"})
    assert validation_errors({"resourceType": "NoSuchThing"}) == [
        "resourceType: unknown resource type 'NoSuchThing' (not one of FHIR R4's)"
    ]


def test_ids_are_unique_and_every_reference_resolves(samsoe: Path) -> None:
    seen: set[str] = set()
    refs: list[tuple[str, str]] = []
    for resource in resources(samsoe):
        key = f"{resource['resourceType']}/{resource['id']}"
        assert key not in seen, key
        seen.add(key)
        refs += [(key, ref) for ref in _references(resource)]
    dangling = [(src, ref) for src, ref in refs if ref not in seen]
    assert not dangling[:10]
    assert len(refs) > 100_000


def test_citizens_have_synthetic_unique_cpr_matching_birth_date_and_sex(samsoe: Path) -> None:
    numbers = set()
    for patient in read_ndjson(samsoe / "Patient.ndjson"):
        assert {"system": S.ACT_REASON, "code": "HTEST"} in patient["meta"]["tag"]
        (identifier,) = [i for i in patient["identifier"] if i["system"] == S.CPR]
        parsed = cpr.parse(identifier["value"])
        assert parsed.synthetic
        assert parsed.birth_date.isoformat() == patient["birthDate"]
        assert parsed.sex == patient["gender"]
        numbers.add(identifier["value"])
        home = patient["address"][0]
        assert home["extension"][0]["url"] == S.MUNICIPALITY_EXTENSION
        assert home["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "0741"
        assert home["postalCode"] == "8305"
        assert patient["generalPractitioner"][0]["reference"].startswith("Organization/gp-0741-")
    assert len(numbers) > 500


def test_region_cpr_numbers_are_unique_across_chunks_and_workers(region: Path) -> None:
    numbers = [p["identifier"][0]["value"] for p in read_ndjson(region / "Patient.ndjson")]
    assert len(numbers) == len(set(numbers)) > 13_000


def test_diagnoses_are_sks_codes(samsoe: Path) -> None:
    for condition in read_ndjson(samsoe / "Condition.ndjson"):
        coding = condition["code"]["coding"][0]
        assert coding["system"] == S.SKS
        assert SKS_DIAGNOSIS.match(coding["code"]), coding["code"]


def test_every_contact_has_a_sector_through_its_service_provider(samsoe: Path) -> None:
    orgs = {o["id"]: o for o in read_ndjson(samsoe / "Organization.ndjson")}
    sectors: Counter[str] = Counter()
    for encounter in read_ndjson(samsoe / "Encounter.ndjson"):
        org = orgs[encounter["serviceProvider"]["reference"].split("/")[1]]
        sectors[org["extension"][0]["valueCoding"]["code"]] += 1
    assert set(sectors) == {"region", "municipality", "general-practice"}


def test_organisation_hierarchy_reaches_a_region_or_municipality(samsoe: Path) -> None:
    orgs = {o["id"]: o for o in read_ndjson(samsoe / "Organization.ndjson")}
    for org in orgs.values():
        node, hops = org, 0
        while "partOf" in node:
            node = orgs[node["partOf"]["reference"].split("/")[1]]
            hops += 1
            assert hops < 5
        kind = node["type"][0]["coding"][0]["code"]
        assert kind in {"region", "municipality", "gp-clinic"}, org["id"]
    names = {o["name"] for o in orgs.values()}
    assert "Samsø Sundheds- og Akuthus, akutpladser" in names
    assert "Aarhus Universitetshospital" in names


def test_contacts_cover_every_sector_and_admissions_carry_what_indicators_need(
    samsoe: Path,
) -> None:
    kinds: Counter[str] = Counter()
    transfers = 0
    dispositions: Counter[str] = Counter()
    for e in read_ndjson(samsoe / "Encounter.ndjson"):
        kind = e["type"][0]["coding"][0]["code"]
        kinds[kind] += 1
        if kind in ("acute-admission", "planned-admission"):
            assert e["class"]["code"] == "IMP"
            assert e["priority"]["coding"][0]["code"] == ("EM" if kind == "acute-admission" else "EL")
            assert [d["rank"] for d in e["diagnosis"]] == list(range(1, len(e["diagnosis"]) + 1))
            assert "admitSource" in e["hospitalization"]
            if e["status"] == "finished":
                dispositions[e["hospitalization"]["dischargeDisposition"]["coding"][0]["code"]] += 1
            transfers += "partOf" in e
    for kind in (
        "gp-consultation",
        "gp-phone",
        "gp-email",
        "out-of-hours",
        "ed-visit",
        "acute-admission",
        "planned-admission",
        "outpatient",
        "home-care",
        "rehabilitation",
        "acute-bed",
    ):
        assert kinds[kind] > 0, kind
    assert transfers > 0
    assert {"home", "exp", "other-hcf"} <= set(dispositions)


def test_observations_hold_social_facts_and_home_measurements(samsoe: Path) -> None:
    codes: Counter[str] = Counter()
    for o in read_ndjson(samsoe / "Observation.ndjson"):
        codes[o["code"]["coding"][0]["code"]] += 1
    for code in ("82589-3", "income-group", "living-alone", "29463-7", "59408-5", "85354-9"):
        assert codes[code] > 0, code
