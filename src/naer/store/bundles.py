"""Batch and transaction Bundles.

A transaction is all-or-nothing: every entry runs in one database transaction, in the order FHIR gives
(DELETE, POST, PUT, GET), and any failure rolls all of it back and answers with that failure. ``urn:uuid:``
full URLs of created resources are resolved: each gets its id first (a conditional create that matches
gets the match's), and every reference to it in the Bundle is rewritten to ``Type/id``; a ``urn:uuid:``
reference to nothing in the Bundle is refused. A conditional reference (``Organization?identifier=s|v``,
as Synthea writes) is resolved to the one resource its search finds, as R4's transaction rules say; none
or several fail the transaction with 412 naming the entry. Entries may be conditional (``ifNoneExist``,
``Type?criteria`` for PUT and DELETE) or searches (GET ``Type?criteria``). A batch runs each entry on its
own and reports each entry's outcome.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from naer.store import conditional
from naer.store import resources as store
from naer.store.checks import DIGITS, INT32
from naer.store.context import RequestContext
from naer.store.errors import Invalid, NotSupported, PreconditionFailed, StoreError
from naer.store.search.bundle import searchset
from naer.store.search.query import matching_ids, search

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}


def _entries(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Invalid("POST /fhir takes a Bundle of type batch or transaction")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise Invalid("Bundle.entry must be a list", where="Bundle.entry")
    for n, entry in enumerate(entries):
        given = entry.get("request") if isinstance(entry, dict) else None
        request: dict[str, Any] = given if isinstance(given, dict) else {}
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or method not in ORDER or not isinstance(url, str) or not url:
            raise Invalid(
                f"entry {n} needs a request with a method (GET, POST, PUT, DELETE) and a url",
                where=f"Bundle.entry[{n}].request",
            )
        for key in ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"):
            if key in request and not isinstance(request[key], str):
                raise Invalid(
                    f"entry {n}: request.{key} must be a string", where=f"Bundle.entry[{n}].request"
                )
        if "fullUrl" in entry and not isinstance(entry["fullUrl"], str):
            raise Invalid(f"entry {n}: fullUrl must be a string", where=f"Bundle.entry[{n}].fullUrl")
        if "resource" in entry and not isinstance(entry["resource"], dict):
            raise Invalid(f"entry {n}: resource must be a JSON object", where=f"Bundle.entry[{n}].resource")
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


CONDITIONAL_REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)\?(?P<criteria>.+)$")


def _resolve(con: Engine | Connection, context: RequestContext, ref: str, n: int) -> str:
    """A conditional reference ``Type?criteria`` as the ``Type/id`` of the one resource it selects (R4
    transaction rules: no match or several fail the request)."""
    match = CONDITIONAL_REFERENCE.match(ref)
    assert match is not None
    kind = match["type"]
    store.known_type(kind)
    where = f"Bundle.entry[{n}].resource"
    if isinstance(con, Connection):
        found = matching_ids(con, context, kind, match["criteria"])
    else:
        with con.connect() as reader:
            found = matching_ids(reader, context, kind, match["criteria"])
    if not found:
        raise PreconditionFailed(f"entry {n}: the conditional reference {ref!r} matches nothing", where)
    if len(found) > 1:
        raise PreconditionFailed(
            f"entry {n}: the conditional reference {ref!r} matches several {kind}", where
        )
    return f"{kind}/{found[0]}"


def _rewrite(value: Any, ids: dict[str, str], n: int, resolve: Any = None) -> Any:
    """References to ``urn:uuid:`` full URLs of the Bundle as ``Type/id``, and conditional references
    (``Type?criteria``) as the one resource they select."""
    if isinstance(value, dict):
        out = {k: _rewrite(v, ids, n, resolve) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            if ref not in ids:
                raise Invalid(
                    f"entry {n} refers to {ref}, which no entry of the Bundle creates",
                    where=f"Bundle.entry[{n}].resource",
                )
            out["reference"] = ids[ref]
        elif isinstance(ref, str) and resolve is not None and CONDITIONAL_REFERENCE.match(ref):
            out["reference"] = resolve(ref)
        return out
    if isinstance(value, list):
        return [_rewrite(v, ids, n, resolve) for v in value]
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
    resource = (
        _rewrite(entry.get("resource"), ids, n, lambda ref: _resolve(con, context, ref, n))
        if "resource" in entry
        else None
    )
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
        if if_match and (not DIGITS.fullmatch(if_match) or int(if_match) > INT32):
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
            if criteria:
                conditional.lock(con, kind, criteria)
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
