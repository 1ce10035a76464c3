"""A real server (uvicorn on loopback) driven by a real FHIR client library from PyPI (fhirclient, the
SMART on FHIR Python client), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fhirclient import client
from fhirclient.models.encounter import Encounter
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException, FHIRServer

from tests.conftest import api_server, system_token


@pytest.fixture
def server(store_url: str) -> Iterator[FHIRServer]:
    with api_server(store_url) as base:
        smart = client.FHIRClient(settings={"app_id": "naer-tests", "api_base": f"{base}/"})
        smart.server.session.headers["Authorization"] = f"Bearer {system_token(store_url)}"
        yield smart.server


def test_fhirclient_round_trip(server: FHIRServer) -> None:
    patient = Patient(
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": "1705449995"}],
            "name": [{"family": "Madsen", "given": ["Ole"]}],
            "gender": "male",
            "birthDate": "1944-05-17",
        }
    )
    created = patient.create(server)
    assert created is not None and created["meta"]["versionId"] == "1"
    pid = created["id"]

    read = Patient.read(pid, server)
    assert read.name[0].family == "Madsen" and read.birthDate.isostring == "1944-05-17"

    read.gender = "other"
    read.update(server)
    assert Patient.read(pid, server).gender == "other"

    encounter = Encounter(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
            "subject": {"reference": f"Patient/{pid}"},
        }
    )
    made = encounter.create(server)
    assert made is not None
    assert Encounter.read(made["id"], server).subject.reference == f"Patient/{pid}"
    found = list(Encounter.where(struct={"patient": pid, "class": "HH"}).perform_resources_iter(server))
    assert [e.id for e in found] == [made["id"]]
    by_name = list(
        Patient.where(struct={"name": "mads", "birthdate": "le1950"}).perform_resources_iter(server)
    )
    assert [p.id for p in by_name] == [pid]

    read.delete(server)
    with pytest.raises(Exception, match="410"):
        Patient.read(pid, server)
    with pytest.raises(FHIRNotFoundException):
        Patient.read("nobody", server)
    metadata = server.request_json("metadata")
    assert metadata["resourceType"] == "CapabilityStatement"
