"""Input an attacker chooses, on every path the API offers: answered 4xx with an OperationOutcome, never
5xx, and nothing partial stored. Also the citizen filters that must never be ignored, R4's compartment
in $everything, and conditional references in transactions."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import signed_in

FHIR = {"Content-Type": "application/fhir+json"}
EXAMPLES = int(os.environ.get("NAER_FUZZ_EXAMPLES", "60"))


def _put(api: TestClient, resource: dict[str, Any]) -> None:
    done = api.put(f"/fhir/{resource['resourceType']}/{resource['id']}", content=orjson.dumps(resource))
    assert done.status_code in (200, 201), done.text


@pytest.fixture
def record(api: TestClient) -> TestClient:
    """Two citizens, each with a medication, an allergy and an immunisation; one organisation."""
    _put(
        api,
        {"resourceType": "Organization", "id": "org1", "identifier": [{"system": "urn:s", "value": "o1"}]},
    )
    for p in ("a", "b"):
        _put(
            api,
            {"resourceType": "Patient", "id": p, "managingOrganization": {"reference": "Organization/org1"}},
        )
        _put(
            api,
            {
                "resourceType": "MedicationRequest",
                "id": f"m{p}",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "x"},
                "subject": {"reference": f"Patient/{p}"},
            },
        )
        _put(
            api,
            {"resourceType": "AllergyIntolerance", "id": f"al{p}", "patient": {"reference": f"Patient/{p}"}},
        )
        _put(
            api,
            {
                "resourceType": "Immunization",
                "id": f"im{p}",
                "status": "completed",
                "vaccineCode": {"text": "x"},
                "patient": {"reference": f"Patient/{p}"},
                "occurrenceDateTime": "2024-01-01",
            },
        )
    return api


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"}


def _refused(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and words in body["issue"][0]["diagnostics"], body


def test_citizen_filters_of_every_type_narrow_or_are_refused(record: TestClient) -> None:
    assert _ids(record.get("/fhir/MedicationRequest?patient=a")) == {"ma"}
    assert _ids(record.get("/fhir/AllergyIntolerance?patient=b")) == {"alb"}
    assert _ids(record.get("/fhir/Immunization?patient=Patient/a")) == {"ima"}
    _refused(record.get("/fhir/Organization?patient=a"), 400, "never ignored")
    _refused(record.get("/fhir/Patient?_has:Observation:patient:colour=1"), 400, "never ignored")
    lenient = record.get("/fhir/Immunization?vaccine-code=x&reaction-date=2024&nonsense=1")
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "nonsense" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    strict = {"Prefer": "handling=strict"}
    _refused(record.get("/fhir/Location?near=56.1|10.2|5|km", headers=strict), 400, "does not answer")


def test_everything_holds_the_whole_compartment(record: TestClient) -> None:
    found = record.get("/fhir/Patient/a/$everything").json()
    refs = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in found["entry"]}
    assert refs == {
        "Patient/a",
        "MedicationRequest/ma",
        "AllergyIntolerance/ala",
        "Immunization/ima",
        "Organization/org1",
    }


def test_conditional_references_in_a_transaction(record: TestClient) -> None:
    def transaction(reference: str) -> Any:
        entry = {
            "resource": {"resourceType": "Patient", "managingOrganization": {"reference": reference}},
            "request": {"method": "POST", "url": "Patient"},
        }
        return record.post(
            "/fhir", content=orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
        )

    done = transaction("Organization?identifier=urn:s|o1")
    assert done.status_code == 200, done.text
    location = done.json()["entry"][0]["response"]["location"].split("/_history")[0]
    assert record.get(f"/fhir/{location}").json()["managingOrganization"]["reference"] == "Organization/org1"
    _refused(transaction("Organization?identifier=urn:s|none"), 412, "matches nothing")
    before = record.get("/fhir/Patient?_summary=count").json()["total"]
    _put(
        record,
        {"resourceType": "Organization", "id": "org2", "identifier": [{"system": "urn:s", "value": "o1"}]},
    )
    _refused(transaction("Organization?identifier=urn:s|o1"), 412, "matches several")
    assert record.get("/fhir/Patient?_summary=count").json()["total"] == before


ARABIC_THREE = 'W/"\u0663"'.encode()  # a digit to str.isdigit(), not to FHIR
HOSTILE = [
    ("get", "/fhir/Patient/a%00b", None, {}, 400),
    ("get", "/fhir/Patient?name=a%00", None, {}, 400),
    ("post", "/fhir/Patient", b'{"resourceType":"Patient","gender":"\\u0000"}', {}, 400),
    ("post", "/fhir/Patient", b'{"resourceType":"Patient","birthDate":"9999-12-31"}', {}, 201),
    ("get", "/fhir/Patient?birthdate=9999-12-31", None, {}, 200),
    ("get", "/fhir/Patient?_lastUpdated=gt0001-01-01T00:00:00%2B14:00", None, {}, 200),
    ("get", "/fhir/Patient/_history?_till=0001-01-01T00:00:00%2B14:00", None, {}, 400),
    ("get", "/fhir/Patient?_count=%D9%A3", None, {}, 400),
    ("get", "/fhir/Patient?_offset=" + "9" * 30, None, {}, 400),
    ("get", "/fhir/Patient/_history?_offset=" + "9" * 30, None, {}, 400),
    ("get", "/fhir/Patient/a/_history/" + "9" * 30, None, {}, 404),
    (
        "put",
        "/fhir/Patient/a",
        b'{"resourceType":"Patient","id":"a"}',
        {"If-Match": 'W/"\u0663"'.encode()},
        400,
    ),
    (
        "post",
        "/fhir/Patient",
        b'{"resourceType":"Patient","extension":'
        + b'[{"url":"u","extension":' * 130
        + b"[]"
        + b"}]" * 130
        + b"}",
        {},
        400,
    ),
    (
        "post",
        "/fhir",
        b'{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":5,"url":[1]}}]}',
        {},
        400,
    ),
    (
        "post",
        "/fhir",
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Patient","ifNoneExist":{}},"resource":{"resourceType":"Patient"}}]}',
        {},
        400,
    ),
    ("put", "/fhir/Patient?identifier=x", b'{"resourceType":"Patient","id":5}', {}, 400),
    ("post", "/fhir/Patient", b'{"resourceType":"Patient"}', {"Content-Type": "text/plain"}, 415),
    (
        "post",
        "/fhir",
        b'{"resourceType":"Bundle","type":"transaction"}',
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},
        415,
    ),
    ("get", "/fhir/metadata", None, {"Host": "evil.example"}, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), HOSTILE)
def test_hostile_input_is_refused_precisely(
    record: TestClient, method: str, path: str, body: bytes | None, headers: dict[str, str], status: int
) -> None:
    before = record.get("/fhir/_history?_count=0").json()["total"]
    response = record.request(method.upper(), path, content=body, headers={**FHIR, **headers})
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert record.get("/fhir/_history?_count=0").json()["total"] == before  # nothing written
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
ROUTES = [
    "/fhir/Patient",
    "/fhir/Observation",
    "/fhir/MedicationRequest",
    "/fhir/Encounter",
    "/fhir/RiskAssessment",
    "/fhir/Patient/a/_history",
]
# Real parameter names of every kind, so that random values reach each parser (number, quantity and its
# units, composite, reverse chain, chain, modifiers), beside random names.
NAMES = [
    "value-quantity",
    "component-value-quantity",
    "code-value-quantity",
    "combo-code-value-concept",
    "code-value-date",
    "probability",
    "date",
    "birthdate",
    "code",
    "name:exact",
    "patient",
    "subject:Patient.name",
    "_has:Observation:patient:code",
    "_has:Observation:subject:value-quantity",
    "_sort",
    "_include",
    "_count",
    "_lastUpdated",
]
VALUES = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.from_regex(
        r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?-?[0-9]{0,4}(\.[0-9]{0,3})?(e-?[0-9]{1,4})?(\|[a-z:/.]{0,30}\|[a-zA-Z\[\]{}/*0-9.]{0,12})?",
        fullmatch=True,
    ),
    st.from_regex(r"([a-z:/.]{0,20}\|)?[0-9a-z-]{0,8}\$[^&#]{0,30}", fullmatch=True),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    name=TEXT | st.sampled_from(NAMES),
    value=VALUES,
    rid=TEXT,
    body=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | TEXT,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=12,
    ),
)
def test_fuzzed_requests_never_answer_5xx(
    record: TestClient, route: str, name: str, value: str, rid: str, body: Any
) -> None:
    answers = [
        record.get(route, params={name: value}),
        record.get("/fhir/Patient/" + quote(rid, safe="")),
        record.post("/fhir/Patient", content=orjson.dumps({"resourceType": "Patient", name: body})),
        record.post(
            "/fhir", content=orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": body})
        ),
    ]
    for answer in answers:
        assert answer.status_code < 500, answer.text
        if (answer.status_code >= 400 and answer.status_code != 404) or (
            answer.status_code == 404 and answer.content
        ):
            assert answer.json()["resourceType"] == "OperationOutcome"
    assert record.get("/fhir/Patient/a").status_code == 200  # the store is still there


def test_limits_formats_and_methods(record: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    many = {"resourceType": "Patient", "name": [{"given": [f"g{n}" for n in range(20_000)]}]}
    _refused(record.post("/fhir/Patient", content=orjson.dumps(many)), 413, "the limit is 10,000")
    monkeypatch.setenv("NAER_MAX_INDEX_ROWS", "100")
    names = {"resourceType": "Patient", "name": [{"given": [f"g{n}" for n in range(200)]}]}
    _refused(record.post("/fhir/Patient", content=orjson.dumps(names)), 413, "search index rows")
    _refused(record.get("/fhir/Patient?_format=xml"), 406, "JSON only")
    _refused(record.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406, "JSON only")
    assert record.get("/fhir/metadata?_format=json").status_code == 200
    wrong = record.request("PATCH", "/fhir")
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]


def test_export_files_are_private_expire_and_belong_to_their_asker(
    record: TestClient, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("NAER_DATA_DIR", str(tmp_path))
    kick = record.get("/fhir/$export", headers={"Prefer": "respond-async"})
    status_url = kick.headers["content-location"].replace("http://testserver", "")
    for _ in range(200):
        done = record.get(status_url)
        if done.status_code == 200:
            break
        time.sleep(0.05)
    assert done.status_code == 200
    job = tmp_path / "exports" / status_url.rsplit("/", 1)[1]
    assert (tmp_path / "exports").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (job / "files").iterdir())
    status = orjson.loads((job / "status.json").read_bytes())
    (job / "status.json").write_bytes(orjson.dumps({**status, "actor": "someone else"}))
    _refused(record.delete(status_url), 403, "another asker")
    (job / "status.json").write_bytes(orjson.dumps({**status, "transactionTime": "2020-01-01T00:00:00Z"}))
    _refused(record.get(status_url), 404, "expired")
    assert not job.exists()


def test_cors_is_off_unless_configured(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from naer.api.app import create_app

    evil = {"Origin": "http://evil.example"}
    with TestClient(create_app(store_url), headers=signed_in(store_url)) as off:
        answer = off.get("/fhir/metadata", headers=evil)
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    monkeypatch.setenv("NAER_CORS_ORIGINS", "https://app.example.dk")
    with TestClient(create_app(store_url), headers=signed_in(store_url)) as on:
        asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        allowed = on.options("/fhir/Patient", headers={"Origin": "https://app.example.dk", **asks})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.dk"
        refused = on.options("/fhir/Patient", headers={**evil, **asks})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        read = on.get("/fhir/metadata", headers={"Origin": "https://app.example.dk"})
        assert read.headers["access-control-allow-origin"] == "https://app.example.dk"
        assert "access-control-allow-origin" not in on.get("/fhir/metadata", headers=evil).headers
