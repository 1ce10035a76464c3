"""The OpenAPI document describes every FHIR operation (parameters, bodies, answers), and schemathesis,
generating requests from it, finds no answer of 5xx and no error that is not an OperationOutcome, on
SQLite and PostgreSQL. NAER_FUZZ_EXAMPLES sets the examples per operation (small in CI)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from naer.api.app import create_app
from naer.fhir.validate import R4_TYPES
from tests.conftest import signed_in

EXAMPLES = max(5, int(os.environ.get("NAER_FUZZ_EXAMPLES", "60")) // 4)


@schemathesis.serializer("application/fhir+ndjson")
def _ndjson(_: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(str(value), "utf-8")


def test_the_document_describes_every_fhir_operation(store_url: str) -> None:
    with TestClient(create_app(store_url)) as client:
        doc = client.get("/openapi.json").json()
    operations = {(p, m): o for p, methods in doc["paths"].items() for m, o in methods.items()}
    assert len(operations) == 61  # 31 of FHIR ($process-message included), 30 of the workflows
    search = operations[("/fhir/{resource_type}", "get")]
    names = {p["name"]: p for p in search["parameters"]}
    assert set(names["resource_type"]["schema"]["enum"]) == R4_TYPES
    assert {"_count", "_sort", "_include", "_revinclude", "_summary", "Prefer"} <= set(names)
    create = operations[("/fhir/{resource_type}", "post")]
    assert "application/fhir+json" in create["requestBody"]["content"]
    assert "If-None-Exist" in {p["name"] for p in create["parameters"]}
    assert operations[("/fhir", "post")]["requestBody"]["content"]["application/fhir+json"]["schema"][
        "properties"
    ]["type"]["enum"] == ["transaction", "batch"]
    assert all("summary" in o and "400" in o["responses"] for o in operations.values())
    assert len({o["operationId"] for o in operations.values()}) == 61
    message = operations[("/fhir/$process-message", "post")]["requestBody"]["content"]
    assert {"application/fhir+json", "application/fhir+xml"} <= set(message)


def test_schemathesis_finds_no_server_error(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NAER_WORKERS", "1")  # $import in this process: spawned workers would re-import pytest
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(store_url))
    auth = signed_in(store_url)
    bad: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[*HealthCheck])
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            nonlocal tried
            tried += 1
            response = case.call(headers=auth)
            is_outcome = b'"OperationOutcome"' in response.content
            if response.status_code >= 500 or (response.status_code >= 400 and not is_outcome):
                bad.append(f"{response.status_code}: {case.as_curl_command()}")

        call()
    print(f"schemathesis: {tried} requests over 61 operations, {len(bad)} bad")  # shown with pytest -s
    assert tried >= 61 * EXAMPLES // 2
    assert not bad, bad[:5]
