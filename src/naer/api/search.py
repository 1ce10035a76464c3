"""Search routes of the FHIR API: type search by GET and POST ``_search``, conditional update and delete
on a type's URL, and ``Patient/$everything``. Searches run in the thread pool (they may take longer
than a read by id)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naer.api.outcome import FhirResponse
from naer.api.params import instant_param, raw_body
from naer.store import conditional
from naer.store.compartment import everything
from naer.store.context import RequestContext
from naer.store.errors import Invalid
from naer.store.search.bundle import searchset
from naer.store.search.query import Query, Result, parse, search

FORM = "application/x-www-form-urlencoded"


def strict(request: Request) -> bool:
    """``Prefer: handling=strict`` refuses unknown parameters; lenient (the default) ignores them."""
    return "handling=strict" in request.headers.get("prefer", "").replace(" ", "")


def criteria(request: Request) -> str:
    query = request.url.query
    if not query:
        raise Invalid("a conditional update or delete on a type needs search criteria (Type?name=value)")
    return query


def add_search_routes(
    app: FastAPI,
    db: Engine,
    base: Callable[[Request], str],
    context: Callable[[Request], RequestContext],
    body_of: Callable[[Request], Any],
    written: Callable[[Any, Request], Response],
) -> None:
    def answer(request: Request, resource_type: str, pairs: list[tuple[str, str]]) -> Response:
        result = search(db, context(request), resource_type, pairs, strict(request))
        url = f"{base(request)}/{resource_type}"
        return FhirResponse(searchset(result, base(request), url))

    @app.get("/fhir/Patient/{patient_id}/$everything")
    def patient_everything(request: Request, patient_id: str) -> Response:
        params = request.query_params
        unsupported = sorted({k for k in params if k in ("start", "end")})
        if unsupported:  # (defined by FHIR's $everything; answering without them would mislead)
            raise Invalid(
                f"$everything: {', '.join(unsupported)} (a date range of care) is not supported here; "
                "use _since or _type"
            )
        types = [t for t in params.get("_type", "").split(",") if t] or None
        found = everything(db, context(request), patient_id, types, instant_param(request, "_since"))
        pairs = [(k, v) for k, v in params.multi_items() if k in ("_count", "_offset", "_type", "_since")]
        query: Query = parse("Patient", [(k, v) for k, v in pairs if k in ("_count", "_offset")])
        query.used = pairs
        page = found[query.offset : query.offset + query.count]
        result = Result(query, page, [], len(found))
        url = f"{base(request)}/Patient/{patient_id}/$everything"
        return FhirResponse(searchset(result, base(request), url))

    @app.get("/fhir/{resource_type}")
    async def type_search(request: Request, resource_type: str) -> Response:
        return await run_in_threadpool(answer, request, resource_type, request.query_params.multi_items())

    @app.post("/fhir/{resource_type}/_search")
    async def type_search_post(request: Request, resource_type: str) -> Response:
        kind = request.headers.get("content-type", FORM).split(";")[0].strip()
        if kind != FORM:
            raise Invalid(f"POST _search takes a form ({FORM}), not {kind}")
        body = (await raw_body(request)).decode("utf-8", errors="replace")
        pairs = [*request.query_params.multi_items(), *parse_qsl(body, keep_blank_values=True)]
        return await run_in_threadpool(answer, request, resource_type, pairs)

    @app.put("/fhir/{resource_type}")
    async def conditional_update(request: Request, resource_type: str) -> Response:
        body = await body_of(request)
        version = await run_in_threadpool(
            conditional.update, db, context(request), resource_type, body, criteria(request)
        )
        return written(version, request)

    @app.delete("/fhir/{resource_type}")
    def conditional_delete(request: Request, resource_type: str) -> Response:
        done = conditional.delete(db, context(request), resource_type, criteria(request))
        return Response(status_code=204, headers={"ETag": done.etag} if done else {})
