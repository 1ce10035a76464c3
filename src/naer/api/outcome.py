"""FHIR JSON responses, and OperationOutcomes for everything that goes wrong."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from naer.fhir import jsontext

FHIR_JSON = "application/fhir+json"

SEVERITY_BY_STATUS = {2: "information", 4: "error", 5: "fatal"}


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode()
        return jsontext.dumps(content)


def outcome(status: int, code: str, message: str, where: str | None = None) -> FhirResponse:
    """An OperationOutcome with one issue; ``where`` is the FHIRPath of the problem, when known."""
    issue: dict[str, Any] = {
        "severity": SEVERITY_BY_STATUS.get(status // 100, "error"),
        "code": code,
        "diagnostics": message,
    }
    if where:
        issue["expression"] = [where]
    return FhirResponse({"resourceType": "OperationOutcome", "issue": [issue]}, status_code=status)
