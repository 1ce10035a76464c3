"""The OpenAPI document of the FHIR API: every route with its parameters, bodies and answers.

The routes read FHIR's own parameters from the request (a search takes whatever parameters its type
has), so FastAPI alone would describe none of them. This module adds them from one table: which query
parameters, headers and body each operation takes and what it answers, with the schemas a client (or
schemathesis) needs — resource types as R4's list, ids as FHIR ids, versions as whole numbers. A type's
own search parameters are in the CapabilityStatement (``/fhir/metadata``); the document lists the ones
every search takes.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from naer.fhir.validate import resource_types
from naer.store.search.query import MAX_COUNT, RESULT_PARAMETERS

FHIR_JSON = "application/fhir+json"
ID = {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"}
WHOLE = {"type": "string", "pattern": "^[0-9]{1,9}$"}
INSTANT = {"type": "string", "format": "date-time", "description": "a FHIR instant, with its zone"}
JOB = {"type": "string", "pattern": "^[0-9a-f]{32}$"}

RESOURCE = {
    "type": "object",
    "description": "A FHIR R4 resource (JSON); validated against its type's definition",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}, "id": ID},
}
MESSAGE = {
    "type": "object",
    "description": "A MedCom message: a FHIR R4 Bundle of type message, its MessageHeader first",
    "required": ["resourceType", "type", "entry"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "id": ID,
        "type": {"const": "message"},
        "entry": {"type": "array", "items": {"type": "object", "properties": {"resource": RESOURCE}}},
    },
}
OUTCOME = {
    "type": "object",
    "description": "A FHIR OperationOutcome saying what went wrong and, where known, where",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}
BUNDLE = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"type": "string", "enum": ["transaction", "batch"]},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": RESOURCE,
                    "request": {
                        "type": "object",
                        "required": ["method", "url"],
                        "properties": {
                            "method": {"type": "string", "enum": ["GET", "POST", "PUT", "DELETE"]},
                            "url": {"type": "string"},
                            "ifMatch": {"type": "string"},
                            "ifNoneExist": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}

# Query parameters by name: what FHIR search, history, $everything and $export take.
QUERY: dict[str, dict[str, Any]] = {
    "_count": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
    "_offset": {"type": "integer", "minimum": 0, "maximum": 10**9},
    "patient": {"type": "string", "description": "the citizen (Patient/id or id)"},
    "_sort": {"type": "string", "description": "parameters, comma-separated, - for descending"},
    "_total": {"type": "string", "enum": ["none", "estimate", "accurate"]},
    "_summary": {"type": "string", "enum": ["true", "false", "text", "data", "count"]},
    "_elements": {"type": "string"},
    "_include": {"type": "string", "description": "SourceType:parameter[:TargetType]"},
    "_revinclude": {"type": "string", "description": "SourceType:parameter[:TargetType]"},
    "_id": {"type": "string", "description": "ids, comma-separated"},
    "_lastUpdated": {"type": "string", "description": "a date with a prefix: ge2024-01-01"},
    "_since": INSTANT,
    "_till": INSTANT,
    "_type": {"type": "string", "description": "resource types, comma-separated"},
    "_outputFormat": {"type": "string", "enum": ["application/fhir+ndjson", "application/ndjson", "ndjson"]},
}
SEARCH = (*RESULT_PARAMETERS, "_id", "_lastUpdated")
HEADERS: dict[str, dict[str, Any]] = {
    "Prefer": {"type": "string", "description": "handling=strict|lenient, respond-async, return=minimal"},
    "If-Match": {"type": "string", "description": 'the version an update replaces: W/"3"'},
    "If-None-Exist": {"type": "string", "description": "search criteria of a conditional create"},
}
PATH: dict[str, dict[str, Any]] = {
    "rid": ID,
    "patient_id": ID,
    "group_id": ID,
    "vid": WHOLE,
    "job": JOB,
    "name": {"type": "string", "pattern": r"^[A-Za-z]+\.ndjson$"},
    "entry_id": WHOLE,
}

# (path, method): summary, query parameters, headers, body ("resource", "bundle", "form", "ndjson" or
# None) and the statuses it answers with besides the error ones.
OPERATIONS: dict[
    tuple[str, str], tuple[str, tuple[str, ...], tuple[str, ...], str | None, tuple[int, ...]]
] = {
    ("/fhir/metadata", "get"): ("The CapabilityStatement", (), (), None, (200,)),
    ("/fhir/AuditEvent", "get"): (
        "The audit log (a citizen's own entries; every entry for an administrator)",
        ("patient", "_count", "_offset"),
        ("Prefer",),
        None,
        (200,),
    ),
    ("/fhir/AuditEvent/{entry_id}", "get"): ("One audit log entry", (), (), None, (200,)),
    ("/fhir/Patient/{patient_id}/$break-the-glass", "post"): (
        "Break the glass: open a citizen's record for a limited time (Parameters: reason, purpose)",
        (),
        (),
        "resource",
        (201,),
    ),
    ("/fhir", "post"): ("A transaction or batch Bundle", (), ("Prefer",), "bundle", (200,)),
    ("/fhir/", "post"): ("A transaction or batch Bundle", (), ("Prefer",), "bundle", (200,)),
    ("/fhir/_history", "get"): (
        "History of every resource",
        ("_count", "_offset", "_since", "_till"),
        (),
        None,
        (200,),
    ),
    ("/fhir/{resource_type}", "get"): ("Search a type", SEARCH, ("Prefer",), None, (200,)),
    ("/fhir/{resource_type}", "post"): (
        "Create a resource",
        (),
        ("Prefer", "If-None-Exist"),
        "resource",
        (200, 201),
    ),
    ("/fhir/{resource_type}", "put"): (
        "Conditional update (criteria in the query)",
        SEARCH[-2:],
        ("If-Match",),
        "resource",
        (200, 201),
    ),
    ("/fhir/{resource_type}", "delete"): (
        "Conditional delete (criteria in the query)",
        SEARCH[-2:],
        (),
        None,
        (204,),
    ),
    ("/fhir/{resource_type}/_search", "post"): (
        "Search a type (parameters as a form)",
        (),
        ("Prefer",),
        "form",
        (200,),
    ),
    ("/fhir/{resource_type}/_history", "get"): (
        "History of a type",
        ("_count", "_offset", "_since", "_till"),
        (),
        None,
        (200,),
    ),
    ("/fhir/{resource_type}/{rid}", "get"): ("Read", (), (), None, (200,)),
    ("/fhir/{resource_type}/{rid}", "put"): (
        "Update (or create with this id)",
        (),
        ("If-Match", "Prefer"),
        "resource",
        (200, 201),
    ),
    ("/fhir/{resource_type}/{rid}", "delete"): ("Delete", (), ("If-Match",), None, (204,)),
    ("/fhir/{resource_type}/{rid}/_history", "get"): (
        "History of a resource",
        ("_count", "_offset", "_since", "_till"),
        (),
        None,
        (200,),
    ),
    ("/fhir/{resource_type}/{rid}/_history/{vid}", "get"): ("Read a version", (), (), None, (200,)),
    ("/fhir/Patient/{patient_id}/$everything", "get"): (
        "A citizen's whole record",
        ("_count", "_offset", "_type", "_since"),
        (),
        None,
        (200,),
    ),
    ("/fhir/$export", "get"): (
        "Start a system export",
        ("_type", "_since", "_outputFormat"),
        ("Prefer",),
        None,
        (202,),
    ),
    ("/fhir/$export", "post"): (
        "Start a system export",
        ("_type", "_since", "_outputFormat"),
        ("Prefer",),
        None,
        (202,),
    ),
    ("/fhir/Patient/$export", "get"): (
        "Start an export of every citizen's compartment",
        ("_type", "_since", "_outputFormat"),
        ("Prefer",),
        None,
        (202,),
    ),
    ("/fhir/Patient/$export", "post"): (
        "Start an export of every citizen's compartment",
        ("_type", "_since", "_outputFormat"),
        ("Prefer",),
        None,
        (202,),
    ),
    ("/fhir/Group/{group_id}/$export", "get"): (
        "Start an export of a group's compartments",
        ("_type", "_since", "_outputFormat"),
        ("Prefer",),
        None,
        (202,),
    ),
    ("/fhir/Group/{group_id}/$export", "post"): (
        "Start an export of a group's compartments",
        ("_type", "_since", "_outputFormat"),
        ("Prefer",),
        None,
        (202,),
    ),
    ("/fhir/$export-status/{job}", "get"): ("An export's progress or manifest", (), (), None, (200, 202)),
    ("/fhir/$export-status/{job}", "delete"): ("Cancel an export and delete its files", (), (), None, (202,)),
    ("/fhir/$export-file/{job}/{name}", "get"): ("One NDJSON file of an export", (), (), None, (200,)),
    ("/fhir/$import", "post"): ("Load NDJSON resources (ids kept)", (), (), "ndjson", (200,)),
    ("/fhir/$process-message", "post"): (
        "Receive a MedCom message (the gateway; answered by its Acknowledgement)",
        (),
        (),
        "message",
        (200, 204),
    ),
    ("/fhir/OperationDefinition/naer-import", "get"): (
        "The $import OperationDefinition",
        (),
        (),
        None,
        (200,),
    ),
}
ERRORS = {
    400: "The request is malformed (the OperationOutcome names the element)",
    401: "Sign-in needed: no valid Bearer token",
    403: "Not allowed",
    404: "No such type, resource or interaction",
    405: "The method is not supported here (Allow lists those that are)",
    406: "Only FHIR JSON is spoken",
    409: "Another writer changed the resource first",
    410: "The resource was deleted",
    412: "If-Match names a version that is not the current one",
    413: "Over a configured limit",
    415: "The body is not FHIR JSON",
    422: "Not valid FHIR R4",
}


def _body(kind: str) -> dict[str, Any]:
    if kind == "form":
        props = {name: {"type": "string"} for name in SEARCH}
        return {
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": props}}
            }
        }
    if kind == "ndjson":
        return {"required": True, "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}}}
    if kind == "message":
        return {
            "required": True,
            "content": {
                FHIR_JSON: {"schema": MESSAGE},
                "application/json": {"schema": MESSAGE},
                "application/fhir+xml": {"schema": {"type": "string"}},
            },
        }
    schema = BUNDLE if kind == "bundle" else RESOURCE
    return {
        "required": True,
        "content": {FHIR_JSON: {"schema": schema}, "application/json": {"schema": schema}},
    }


def _parameters(path: str, query: tuple[str, ...], headers: tuple[str, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in re.findall(r"{(\w+)}", path):
        schema = {"type": "string", "enum": list(resource_types())} if name == "resource_type" else PATH[name]
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    found += [{"name": q, "in": "query", "required": False, "schema": QUERY[q]} for q in query]
    found += [{"name": h, "in": "header", "required": False, "schema": HEADERS[h]} for h in headers]
    return found


def _answer(path: str, status: int) -> dict[str, Any]:
    if status in (202, 204):  # no body: a Content-Location or nothing
        return {"description": "Accepted" if status == 202 else "Done"}
    if "$export-file" in path:
        return {
            "description": "NDJSON",
            "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}},
        }
    if "$export-status" in path:
        return {
            "description": "The manifest",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return {"description": "Done", "content": {FHIR_JSON: {"schema": RESOURCE}}}


WORKFLOW_PATH = {
    "task_id": ID,
    "rid": ID,
    "group": {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"},
    "transition": {"type": "string", "pattern": "^[a-z][a-z-]{0,39}$"},
}


def _workflow(path: str, method: str, operation: dict[str, Any]) -> None:
    """A workflow endpoint (api/workflow.py): its path parameters as ids, If-Match on a move, and every
    refusal an OperationOutcome (FastAPI describes its own validation error instead, which never comes)."""
    operation["operationId"] = re.sub(r"[^A-Za-z0-9]+", "_", f"{method}{path}").strip("_")
    parameters = [
        {**p, "schema": WORKFLOW_PATH.get(p["name"], p["schema"])} if p["in"] == "path" else p
        for p in operation.get("parameters", [])
    ]
    if method == "post" and "{transition}" in path:
        header = {"name": "If-Match", "in": "header", "required": False, "schema": HEADERS["If-Match"]}
        parameters.append(header)
    if parameters:
        operation["parameters"] = parameters
    answers = {k: v for k, v in operation.get("responses", {}).items() if k != "422"}
    for status, text in ERRORS.items():
        if status in (405, 406, 410):
            continue
        ref = {"$ref": "#/components/schemas/OperationOutcome"}
        answers[str(status)] = {"description": text, "content": {FHIR_JSON: {"schema": ref}}}
    operation["responses"] = answers


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the app, with each FHIR operation's parameters, body and answers."""
    with warnings.catch_warnings():  # FastAPI's ids repeat for a route of two methods: replaced below
        warnings.simplefilter("ignore", UserWarning)
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
    doc["components"] = {
        "schemas": {"Resource": RESOURCE, "OperationOutcome": OUTCOME, "Bundle": BUNDLE},
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "smart": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {"system/*.rs": "read"}}
                },
            },
        },
    }
    doc["security"] = [{"bearer": []}, {"smart": []}]
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            if path.startswith("/workflow"):
                _workflow(path, method, operation)
                continue
            spec = OPERATIONS.get((path, method))
            if spec is None:
                continue
            summary, query, headers, body, statuses = spec
            operation["summary"] = summary
            name = re.sub(r"[^A-Za-z0-9]+", "_", f"{method}{path}").strip("_")
            operation["operationId"] = name + ("_slash" if path.endswith("/") else "")
            operation["parameters"] = _parameters(path, query, headers)
            if body:
                operation["requestBody"] = _body(body)
            else:
                operation.pop("requestBody", None)
            answers: dict[str, Any] = {}
            for status in statuses:
                answers[str(status)] = _answer(path, status)
            for status, text in ERRORS.items():
                ref = {"$ref": "#/components/schemas/OperationOutcome"}
                answers[str(status)] = {"description": text, "content": {FHIR_JSON: {"schema": ref}}}
            operation["responses"] = answers
    return doc


def install(app: FastAPI) -> None:
    """Serve ``document`` at the app's openapi_url (made once, on first request)."""
    made: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not made:
            made.update(document(app))
        return made

    app.openapi = openapi  # type: ignore[method-assign]
