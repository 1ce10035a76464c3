"""The FHIR REST API on SQLite and PostgreSQL: the interactions, their headers, and an OperationOutcome
with the right status for every bad request, after which the server answers and the data is unchanged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [{"family": "Madsen", "given": ["Ole"]}],
    "gender": "male",
    "birthDate": "1944-05-17",
}
FHIR = {"Content-Type": "application/fhir+json"}


def _outcome(response: Any, status: int, code: str, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["code"] == code and text in issue["diagnostics"], issue


def test_create_read_update_delete(api: TestClient) -> None:
    made = api.post("/fhir/Patient", content=orjson.dumps(PATIENT), headers=FHIR)
    assert made.status_code == 201 and made.headers["etag"] == 'W/"1"'
    rid = made.json()["id"]
    assert made.headers["location"].endswith(f"/fhir/Patient/{rid}/_history/1")
    got = api.get(f"/fhir/Patient/{rid}")
    assert got.status_code == 200 and got.json() == made.json() and "last-modified" in got.headers
    assert api.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304

    body = {**got.json(), "gender": "other"}
    changed = api.put(
        f"/fhir/Patient/{rid}", content=orjson.dumps(body), headers={**FHIR, "If-Match": 'W/"1"'}
    )
    assert changed.status_code == 200 and changed.json()["meta"]["versionId"] == "2"
    stale = api.put(f"/fhir/Patient/{rid}", content=orjson.dumps(body), headers={**FHIR, "If-Match": 'W/"1"'})
    _outcome(stale, 412, "conflict", "at version 2, not 1")
    minimal = api.put(
        f"/fhir/Patient/{rid}", content=orjson.dumps(body), headers={"Prefer": "return=minimal"}
    )
    assert minimal.status_code == 200 and minimal.content == b"" and minimal.headers["etag"] == 'W/"3"'

    assert api.get(f"/fhir/Patient/{rid}/_history/1").json()["gender"] == "male"
    assert api.delete(f"/fhir/Patient/{rid}").status_code == 204
    assert api.delete(f"/fhir/Patient/{rid}").status_code == 204  # idempotent
    _outcome(api.get(f"/fhir/Patient/{rid}"), 410, "deleted", "was deleted")

    bundle = api.get(f"/fhir/Patient/{rid}/_history").json()
    assert bundle["type"] == "history" and bundle["total"] == 4
    assert [e["request"]["method"] for e in bundle["entry"]] == ["DELETE", "PUT", "PUT", "POST"]
    assert "resource" not in bundle["entry"][0] and bundle["entry"][3]["resource"]["gender"] == "male"


def test_update_creates_and_history_pages(api: TestClient) -> None:
    for n in range(5):
        body = {**PATIENT, "id": f"p{n}"}
        assert api.put(f"/fhir/Patient/p{n}", content=orjson.dumps(body)).status_code == 201
    first = api.get("/fhir/Patient/_history", params={"_count": 2}).json()
    assert first["total"] == 5 and len(first["entry"]) == 2
    # A write after the first page does not shift the following pages.
    api.put("/fhir/Patient/p9", content=orjson.dumps({**PATIENT, "id": "p9"}))
    ids = [e["resource"]["id"] for e in first["entry"]]
    link = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while link:
        page = api.get(link).json()
        ids += [e["resource"]["id"] for e in page["entry"]]
        link = next((x["url"] for x in page["link"] if x["relation"] == "next"), None)
    assert ids == ["p4", "p3", "p2", "p1", "p0"]
    assert api.get("/fhir/_history").json()["total"] == 6


def test_capability_statement(api: TestClient) -> None:
    cs = api.get("/fhir/metadata").json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    types = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert {"Patient", "Encounter", "Task", "CommunicationRequest", "MeasureReport"} <= set(types)
    claimed = {i["code"] for i in types["Task"]["interaction"]}
    assert claimed == {
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
    assert {"transaction", "batch", "history-system"} == {i["code"] for i in cs["rest"][0]["interaction"]}
    assert {o["name"] for o in types["Patient"]["operation"]} == {"everything", "export"}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code", "text"),
    [
        ("post", "/fhir/Patient", b'{"resourceType": "Patient",', {}, 400, "invalid", "not valid JSON"),
        ("post", "/fhir/Patient", b"", {}, 400, "invalid", "no body"),
        (
            "post",
            "/fhir/Patient",
            b'{"resourceType": "Encounter", "status": "planned", "class": {}}',
            {},
            400,
            "invalid",
            "URL is for Patient",
        ),
        (
            "post",
            "/fhir/Pasient",
            b'{"resourceType": "Pasient"}',
            {},
            404,
            "not-found",
            "unknown resource type",
        ),
        (
            "post",
            "/fhir/Patient",
            b'{"resourceType": "Patient", "birthDate": "1944-17-05"}',
            {},
            422,
            "processing",
            "birthDate",
        ),
        (
            "put",
            "/fhir/Patient/x",
            b'{"resourceType": "Patient", "id": "y"}',
            {},
            400,
            "invalid",
            "not the URL's",
        ),
        (
            "put",
            "/fhir/Patient/x",
            b'{"resourceType": "Patient", "id": "x"}',
            {"If-Match": "3"},
            412,
            "conflict",
            "does not exist",
        ),
        (
            "put",
            "/fhir/Patient/x",
            b'{"resourceType": "Patient", "id": "x"}',
            {"If-Match": "soon"},
            400,
            "invalid",
            "If-Match",
        ),
        ("get", "/fhir/Patient/nobody", None, {}, 404, "not-found", "not known"),
        ("get", "/fhir/Patient/_history?_since=yesterday", None, {}, 400, "invalid", "_since"),
        ("get", "/fhir/Patient/_history?_count=many", None, {}, 400, "invalid", "_count"),
        ("get", "/fhir/Encounter?date=2024-13-45", None, {}, 400, "invalid", "is not a date"),
        (
            "post",
            "/fhir/Patient",
            b"{}",
            {"If-None-Exist": "birthdate=2024-1"},
            400,
            "invalid",
            "is not a date",
        ),
        ("patch", "/fhir/Patient/x", b"{}", {}, 405, "not-supported", "PATCH"),
        ("get", "/fhir", None, {}, 405, "not-supported", "GET is not supported"),
        ("get", "/fhir/Patient/x/y/z", None, {}, 404, "not-supported", "no such FHIR interaction"),
    ],
)
def test_bad_requests(
    api: TestClient,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str,
    text: str,
) -> None:
    kept = api.post("/fhir/Patient", content=orjson.dumps(PATIENT)).json()
    before = api.get("/fhir/_history").json()["total"]
    response = api.request(method.upper(), path, content=body, headers={**FHIR, **headers})
    _outcome(response, status, code, text)
    assert api.get("/fhir/_history").json()["total"] == before  # nothing written
    assert api.get(f"/fhir/Patient/{kept['id']}").json() == kept  # the server answers; data unchanged


def test_a_body_over_the_limit_is_refused_unread(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAER_MAX_BODY_MB", "1")
    big = orjson.dumps({**PATIENT, "name": [{"family": "x" * (2 * 1024 * 1024)}]})
    _outcome(api.post("/fhir/Patient", content=big, headers=FHIR), 413, "too-costly", "limit")
    assert api.get("/fhir/_history").json()["total"] == 0


def _wait(api: TestClient, status_url: str) -> Any:
    for _ in range(200):
        response = api.get(status_url)
        if response.status_code != 202:
            return response
        time.sleep(0.05)
    pytest.fail("the export did not finish")


def test_bulk_export(api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAER_DATA_DIR", str(tmp_path))
    for n in range(3):
        api.put(f"/fhir/Patient/p{n}", content=orjson.dumps({**PATIENT, "id": f"p{n}"}))
    api.post("/fhir/Organization", content=orjson.dumps({"resourceType": "Organization", "name": "Samsø"}))
    api.delete("/fhir/Patient/p2")
    _outcome(api.get("/fhir/$export"), 400, "invalid", "Prefer: respond-async")
    kick = api.get("/fhir/$export", headers={"Prefer": "respond-async"})
    assert kick.status_code == 202
    done = _wait(api, kick.headers["content-location"])
    assert done.status_code == 200
    manifest = done.json()
    assert {(o["type"], o["count"]) for o in manifest["output"]} == {("Patient", 2), ("Organization", 1)}
    patients = next(o["url"] for o in manifest["output"] if o["type"] == "Patient")
    lines = api.get(patients)
    assert lines.headers["content-type"].startswith("application/fhir+ndjson")
    assert sorted(orjson.loads(x)["id"] for x in lines.content.splitlines()) == ["p0", "p1"]

    only = api.post("/fhir/$export?_type=Organization", headers={"Prefer": "respond-async"})
    assert [o["type"] for o in _wait(api, only.headers["content-location"]).json()["output"]] == [
        "Organization"
    ]
    _outcome(
        api.get("/fhir/$export?_type=Pasient", headers={"Prefer": "respond-async"}), 400, "invalid", "Pasient"
    )
    _outcome(
        api.get("/fhir/$export?patient=Patient/p0", headers={"Prefer": "respond-async"}),
        400,
        "not-supported",
        "patient",
    )
    assert api.delete(kick.headers["content-location"]).status_code == 202
    _outcome(api.get(kick.headers["content-location"]), 404, "not-found", "no export job")
    _outcome(api.get(patients), 404, "not-found", "no export job")


def _transaction(*entries: dict[str, Any], kind: str = "transaction") -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": kind, "entry": list(entries)})


ENCOUNTER = {
    "resourceType": "Encounter",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
    "subject": {"reference": "urn:uuid:6c1c2c5e-0000-4000-8000-000000000001"},
}
NEW_PATIENT = {
    "fullUrl": "urn:uuid:6c1c2c5e-0000-4000-8000-000000000001",
    "resource": PATIENT,
    "request": {"method": "POST", "url": "Patient"},
}


def test_transaction_resolves_references_and_is_all_or_nothing(api: TestClient) -> None:
    done = api.post(
        "/fhir",
        content=_transaction(
            {"resource": ENCOUNTER, "request": {"method": "POST", "url": "Encounter"}}, NEW_PATIENT
        ),
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    encounter_at, patient_at = (e["response"]["location"] for e in body["entry"])
    assert encounter_at.startswith("Encounter/") and patient_at.startswith("Patient/")
    encounter = api.get(f"/fhir/{encounter_at.split('/_history')[0]}").json()
    assert encounter["subject"]["reference"] == patient_at.split("/_history")[0]

    before = api.get("/fhir/_history").json()["total"]
    bad_entry = {
        "resource": {**PATIENT, "birthDate": "1944-17-05"},
        "request": {"method": "POST", "url": "Patient"},
    }
    failed = api.post("/fhir", content=_transaction(NEW_PATIENT, bad_entry))
    _outcome(failed, 422, "processing", "transaction failed at entry 1, nothing was written")
    dangling = {**ENCOUNTER, "subject": {"reference": "urn:uuid:6c1c2c5e-0000-4000-8000-00000000dead"}}
    nothing = api.post(
        "/fhir",
        content=_transaction(
            NEW_PATIENT, {"resource": dangling, "request": {"method": "POST", "url": "Encounter"}}
        ),
    )
    _outcome(nothing, 400, "invalid", "which no entry of the Bundle creates")
    stale = {
        "resource": {**PATIENT, "id": patient_at.split("/")[1]},
        "request": {"method": "PUT", "url": patient_at.split("/_history")[0], "ifMatch": 'W/"7"'},
    }
    _outcome(api.post("/fhir", content=_transaction(NEW_PATIENT, stale)), 412, "conflict", "not 7")
    conditional = {
        "resource": PATIENT,
        "fullUrl": "urn:uuid:0b6c2a2e-1111-4000-8000-000000000000",
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": "birthdate=2024-13"},
    }
    _outcome(
        api.post("/fhir", content=_transaction(NEW_PATIENT, conditional)),
        400,
        "invalid",
        "nothing was written",
    )
    _outcome(api.post("/fhir", content=orjson.dumps(PATIENT)), 400, "invalid", "batch or transaction")
    assert api.get("/fhir/_history").json()["total"] == before


def test_batch_reports_each_entry(api: TestClient) -> None:
    bad = {"resource": {**PATIENT, "colour": "red"}, "request": {"method": "POST", "url": "Patient"}}
    good = {"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}}
    read_missing = {"request": {"method": "GET", "url": "Patient/nobody"}}
    done = api.post("/fhir", content=_transaction(good, bad, read_missing, kind="batch"))
    assert done.status_code == 200
    entries = done.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "422", "404"]
    assert "colour" in entries[1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert api.get("/fhir/Patient/_history").json()["total"] == 1


def test_export_whose_server_stopped_reports_an_error(
    api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from naer.api.export import _status_file

    monkeypatch.setenv("NAER_DATA_DIR", str(tmp_path))
    api.put("/fhir/Patient/p0", content=orjson.dumps({**PATIENT, "id": "p0"}))
    kick = api.get("/fhir/$export", headers={"Prefer": "respond-async"})
    status_url = kick.headers["content-location"]
    assert _wait(api, status_url).status_code == 200
    no_such_process = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    path = _status_file(status_url.rsplit("/", 1)[1])
    status = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({**status, "state": "running", "pid": no_such_process}))
    _outcome(api.get(status_url), 500, "exception", "server process running this export stopped")


def test_decimals_keep_their_precision_everywhere(
    api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FHIR: a decimal's precision is significant. Written as text, so the comparison is byte-wise."""
    monkeypatch.setenv("NAER_DATA_DIR", str(tmp_path))
    written = (
        b'{"resourceType":"Observation","id":"d1","status":"final","code":{"text":"HbA1c"},'
        b'"valueQuantity":{"value":0.010,"unit":"g"},"referenceRange":[{"low":{"value":595.00},'
        b'"high":{"value":1e3}}],"component":[{"code":{"text":"x"},"valueQuantity":{"value":'
        b"0.1000000000000000055511151231257827}}]}"
    )
    numbers = (b'"value":0.010', b'"value":595.00', b'"value":1e3', b"0.1000000000000000055511151231257827")

    def exact(body: bytes) -> bool:
        return all(n in body for n in numbers)

    assert api.put("/fhir/Observation/d1", content=written).status_code == 201
    wide = written.replace(b'"d1"', b'"d3"').replace(b"0.010", b"12345678901234567890123456789")
    assert api.put("/fhir/Observation/d3", content=wide).status_code == 201  # beyond 64 bits, kept
    assert b'"value":12345678901234567890123456789' in api.get("/fhir/Observation/d3").content
    assert exact(api.get("/fhir/Observation/d1").content)
    assert exact(api.get("/fhir/Observation?value-quantity=0.010").content)  # found by its precision
    assert exact(api.get("/fhir/Observation?_elements=valueQuantity,component,referenceRange").content)
    assert exact(api.get("/fhir/Observation/d1/_history").content)
    kick = api.get("/fhir/$export", headers={"Prefer": "respond-async"})
    output = _wait(api, kick.headers["content-location"]).json()["output"]
    assert exact(api.get(output[0]["url"]).content)
    entry = {"resource": orjson.loads(b"{}"), "request": {"method": "PUT", "url": "Observation/d2"}}
    bundle = b'{"resourceType":"Bundle","type":"transaction","entry":[%s]}' % orjson.dumps(entry).replace(
        b"{}", written.replace(b'"d1"', b'"d2"')
    )
    assert api.post("/fhir", content=bundle).status_code == 200
    assert exact(api.get("/fhir/Observation/d2").content)


def test_resource_types_are_r4s_exactly(api: TestClient) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    from naer.fhir.validate import R4_TYPES, R4B_DIFFERS_FROM_R4

    without_model = set()
    for kind in R4_TYPES:
        try:
            get_fhir_model_class(kind)
        except (KeyError, ValueError):
            without_model.add(kind)
    assert without_model <= R4B_DIFFERS_FROM_R4
    statement = api.get("/fhir/metadata").json()
    assert {r["type"] for r in statement["rest"][0]["resource"]} == R4_TYPES and len(R4_TYPES) == 146
    for kind in ("Citation", "SubscriptionTopic", "NutritionProduct", "Resource", "HumanName"):
        body = orjson.dumps({"resourceType": kind})
        assert api.post(f"/fhir/{kind}", content=body).status_code == 404, kind
    product = {"resourceType": "MedicinalProduct", "name": [{"productName": "Panodil"}]}
    made = api.post("/fhir/MedicinalProduct", content=orjson.dumps(product))
    assert made.status_code == 201, made.text
    assert api.get(made.headers["location"].split("/_history")[0]).json()["name"] == product["name"]
    spec = {"resourceType": "SubstanceSpecification", "id": "s1", "meta": {"lastUpdated": "yesterday"}}
    refused = api.put("/fhir/SubstanceSpecification/s1", content=orjson.dumps(spec))
    assert refused.status_code == 422 and "meta" in refused.json()["issue"][0]["diagnostics"]
    summary = api.get("/fhir/MedicinalProduct?_summary=true")
    assert summary.status_code == 200 and summary.json()["total"] == 1
