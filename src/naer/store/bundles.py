"""Batch and transaction Bundles.

A transaction is all-or-nothing: every entry runs in one database transaction, in the order FHIR gives
(DELETE, POST, PUT, GET), and any failure rolls all of it back and answers with that failure. ``urn:uuid:``
full URLs of created resources are resolved: each gets its id first (a conditional create that matches
gets the match's), and every reference to it in the Bundle is rewritten to ``Type/id``; a ``urn:uuid:``
reference to nothing in the Bundle is refused. Entries may be conditional (``ifNoneExist``, ``Type?criteria``
for PUT and DELETE) or searches (GET ``Type?criteria``). A batch runs each entry on its own and reports
each entry's outcome.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer.store import conditional
from naer.store import resources as store
from naer.store.context import RequestContext
from naer.store.errors import Invalid, NotSupported, StoreError
from naer.store.search import matching_ids, search
from naer.store.searchset import searchset

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}


def _entries(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Invalid("POST /fhir takes a Bundle of type batch or transaction")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise Invalid("Bundle.entry must be a list", where="Bundle.entry")
    for n, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or request.get("method") not in ORDER or not request.get("url"):
            raise Invalid(
                f"entry {n} needs a request with a method (GET, POST, PUT, DELETE) and a url",
                where=f"Bundle.entry[{n}].request",
            )
        if request.get("ifNoneMatch") or request.get("ifModifiedSince"):
            raise NotSupported(
                f"entry {n}: conditional reads (ifNoneMatch, ifModifiedSince) are not supported in Bundles",
                where=f"Bundle.entry[{n}].request",
            )
    return entries


def _target(entry: dict[str, Any], n: int) -> tuple[str, str | None, str | None]:
    """(type, id, search criteria) of an entry's request url such as ``Patient/1`` or ``Patient?x=y``."""
    path, mark, criteria = entry["request"]["url"].partition("?")
    parts = path.strip("/").split("/")
    if len(parts) == 1:
        return parts[0], None, criteria if mark else None
    if len(parts) == 2 and not mark:
        return parts[0], parts[1], None
    raise Invalid(
        f"entry {n}: unsupported request url {entry['request']['url']!r}", where=f"Bundle.entry[{n}]"
    )


def _rewrite(value: Any, ids: dict[str, str], n: int) -> Any:
    """References to ``urn:uuid:`` full URLs of the Bundle, as ``Type/id``."""
    if isinstance(value, dict):
        out = {k: _rewrite(v, ids, n) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            if ref not in ids:
                raise Invalid(
                    f"entry {n} refers to {ref}, which no entry of the Bundle creates",
                    where=f"Bundle.entry[{n}].resource",
                )
            out["reference"] = ids[ref]
        return out
    if isinstance(value, list):
        return [_rewrite(v, ids, n) for v in value]
    return value


def _response(version: store.Stored | None, status: str, with_resource: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"response": {"status": status}}
    if version is not None:
        entry["response"].update(
            location=f"{version.reference}/_history/{version.version_id}",
            etag=version.etag,
            lastModified=store.instant(version.last_updated),
        )
        if with_resource and version.content is not None:
            entry["resource"] = orjson.Fragment(version.content)
    return entry


def _run(
    con: Engine | Connection,
    context: RequestContext,
    entry: dict[str, Any],
    n: int,
    ids: dict[str, str],
    base: str,
) -> dict[str, Any]:
    method = entry["request"]["method"]
    kind, rid, criteria = _target(entry, n)
    resource = _rewrite(entry.get("resource"), ids, n) if "resource" in entry else None
    if method == "POST":
        if rid is not None or criteria is not None:
            raise Invalid(f"entry {n}: POST goes to a type ({kind}), not to {entry['request']['url']}")
        new_id = ids.get(entry.get("fullUrl", ""), "").split("/")[-1] or None
        if entry["request"].get("ifNoneExist"):
            made = conditional.create(con, context, kind, resource, entry["request"]["ifNoneExist"], new_id)
            return _response(made, "201 Created" if made.created else "200 OK")
        made = store.create(con, context, kind, resource, rid=new_id)
        return _response(made, "201 Created")
    if criteria is not None:
        if method == "PUT":
            done = conditional.update(con, context, kind, resource, criteria)
            return _response(done, "201 Created" if done.created else "200 OK")
        if method == "DELETE":
            return _response(conditional.delete(con, context, kind, criteria), "204 No Content")
    if rid is None:
        if method == "GET":
            pairs = parse_qsl(criteria or "", keep_blank_values=True)
            result = searchset(search(con, context, kind, pairs), base, f"{base}/{kind}")
            return {"resource": result, "response": {"status": "200 OK"}}
        raise Invalid(f"entry {n}: {method} needs Type/id or Type?criteria, not {kind}")
    if method == "PUT":
        if_match = str(entry["request"].get("ifMatch") or "").removeprefix("W/").strip('"')
        if if_match and not if_match.isdigit():
            raise Invalid(f'entry {n}: ifMatch must be an ETag such as W/"3"', where=f"Bundle.entry[{n}]")
        match = int(if_match) if if_match else None
        done = store.update(con, context, kind, rid, resource, match)
        return _response(done, "201 Created" if done.created else "200 OK")
    if method == "DELETE":
        gone = store.delete(con, context, kind, rid)
        return _response(gone, "204 No Content")
    found = store.read(con, context, kind, rid)
    return _response(found, "200 OK", with_resource=True)


def _assign_ids(con: Connection, context: RequestContext, entries: list[dict[str, Any]]) -> dict[str, str]:
    """``Type/id`` for each ``urn:uuid:`` full URL a POST creates: a new id, or for a conditional create
    whose criteria match, the matching resource's (so references point at it)."""
    ids = {}
    for n, entry in enumerate(entries):
        full = entry.get("fullUrl", "")
        if entry["request"]["method"] == "POST" and isinstance(full, str) and full.startswith("urn:uuid:"):
            kind = _target(entry, n)[0]
            criteria = entry["request"].get("ifNoneExist")
            found = matching_ids(con, context, kind, criteria) if criteria else []
            ids[full] = f"{kind}/{found[0] if len(found) == 1 else uuid.uuid4()}"
    return ids


def transaction(db: Engine, context: RequestContext, bundle: Any, base: str = "") -> dict[str, Any]:
    entries = _entries(bundle)
    results: dict[int, dict[str, Any]] = {}
    order = sorted(range(len(entries)), key=lambda i: ORDER[entries[i]["request"]["method"]])
    with db.begin() as con:
        try:
            ids = _assign_ids(con, context, entries)
        except StoreError as error:
            raise type(error)(f"transaction failed, nothing was written: {error}", error.where) from None
        for n in order:
            try:
                results[n] = _run(con, context, entries[n], n, ids, base)
            except StoreError as error:
                raise type(error)(
                    f"transaction failed at entry {n}, nothing was written: {error}", error.where
                ) from None
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [results[n] for n in range(len(entries))],
    }


def batch(db: Engine, context: RequestContext, bundle: Any, base: str = "") -> dict[str, Any]:
    entries = _entries(bundle)
    out = []
    for n, entry in enumerate(entries):
        try:
            out.append(_run(db, context, entry, n, {}, base))
        except StoreError as error:
            issue = {"severity": "error", "code": error.code, "diagnostics": str(error)}
            out.append(
                {
                    "response": {
                        "status": str(error.status),
                        "outcome": {"resourceType": "OperationOutcome", "issue": [issue]},
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}
