"""The pages of access: sign-in and sign-out, a citizen's overview for clinicians (with break-the-glass when
there is no care relation), the citizen's own log ("Min log", two years back), and the administrators'
review of break-the-glass. Danish first (message catalogues), every form with a CSRF token (session.py)."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from naer.access import accounts, audit, glass, sessions
from naer.access.context import AccessContext
from naer.access.policy import policy
from naer.access.principal import Principal
from naer.api.auth import SESSION_COOKIE, address_of
from naer.errors import UserError
from naer.settings import get_settings
from naer.store import resources as store
from naer.store.errors import StoreError
from naer.store.search.query import search
from naer.store.tables import resources
from naer.web import i18n, people, session
from naer.web.words import ACTIONS, RECORDS, RELATIONS, REVIEWS, ROLES

HERE = Path(__file__).parent
DANISH_TIME = ZoneInfo("Europe/Copenhagen")

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
env.filters["num"] = i18n.number_filter  # (the dashboard's layout, base.html, which the figures page uses)
env.filters["day"] = i18n.day_filter


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the asker's language, with the signed-in person and the form token."""
    lang = session.language(request)
    values = {
        **i18n.helpers(lang, request),
        "roles": ROLES,
        "reviews": REVIEWS,
        "user": session.who(context.pop("principal", None) or session.principal(request)),
        "csrf": session.csrf_token(request),
        **context,
    }
    response = HTMLResponse(env.get_template(template).render(**values), status_code=status)
    response.headers["Cache-Control"] = "no-store"
    session.remember_language(request, response)
    session.remember_csrf(request, response)
    return response


def refuse(request: Request, status: int = 403, message: str | None = None) -> HTMLResponse:
    t = i18n.gettext_for(session.language(request))
    return render(
        request, "message.html", status, heading=t("Not allowed"), message=message or t("Not allowed")
    )


def _local(moment: str) -> str:
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    return parsed.astimezone(DANISH_TIME).strftime("%d.%m.%Y %H:%M")


def _org_names(ids: set[str], db: Any) -> dict[str, str]:
    if not ids:
        return {}
    with db.connect() as con:
        rows = con.execute(
            select(resources.c.id, resources.c.content).where(
                resources.c.resource_type == "Organization", resources.c.id.in_(sorted(ids))
            )
        )
        return {r.id: str(orjson.loads(r.content).get("name", r.id)) for r in rows if r.content}


def log_rows(events: list[dict[str, Any]], db: Any, lang: str) -> list[dict[str, Any]]:
    """The citizen's log as a person reads it: who, when, what, why."""
    t = i18n.gettext_for(lang)
    orgs: set[str] = set()
    for e in events:
        location = (e["agent"][0].get("location") or {}).get("reference", "")
        if location.startswith("Organization/"):
            orgs.add(location.split("/", 1)[1])
    names = _org_names(orgs, db)
    rows = []
    for e in events:
        agent = e["agent"][0]
        location = (agent.get("location") or {}).get("reference", "").removeprefix("Organization/")
        role = (agent.get("role") or [{}])[0].get("coding", [{}])[0].get("code", "")
        action = e.get("subtype", [{}])[0].get("code", "")
        details = {
            d["type"]: d.get("valueString", "") for ent in e.get("entity", []) for d in ent.get("detail", [])
        }
        relation = details.get("relation", "")
        things = [
            ent["what"]["reference"].split("/")[0]
            for ent in e.get("entity", [])
            if "what" in ent and not ent["what"]["reference"].startswith("Patient/")
        ]
        kinds = ", ".join(t(RECORDS[k]) if k in RECORDS else k for k in sorted(set(things) or {"Patient"}))
        glassed = relation == "break-the-glass" or action == "break-glass"
        why = t(RELATIONS.get(relation, relation)) if relation else ""
        if action == "break-glass":
            why = details.get("detail", "")
        rows.append(
            {
                "when": _local(e["recorded"]),
                "who": agent.get("who", {}).get("display", ""),
                "role": t(ROLES.get(role, ROLES["anonymous"])),
                "organisation": names.get(location, location),
                "what": f"{t(ACTIONS.get(action, action))} {kinds}"
                if action != "break-glass"
                else t(ACTIONS["break-glass"]),
                "why": why,
                "glass": glassed,
            }
        )
    return rows


def _age(birth: str | None) -> str:
    try:
        born = date.fromisoformat(birth or "")
    except ValueError:
        return "?"
    today = datetime.now(UTC).date()
    return str(today.year - born.year - ((today.month, today.day) < (born.month, born.day)))


def _code(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    coding = (concept.get("coding") or [{}])[0]
    return str(concept.get("text") or coding.get("display") or coding.get("code") or "")


def _encounter_row(e: dict[str, Any]) -> list[str]:
    kind = _code((e.get("type") or [{}])[0]) or str(e.get("class", {}).get("code", ""))
    place = str(e.get("serviceProvider", {}).get("reference", "")).removeprefix("Organization/")
    return [_local(str(e.get("period", {}).get("start", ""))), kind, str(e.get("status", "")), place]


def _condition_row(c: dict[str, Any]) -> list[str]:
    return [_code(c.get("code")), str(c.get("onsetDateTime", c.get("recordedDate", "")))[:10]]


def _observation_row(o: dict[str, Any], t: Any) -> list[str]:
    quantity = o.get("valueQuantity") or {}
    value = f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip()
    value = value or _code(o.get("valueCodeableConcept")) or str(o.get("valueString", ""))
    if isinstance(o.get("valueBoolean"), bool):  # (false is a value too: "lives alone: no")
        value = t("yes") if o["valueBoolean"] else t("no")
    return [_code(o.get("code")), value, _local(str(o.get("effectiveDateTime", "")))]


def add_access_pages(app: FastAPI) -> None:
    """Register /login, /logout, /min-log, /audit/review and /citizen/{id} on the app (its state holds
    the Auth and the database the API made)."""

    api_error = app.exception_handlers[HTTPException]

    @app.exception_handler(HTTPException)
    async def page_or_outcome(request: Request, error: HTTPException) -> Response:
        """A person's browser asking for an address with no page gets a page that says so (in the site's
        look and language); the FHIR API, and any client that does not ask for HTML, an OperationOutcome."""
        wants_page = "text/html" in request.headers.get("accept", "")
        if error.status_code == 404 and wants_page and not request.url.path.startswith("/fhir"):
            t = i18n.gettext_for(session.language(request))
            return render(
                request,
                "message.html",
                404,
                heading=t("No such page"),
                message=t(
                    "There is no page at this address. Choose a page in the menu, or go to the front page."
                ),
            )
        answer = api_error(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    if not any(getattr(r, "name", None) == "static" for r in app.routes):  # the dashboard mounts it too
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def context_of(request: Request) -> AccessContext | None:
        p = session.principal(request)
        return request.app.state.auth.access(p) if p is not None else None

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request) -> Response:
        nxt = session.safe_next(request.query_params.get("next"))
        return render(request, "login.html", next=nxt, username="", message=None)

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login(request: Request) -> Response:
        t = i18n.gettext_for(session.language(request))
        values = await session.form(request)
        if values is None:
            return render(
                request,
                "login.html",
                403,
                next="/",
                username="",
                message=t("The form expired or did not come from Nær. Try again."),
            )
        auth = request.app.state.auth
        db = request.app.state.db
        name = values.get("username", "").strip().lower()[:64]
        address = address_of(request)
        wait = auth.throttle.delay(f"account:{name}", f"address:{address}")
        if wait:
            await asyncio.sleep(wait)
        account = await run_in_threadpool(accounts.check_password, db, name, values.get("password", ""))
        nxt = session.safe_next(values.get("next"))
        if account is None:
            auth.throttle.failed(f"account:{name}", f"address:{address}")
            auth.record_anonymous(
                "denied", address, "sign-in failed (wrong user name or password)", actor=name
            )
            return render(
                request, "login.html", 401, next=nxt, username=name, message=t("Wrong user name or password.")
            )
        auth.throttle.succeeded(f"account:{name}")
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await run_in_threadpool(sessions.end, db, old)
        secret = await run_in_threadpool(
            sessions.start, db, account.id, address, get_settings().session_hours
        )
        principal = accounts.principal(db, account, None, address)
        auth.access(principal).record_event("login", detail="signed in to the pages")
        target = nxt if nxt != "/" else ("/min-log" if account.role == "citizen" else "/")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            secret,
            httponly=True,
            samesite="lax",
            secure=session.secure(request),
            path="/",
            max_age=get_settings().session_hours * 3600,
        )
        response.delete_cookie(session.CSRF_COOKIE, path="/")  # a new form token for the new session
        return response

    @app.get("/logout", response_class=HTMLResponse, include_in_schema=False)
    def logout_page(request: Request) -> Response:
        return render(request, "logout.html")

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        values = await session.form(request)
        if values is None:
            return refuse(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        context = context_of(request)
        if cookie:
            await run_in_threadpool(sessions.end, request.app.state.db, cookie)
        if context is not None:
            context.record_event("logout", detail="signed out")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/min-log", response_class=HTMLResponse, include_in_schema=False)
    def my_log(request: Request) -> Response:
        p = session.principal(request)
        if p is None:
            return session.to_login(request)
        if p.role != "citizen" or not p.patient:
            return refuse(request)
        db = request.app.state.db
        events, total = audit.entries(db, patient=p.patient, since=audit.two_years_back(), limit=500)
        rows = log_rows(events, db, session.language(request))
        return render(request, "min_log.html", principal=p, entries=rows, total=total)

    @app.get("/audit/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request) -> Response:
        p = session.principal(request)
        if p is None:
            return session.to_login(request)
        if not policy().roles[p.role].audit or p.role == "system":
            return refuse(request)
        grants = [
            {**g.__dict__, "starts": _local(g.starts.isoformat()), "ends": _local(g.ends.isoformat())}
            for g in glass.listed(request.app.state.db, None)
        ]
        return render(request, "review.html", principal=p, grants=grants)

    @app.post("/audit/review/{grant_id}", include_in_schema=False)
    async def review(request: Request, grant_id: str) -> Response:
        p = session.principal(request)
        if p is None:
            return session.to_login(request)
        values = await session.form(request)
        if values is None or not policy().roles[p.role].audit or p.role == "system":
            return refuse(request)
        entry = request.app.state.auth.access(p).entry("review")
        try:
            await run_in_threadpool(
                glass.decide, request.app.state.db, grant_id[:64], p.account, entry,
                values.get("decision", ""), values.get("note", ""),
            )  # fmt: skip
        except UserError as error:  # a decided or unknown grant, a wrong decision
            return refuse(request, 400, str(error))
        return RedirectResponse("/audit/review", status_code=303)

    @app.get("/citizen/{patient_id}", response_class=HTMLResponse, include_in_schema=False)
    def citizen(request: Request, patient_id: str) -> Response:
        context = context_of(request)
        if context is None:
            return session.to_login(request)
        p = context.principal
        t = i18n.gettext_for(session.language(request))
        role = context.rules.roles[p.role]
        if role.records == "none":
            return refuse(request)
        db = request.app.state.db
        try:
            found = store.read(db, context, "Patient", patient_id)
        except StoreError:
            return render(
                request, "citizen_closed.html", 404, principal=p, patient=patient_id[:64],
                may_break=role.break_glass, message=None,
            )  # fmt: skip
        patient = orjson.loads(found.content or "{}")
        name, cpr = people.name_of(patient), people.cpr_of(patient)
        ref = f"Patient/{patient_id}"
        encounters = search(
            db, context, "Encounter", [("patient", ref), ("_sort", "-date"), ("_count", "15")]
        )
        conditions = search(db, context, "Condition", [("patient", ref), ("_count", "15")])
        observations = search(
            db, context, "Observation", [("patient", ref), ("_sort", "-date"), ("_count", "15")]
        )

        def loaded(result: Any) -> list[dict[str, Any]]:
            return [orjson.loads(m.content) for m in result.matches if m.content]

        sections = [
            {
                "title": t("Encounters"),
                "head": [t("Period"), t("Kind"), t("Status"), t("Place")],
                "rows": [_encounter_row(e) for e in loaded(encounters)],
            },
            {
                "title": t("Conditions"),
                "head": [t("Code"), t("Date")],
                "rows": [_condition_row(c) for c in loaded(conditions)],
            },
            {
                "title": t("Observations"),
                "head": [t("Code"), t("Value"), t("Date")],
                "rows": [_observation_row(o, t) for o in loaded(observations)],
            },
        ]
        with db.connect() as con:
            relation = context._relation(con, patient_id)
        return render(
            request, "citizen.html", principal=p, name=name.strip() or ref, cpr=cpr or "-",
            age=_age(patient.get("birthDate")), relation=t(RELATIONS.get(relation, relation)),
            sections=sections, patient_id=patient_id,
        )  # fmt: skip

    @app.post("/citizen/{patient_id}/break-the-glass", include_in_schema=False)
    async def break_glass(request: Request, patient_id: str) -> Response:
        context = context_of(request)
        if context is None:
            return session.to_login(request)
        values = await session.form(request)
        if values is None:
            return refuse(request)
        p: Principal = context.principal
        try:
            await run_in_threadpool(
                glass.open_record, request.app.state.db, p, context.entry("break-glass"), patient_id[:64],
                values.get("reason", ""), values.get("purpose", "ETREAT"),
            )  # fmt: skip
        except StoreError as error:
            return render(
                request, "citizen_closed.html", error.status, principal=p, patient=patient_id[:64],
                may_break=context.rules.roles[p.role].break_glass, message=str(error),
            )  # fmt: skip
        return RedirectResponse(f"/citizen/{patient_id}", status_code=303)
