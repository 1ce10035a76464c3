"""FHIR search, conditional interactions, Patient/$everything, Patient/Group $export and $import, on
SQLite and PostgreSQL, over a small hand-written set where each expected answer is known."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from naer.store.search.definitions import params_of, searchable_types
from tests.conftest import signed_in

CPR = "urn:oid:1.2.208.176.1.2"
SKS = "urn:oid:1.2.208.176.2.4"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
FHIR = {"Content-Type": "application/fhir+json"}


def _encounter(rid: str, patient: str, cls: str, status: str, period: dict[str, str], org: str) -> Any:
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": status,
        "class": {"system": ACT, "code": cls},
        "subject": {"reference": f"Patient/{patient}"},
        "period": period,
        "serviceProvider": {"reference": f"Organization/{org}"},
    }


def _task(rid: str, status: str, owner: str, patient: str, **more: Any) -> Any:
    return {
        "resourceType": "Task",
        "id": rid,
        "status": status,
        "intent": "order",
        "owner": {"reference": f"Organization/{owner}"},
        "for": {"reference": f"Patient/{patient}"},
        **more,
    }


RESOURCES: list[Any] = [
    {"resourceType": "Organization", "id": "org-gp", "name": "Lægehuset Samsø"},
    {"resourceType": "Organization", "id": "org-hosp", "name": "Aarhus Universitetshospital"},
    {"resourceType": "Organization", "id": "org-kom", "name": "Samsø Kommune"},
    {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": CPR, "value": "0101401234"}],
        "name": [{"family": "Østergård", "given": ["Åse"]}],
        "gender": "female",
        "birthDate": "1940-01-01",
        "generalPractitioner": [{"reference": "Organization/org-gp"}],
        "address": [{"postalCode": "8305", "city": "Samsø"}],
    },
    {
        "resourceType": "Patient",
        "id": "p2",
        "identifier": [{"system": CPR, "value": "1506801235"}],
        "name": [{"family": "Hansen", "given": ["Jens"]}],
        "gender": "male",
        "birthDate": "1980-06-15",
        "generalPractitioner": [{"reference": "Organization/org-gp"}],
        "address": [{"postalCode": "8000", "city": "Aarhus C"}],
    },
    {
        "resourceType": "Patient",
        "id": "p3",
        "name": [{"family": "Madsen", "given": ["Anne"]}],
        "gender": "female",
        "birthDate": "1965",
        "address": [{"postalCode": "8305"}],
    },
    _encounter(
        "e1",
        "p1",
        "IMP",
        "finished",
        {"start": "2024-03-01T10:00:00+01:00", "end": "2024-03-05T12:00:00+01:00"},
        "org-hosp",
    ),
    _encounter("e2", "p1", "AMB", "finished", {"start": "2025-01-10", "end": "2025-01-10"}, "org-gp"),
    _encounter("e3", "p2", "IMP", "in-progress", {"start": "2025-06-01T08:00:00Z"}, "org-hosp"),
    _encounter(
        "e4",
        "p3",
        "EMER",
        "finished",
        {"start": "2023-12-31T23:00:00Z", "end": "2024-01-01T01:00:00Z"},
        "org-hosp",
    ),
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SKS, "code": "DJ441"}]},
        "onsetDateTime": "2019-05",
    },
    {
        "resourceType": "Condition",
        "id": "c2",
        "subject": {"reference": "Patient/p2"},
        "code": {"coding": [{"system": SKS, "code": "DE119"}]},
        "onsetDateTime": "2010",
    },
    _task(
        "t1",
        "requested",
        "org-kom",
        "p1",
        focus={"reference": "Encounter/e1"},
        executionPeriod={"start": "2025-01-01"},
    ),
    _task("t2", "completed", "org-kom", "p2"),
    _task("t3", "in-progress", "org-gp", "p1"),
    {
        "resourceType": "Group",
        "id": "g1",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p3"}}],
    },
]


@pytest.fixture
def fhir(api: TestClient) -> TestClient:
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in RESOURCES
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    done = api.post("/fhir", content=orjson.dumps(bundle), headers=FHIR)
    assert done.status_code == 200, done.text
    return api


def ids(api: TestClient, url: str, **headers: str) -> list[str]:
    got = api.get(url, headers=headers)
    assert got.status_code == 200, got.text
    return [e["resource"]["id"] for e in got.json().get("entry", []) if e["search"]["mode"] == "match"]


def found(api: TestClient, url: str) -> set[str]:
    return set(ids(api, url))


def test_token_search(fhir: TestClient) -> None:
    assert found(fhir, "/fhir/Encounter?class=IMP") == {"e1", "e3"}
    assert found(fhir, f"/fhir/Encounter?class={ACT}|IMP") == {"e1", "e3"}
    assert found(fhir, "/fhir/Encounter?class=http://other|IMP") == set()
    assert found(fhir, "/fhir/Encounter?class=|IMP") == set()  # these codings have a system
    assert found(fhir, f"/fhir/Encounter?class={ACT}|") == {"e1", "e2", "e3", "e4"}
    assert found(fhir, "/fhir/Encounter?class:not=IMP") == {"e2", "e4"}
    assert found(fhir, f"/fhir/Patient?identifier={CPR}|0101401234") == {"p1"}
    assert found(fhir, "/fhir/Task?status=requested,in-progress") == {"t1", "t3"}
    assert found(fhir, "/fhir/Patient?gender=female&address-postalcode=8305") == {"p1", "p3"}
    assert found(fhir, f"/fhir/Condition?code={SKS}|DJ441") == {"c1"}
    assert found(fhir, "/fhir/Group?actual=true") == {"g1"}


def test_string_search(fhir: TestClient) -> None:
    assert found(fhir, "/fhir/Patient?name=østergard") == {"p1"}  # accent-insensitive: å = a
    assert found(fhir, "/fhir/Patient?name=ØSTER") == {"p1"}  # case-insensitive, a prefix
    assert found(fhir, "/fhir/Patient?name=ase") == {"p1"}  # any part of the name
    assert found(fhir, "/fhir/Patient?name:exact=Østergård") == {"p1"}
    assert found(fhir, "/fhir/Patient?name:exact=østergård") == set()
    assert found(fhir, "/fhir/Patient?name:contains=ERGA") == {"p1"}
    assert found(fhir, "/fhir/Patient?family=han,mad") == {"p2", "p3"}
    assert found(fhir, "/fhir/Patient?address-postalcode=8305") == {"p1", "p3"}
    assert found(fhir, "/fhir/Patient?address=aarhus") == {"p2"}
    assert found(fhir, "/fhir/Organization?name=samsø") == {"org-kom"}


def test_reference_search(fhir: TestClient) -> None:
    for value in ("p1", "Patient/p1", "http://example.org/fhir/Patient/p1"):
        assert found(fhir, f"/fhir/Encounter?patient={value}") == {"e1", "e2"}
    assert found(fhir, "/fhir/Encounter?subject:Patient=p1") == {"e1", "e2"}
    assert found(fhir, "/fhir/Encounter?subject:Group=p1") == set()
    assert found(fhir, "/fhir/Encounter?service-provider=Organization/org-gp") == {"e2"}
    assert found(fhir, "/fhir/Task?owner=Organization/org-kom&status=requested") == {"t1"}
    assert found(fhir, "/fhir/Task?focus=Encounter/e1") == {"t1"}
    assert found(fhir, "/fhir/Group?member=Patient/p3") == {"g1"}


def test_date_search_prefixes_over_ranges(fhir: TestClient) -> None:
    assert found(fhir, "/fhir/Encounter?date=2024") == {"e1"}  # e4 starts in 2023: not inside 2024
    assert found(fhir, "/fhir/Encounter?date=eq2024-03") == {"e1"}
    assert found(fhir, "/fhir/Encounter?date=ge2025-01-01") == {"e2", "e3"}  # e3 has no end
    assert found(fhir, "/fhir/Encounter?date=gt2025-01-10") == {"e3"}
    assert found(fhir, "/fhir/Encounter?date=lt2024-01-01") == {"e4"}
    assert found(fhir, "/fhir/Encounter?date=le2024") == {"e1", "e4"}
    assert found(fhir, "/fhir/Encounter?date=sa2024-12-31") == {"e2", "e3"}
    assert found(fhir, "/fhir/Encounter?date=eb2024-01-02") == {"e4"}
    assert found(fhir, "/fhir/Encounter?date=ne2024") == {"e2", "e3", "e4"}
    assert found(fhir, "/fhir/Encounter?date=ge2024&date=lt2025") == {"e1"}
    # 2024-03-01T10:00+01:00 is 09:00 UTC
    assert found(fhir, "/fhir/Encounter?date=sa2024-03-01T09:30:00Z") == {"e2", "e3"}
    assert found(fhir, "/fhir/Encounter?date=lt2024-03-01T09:30:00Z") == {"e1", "e4"}
    assert found(fhir, "/fhir/Patient?birthdate=le1965") == {"p1", "p3"}
    assert found(fhir, "/fhir/Patient?birthdate=1965-07") == set()  # the year 1965 is wider than July
    assert found(fhir, "/fhir/Condition?onset-date=lt2015") == {"c2"}
    assert found(fhir, "/fhir/Task?period=ge2025") == {"t1"}


def test_missing_chaining_id_and_last_updated(fhir: TestClient) -> None:
    assert found(fhir, "/fhir/Patient?general-practitioner:missing=true") == {"p3"}
    assert found(fhir, "/fhir/Patient?general-practitioner:missing=false") == {"p1", "p2"}
    assert found(fhir, f"/fhir/Encounter?patient.identifier={CPR}|0101401234") == {"e1", "e2"}
    assert found(fhir, "/fhir/Encounter?patient.name=hansen") == {"e3"}
    assert found(fhir, "/fhir/Encounter?subject:Patient.birthdate=lt1950") == {"e1", "e2"}
    assert found(fhir, "/fhir/Task?patient.birthdate=lt1950") == {"t1", "t3"}
    assert found(fhir, "/fhir/Encounter?service-provider.name=lægehus") == {"e2"}
    assert found(fhir, "/fhir/Encounter?patient._id=p3") == {"e4"}
    assert found(fhir, "/fhir/Patient?_id=p1,p2") == {"p1", "p2"}
    assert found(fhir, "/fhir/Patient?_lastUpdated=gt2000") == {"p1", "p2", "p3"}
    assert found(fhir, "/fhir/Patient?_lastUpdated=lt2000") == set()


def test_include_and_revinclude(fhir: TestClient) -> None:
    got = fhir.get("/fhir/Encounter?_id=e1&_include=Encounter:patient&_include=Encounter:service-provider")
    entries = [(e["search"]["mode"], e["resource"]["id"]) for e in got.json()["entry"]]
    assert entries[0] == ("match", "e1") and sorted(entries[1:]) == [
        ("include", "org-hosp"),
        ("include", "p1"),
    ]
    assert got.json()["total"] == 1
    got = fhir.get("/fhir/Patient?_id=p1&_revinclude=Encounter:patient&_revinclude=Task:patient")
    included = {e["resource"]["id"] for e in got.json()["entry"] if e["search"]["mode"] == "include"}
    assert included == {"e1", "e2", "t1", "t3"}
    got = fhir.get("/fhir/Task?owner=Organization/org-kom&status=requested&_include=Task:patient")
    assert {e["resource"]["id"] for e in got.json()["entry"]} == {"t1", "p1"}
    typed = fhir.get("/fhir/Encounter?_id=e1&_include=Encounter:subject:Group").json()
    assert [e["resource"]["id"] for e in typed["entry"]] == ["e1"]


def test_sort_paging_total_summary_elements(fhir: TestClient) -> None:
    assert ids(fhir, "/fhir/Encounter?_sort=date") == ["e4", "e1", "e2", "e3"]
    assert ids(fhir, "/fhir/Encounter?_sort=-date") == ["e3", "e2", "e1", "e4"]
    assert ids(fhir, "/fhir/Patient?_sort=-birthdate") == ["p2", "p3", "p1"]
    assert ids(fhir, "/fhir/Patient?_sort=family") == ["p2", "p3", "p1"]  # hansen, madsen, østergård
    assert ids(fhir, "/fhir/Encounter?_sort=status,-_id") == ["e4", "e2", "e1", "e3"]

    first = fhir.get("/fhir/Encounter?_sort=date&_count=3").json()
    assert first["total"] == 4 and [e["resource"]["id"] for e in first["entry"]] == ["e4", "e1", "e2"]
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links and "_sort=date" in links["next"]
    second = fhir.get(links["next"]).json()
    assert [e["resource"]["id"] for e in second["entry"]] == ["e3"]
    assert {link["relation"] for link in second["link"]} == {"self", "first", "previous"}

    assert "total" not in fhir.get("/fhir/Encounter?_total=none").json()
    counted = fhir.get("/fhir/Encounter?class=IMP&_summary=count").json()
    assert counted["total"] == 2 and "entry" not in counted
    assert fhir.get("/fhir/Encounter?_count=0").json()["total"] == 4

    summary = fhir.get("/fhir/Patient?_id=p1&_summary=true").json()["entry"][0]["resource"]
    assert "name" in summary and "generalPractitioner" not in summary
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    } in summary["meta"]["tag"]
    elements = fhir.get("/fhir/Patient?_id=p1&_elements=gender").json()["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "gender"}


def test_unknown_parameters_follow_prefer_handling(fhir: TestClient) -> None:
    lenient = fhir.get("/fhir/Patient?gender=male&colour=blue")
    assert lenient.status_code == 200
    body = lenient.json()
    assert body["total"] == 1 and "colour" not in body["link"][0]["url"]
    assert "colour" in body["entry"][-1]["resource"]["issue"][0]["diagnostics"]
    strict = fhir.get("/fhir/Patient?gender=male&colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "colour" in strict.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("/fhir/Encounter?date=2024-13-01", "is not a date"),
        ("/fhir/Encounter?date=xx2024", "unknown date prefix"),
        ("/fhir/Patient?_lastUpdated=gt", "the prefix 'gt' needs a date after it"),
        ("/fhir/Patient/p1/$everything?start=notadate", "start (a date range of care) is not supported"),
        ("/fhir/Patient?gender:exact=male", "takes no :exact"),
        ("/fhir/Patient?general-practitioner:missing=maybe", "true or false"),
        ("/fhir/Patient?_count=lots", "_count must be a whole number"),
        ("/fhir/Patient?gender.name=x", "only a reference parameter can be chained"),
        ("/fhir/Encounter?patient.organization.name=x", "one level of chaining"),
        ("/fhir/Patient?_include=Patient:name", "no reference search parameter"),
        ("/fhir/Patient?_include=Encounter:patient", "must be the searched type"),
        ("/fhir/Patient?_sort=colour", "no search parameter 'colour'"),
        ("/fhir/Patient?_summary=maybe", "_summary must be"),
        ("/fhir/Patient?_include:iterate=Patient:link", ":iterate is not supported"),
        ("/fhir/Wizard?name=x", "unknown resource type"),
    ],
)
def test_bad_searches_are_refused(fhir: TestClient, url: str, text: str) -> None:
    got = fhir.get(url)
    assert got.status_code in (400, 404), got.text
    assert text in got.json()["issue"][0]["diagnostics"]


def test_post_search_is_the_same_search(fhir: TestClient) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    posted = fhir.post("/fhir/Encounter/_search?class=IMP", content=b"patient=p2", headers=form)
    assert posted.status_code == 200 and [e["resource"]["id"] for e in posted.json()["entry"]] == ["e3"]
    wrong = fhir.post("/fhir/Encounter/_search", content=b"{}", headers=FHIR)
    assert wrong.status_code == 415  # a POST _search sends a form


def _count(api: TestClient, kind: str) -> int:
    total: int = api.get(f"/fhir/{kind}?_summary=count").json()["total"]
    return total


def test_conditional_create_update_delete(fhir: TestClient) -> None:
    patient = {"resourceType": "Patient", "identifier": [{"system": CPR, "value": "0101401234"}]}
    same = fhir.post(
        "/fhir/Patient",
        content=orjson.dumps(patient),
        headers={**FHIR, "If-None-Exist": f"identifier={CPR}|0101401234"},
    )
    assert same.status_code == 200 and same.json()["id"] == "p1" and _count(fhir, "Patient") == 3
    new = {"resourceType": "Patient", "identifier": [{"system": CPR, "value": "0202021111"}]}
    made = fhir.post(
        "/fhir/Patient",
        content=orjson.dumps(new),
        headers={**FHIR, "If-None-Exist": f"identifier={CPR}|0202021111"},
    )
    assert made.status_code == 201 and _count(fhir, "Patient") == 4
    several = fhir.post(
        "/fhir/Patient", content=orjson.dumps(new), headers={**FHIR, "If-None-Exist": "gender=female"}
    )
    assert several.status_code == 412 and _count(fhir, "Patient") == 4

    url = f"/fhir/Patient?identifier={CPR}|0303031111"
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": CPR, "value": "0303031111"}],
        "gender": "male",
    }
    created = fhir.put(url, content=orjson.dumps(body), headers=FHIR)
    assert created.status_code == 201
    updated = fhir.put(url, content=orjson.dumps({**body, "gender": "female"}), headers=FHIR)
    assert updated.status_code == 200 and updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"
    assert (
        fhir.put("/fhir/Patient?gender=female", content=orjson.dumps(body), headers=FHIR).status_code == 412
    )
    assert fhir.put("/fhir/Patient", content=orjson.dumps(body), headers=FHIR).status_code == 400

    assert fhir.delete("/fhir/Patient?gender=female").status_code == 412
    assert fhir.delete(url).status_code == 204
    assert fhir.get(f"/fhir/Patient/{created.json()['id']}").status_code == 410
    assert found(fhir, f"/fhir/Patient?identifier={CPR}|0303031111") == set()
    assert fhir.delete(url).status_code == 204  # nothing left to delete: still fine


def test_conditional_entries_and_searches_in_bundles(fhir: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:9b3a2b8e-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": CPR, "value": "0101401234"}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={CPR}|0101401234",
                },
            },
            {
                "resource": {
                    "resourceType": "Encounter",
                    "status": "planned",
                    "class": {"system": ACT, "code": "HH"},
                    "subject": {"reference": "urn:uuid:9b3a2b8e-0000-4000-8000-000000000001"},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {"request": {"method": "GET", "url": "Task?owner=Organization/org-kom"}},
            {
                "resource": {"resourceType": "Organization", "id": "org-new", "name": "Ny"},
                "request": {"method": "PUT", "url": "Organization?name:exact=Ny"},
            },
        ],
    }
    done = fhir.post("/fhir", content=orjson.dumps(bundle), headers=FHIR)
    assert done.status_code == 200, done.text
    entries = done.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK" and entries[0]["response"]["location"].startswith(
        "Patient/p1/"
    )
    assert entries[2]["resource"]["type"] == "searchset" and entries[2]["resource"]["total"] == 2
    assert entries[3]["response"]["status"] == "201 Created"
    assert found(fhir, "/fhir/Encounter?class=HH&patient=p1") != set() and _count(fhir, "Patient") == 3


def test_everything_and_compartment_exports(fhir: TestClient) -> None:
    everything = fhir.get("/fhir/Patient/p1/$everything").json()
    got = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in everything["entry"]]
    assert got[0] == ("Patient", "p1")
    assert set(got) == {
        ("Patient", "p1"),
        ("Encounter", "e1"),
        ("Encounter", "e2"),
        ("Condition", "c1"),
        ("Task", "t1"),
        ("Task", "t3"),
        ("Organization", "org-gp"),
        ("Organization", "org-hosp"),
        ("Organization", "org-kom"),
        ("Group", "g1"),
    }
    paged = fhir.get("/fhir/Patient/p1/$everything?_count=4").json()
    assert paged["total"] == 10 and len(paged["entry"]) == 4
    assert any(link["relation"] == "next" for link in paged["link"])
    only = fhir.get("/fhir/Patient/p1/$everything?_type=Encounter").json()
    assert {e["resource"]["id"] for e in only["entry"]} == {"e1", "e2"}
    assert fhir.get("/fhir/Patient/nobody/$everything").status_code == 404

    def exported(url: str) -> dict[str, int]:
        kick = fhir.get(url, headers={"Prefer": "respond-async"})
        assert kick.status_code == 202, kick.text
        status = kick.headers["content-location"]
        for _ in range(200):
            answer = fhir.get(status)
            if answer.status_code == 200:
                return {o["type"]: o["count"] for o in answer.json()["output"]}
            time.sleep(0.05)
        raise AssertionError("export did not finish")

    assert exported("/fhir/Group/g1/$export") == {
        "Patient": 2,
        "Encounter": 3,
        "Condition": 1,
        "Task": 2,
        "Group": 1,
    }
    everyone = exported("/fhir/Patient/$export")
    assert everyone["Patient"] == 3 and everyone["Encounter"] == 4 and "Organization" not in everyone
    assert fhir.get("/fhir/Group/none/$export", headers={"Prefer": "respond-async"}).status_code == 404


def test_import_operation(fhir: TestClient) -> None:
    lines = [
        {"resourceType": "Patient", "id": "i1", "gender": "male", "name": [{"family": "Import"}]},
        {"resourceType": "Patient", "id": "i2", "gender": "male", "name": [{"family": "Import"}]},
    ]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    ndjson = {"Content-Type": "application/fhir+ndjson"}
    done = fhir.post("/fhir/$import", content=body, headers=ndjson)
    assert (
        done.status_code == 200 and "loaded 2 resources (Patient 2)" in done.json()["issue"][0]["diagnostics"]
    )
    assert found(fhir, "/fhir/Patient?family=import") == {"i1", "i2"}
    odd = {"resourceType": "Patient", "id": "i5", "name": [{"family": "Tab\tBack\\slash\nNy"}]}
    assert fhir.post("/fhir/$import", content=orjson.dumps(odd), headers=ndjson).status_code == 200
    exact = fhir.get("/fhir/Patient", params={"family:exact": "Tab\tBack\\slash\nNy"}).json()
    assert [e["resource"]["id"] for e in exact["entry"]] == ["i5"]  # COPY's escapes round-trip
    bad = body + b"\n{not json\n"
    refused = fhir.post("/fhir/$import", content=bad.replace(b'"i1"', b'"i3"'), headers=ndjson)
    assert (
        refused.status_code == 400 and "the request body, line 3" in refused.json()["issue"][0]["diagnostics"]
    )
    assert fhir.get("/fhir/Patient/i3").status_code == 404
    again = (
        orjson.dumps({**lines[0], "gender": "female"}) + b"\n" + orjson.dumps({**lines[0], "gender": "other"})
    )
    assert fhir.post("/fhir/$import", content=again, headers=ndjson).status_code == 200
    assert found(fhir, "/fhir/Patient?family=import&gender=male") == {"i2"}  # i1's old index rows went
    assert (
        found(fhir, "/fhir/Patient?gender=other") == {"i1"}
        and found(fhir, "/fhir/Patient?gender=female&family=import") == set()
    )
    assert fhir.get("/fhir/Patient/i1").json()["meta"]["versionId"] == "3"
    assert fhir.post("/fhir/$import", content=body, headers=FHIR).status_code == 415  # NDJSON only
    assert fhir.post("/fhir/$import", content=b"", headers=ndjson).status_code == 400


def test_index_follows_updates_and_deletes(fhir: TestClient) -> None:
    p2 = fhir.get("/fhir/Patient/p2").json()
    assert (
        fhir.put(
            "/fhir/Patient/p2", content=orjson.dumps({**p2, "gender": "other"}), headers=FHIR
        ).status_code
        == 200
    )
    assert found(fhir, "/fhir/Patient?gender=male") == set()
    assert found(fhir, "/fhir/Patient?gender=other") == {"p2"}
    assert fhir.delete("/fhir/Encounter/e3").status_code == 204
    assert found(fhir, "/fhir/Encounter?patient=p2") == set()
    assert found(fhir, "/fhir/Patient?_id=p2&_revinclude=Encounter:patient") == {"p2"}


def _sample(kind: str) -> str:
    samples = {"token": "x", "uri": "x", "string": "x", "reference": "x", "date": "2020", "number": "1"}
    return {**samples, "quantity": "gt1|http://unitsofmeasure.org|mg", "composite": "x$2020"}[kind]


def test_capability_statement_claims_exactly_what_runs(fhir: TestClient) -> None:
    statement = fhir.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    encounter = {p["name"] for p in by_type["Encounter"]["searchParam"]}
    assert encounter == {"_id", "_lastUpdated", *params_of("Encounter")}
    assert "Encounter:patient" in by_type["Encounter"]["searchInclude"]
    assert "Encounter:patient" in by_type["Patient"]["searchRevInclude"]
    assert by_type["Patient"]["conditionalCreate"] is True
    strict = {"Prefer": "handling=strict"}
    # Every type the store keeps (R4's types that the R4B models know; docs/fhir-validation.md).
    for kind in (k for k in searchable_types() if k in by_type):
        for claimed in by_type[kind]["searchParam"]:
            if kind == "AuditEvent":  # the audit log: the test client is a system client that reads it
                continue
            url = f"/fhir/{kind}?{claimed['name']}={_sample(claimed['type'])}"
            assert fhir.get(url, headers=strict).status_code == 200, url


def test_upgrade_rebuilds_the_index_when_the_definitions_change(store_url: str) -> None:
    from sqlalchemy import delete, update

    from naer.store import resources as store
    from naer.store.context import SYSTEM
    from naer.store.db import engine
    from naer.store.migrate import upgrade
    from naer.store.search.query import search
    from naer.store.tables import INDEX_TABLES, search_index_state

    db = engine(store_url)
    store.update(db, SYSTEM, "Patient", "p1", RESOURCES[3])
    with db.begin() as con:  # as if the index were built from other definitions
        for table in INDEX_TABLES.values():
            con.execute(delete(table))
        con.execute(update(search_index_state).values(definitions="older"))
    assert search(db, SYSTEM, "Patient", [("gender", "female")]).total == 0
    batches: list[int] = []
    upgrade(store_url, on_batch=batches.append)
    assert batches == [1]
    assert [m.id for m in search(db, SYSTEM, "Patient", [("gender", "female")]).matches] == ["p1"]
    upgrade(store_url, on_batch=batches.append)
    assert batches == [1]  # up to date: not rebuilt again


UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"


def _observation(rid: str, patient: str, code: str, **value: Any) -> Any:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        **value,
    }


def _put(api: TestClient, resources: list[Any]) -> None:
    for r in resources:
        done = api.put(f"/fhir/{r['resourceType']}/{r['id']}", content=orjson.dumps(r), headers=FHIR)
        assert done.status_code in (200, 201), done.text


def _quantity(value: float, code: str, unit: str | None = None) -> Any:
    return {"valueQuantity": {"value": value, "system": UCUM, "code": code, "unit": unit or code}}


def test_number_and_quantity_search_with_ucum(fhir: TestClient) -> None:
    blood_pressure = {
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, **_quantity(150, "mm[Hg]")},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, **_quantity(95, "mm[Hg]")},
        ]
    }
    _put(
        fhir,
        [
            _observation("w1", "p1", "29463-7", **_quantity(72.5, "kg")),
            _observation("w2", "p2", "29463-7", **_quantity(72500, "g")),
            _observation("w3", "p3", "29463-7", **_quantity(100, "[lb_av]")),  # 45.4 kg
            _observation("t1", "p1", "8310-5", **_quantity(38.5, "Cel")),
            _observation("t2", "p2", "8310-5", **_quantity(98.6, "[degF]")),  # 37 Cel
            _observation("s1", "p3", "72514-3", valueQuantity={"value": 4, "unit": "score"}),
            _observation("bp", "p1", "85354-9", **blood_pressure),
            {
                "resourceType": "RiskAssessment",
                "id": "r1",
                "status": "final",
                "subject": {"reference": "Patient/p1"},
                "prediction": [{"probabilityDecimal": 0.25}],
            },
            {
                "resourceType": "RiskAssessment",
                "id": "r2",
                "status": "final",
                "subject": {"reference": "Patient/p2"},
                "prediction": [{"probabilityRange": {"low": {"value": 0.4}, "high": {"value": 0.6}}}],
            },
        ],
    )
    weight = "/fhir/Observation?code=29463-7&value-quantity="
    assert found(fhir, weight + "72.5") == {"w1"}  # no unit: the value as written
    assert found(fhir, weight + f"72.5|{UCUM}|kg") == {"w1", "w2"}  # 72500 g is 72.5 kg
    assert found(fhir, weight + f"72500|{UCUM}|g") == {"w1", "w2"}
    assert found(fhir, weight + f"gt50|{UCUM}|kg") == {"w1", "w2"}
    assert found(fhir, weight + f"lt50000|{UCUM}|g") == {"w3"}
    assert found(fhir, weight + "72.5||kg") == {"w1"}  # a code without system: as written, no conversion
    assert found(fhir, weight + "ap70") == {"w1"}  # within 10 %
    assert found(fhir, weight + "ne72.5") == {"w2", "w3"}
    assert found(fhir, "/fhir/Observation?value-quantity=gt37.5|http://unitsofmeasure.org|Cel") == {"t1"}
    assert found(fhir, "/fhir/Observation?value-quantity=37|http://unitsofmeasure.org|Cel") == {"t2"}
    assert found(fhir, "/fhir/Observation?value-quantity=4||score") == {"s1"}  # unit text, no code
    # A unit whose factor Pint would compute as an integer of 10**8 digits: no conversion, at once.
    assert found(fhir, f"/fhir/Observation?value-quantity=1|{UCUM}|10*99999999") == set()
    assert found(fhir, "/fhir/Observation?component-value-quantity=ge150") == {"bp"}
    # Precision: 72 means [71.5, 72.5), so 72.5 is not 72; 7e1 means [65, 75).
    assert found(fhir, weight + "72") == set()
    assert found(fhir, weight + "7e1") == {"w1"}
    assert found(fhir, "/fhir/RiskAssessment?probability=0.25") == {"r1"}
    assert found(fhir, "/fhir/RiskAssessment?probability=gt0.5") == {"r2"}  # the range reaches above
    assert found(fhir, "/fhir/RiskAssessment?probability=lt0.3") == {"r1"}
    assert found(fhir, "/fhir/RiskAssessment?probability:missing=false") == {"r1", "r2"}
    assert ids(fhir, "/fhir/Observation?code=29463-7&_sort=-value-quantity") == ["w1", "w2", "w3"]


def test_composite_search_keeps_code_and_value_together(fhir: TestClient) -> None:
    systolic, diastolic = f"{LOINC}|8480-6", f"{LOINC}|8462-4"
    _put(
        fhir,
        [
            _observation(
                "bp1",
                "p1",
                "85354-9",
                component=[
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, **_quantity(150, "mm[Hg]")},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, **_quantity(95, "mm[Hg]")},
                ],
            ),
            _observation(
                "bp2",
                "p2",
                "85354-9",
                component=[
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, **_quantity(120, "mm[Hg]")},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, **_quantity(160, "mm[Hg]")},
                ],
            ),
            _observation("g1", "p1", "2339-0", **_quantity(7.1, "mmol/L")),
            _observation(
                "smoke",
                "p2",
                "72166-2",
                valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]},
            ),
        ],
    )
    url = "/fhir/Observation?component-code-value-quantity="
    assert found(fhir, url + f"{systolic}$gt140") == {"bp1"}  # bp2's 160 is its diastolic
    assert found(fhir, url + f"{diastolic}$gt140") == {"bp2"}
    assert found(fhir, url + "8480-6$gt100") == {"bp1", "bp2"}  # any system
    assert found(fhir, url + f"{systolic}$gt140,{diastolic}$gt140") == {"bp1", "bp2"}
    assert found(fhir, url + f"{systolic}$gt140&" + url[13:] + f"{diastolic}$gt90") == {"bp1"}
    assert found(fhir, url + f"{systolic}$15|{UCUM}|cm[Hg]") == {"bp1"}  # 150 mm[Hg] = 15 cm[Hg]
    assert found(fhir, f"/fhir/Observation?code-value-quantity={LOINC}|2339-0$ge7") == {"g1"}
    assert found(fhir, "/fhir/Observation?code-value-quantity=2339-0$lt7") == set()
    concept = "/fhir/Observation?code-value-concept=72166-2$http://snomed.info/sct|8517006"
    assert found(fhir, concept) == {"smoke"}
    assert found(fhir, "/fhir/Observation?combo-code-value-quantity=8462-4$gt150") == {"bp2"}
    for bad in ("8480-6", "8480-6$", "$gt1", "a$b$c", f"{LOINC}|$gt1", "8480-6$gtx"):
        got = fhir.get(url + bad)
        assert got.status_code == 400 and got.json()["resourceType"] == "OperationOutcome", bad
    assert fhir.get(url[:-1] + ":missing=true").status_code == 400


def test_reverse_chaining_has(fhir: TestClient) -> None:
    _put(
        fhir,
        [
            _observation("h1", "p1", "2339-0", **_quantity(9.0, "mmol/L")),
            _observation("h2", "p2", "2339-0", **_quantity(5.0, "mmol/L")),
        ],
    )
    assert found(fhir, "/fhir/Patient?_has:Observation:patient:code=2339-0") == {"p1", "p2"}
    high = "/fhir/Patient?_has:Observation:subject:value-quantity=gt8|http://unitsofmeasure.org|mmol/L"
    assert found(fhir, high) == {"p1"}
    assert found(fhir, f"/fhir/Patient?_has:Condition:subject:code={SKS}|DJ441") == {"p1"}
    # Nested: patients with an encounter that a task focuses on.
    assert found(fhir, "/fhir/Patient?_has:Encounter:patient:_has:Task:focus:status=requested") == {"p1"}
    assert found(fhir, "/fhir/Organization?_has:Patient:general-practitioner:gender=male") == {"org-gp"}
    for bad in (
        "_has:Observation:patient=x",
        "_has:Wizard:patient:code=x",
        "_has:Observation:code:code=x",
        "_has:Observation:patient:colour=x",
        "_has:Observation:patient:code:exact=x",
        "_has:Encounter:patient:_has:Task=x",
        "_has:Encounter:patient:" * 50 + "status=finished",
    ):
        got = fhir.get(f"/fhir/Patient?{bad}")
        assert got.status_code == 400, (bad, got.text)
        assert got.json()["resourceType"] == "OperationOutcome"


def _all(api: TestClient, url: str) -> list[Any]:
    """Every entry of a search, following its next links."""
    entries: list[Any] = []
    while url:
        page = api.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        entries += [e for e in body.get("entry", []) if e.get("search", {}).get("mode") != "outcome"]
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), "")
        url = url.replace("http://testserver", "")
    return entries


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
        return found.union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


def test_synthea_patient_filters_and_everything_match_the_ndjson(store_url: str) -> None:
    """Another generator's data: for each citizen X, Type?patient=X is exactly the resources whose subject or
    patient is X, and $everything is exactly X, the resources referring to X, and the resources they refer
    to that belong to no citizen (organisations, practitioners, locations), all counted from the NDJSON."""
    import gzip
    import os
    from pathlib import Path

    from naer.api.app import create_app
    from naer.store.bulk import load
    from naer.store.context import SYSTEM
    from naer.store.db import engine

    folder = Path(os.environ.get("NAER_FIXTURES", "../shared/fixtures")) / "synthea" / "10-patients"
    if not folder.is_dir():
        pytest.skip(f"no Synthea fixture at {folder}")
    load(engine(store_url), SYSTEM, folder, workers=1)
    stored: dict[str, Any] = {}
    for path in sorted(folder.glob("*.ndjson.gz")):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            r = orjson.loads(line)
            stored[f"{r['resourceType']}/{r['id']}"] = r
    owners = {k for k, r in stored.items() if any(ref.startswith("Patient/") for ref in _references(r))}
    citizen_types = {k.split("/")[0] for k in owners} | {"Patient"}
    with_patient = [k for k in params_of("Encounter") if k == "patient"] and [
        t for t in sorted(citizen_types - {"Patient"}) if "patient" in params_of(t)
    ]
    assert len(with_patient) == 8
    with TestClient(create_app(store_url), headers=signed_in(store_url)) as api:
        for patient in sorted(k.split("/")[1] for k in stored if k.startswith("Patient/")):
            me = f"Patient/{patient}"
            for kind in with_patient:
                expected = {
                    k
                    for k, r in stored.items()
                    if k.startswith(kind + "/")
                    and me in {(r.get(e) or {}).get("reference") for e in ("subject", "patient")}
                }
                got = {
                    f"{kind}/{e['resource']['id']}"
                    for e in _all(api, f"/fhir/{kind}?patient={patient}&_count=1000")
                }
                assert got == expected, (kind, patient)
            members = {k for k, r in stored.items() if me in _references(r)} | {me}
            referred = {
                ref
                for k in members
                for ref in _references(stored[k])
                if ref in stored and ref.split("/")[0] not in citizen_types
            }
            everything = _all(api, f"/fhir/Patient/{patient}/$everything?_count=1000")
            got = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything}
            assert got == members | referred, patient
            assert everything[0]["resource"]["id"] == patient


def test_every_r4_search_parameter_is_answered_or_refused_with_its_reason(fhir: TestClient) -> None:
    """HL7's Bundle of R4 SearchParameters against the derived definitions and the CapabilityStatement:
    each (type, parameter) is answered, and claimed, or refused with a reason, and never both."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from naer.store.search.definitions import unsupported

    fixtures = Path(os.environ.get("NAER_FIXTURES", "../shared/fixtures"))
    bundle = orjson.loads((fixtures / "fhir-r4" / "search-parameters.json").read_bytes())
    r4 = [e["resource"] for e in bundle["entry"] if e["resource"].get("version") == "4.0.1"]
    assert len(r4) == 1375
    root = Path(__file__).parents[1]
    derived = subprocess.run(
        [sys.executable, str(root / "scripts" / "derive_search_parameters.py"), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "NAER_FIXTURES": str(fixtures)},
    )
    assert derived.returncode == 0, derived.stderr  # the committed file is the script's output
    statement = fhir.get("/fhir/metadata").json()
    claimed = {r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    answered = refused = 0
    for param in r4:
        for base in param["base"]:
            kinds = sorted(claimed) if base in ("Resource", "DomainResource") else [base]
            for kind in kinds:
                if kind == "AuditEvent":  # served from the audit log, searched by patient (test_access.py)
                    continue
                code = param["code"]
                known, reason = code in claimed[kind], unsupported(kind).get(code)
                assert known != bool(reason), (kind, code)
                answered += known and base == kind
                refused += bool(reason) and base == kind
    # per type (AuditEvent's 18 left out: the audit log); and _tag, _profile, _security, _source on all
    assert (answered, refused) == (1663, 16)


def test_uri_search(fhir: TestClient) -> None:
    profile = "http://hl7.dk/fhir/core/StructureDefinition/dk-core-patient"
    _put(fhir, [{"resourceType": "Patient", "id": "u1", "meta": {"profile": [profile]}}])
    assert found(fhir, f"/fhir/Patient?_profile={profile}") == {"u1"}
    assert found(fhir, f"/fhir/Patient?_profile={profile}x") == set()
    _put(fhir, [{"resourceType": "ValueSet", "id": "vs1", "status": "active", "url": "http://naer.dk/vs/1"}])
    assert found(fhir, "/fhir/ValueSet?url=http://naer.dk/vs/1") == {"vs1"}
    assert found(fhir, "/fhir/ValueSet?url:missing=true") == set()
