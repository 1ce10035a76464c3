"""The security routes of the API: SMART's discovery document and Nær's public keys, the token endpoint
for system clients (OAuth 2 client credentials), the audit log as FHIR AuditEvents (a citizen's own two
years back, everything for an administrator; never written through the API), and break-the-glass
(``POST /fhir/Patient/{id}/$break-the-glass``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from naer.access import accounts, audit, glass, tokens
from naer.access.context import AccessContext
from naer.access.scopes import narrow
from naer.api.auth import Auth, address_of
from naer.api.outcome import FhirResponse
from naer.api.params import raw_body
from naer.settings import get_settings
from naer.store.checks import whole
from naer.store.errors import Forbidden, Invalid, NotFound, NotSupported

SCOPES_SUPPORTED = [
    "system/*.rs",
    "system/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "patient/*.rs",
    "openid",
    "fhirUser",
]
MAX_FORM = 8192


def smart_configuration(base: str, root: str) -> dict[str, Any]:
    """SMART App Launch 2.x discovery (/.well-known/smart-configuration)."""
    settings = get_settings()
    return {
        "issuer": settings.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{root}/oauth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["token"],
        "capabilities": ["permission-v2", "permission-v1", "client-confidential-symmetric"],
        "code_challenge_methods_supported": ["S256"],
        "associated_endpoints": [],
    }


def _token_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="naer"'
    return JSONResponse({"error": error, "error_description": description}, status, headers=headers)


def _client(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, _, secret = decoded.partition(":")
        return name, secret
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


def _citizen_view(event: dict[str, Any]) -> dict[str, Any]:
    """What a citizen sees of an entry about them: who, when, what and why, not the asker's address."""
    for agent in event.get("agent", []):
        agent.pop("network", None)
        agent.pop("altId", None)
    return event


def add_security_routes(app: FastAPI, db: Engine, auth: Auth, base: Callable[[Request], str]) -> None:
    @app.get("/fhir/.well-known/smart-configuration", include_in_schema=False)
    def smart(request: Request) -> Response:
        root = str(request.base_url).rstrip("/")
        return JSONResponse(smart_configuration(base(request), root))

    @app.get("/fhir/.well-known/jwks.json", include_in_schema=False)
    def jwks() -> Response:
        return JSONResponse(tokens.public_keys(), headers={"Cache-Control": "public, max-age=600"})

    @app.post("/oauth/token", include_in_schema=False)
    async def token(request: Request) -> Response:
        """OAuth 2 client credentials (RFC 6749 §4.4) for registered system clients."""
        raw = await raw_body(request)
        if len(raw) > MAX_FORM:
            return _token_error(400, "invalid_request", "the request is too large")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return _token_error(400, "invalid_request", "send application/x-www-form-urlencoded")
        try:
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            return _token_error(400, "invalid_request", "the form is not UTF-8")
        if form.get("grant_type") != "client_credentials":
            return _token_error(400, "unsupported_grant_type", "this server grants client_credentials only")
        client = _client(request, form)
        if client is None:
            return _token_error(
                401, "invalid_client", "authenticate the client (HTTP Basic or client_secret)"
            )
        name, secret = client[0][:64], client[1][:1024]
        address = address_of(request)
        wait = auth.throttle.delay(f"account:{name}", f"address:{address}")
        if wait:
            await asyncio.sleep(wait)
        account = await run_in_threadpool(accounts.check_password, db, name, secret)
        if account is None or account.role != "system":
            auth.throttle.failed(f"account:{name}", f"address:{address}")
            auth.record_anonymous("denied", address, "client credentials refused", actor=name)
            return _token_error(401, "invalid_client", "the client is not known or its secret is wrong")
        auth.throttle.succeeded(f"account:{name}")
        asked = form.get("scope") or account.scopes
        granted = narrow(asked, account.scopes)
        if not granted.strip():
            return _token_error(
                400, "invalid_scope", "none of the scopes asked for is allowed to this client"
            )
        minutes = get_settings().token_minutes
        signed = tokens.issue(account.id, granted, minutes)
        principal = accounts.principal(db, account, granted, address)
        auth.access(principal).record_event("login", detail="client credentials token issued")
        return JSONResponse(
            {"access_token": signed, "token_type": "Bearer", "expires_in": minutes * 60, "scope": granted},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _log_reader(request: Request) -> tuple[AccessContext, str | None]:
        """The asker of the audit log and whose entries they may read (None: everyone's)."""
        context = auth.context(request)
        if not isinstance(context, AccessContext):  # access off (benchmarks): the whole log
            raise NotSupported("the audit log is served only with access control on")
        role = context.rules.roles[context.principal.role]
        if not context.principal.scopes.allows("s", "AuditEvent"):
            raise Forbidden("the token's scopes do not allow AuditEvent.s")
        if role.audit:
            return context, request.query_params.get("patient", "").removeprefix("Patient/") or None
        if role.own_log and context.principal.patient:
            return context, context.principal.patient
        context.record_event("denied", outcome="minor", detail="read of the audit log")
        raise Forbidden("only the citizen (their own entries) and administrators read the audit log")

    @app.get("/fhir/AuditEvent")
    def audit_search(request: Request) -> Response:
        context, patient = _log_reader(request)
        params = request.query_params
        unknown = sorted(set(params) - {"patient", "_count", "_offset", "_format"})
        if unknown and "handling=strict" in request.headers.get("prefer", ""):
            raise Invalid(f"the audit log is searched by patient only, not by {', '.join(unknown)}")
        count = whole("_count", params.get("_count", "50"), 0, 500, clamp=True)
        offset = whole("_offset", params.get("_offset", "0"), 0, 10**7)
        own = patient is not None and not context.rules.roles[context.principal.role].audit
        since = audit.two_years_back() if own else None
        found, total = audit.entries(db, patient=patient, since=since, limit=count, offset=offset)
        if own:
            found = [_citizen_view(e) for e in found]
        here = f"{base(request)}/AuditEvent"
        kept = "&".join(f"{k}={v}" for k, v in params.items() if k not in ("_offset",))
        links = [{"relation": "self", "url": f"{here}?{kept}&_offset={offset}".replace("?&", "?")}]
        if offset + len(found) < total:
            links.append(
                {"relation": "next", "url": f"{here}?{kept}&_offset={offset + count}".replace("?&", "?")}
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {"fullUrl": f"{here}/{e['id']}", "resource": e, "search": {"mode": "match"}} for e in found
            ],
        }
        return FhirResponse(bundle)

    @app.get("/fhir/AuditEvent/{entry_id}")
    def audit_read(request: Request, entry_id: str) -> Response:
        context, patient = _log_reader(request)
        seq = whole("id", entry_id, 1, 2**62) if entry_id.isdigit() else None
        if seq is None:
            raise NotFound(f"AuditEvent/{entry_id[:64]} is not known")
        event = audit.entry(db, seq)
        own = not context.rules.roles[context.principal.role].audit
        if event is None or (patient is not None and event.get("_patient") != patient):
            raise NotFound(f"AuditEvent/{entry_id} is not known")
        if own and event["_recorded"] < audit.two_years_back():
            raise NotFound(f"AuditEvent/{entry_id} is not known")
        resource = event["resource"]
        return FhirResponse(_citizen_view(resource) if own else resource)

    @app.api_route("/fhir/AuditEvent", methods=["POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    @app.api_route(
        "/fhir/AuditEvent/{entry_id}", methods=["POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
    )
    def audit_write(request: Request, entry_id: str | None = None) -> Response:
        auth.context(request)
        raise Forbidden("the audit log is append-only: Nær writes it, no one writes to it through the API")

    @app.post("/fhir/Patient/{patient_id}/$break-the-glass")
    async def break_the_glass(request: Request, patient_id: str) -> Response:
        """Open a citizen's record without a care relation or past a block: Parameters with ``reason``
        (valueString) and ``purpose`` (valueCode, ETREAT); answers the grant and when it ends."""
        context = auth.context(request)
        if not isinstance(context, AccessContext):
            raise NotSupported("break-the-glass needs access control on")
        from naer.store.resources import parse_body

        body = parse_body(await raw_body(request))
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise Invalid("send a Parameters resource with reason (valueString) and purpose (valueCode)")
        values: dict[str, Any] = {}
        for part in body.get("parameter") or []:
            if isinstance(part, dict) and isinstance(part.get("name"), str):
                value = part.get("valueString", part.get("valueCode"))
                if isinstance(value, str):
                    values[part["name"]] = value
        reason, purpose = values.get("reason", ""), values.get("purpose", "ETREAT")
        principal = context.principal
        if principal.scopes.patient_context and principal.patient != patient_id:
            raise Forbidden("a patient-context token opens only its own citizen's record")
        entry = context.entry("break-glass")
        made = await run_in_threadpool(glass.open_record, db, principal, entry, patient_id, reason, purpose)
        result = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "grant", "valueString": made.id},
                {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
                {"name": "ends", "valueInstant": made.ends.isoformat().replace("+00:00", "Z")},
                {"name": "review", "valueCode": made.review},
            ],
        }
        return FhirResponse(result, status_code=201)
