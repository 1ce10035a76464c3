"""The FHIR REST API under ``/fhir``: read, vread, create, update, delete, history, search (api/search.py),
Bundles, bulk export and import, with ETags, optimistic locking and OperationOutcomes for every failure.

Every handler asks ``Auth.context`` who is asking (api/auth.py: a Bearer token or a session cookie, else
401) and hands that context to the store, which puts the asker's access condition inside each query and
records each access in the audit log (naer.access).
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from naer.api.auth import Auth
from naer.api.capability import capability_statement
from naer.api.export import add_export_routes
from naer.api.guard import Guard
from naer.api.imports import add_import_definition_route, add_import_route
from naer.api.messaging import add_messaging_routes, run_outbox
from naer.api.openapi import install as install_openapi
from naer.api.outcome import FhirResponse, outcome
from naer.api.params import if_match, instant_param, raw_body
from naer.api.search import add_search_routes
from naer.api.security import add_security_routes
from naer.api.workflow import add_workflow_routes, run_escalation
from naer.messaging.events import install as install_outbox
from naer.settings import get_settings
from naer.store import bundles, conditional
from naer.store import resources as store
from naer.store.checks import whole
from naer.store.db import database_url, engine
from naer.store.errors import Invalid, StoreError
from naer.store.migrate import upgrade

log = logging.getLogger("naer.api")


async def body_of(request: Request) -> Any:
    """The request's JSON body, refused before it is read in full when it is larger than allowed."""
    return store.parse_body(await raw_body(request))


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _headers(version: store.Stored, request: Request, location: bool = False) -> dict[str, str]:
    headers = {"ETag": version.etag, "Last-Modified": format_datetime(version.last_updated, usegmt=True)}
    if location:
        headers["Location"] = f"{base_url(request)}/{version.reference}/_history/{version.version_id}"
    return headers


def _written(version: store.Stored, request: Request) -> Response:
    """201 for a new resource, 200 for a new version; the body as ``Prefer: return=`` asks."""
    status = 201 if version.created else 200
    headers = _headers(version, request, location=True)
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        done = "created" if version.created else "updated"
        response = outcome(status, "informational", f"{version.reference} {done}")
        response.headers.update(headers)
        return response
    return FhirResponse(version.content, status_code=status, headers=headers)


def _count(request: Request) -> int:
    return whole("_count", request.query_params.get("_count", "50"), 0, 1000, clamp=True)


def _history_bundle(
    request: Request, versions: list[store.Stored], total: int, offset: int, count: int, till: datetime
) -> FhirResponse:
    base = base_url(request)
    kept = {k: v for k, v in request.query_params.items() if k not in ("_offset", "_till")}
    here = str(request.url).split("?")[0]

    def page(at: int) -> str:
        query = "&".join(f"{k}={v}" for k, v in {**kept, "_offset": at, "_till": store.instant(till)}.items())
        return f"{here}?{query}"

    links = [{"relation": "self", "url": page(offset)}]
    if offset + len(versions) < total:
        links.append({"relation": "next", "url": page(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": page(max(0, offset - count))})
    entries = []
    for v in versions:
        entry: dict[str, Any] = {"fullUrl": f"{base}/{v.reference}"}
        if v.content is not None:
            entry["resource"] = orjson.Fragment(v.content)
        entry["request"] = {"method": v.method, "url": v.reference if v.method != "POST" else v.resource_type}
        entry["response"] = {
            "status": "201" if v.method == "POST" else ("204" if v.deleted else "200"),
            "etag": v.etag,
            "lastModified": store.instant(v.last_updated),
        }
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "history", "total": total, "link": links, "entry": entries}
    return FhirResponse(bundle)


def create_app(url: str | None = None, migrate: bool = True, access: bool = True) -> FastAPI:
    """The API over the store at ``url`` (default: settings); ``migrate`` brings its schema up to date.
    ``access=False`` turns sign-in and the access policy off: only for the benchmarks that measure what
    access control costs (never reachable from settings or the command line)."""
    resolved = database_url(url)
    if migrate:
        upgrade(resolved)
    db: Engine = engine(resolved)
    auth = Auth(db, enabled=access)
    context_of = auth.context
    app = FastAPI(
        title="Nær FHIR API",
        description="FHIR R4 REST API of the Nær platform (see /fhir/metadata).",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )

    settings = get_settings()
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off unless configured: only these origins' pages may read answers in a browser
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Exist", "Prefer"],
            expose_headers=["Location", "ETag", "Content-Location", "Last-Modified", "X-Progress"],
        )
    app.add_middleware(Guard, allowed_hosts=settings.allowed_hosts.split(","))
    app.state.auth = auth
    app.state.db = db
    app.router.on_shutdown.append(auth.close)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, error: StoreError) -> Response:
        answer = outcome(error.status, error.code, str(error), error.where)
        if error.status == 401:
            answer.headers["WWW-Authenticate"] = 'Bearer realm="naer", error="invalid_token"'
        return answer

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 404:
            message = f"no such FHIR interaction: {request.method} {request.url.path}"
            return outcome(404, "not-supported", message)
        if error.status_code == 405:
            message = f"{request.method} is not supported on {request.url.path}"
            answer = outcome(405, "not-supported", message)
            answer.headers.update(error.headers or {})  # Allow: the methods that are
            return answer
        return outcome(error.status_code, "processing", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, error: RequestValidationError) -> Response:
        return outcome(400, "invalid", f"bad request: {error.errors()}")

    @app.exception_handler(Exception)
    async def crash(request: Request, error: Exception) -> Response:
        log.exception("error in %s %s", request.method, request.url.path)
        return outcome(500, "exception", f"internal error ({type(error).__name__}); nothing was written")

    @app.get("/fhir/metadata")
    async def metadata(request: Request) -> Response:
        return FhirResponse(capability_statement(base_url(request)))

    add_security_routes(app, db, auth, base_url)  # before /fhir/{type}: AuditEvent, $break-the-glass
    add_export_routes(app, db, base_url, context_of)  # before /fhir/{type}, which would take "$export"
    add_workflow_routes(app, db, context_of)
    add_messaging_routes(app, db, context_of)  # before /fhir/{type}, which would take "$process-message"
    install_outbox()  # a hospital stay's change stores its HospitalNotification with it
    if access:
        run_escalation(app, db)
        run_outbox(app, db)

    @app.post("/fhir")
    @app.post("/fhir/")
    async def bundle(request: Request) -> Response:
        body = await body_of(request)
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "transaction":
            result = await run_in_threadpool(
                bundles.transaction, db, context_of(request), body, base_url(request)
            )
        elif kind == "batch":
            result = await run_in_threadpool(bundles.batch, db, context_of(request), body, base_url(request))
        else:
            raise Invalid(f"POST /fhir takes a Bundle of type batch or transaction, not {kind!r}")
        return FhirResponse(result)

    add_import_route(app, db, context_of)
    add_import_definition_route(app)

    @app.get("/fhir/_history")
    def system_history(request: Request) -> Response:
        return _history(request, None, None)

    add_search_routes(app, db, base_url, context_of, body_of, _written)  # after /fhir/_history

    @app.get("/fhir/{resource_type}/_history")
    def type_history(request: Request, resource_type: str) -> Response:
        return _history(request, resource_type, None)

    @app.get("/fhir/{resource_type}/{rid}/_history")
    def instance_history(request: Request, resource_type: str, rid: str) -> Response:
        return _history(request, resource_type, rid)

    def _history(request: Request, resource_type: str | None, rid: str | None) -> Response:
        count = _count(request)
        offset = whole("_offset", request.query_params.get("_offset", "0"), 0, 10**9)
        till = instant_param(request, "_till") or store.now()
        versions, total = store.history_of(
            db,
            context_of(request),
            resource_type,
            rid,
            since=instant_param(request, "_since"),
            till=till,
            count=count,
            offset=offset,
        )
        return _history_bundle(request, versions, total, offset, count, till)

    @app.get("/fhir/{resource_type}/{rid}/_history/{vid}")
    def vread(request: Request, resource_type: str, rid: str, vid: str) -> Response:
        version = store.vread(db, context_of(request), resource_type, rid, vid)
        return FhirResponse(version.content, headers=_headers(version, request))

    @app.get("/fhir/{resource_type}/{rid}")
    async def read(request: Request, resource_type: str, rid: str) -> Response:
        # Run on the event loop, not in the thread pool: a read by primary key takes well under a
        # millisecond, less than the hop to a worker thread and back (docs/performance.md).
        version = store.read(db, context_of(request), resource_type, rid)
        if request.headers.get("if-none-match") == version.etag:
            return Response(status_code=304, headers=_headers(version, request))
        return FhirResponse(version.content, headers=_headers(version, request))

    @app.post("/fhir/{resource_type}")
    async def create(request: Request, resource_type: str) -> Response:
        body = await body_of(request)
        criteria = request.headers.get("if-none-exist")
        if criteria:
            version = await run_in_threadpool(
                conditional.create, db, context_of(request), resource_type, body, criteria
            )
        else:
            version = await run_in_threadpool(store.create, db, context_of(request), resource_type, body)
        return _written(version, request)

    @app.put("/fhir/{resource_type}/{rid}")
    async def update(request: Request, resource_type: str, rid: str) -> Response:
        body = await body_of(request)
        version = await run_in_threadpool(
            store.update, db, context_of(request), resource_type, rid, body, if_match(request)
        )
        return _written(version, request)

    @app.delete("/fhir/{resource_type}/{rid}")
    def delete(request: Request, resource_type: str, rid: str) -> Response:
        done = store.delete(db, context_of(request), resource_type, rid)
        headers = {"ETag": done.etag} if done else {}
        return Response(status_code=204, headers=headers)

    install_openapi(app)
    return app
