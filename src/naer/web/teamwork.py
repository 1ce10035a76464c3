"""The pages of what the sectors keep together: the competence register (who can give a treatment on a
day, and what expires), the municipal acute beds (occupancy now and over time, admission and discharge),
one citizen's medical responsibility and framework delegations, and the changes to the shared care plan.

Every page acts for the signed-in person through naer.coordination, so the store's access condition and
audit are inside every read and write; every form carries the CSRF token; every refusal is shown on the
page in the reader's language, with the store's exact reason, and nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from naer.access.context import AccessContext
from naer.coordination import beds, careplan, competence, delegation
from naer.coordination import values as v
from naer.fhir.systems import CONTACT_TYPE, ORG_KIND
from naer.indicators.charts import DANISH_LOCALE
from naer.store import resources as store
from naer.store.checks import whole
from naer.store.context import SYSTEM
from naer.store.errors import Invalid, StoreError
from naer.store.search.query import search
from naer.web import i18n, people, session
from naer.web.coordination import (
    ID_LIMIT,
    _clinician,
    _context,
    _when,
    clinician_form,
    course_page_for,
    posted,
    problem,
)
from naer.web.i18n import mark as _
from naer.web.signin import refuse, render

WITHIN = (30, 60, 90)
DAYS_SHOWN = 30  # the occupancy chart's period, ending today
DISPOSITION_WORDS = {
    "home": _("Home"), "alt-home": _("Home with help"), "other-hcf": _("Another care facility"),
    "hosp": _("Hospital"), "snf": _("Nursing bed"), "long": _("Nursing home"), "exp": _("Died"),
    "oth": _("Other"),
}  # fmt: skip
SETTING_WORDS = {"home": _("Treatment at home"), "acute-bed": _("Municipal acute bed")}


LONG_FORM = 1_048_576  # bytes: the longest field (an instruction of 100,000 characters) URL-encoded


def _form_values(values: dict[str, str], limit: int = 100_000) -> dict[str, str]:
    """A form's fields as given, each cut at ``limit`` characters; empty fields left out (not given)."""
    return {k: val[:limit] for k, val in values.items() if k != "csrf" and val != ""}


def _checked(model: type[BaseModel], values: dict[str, str]) -> dict[str, Any]:
    """A form's values checked by the same model the API checks its body with."""
    try:
        return model.model_validate(values).model_dump(mode="json")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or None
        raise Invalid(f"{where}: {first.get('msg', 'not valid')}", where=where) from None


def _day_or_none(value: str, what: str) -> date | None:
    return competence.parse_day(value[:20], what)


def _organisations(db: Any, context: AccessContext) -> list[tuple[str, str]]:
    """The asker's organisation and those above it (a unit, its municipality or hospital), by name."""
    ids = [i for i in (context.principal.organization, *context.principal.ancestors) if i]
    found = []
    for oid in dict.fromkeys(ids):
        org = v.directory(db, "Organization", oid)
        if org is not None:
            found.append((oid, str(org.get("name", oid))))
    return found


def _acute_units(db: Any) -> list[tuple[str, str]]:
    """Every active municipal acute-bed unit (the directory: anyone working with beds may know them)."""
    found = search(
        db, SYSTEM, "Organization",
        [("type", f"{ORG_KIND}|municipal-acutebeds"), ("active", "true"), ("_sort", "name"),
         ("_count", "200")],
    )  # fmt: skip
    return [(m.id, str(v.load(m).get("name", m.id))) for m in found.matches]


def _physicians(db: Any, unit: str) -> list[tuple[str, str]]:
    """The physicians who may hold the responsibility for a bed: every active role at a hospital or a GP
    clinic in the directory (the sectors whose physicians hold medical responsibility), by name."""
    found = []
    offset = 0
    while True:  # the whole directory, a page at a time (none left out)
        roles = search(
            db, SYSTEM, "PractitionerRole",
            [("active", "true"), ("_sort", "_id"), ("_count", "1000"), ("_offset", str(offset)),
             ("_include", "PractitionerRole:practitioner"), ("_include", "PractitionerRole:organization")],
        )  # fmt: skip
        included = {(m.resource_type, m.id): v.load(m) for m in roles.included}
        for m in roles.matches:
            role = v.load(m)
            org = included.get(("Organization", v.ref_id(role.get("organization"), "Organization") or ""))
            if org is None or v.sector(org) not in beds.PHYSICIAN_SECTORS:
                continue
            pid = v.ref_id(role.get("practitioner"), "Practitioner") or ""
            name = people.name_of(included.get(("Practitioner", pid)) or {}) or m.id
            found.append((m.id, f"{name}, {org.get('name', '')}"))
        if len(roles.matches) < 1000:
            break
        offset += 1000
    return sorted(found, key=lambda item: item[1])


def _nurses(db: Any, context: AccessContext) -> list[tuple[str, str]]:
    """The nursing roles of the asker's organisation and the units around it, for assigning a delegated
    treatment (the competence check decides who may take it)."""
    orgs = [oid for oid, _name in _organisations(db, context)]
    if not orgs:
        return []
    units = set()
    for oid in orgs:
        units.update(competence.units(db, context, oid))
    roles = search(
        db, context, "PractitionerRole",
        [("organization", ",".join(f"Organization/{u}" for u in sorted(units))), ("active", "true"),
         ("_count", "1000"), ("_include", "PractitionerRole:practitioner")],
    )  # fmt: skip
    names = {m.id: people.name_of(v.load(m)) for m in roles.included if m.resource_type == "Practitioner"}
    found = []
    for m in roles.matches:
        pid = v.ref_id(v.load(m).get("practitioner"), "Practitioner") or ""
        found.append((m.id, names.get(pid) or m.id))
    return sorted(found, key=lambda item: item[1])


def add_teamwork_pages(app: FastAPI) -> None:
    _competence_pages(app)
    _bed_pages(app)
    _responsibility_pages(app)
    _plan_pages(app)


# -- the competence register ---------------------------------------------------------------------------


def _competence_pages(app: FastAPI) -> None:
    @app.get("/competence", response_class=HTMLResponse, include_in_schema=False)
    def competence_page(
        request: Request, competence_code: str = "", organization: str = "", day: str = "", within: str = "60"
    ) -> Response:
        return _competence(request, competence_code or request.query_params.get("competence", ""),
                           organization, day, within, {}, None, 200)  # fmt: skip

    @app.post("/competence", response_class=HTMLResponse, include_in_schema=False)
    async def competence_register(request: Request) -> Response:
        context = _context(request)
        if context is None:
            return session.to_login(request)
        values = await posted(request, LONG_FORM)
        if isinstance(values, Response):
            return values
        given = _form_values(values, 200)
        try:
            completed = _day_or_none(given.get("completed", ""), "completed")
            if completed is None:
                raise Invalid("completed: the day the course was completed is needed", where="completed")
            await run_in_threadpool(
                competence.register, request.app.state.db, context, given.get("practitioner", "")[:ID_LIMIT],
                given.get("competence", "")[:64], completed,
                _day_or_none(given.get("valid_until", ""), "valid_until"),
                given.get("issuer") or None,
            )  # fmt: skip
        except StoreError as error:
            lang = session.language(request)
            return _competence(request, given.get("competence", ""), given.get("shown", ""), "", "60", given,
                               problem(error, lang), error.status)  # fmt: skip
        shown = urlencode({"competence": given.get("competence", ""), "organization": given.get("shown", "")})
        return RedirectResponse(f"/competence?{shown}&registered=1", 303)

    def _competence(
        request: Request, code: str, organization: str, day: str, within: str, values: dict[str, str],
        message: dict[str, str] | None, status: int,
    ) -> Response:  # fmt: skip
        context = _context(request)
        if context is None:
            return session.to_login(request)
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        role = context.rules.roles[context.principal.role]
        if role.records != "relations" and not role.competences:
            return refuse(
                request, 403, t("The competence register is for health professionals and administrators.")
            )
        db = request.app.state.db
        catalogue = competence.competences()
        code = code[:64] if code in catalogue else next(iter(catalogue))
        orgs = _organisations(db, context)
        chosen = organization[:ID_LIMIT] or (orgs[1][0] if len(orgs) > 1 else (orgs[0][0] if orgs else ""))
        coverage = None
        expiring: list[dict[str, Any]] = []
        try:
            when = _day_or_none(day, "day") or competence.today()
            days = whole("within", within[:4] or "60", 1, 366)
            if chosen:
                coverage = competence.coverage(db, context, code, chosen, when)
                expiring = [
                    {**e,
                     "title": _title(catalogue[e["competence"]], lang) if e["competence"] in catalogue
                     else e["competence"], "end_shown": i18n.day(e["end"], lang)}
                    for e in competence.expiring(db, context, chosen, days, when)
                ]  # fmt: skip
        except StoreError as error:
            message, status = message or problem(error, lang), error.status if status == 200 else status
            when, days = competence.today(), 60
        if chosen and chosen not in dict(orgs):
            org = v.directory(db, "Organization", chosen)
            orgs.append((chosen, str((org or {}).get("name", chosen))))
        return render(
            request, "competence.html", status, principal=context.principal,
            catalogue=[(c, _title(k, lang)) for c, k in catalogue.items()], code=code,
            title=_title(catalogue[code], lang), organisations=orgs, organization=chosen,
            day=when.isoformat(), day_shown=i18n.day(when, lang), within=days, withins=WITHIN,
            coverage=coverage, holders=[{**h, "until_shown": i18n.day(h["until"], lang)}
                                        for h in (coverage.holders if coverage else [])],
            expiring=expiring, may_register=bool(role.competences), values=values, message=message,
            registered=request.query_params.get("registered") == "1",
        )  # fmt: skip


def _title(item: Any, lang: str) -> str:
    return str(item.title_da if lang == "da" else item.title)


# -- the municipal acute beds --------------------------------------------------------------------------


def _bed_pages(app: FastAPI) -> None:
    @app.get("/beds", response_class=HTMLResponse, include_in_schema=False)
    def beds_page(request: Request, unit: str = "") -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _beds(request, context, unit[:ID_LIMIT], {}, None, 200)

    @app.post("/beds/admit", response_class=HTMLResponse, include_in_schema=False)
    async def beds_admit(request: Request) -> Response:
        found = await clinician_form(request, LONG_FORM)
        if isinstance(found, Response):
            return found
        context, values = found
        given = _form_values(values, 2000)
        unit = given.get("unit", "")[:ID_LIMIT]
        try:
            await run_in_threadpool(
                beds.admit, request.app.state.db, context, given.get("patient", "")[:ID_LIMIT], unit,
                given.get("physician", "")[:ID_LIMIT], given.get("reason") or None,
            )  # fmt: skip
        except StoreError as error:
            return _beds(
                request, context, unit, given, problem(error, session.language(request)), error.status
            )
        return RedirectResponse(f"/beds?{urlencode({'unit': unit})}&admitted=1", 303)

    @app.post("/beds/{stay}/discharge", response_class=HTMLResponse, include_in_schema=False)
    async def beds_discharge(request: Request, stay: str) -> Response:
        found = await clinician_form(request, LONG_FORM)
        if isinstance(found, Response):
            return found
        context, values = found
        unit = values.get("unit", "")[:ID_LIMIT]
        version = values.get("version", "")
        try:
            expected = whole("version", version[:12], 1, 2**31 - 1) if version else None
            await run_in_threadpool(
                beds.discharge, request.app.state.db, context, stay[:ID_LIMIT],
                values.get("disposition", "")[:20], expected,
            )  # fmt: skip
        except StoreError as error:
            return _beds(request, context, unit, {}, problem(error, session.language(request)), error.status)
        return RedirectResponse(f"/beds?{urlencode({'unit': unit})}&discharged=1", 303)

    def _beds(
        request: Request, context: AccessContext, unit: str, values: dict[str, str],
        message: dict[str, str] | None, status: int,
    ) -> Response:  # fmt: skip
        db = request.app.state.db
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        units = _acute_units(db)
        if not units:
            return refuse(request, 404, t("There are no acute-bed units in the directory."))
        mine = context.principal.organization
        unit = unit or (mine if mine in dict(units) else units[0][0])
        if unit not in dict(units):
            return refuse(request, 404, t("No such acute-bed unit: choose one from the list."))
        now = beds.occupancy(db, unit)
        last = competence.today()
        days = beds.occupancy_by_day(db, unit, last - timedelta(days=DAYS_SHOWN - 1), last)
        stays = search(
            db, context, "Encounter",
            [("service-provider", f"Organization/{unit}"), ("type", f"{CONTACT_TYPE}|acute-bed"),
             ("status", ",".join(beds.OPEN)), ("_include", "Encounter:patient"), ("_count", "200")],
        )  # fmt: skip
        patients = {f"Patient/{p.id}": v.load(p) for p in stays.included if p.resource_type == "Patient"}
        shown = []
        for m in stays.matches:
            stay = v.load(m)
            ref = (stay.get("subject") or {}).get("reference", "")
            attender = next(
                (p.get("individual", {}).get("display", "") for p in stay.get("participant") or []), ""
            )
            bed = next((loc.get("location", {}).get("display", "") for loc in stay.get("location") or []), "")
            shown.append({
                "id": m.id, "version": m.version_id, "patient": ref.removeprefix("Patient/"),
                "name": people.name_of(patients.get(ref, {})) or ref, "bed": bed, "physician": attender,
                "since": _when((stay.get("period") or {}).get("start"), lang),
            })  # fmt: skip
        chart = _occupancy_chart(days, len(now.beds), t, lang)
        return render(
            request, "beds.html", status, principal=context.principal, units=units, unit=unit,
            name=now.name, beds=now.beds, occupied=now.occupied, free=now.free, open_stays=now.open_stays,
            stays=shown, physicians=_physicians(db, unit),
            dispositions=[(c, t(w)) for c, w in DISPOSITION_WORDS.items()],
            spec=chart,
            days=[{**d, "shown": i18n.day(d["day"], lang)} for d in days],
            locale=json.dumps(DANISH_LOCALE) if lang == "da" else "null",
            values=values, message=message,
            admitted=request.query_params.get("admitted") == "1",
            discharged=request.query_params.get("discharged") == "1",
        )  # fmt: skip


def _occupancy_chart(
    days: list[dict[str, Any]], capacity: int, t: Callable[[str], str], lang: str
) -> dict[str, Any]:
    """Occupied beds at noon each day, against the unit's beds (a dashed line), as Vega-Lite."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": "container", "height": 220,
        "layer": [
            {"data": {"values": days}, "mark": {"type": "bar", "color": "#2a6f97"},
             "encoding": {
                 "x": {"field": "day", "type": "temporal", "timeUnit": "yearmonthdate", "title": t("Day"),
                       "axis": {"format": "%d.%m" if lang == "da" else "%d %b"}},
                 "y": {"field": "occupied", "type": "quantitative", "title": t("Occupied beds at noon"),
                       "axis": {"tickMinStep": 1}},
                 "tooltip": [{"field": "day", "type": "temporal", "title": t("Day")},
                             {"field": "occupied", "type": "quantitative", "title": t("Occupied")}]}},
            {"data": {"values": [{"beds": capacity}]},
             "mark": {"type": "rule", "color": "#9b2226", "strokeDash": [6, 4]},
             "encoding": {"y": {"field": "beds", "type": "quantitative"}}},
        ],
    }  # fmt: skip


# -- medical responsibility and framework delegation ---------------------------------------------------


def _responsibility_pages(app: FastAPI) -> None:
    @app.get("/citizen/{patient_id}/responsibility", response_class=HTMLResponse, include_in_schema=False)
    def responsibility_page(request: Request, patient_id: str) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _responsibility(request, context, patient_id[:ID_LIMIT], "", {}, None, 200)

    async def _act(
        request: Request, patient_id: str, form: str, act: Callable[[AccessContext, dict[str, str]], Any]
    ) -> Response:
        found = await clinician_form(request, LONG_FORM)
        if isinstance(found, Response):
            return found
        context, values = found
        given = _form_values(values)
        patient_id = patient_id[:ID_LIMIT]
        try:
            await run_in_threadpool(act, context, given)
        except StoreError as error:
            lang = session.language(request)
            return _responsibility(
                request, context, patient_id, form, given, problem(error, lang), error.status
            )
        return RedirectResponse(f"/citizen/{quote(patient_id, safe='')}/responsibility?done={form}", 303)

    @app.post("/citizen/{patient_id}/responsibility", response_class=HTMLResponse, include_in_schema=False)
    async def responsibility_take(request: Request, patient_id: str) -> Response:
        def act(context: AccessContext, given: dict[str, str]) -> Any:
            start = _day_or_none(given.get("start", ""), "start")
            if start is None:
                raise Invalid("start: the first day of the responsibility is needed", where="start")
            setting = given.get("setting", "")[:20]
            if setting not in delegation.SETTINGS:
                raise Invalid(f"setting must be one of {', '.join(delegation.SETTINGS)}", where="setting")
            return delegation.take_responsibility(
                request.app.state.db,
                context,
                patient_id[:ID_LIMIT],
                setting,  # type: ignore[arg-type]
                start,
                _day_or_none(given.get("end", ""), "end"),
            )

        return await _act(request, patient_id, "take", act)

    @app.post(
        "/citizen/{patient_id}/responsibility/{team}/end",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    async def responsibility_end(request: Request, patient_id: str, team: str) -> Response:
        def act(context: AccessContext, given: dict[str, str]) -> Any:
            end = _day_or_none(given.get("end", ""), "end")
            if end is None:
                raise Invalid("end: the last day of the responsibility is needed", where="end")
            return delegation.end_responsibility(
                request.app.state.db, context, team[:ID_LIMIT], end, patient_id[:ID_LIMIT]
            )

        return await _act(request, patient_id, "end", act)

    @app.post("/citizen/{patient_id}/delegation", response_class=HTMLResponse, include_in_schema=False)
    async def delegation_make(request: Request, patient_id: str) -> Response:
        def act(context: AccessContext, given: dict[str, str]) -> Any:
            start = _day_or_none(given.get("start", ""), "start")
            end = _day_or_none(given.get("end", ""), "end")
            if start is None or end is None:
                raise Invalid("start and end: a delegation is in force from a day to a day", where="start")
            return delegation.delegate(
                request.app.state.db, context, given.get("treatment", "")[:64], start, end,
                given.get("conditions", ""), given.get("instruction_title", ""),
                given.get("instruction", ""), given.get("instruction_version", "1")[:64],
                patient_id[:ID_LIMIT],
            )  # fmt: skip

        return await _act(request, patient_id, "delegate", act)

    @app.post("/citizen/{patient_id}/delegation/{request_id}/assign", response_class=HTMLResponse,
              include_in_schema=False)  # fmt: skip
    async def delegation_assign(request: Request, patient_id: str, request_id: str) -> Response:
        def act(context: AccessContext, given: dict[str, str]) -> Any:
            day = _day_or_none(given.get("day", ""), "day")
            if day is None:
                raise Invalid("day: the day of the treatment is needed", where="day")
            return delegation.assign(
                request.app.state.db, context, request_id[:ID_LIMIT], patient_id[:ID_LIMIT],
                given.get("nurse", "")[:ID_LIMIT], day,
            )  # fmt: skip

        return await _act(request, patient_id, "assign", act)

    def _responsibility(
        request: Request, context: AccessContext, patient_id: str, form: str, values: dict[str, str],
        message: dict[str, str] | None, status: int,
    ) -> Response:  # fmt: skip
        db = request.app.state.db
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        try:
            patient = v.load(store.read(db, context, "Patient", patient_id))
            teams = delegation.responsibilities(db, context, patient_id)
            requests = search(
                db, context, "ServiceRequest",
                [("subject", f"Patient/{patient_id}"),
                 ("category", f"{delegation.REQUEST_CATEGORY}|framework-delegation"),
                 ("_sort", "-authored"), ("_count", "100")],
            )  # fmt: skip
        except StoreError as error:
            return refuse(
                request, error.status, t("No such citizen, or you have no care relation with the citizen.")
            )
        instructions = sorted({
            v.ref_id(info, "DocumentReference") or "" for m in requests.matches
            for info in v.load(m).get("supportingInfo") or []
        } - {""})  # fmt: skip
        documents = {}
        if instructions:  # each delegation's written instruction, read as the asker
            found = search(db, context, "DocumentReference",
                           [("_id", ",".join(instructions)), ("_count", str(len(instructions)))])  # fmt: skip
            documents = {m.id: v.load(m) for m in found.matches}
        physician = context.principal.role in delegation.PHYSICIANS
        today = competence.today()
        return render(
            request, "responsibility.html", status, principal=context.principal, patient_id=patient_id,
            name=people.name_of(patient) or patient_id, cpr=people.cpr_of(patient),
            teams=[_team_row(team, t, lang) for team in teams],
            delegations=[_delegation_row(v.load(m), documents, today, lang) for m in requests.matches],
            settings=[(c, t(w)) for c, w in SETTING_WORDS.items()],
            treatments=[(c, _title(k, lang)) for c, k in delegation.treatments().items()],
            nurses=_nurses(db, context), physician=physician, today=today.isoformat(),
            form=form, values=values, message=message, done=request.query_params.get("done", "")[:20],
        )  # fmt: skip


def _team_row(team: dict[str, Any], t: Callable[[str], str], lang: str) -> dict[str, Any]:
    period = team.get("period") or {}
    member = ((team.get("participant") or [{}])[0].get("member") or {}).get("display", "")
    setting = (v.codes(team.get("reasonCode"), delegation.SETTING) or [""])[0]
    return {
        "id": team.get("id", ""), "setting": t(SETTING_WORDS.get(setting, setting)) if setting else "",
        "who": member, "start": i18n.day(period.get("start"), lang), "end": i18n.day(period.get("end"), lang)
        if period.get("end") else "", "active": team.get("status") == "active",
    }  # fmt: skip


def _delegation_row(
    request: dict[str, Any], documents: dict[str, dict[str, Any]], today: date, lang: str
) -> dict[str, Any]:
    period = request.get("occurrencePeriod") or {}
    code = (v.codes(request.get("code"), delegation.TREATMENT) or [""])[0]
    known = delegation.treatments().get(code)
    needed = (v.codes(request.get("performerType"), competence.COMPETENCE) or [""])[0]
    catalogue = competence.competences()
    doc_id = v.ref_id((request.get("supportingInfo") or [{}])[0], "DocumentReference") or ""
    document = documents.get(doc_id, {})
    start, end = str(period.get("start", ""))[:10], str(period.get("end", ""))[:10]
    in_force = request.get("status") == "active" and start <= today.isoformat() <= end
    return {
        "id": request.get("id", ""), "treatment": _title(known, lang) if known else code,
        "competence": _title(catalogue[needed], lang) if needed in catalogue else needed,
        "conditions": " ".join(n.get("text", "") for n in request.get("note") or []),
        "start": i18n.day(start, lang), "end": i18n.day(end, lang), "in_force": in_force,
        "physician": (request.get("requester") or {}).get("display", ""),
        "instruction": document.get("description", ""),
    }  # fmt: skip


# -- the shared care plan ------------------------------------------------------------------------------


def _plan_pages(app: FastAPI) -> None:
    from naer.api.workflow import SECTIONS

    @app.post("/citizen/{patient_id}/plan/{section}", response_class=HTMLResponse, include_in_schema=False)
    async def plan_change(request: Request, patient_id: str, section: str) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        t = i18n.gettext_for(session.language(request))
        model = SECTIONS.get(section)  # type: ignore[call-overload]
        if model is None or section == "thresholds":
            return refuse(request, 404, t("No such part of the care plan."))
        values = await posted(request, LONG_FORM)
        if isinstance(values, Response):
            return values
        given = _form_values(values)
        version = given.pop("version", "")
        patient_id = patient_id[:ID_LIMIT]
        try:
            expected = whole("version", version[:12], 0, 2**31 - 1) if version else None
            await run_in_threadpool(
                careplan.change, request.app.state.db, context, patient_id,
                section, _checked(model, given), expected,  # type: ignore[arg-type]
            )  # fmt: skip
        except StoreError as error:
            lang = session.language(request)
            return course_page_for(request, context, patient_id, "", "course.html", section, given,
                                   problem(error, lang), error.status)  # fmt: skip
        return RedirectResponse(f"/citizen/{quote(patient_id, safe='')}/course?changed={section}#plan", 303)
