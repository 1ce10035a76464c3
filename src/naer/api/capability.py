"""The CapabilityStatement: exactly what this server does, generated from the same facts it runs on."""

from __future__ import annotations

from functools import cache
from typing import Any

from naer import __version__
from naer.fhir.validate import resource_types

INTERACTIONS = ["read", "vread", "update", "delete", "history-instance", "history-type", "create"]


@cache
def _resources() -> list[dict[str, Any]]:
    return [
        {
            "type": name,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": False,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
        }
        for name in resource_types()
    ]


def capability_statement(base: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Nær",
        "kind": "instance",
        "software": {"name": "Nær", "version": __version__},
        "implementation": {"description": "Nær FHIR API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every R4 resource type: read, vread, create, update (create-on-update, If-Match), "
                    "delete (history kept) and history; batch and transaction Bundles (urn:uuid references "
                    "resolved; no conditional entries); system-level bulk $export (_type, _since). Search, "
                    "conditional interactions and Patient/Group-level export are not supported yet. Access "
                    "control is not yet enforced."
                ),
                "resource": _resources(),
                "interaction": [{"code": "history-system"}, {"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    }
                ],
            }
        ],
    }
