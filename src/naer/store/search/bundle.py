"""A search result as a FHIR ``searchset`` Bundle: matches and includes, total, paging links, and an
OperationOutcome entry naming parameters that were ignored."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from naer.fhir import jsontext
from naer.fhir.validate import summary_elements
from naer.store.resources import Stored
from naer.store.search.query import Result

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def _subset(stored: Stored, keep: set[str] | None, drop: set[str]) -> Any:
    """The resource as stored, or cut to the elements asked for (and then tagged SUBSETTED)."""
    assert stored.content is not None
    if keep is None and not drop:
        return orjson.Fragment(stored.content)
    resource: dict[str, Any] = jsontext.loads(stored.content)
    kept = {k: v for k, v in resource.items() if (keep is None or k in keep) and k not in drop}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept


def _shape(result: Result, resource_type: str) -> tuple[set[str] | None, set[str]]:
    query = result.query
    if query.elements is not None:
        return {"resourceType", "id", "meta", *query.elements}, set()
    if query.summary == "true":
        return set(summary_elements(resource_type)), set()
    if query.summary == "text":
        return {"resourceType", "id", "meta", "text"}, set()
    if query.summary == "data":
        return None, {"text"}
    return None, set()


def searchset(result: Result, base: str, page_url: str) -> dict[str, Any]:
    """The Bundle of a search; ``page_url`` is the URL the paging links repeat (without a query)."""
    query = result.query
    kept = [(k, v) for k, v in query.used if k not in ("_offset", "_count")]

    def link(offset: int) -> str:
        return f"{page_url}?{urlencode([*kept, ('_count', str(query.count)), ('_offset', str(offset))])}"

    links = [{"relation": "self", "url": link(query.offset)}]
    if query.summary != "count" and query.count > 0:
        links.append({"relation": "first", "url": link(0)})
        more = len(result.matches) == query.count and (
            result.total is None or query.offset + query.count < result.total
        )
        if more:
            links.append({"relation": "next", "url": link(query.offset + query.count)})
        if query.offset > 0:
            links.append({"relation": "previous", "url": link(max(0, query.offset - query.count))})
    entries: list[dict[str, Any]] = []
    for mode, found in (("match", result.matches), ("include", result.included)):
        for stored in found:
            keep, drop = _shape(result, stored.resource_type) if mode == "match" else (None, set())
            entries.append(
                {
                    "fullUrl": f"{base}/{stored.reference}",
                    "resource": _subset(stored, keep, drop),
                    "search": {"mode": mode},
                }
            )
    if query.ignored:
        issue = {
            "severity": "warning",
            "code": "not-supported",
            "diagnostics": f"ignored unknown search parameters: {', '.join(query.ignored)} "
            "(send Prefer: handling=strict to have them refused)",
        }
        entries.append(
            {
                "resource": {"resourceType": "OperationOutcome", "issue": [issue]},
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle
