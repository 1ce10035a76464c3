"""The CapabilityStatement: exactly what this server does, generated from the same facts it runs on
(the search parameters come from the definitions the index is built from)."""

from __future__ import annotations

from functools import cache
from typing import Any

from naer import __version__
from naer.fhir.validate import resource_types
from naer.settings import get_settings
from naer.store.search.definitions import params_of, searchable_types
from naer.store.search.query import MODIFIERS

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
SPECIAL = [
    {"name": "_id", "type": "token", "documentation": "resource id; comma-separated ids OR"},
    {"name": "_lastUpdated", "type": "date", "documentation": "prefixes eq ne lt le gt ge sa eb"},
]
OPERATIONS = {
    "export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    "patient-export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    "group-export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    "everything": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
}


def _search_params(kind: str) -> list[dict[str, Any]]:
    found = list(SPECIAL)
    for param in params_of(kind).values():
        modifiers = [f":{m}" for m in MODIFIERS[param.type]]
        if param.type == "reference":
            modifiers.append(":[type]")
            chained = "; chainable one level"
        else:
            chained = ""
        found.append(
            {
                "name": param.name,
                "type": param.type,
                "documentation": f"modifiers {' '.join(modifiers)}{chained}",
            }
        )
    return found


def _includes(kind: str) -> tuple[list[str], list[str]]:
    include = [f"{kind}:{p.name}" for p in params_of(kind).values() if p.type == "reference"]
    revinclude = [
        f"{source}:{p.name}"
        for source in searchable_types()
        for p in params_of(source).values()
        if p.type == "reference" and (not p.targets or kind in p.targets)
    ]
    return include, revinclude


@cache
def _resources() -> list[dict[str, Any]]:
    out = []
    for name in resource_types():
        include, revinclude = _includes(name)
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": include,
            "searchRevInclude": revinclude,
            "searchParam": _search_params(name),
        }
        if name == "Patient":
            entry["operation"] = [
                {"name": "everything", "definition": OPERATIONS["everything"]},
                {"name": "export", "definition": OPERATIONS["patient-export"]},
            ]
        if name == "Group":
            entry["operation"] = [{"name": "export", "definition": OPERATIONS["group-export"]}]
        if name == "AuditEvent":  # served from the audit log (api/security.py), never written by clients
            entry = {
                "type": name,
                "documentation": (
                    "The audit log: a citizen reads their own entries of the last two years, an "
                    "administrator or an audit system client every entry; append-only."
                ),
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [
                    {
                        "name": "patient",
                        "type": "reference",
                        "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
                    }
                ],
            }
        out.append(entry)
    return out


def capability_statement(base: str) -> dict[str, Any]:
    root = base.removesuffix("/fhir")
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
                    "Every R4 (4.0.1) resource type: read, vread, create, update (create-on-update, "
                    "If-Match), delete (history kept), history, search by GET and POST _search (the "
                    "parameters listed per type, of every type: number and quantity with UCUM units "
                    "compared in any unit of a dimension, composite, uri; one level of chaining and _has "
                    "reverse chaining; _sort, _count, _total, _summary, _elements, _include and "
                    "_revinclude one level; Prefer: handling=strict|lenient, a patient-narrowing parameter "
                    "that is not answered is always refused), conditional create (atomic)/update/delete; "
                    "batch and transaction Bundles (urn:uuid and conditional references resolved; "
                    "conditional entries); decimals kept as written; Patient/"
                    "$everything; bulk $export at system, Patient and Group level (_type, _since); "
                    "$import of an NDJSON body. Every interaction needs a Bearer token (SMART App Launch v2 "
                    "scopes; see security) and is narrowed to the citizens the asker has a care relation "
                    "with, inside the query; every access is recorded as an AuditEvent (GET /fhir/"
                    "AuditEvent); Patient/{id}/$break-the-glass opens a record for a limited time."
                ),
                "security": {
                    "cors": bool(get_settings().cors_origins.strip()),
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ],
                            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": f"{root}/oauth/token"}],
                        }
                    ],
                    "description": (
                        "Bearer tokens signed by Nær (ES256) or by the configured identity provider; "
                        "discovery at .well-known/smart-configuration, keys at .well-known/jwks.json."
                    ),
                },
                "resource": _resources(),
                "interaction": [{"code": "history-system"}, {"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {"name": "export", "definition": OPERATIONS["export"]},
                    {"name": "import", "definition": f"{base}/OperationDefinition/naer-import"},
                ],
            }
        ],
    }
