"""The pages of working together around one citizen: the inbox of one's organisation or of oneself, an
advice request's form, and its thread with the moves the reader may make. Every page acts for the
signed-in person through naer.coordination (the store's access condition and audit), every form carries
the CSRF token, and every refusal is shown on the page in the reader's language with nothing written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from naer import clock
from naer.access.context import AccessContext
from naer.coordination import advice, agreements
from naer.coordination import values as v
from naer.coordination.inbox import LISTS, inbox
from naer.coordination.machine import by_code
from naer.coordination.tasks import Thread
from naer.fhir.systems import ORG_KIND
from naer.indicators.charts import DANISH_LOCALE
from naer.indicators.definition import catalogue
from naer.store import resources as store
from naer.store.errors import Invalid, NotFound, StoreError
from naer.store.search.query import search
from naer.web import i18n, people, session
from naer.web.i18n import mark as _
from naer.web.signin import DANISH_TIME, refuse, render

TASK_PAGES = ("discharge-follow-up", "diagnostic-referral")  # Tasks the generic page moves on (/task/ID)
LIST_TITLES = {
    "overdue": _("Overdue"),
    "due": _("Due within 24 hours"),
    "new": _("New"),
    "escalated": _("Escalated to on-call"),
    "answered": _("Answered, for you to read"),
    "waiting": _("Sent, waiting for an answer"),
}
ID_LIMIT = 64
# What the page says first when a request or a move is refused (the store's own sentence follows, in
# English: it names the exact problem), by the field the refusal names, else by its status.
LEADS = {
    "department": _("Choose a hospital department."),
    "urgency": _("Choose an urgency that the agreement has."),
    "question": _("Write a question."),
    "patient": _("No such citizen, or you have no care relation with the citizen."),
    "text": _("Check the text."),
    "version": _("Someone else changed the request meanwhile: read it again."),
    "If-Match": _("Someone else changed the request meanwhile: read it again."),
}
BY_STATUS = {
    403: _("You may not do that."),
    404: _("Not found, or you may not see it."),
    409: _("The request has moved on meanwhile."),
    412: _("Someone else changed the request meanwhile: read it again."),
}
NOTHING_SAVED = _("Nothing was saved.")
AREA_WORDS = {
    "health": _("Health"), "function": _("Function and training"), "social": _("Social circumstances"),
    "housing": _("Housing"), "employment": _("Employment and education"),
    "network": _("Network and relatives"), "mental-health": _("Mental health"),
}  # fmt: skip


def problem(error: StoreError, lang: str) -> dict[str, str]:
    """A refusal as the page shows it: a sentence in the page's language and the store's exact reason."""
    t = i18n.gettext_for(lang)
    lead = LEADS.get(error.where or "") or BY_STATUS.get(error.status)
    return {"lead": f"{t(lead)} {t(NOTHING_SAVED)}" if lead else t(NOTHING_SAVED), "detail": str(error)}


def _context(request: Request) -> AccessContext | None:
    found = session.principal(request)
    return request.app.state.auth.access(found) if found is not None else None


def _clinician(request: Request) -> tuple[AccessContext | None, Response | None]:
    context = _context(request)
    if context is None:
        return None, session.to_login(request)
    if context.rules.roles[context.principal.role].records != "relations":
        t = i18n.gettext_for(session.language(request))
        return None, refuse(
            request, 403, t("These pages are for the health professionals around the citizen.")
        )
    return context, None


async def posted(request: Request, limit: int = session.MAX_FORM) -> dict[str, str] | Response:
    """The form sent, or the page that refuses it: 403 without the form's token, 413 with the reason when
    longer than ``limit`` bytes (longer than its fields allow: a browser keeps to their maxlength)."""
    values = await session.form(request, limit)
    if values is not None:
        return values
    if getattr(request.state, "form_too_long", False):
        t = i18n.gettext_for(session.language(request))
        return refuse(request, 413, t("The form is longer than its fields allow; nothing was saved."))
    return refuse(request)


async def clinician_form(
    request: Request, limit: int = session.MAX_FORM
) -> tuple[AccessContext, dict[str, str]] | Response:
    """The signed-in health professional and the form they sent, or the page that refuses (``_clinician``
    and ``posted``)."""
    context, refused = _clinician(request)
    if context is None:
        return refused  # type: ignore[return-value]
    values = await posted(request, limit)
    if isinstance(values, Response):
        return values
    return context, values


def _when(value: str | None, lang: str) -> str:
    if not value:
        return "–"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(DANISH_TIME)
        return i18n.day(moment, lang)
    except (ValueError, OverflowError):  # (year 1 or 9999 with an offset: shown as written)
        return value


def _patient_label(patients: dict[str, dict[str, Any]], ref: str) -> tuple[str, str]:
    patient = patients.get(ref)
    if patient is None:
        return ref, ""
    return people.name_of(patient) or ref, people.cpr_of(patient)


def _row(
    task: dict[str, Any], patients: dict[str, dict[str, Any]], lang: str, now: datetime
) -> dict[str, Any]:
    """One Task of an inbox as its row: the citizen, what (the workflow's name and the Task's own words),
    the state in the workflow's words (or the Task's status), the deadline and whether it has passed."""
    t = i18n.gettext_for(lang)
    code = (v.codes(task.get("code"), v.WORKFLOW_CODES) or [""])[0]
    flow = by_code(code)
    state = flow.states.get(v.state_of(task, flow) or "") if flow else None
    ref = (task.get("for") or {}).get("reference", "")
    name, cpr = _patient_label(patients, ref)
    deadline = ((task.get("restriction") or {}).get("period") or {}).get("end")
    overdue = False
    if deadline:
        try:
            overdue = datetime.fromisoformat(deadline.replace("Z", "+00:00")) < now
        except ValueError:
            overdue = False
    concept = task.get("code") or {}
    description = str(task.get("description") or "")
    if flow is not None:
        what = f"{_title(flow, lang)}: {description}".rstrip(": ")
    elif code in CONTACTS:
        what = f"{t(CONTACTS[code])}: {description}".rstrip(": ")
    else:
        what = (
            description or concept.get("text") or ((concept.get("coding") or [{}])[0].get("display")) or "–"
        )
    return {
        "id": task.get("id", ""),
        "link": _task_link(code, str(task.get("id", ""))),
        "patient": ref.split("/", 1)[1] if ref.startswith("Patient/") else "",
        "name": name,
        "cpr": cpr,
        "what": what,
        "state": _title(state, lang) if state else _words(str(task.get("status", "")), STATUSES, t),
        "deadline": _when(deadline, lang),
        "overdue": overdue and task.get("status") not in ("completed", "cancelled", "rejected"),
        "owner": (task.get("owner") or {}).get("display") or (task.get("owner") or {}).get("reference", ""),
    }


async def _form_move(
    request: Request,
    task_id: str,
    transition: str,
    move: Callable[..., Any],
    page: Callable[..., Response],
    base: str,
    gone: str,
) -> Response:
    """A move from a page's form (its CSRF token checked): done, then back to the page (``base``/ID), or
    to ``gone`` when the move ended the mover's own access (an on-call physician's answer); refused, the
    page again with the reason and nothing written."""
    found = await clinician_form(request)
    if isinstance(found, Response):
        return found
    context, values = found
    rid, version = task_id[:ID_LIMIT], values.get("version", "")
    db = request.app.state.db
    try:
        if not (version.isascii() and version.isdigit() and len(version) < 10):
            raise Invalid("the form names no version of the request: reload the page", where="version")
        await run_in_threadpool(
            move, db, context, rid, transition[:40], values.get("text") or None, int(version)
        )
    except StoreError as error:
        return page(request, context, rid, problem(error, session.language(request)), error.status)
    try:
        store.read(db, context, "Task", rid)
    except StoreError:
        return RedirectResponse(gone, status_code=303)
    return RedirectResponse(f"{base}/{rid}", status_code=303)


def _task_link(code: str, rid: str) -> str:
    """The page a Task of a workflow is moved on from ("" for a Task no page moves)."""
    if code == "advice":
        return f"/advice/{rid}"
    return f"/task/{rid}" if code in TASK_PAGES else ""


def _title(item: Any, lang: str) -> str:
    """A state's or transition's name from the workflow definition, in the page's language."""
    return str(item.title_da if lang == "da" else item.title)


def _entries(found: Thread, lang: str) -> list[dict[str, str]]:
    """The thread as the page shows it: the question, then each message, with who wrote it and when."""
    first = found.request
    made = [
        {
            "who": (first.get("requester") or {}).get("display", ""),
            "when": _when(first.get("authoredOn"), lang),
            "text": (first.get("payload") or [{}])[0].get("contentString", "")
            or "; ".join(str(r.get("text", "")) for r in first.get("reasonCode") or []),
            "kind": "question",
        }
    ]
    for m in found.messages:
        answer = (m.get("note") or [{}])[0].get("text") == "answer"
        made.append(
            {
                "who": (m.get("sender") or {}).get("display", ""),
                "when": _when(m.get("sent"), lang),
                "text": (m.get("payload") or [{}])[0].get("contentString", ""),
                "kind": "answer" if answer else "question",
            }
        )
    return made


def _urgency_label(task: dict[str, Any], lang: str) -> str:
    """The request's urgency in the page's language, from the agreement it was sent under."""
    agreement_id, code = advice.sent_under(task)
    agreement = agreements.by_id(agreement_id)
    for urgency in agreement.urgencies if agreement else []:
        if urgency.code == code:
            return urgency.label_da if lang == "da" else urgency.label
    return str(((v.inputs(task).get("urgency") or {}).get("valueCoding") or {}).get("display", ""))


def _departments(request: Request, context: AccessContext) -> list[tuple[str, str]]:
    """The hospital departments one may ask (the directory, as the asker reads it)."""
    found = search(request.app.state.db, context, "Organization", [("active", "true"), ("_count", "1000")])
    made = []
    for match in found.matches:
        org = orjson.loads(match.content or "{}")
        kinds = v.codes(org.get("type"), ORG_KIND)
        if v.sector(org) == "region" and any(k.startswith("department") for k in kinds):
            made.append((str(org["id"]), str(org.get("name", org["id"]))))
    return sorted(made, key=lambda d: d[1])


def _urgencies(lang: str) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for agreement in agreements.agreements():
        for u in agreement.urgencies:
            seen.setdefault(u.code, u.label_da if lang == "da" else u.label)
    return list(seen.items())


def add_coordination_pages(app: FastAPI) -> None:
    @app.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request, whose: str = "organization") -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        lang = session.language(request)
        if whose not in ("organization", "person"):
            t = i18n.gettext_for(lang)
            return refuse(request, 400, t("There is an inbox of one's organisation and one's own, no other."))
        try:
            found = inbox(request.app.state.db, context, whose)  # type: ignore[arg-type]
        except StoreError as error:
            return refuse(request, error.status, str(error))
        now = clock.now()
        lists = [
            {"key": key, "title": LIST_TITLES[key], "count": found.lists[key].count,
             "rows": [_row(t, found.patients, lang, now) for t in found.lists[key].tasks]}
            for key in LISTS
        ]  # fmt: skip
        return render(request, "inbox.html", principal=context.principal, whose=whose, lists=lists)

    @app.get("/advice/new", response_class=HTMLResponse, include_in_schema=False)
    def advice_form(request: Request, patient: str = "") -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _form(request, context, patient[:ID_LIMIT], {}, None, 200)

    @app.post("/advice/new", response_class=HTMLResponse, include_in_schema=False)
    async def advice_send(request: Request) -> Response:
        found = await clinician_form(request)
        if isinstance(found, Response):
            return found
        context, values = found
        patient = values.get("patient", "")[:ID_LIMIT]
        question = advice.Question(
            patient,
            values.get("urgency", "")[:64],
            values.get("question", ""),
            values.get("department") or None,
        )
        try:
            made = await run_in_threadpool(advice.ask, request.app.state.db, context, question)
        except StoreError as error:
            return _form(
                request, context, patient, values, problem(error, session.language(request)), error.status
            )
        return RedirectResponse(f"/advice/{made.task['id']}", status_code=303)

    def _form(
        request: Request, context: AccessContext, patient: str, values: dict[str, str],
        message: dict[str, str] | None,
        status: int,
    ) -> Response:  # fmt: skip
        lang = session.language(request)
        name = cpr = ""
        if patient:
            try:
                found = orjson.loads(
                    store.read(request.app.state.db, context, "Patient", patient).content or "{}"
                )
                name, cpr = people.name_of(found), people.cpr_of(found)
            except StoreError as error:
                patient = ""
                message = message or problem(error, lang)
        return render(
            request, "advice_new.html", status, principal=context.principal, patient=patient, name=name,
            cpr=cpr, departments=_departments(request, context), urgencies=_urgencies(lang), values=values,
            message=message,
        )  # fmt: skip

    @app.get("/advice/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    def advice_thread(request: Request, task_id: str) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _thread(request, context, task_id[:ID_LIMIT], None, 200)

    @app.post("/advice/{task_id}/{transition}", response_class=HTMLResponse, include_in_schema=False)
    async def advice_move(request: Request, task_id: str, transition: str) -> Response:
        return await _form_move(
            request, task_id, transition, advice.move, _thread, "/advice", "/inbox?whose=person"
        )

    def _thread(
        request: Request, context: AccessContext, task_id: str, message: dict[str, str] | None, status: int
    ) -> Response:
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        try:
            found = advice.thread(request.app.state.db, context, task_id)
        except StoreError as error:
            return refuse(request, error.status, t("No such advice request, or you may not see it."))
        flow = advice.advice_workflow()
        state = flow.states.get(found.state)
        mine = advice.parties(context.principal, found.task, found.request)
        moves = [
            {"name": name, "title": _title(move, lang), "text": move.text}
            for name, move in flow.transitions.items()
            if move.by in mine and found.state in move.from_
        ]
        patient_ref = (found.task.get("for") or {}).get("reference", "")
        patient: dict[str, Any] = {}
        try:
            patient = orjson.loads(
                store.read(request.app.state.db, context, "Patient", patient_ref.split("/", 1)[-1]).content
                or "{}"
            )
        except StoreError:
            patient = {}
        entries = _entries(found, lang)
        urgency = _urgency_label(found.task, lang)
        routed = any(
            (i.get("valueCoding") or {}).get("code") == "discharge-72-hours"
            for i in found.task.get("input") or []
        )
        return render(
            request, "advice_thread.html", status, principal=context.principal, task=found.task,
            version=found.version, state=_title(state, lang) if state else found.state,
            name=people.name_of(patient) or patient_ref, cpr=people.cpr_of(patient),
            patient=patient_ref.split("/", 1)[-1], owner=(found.task.get("owner") or {}).get("display", ""),
            deadline=_when(((found.task.get("restriction") or {}).get("period") or {}).get("end"), lang),
            urgency=urgency, routed=routed, entries=entries, moves=moves, message=message,
        )  # fmt: skip


# -- the citizen's course on one page, and the citizen's own plan ------------------------------------------

CONTACTS = {
    "gp-consultation": _("Consultation with the GP"),
    "gp-phone": _("Telephone consultation"),
    "gp-email": _("E-mail consultation"),
    "gp": _("General practice"),
    "out-of-hours": _("Out-of-hours service"),
    "outpatient": _("Outpatient visit"),
    "acute-admission": _("Acute admission"),
    "planned-admission": _("Planned admission"),
    "admission": _("Admission"),
    "ed-visit": _("Emergency department"),
    "home-care": _("Home care"),
    "acute-bed": _("Acute bed"),
    "rehabilitation": _("Rehabilitation"),
    "advice": _("Advice request"),
    "discharge-follow-up": _("Discharge follow-up"),
    "delegated-treatment": _("Delegated treatment"),
    "measurement-alert": _("Home measurement outside its threshold"),
    "framework-delegation": _("Framework delegation"),
    "home-measurements": _("Home measurements this month"),
}
SECTOR_NAMES = {
    "region": _("Hospital"),
    "municipality": _("Municipality"),
    "general-practice": _("General practice"),
}
OWN = {  # the same, as the citizen's own page says it
    "gp": _("Your GP"),
    "responsibility": _("Medical responsibility"),
    "stay": _("Open contact"),
    "team": _("Your team"),
}
RESPONSIBLE = {
    "gp": _("The citizen's GP"),
    "responsibility": _("Medical responsibility"),
    "stay": _("Open contact"),
    "team": _("The citizen's team"),
}
SETTINGS = {"home": _("treatment at home"), "acute-bed": _("acute bed")}
STATUSES = {  # FHIR's statuses of contacts, tasks and requests, as the timeline shows them
    "planned": _("planned"),
    "arrived": _("arrived"),
    "in-progress": _("in progress"),
    "onleave": _("on leave"),
    "finished": _("finished"),
    "requested": _("requested"),
    "received": _("received"),
    "accepted": _("accepted"),
    "completed": _("completed"),
    "cancelled": _("cancelled"),
    "rejected": _("refused"),
    "active": _("active"),
    "revoked": _("revoked"),
}


def add_course_pages(app: FastAPI) -> None:
    @app.get("/citizen/{patient_id}/course", response_class=HTMLResponse, include_in_schema=False)
    def course_page(request: Request, patient_id: str, year: str = "") -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return course_page_for(request, context, patient_id[:ID_LIMIT], year, "course.html")

    @app.get("/my-plan", response_class=HTMLResponse, include_in_schema=False)
    def my_plan(request: Request) -> Response:
        context = _context(request)
        if context is None:
            return session.to_login(request)
        if context.principal.role != "citizen" or not context.principal.patient:
            t = i18n.gettext_for(session.language(request))
            return refuse(request, 403, t("This page is the citizen's own."))
        return course_page_for(request, context, context.principal.patient, "", "my_plan.html")


def course_page_for(
    request: Request, context: AccessContext, patient_id: str, year: str = "", template: str = "course.html",
    section: str = "", values: dict[str, str] | None = None, message: dict[str, str] | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    """The citizen's course (``course.html``) or the citizen's own plan (``my_plan.html``); ``section``,
    ``values`` and ``message``: a change to the care plan that was refused, shown again on its form."""
    from naer.coordination.course import course

    lang = session.language(request)
    t = i18n.gettext_for(lang)
    this_year = clock.now().astimezone(DANISH_TIME).year
    if year and not (year.isascii() and year.isdigit() and 1900 <= int(year) <= this_year):
        return refuse(request, 400, t("Choose a year from the list."))
    chosen = int(year) if year else None
    try:
        found = course(request.app.state.db, context, patient_id, chosen)
    except StoreError as error:
        return refuse(
            request, error.status, t("No such citizen, or you have no care relation with the citizen.")
        )
    plan = found.plan or {}
    sections = _sections(plan)
    from naer.messaging.lists import admitted  # (the hospitals' notifications to the asker's unit)

    stays = [
        {"hospital": row["hospital"], "code": row["code"], "state": row["state"],
         "since": _when(row["start"], lang) if row["start"] else ""}
        for row in admitted(request.app.state.db, context, patient_id)
    ] if template == "course.html" else []  # fmt: skip
    version = (plan.get("meta") or {}).get("versionId") if plan else "0"
    return render(
        request, template, status, principal=context.principal, patient_id=patient_id,
        name=people.name_of(found.patient) or patient_id, cpr=people.cpr_of(found.patient),
        year=found.year, years=found.years, rows=[_course_row(i, t, lang) for i in found.items],
        responsible=[_responsible_row(r, t, lang, template == "my_plan.html") for r in found.responsible],
        activities=[_activity_row(a) for a in plan.get("activity") or []],
        goals=[(g.get("description") or {}).get("text", "") for g in found.goals],
        palliative=sections.get("care-plan-palliative", {}),
        psychiatry=sections.get("care-plan-psychiatry", {}),
        editable=template == "course.html", plan_version=version or "",
        areas=[(code, t(word)) for code, word in AREA_WORDS.items()],
        organisations=_directory_organisations(request) if template == "course.html" else [],
        section=section, values=values or {}, message=message,
        changed=request.query_params.get("changed", "")[:20], in_hospital=stays,
        stay_words={"admitted": t("Admitted"), "emergency": t("Acute ambulant"), "leave": t("On leave")},
    )  # fmt: skip


def _directory_organisations(request: Request) -> list[tuple[str, str]]:
    """The organisations of every sector a plan's activity or section may name, by name (the directory)."""
    from naer.store.context import SYSTEM

    found = search(request.app.state.db, SYSTEM, "Organization",
                   [("active", "true"), ("_sort", "name"), ("_count", "1000")])  # fmt: skip
    return [(m.id, str(orjson.loads(m.content or "{}").get("name", m.id))) for m in found.matches]


def _words(code: str, table: dict[str, str], t: Any) -> str:
    return str(t(table[code])) if code in table else code


def _course_row(item: Any, t: Any, lang: str) -> dict[str, str]:
    detail = item.detail
    if item.kind == "delegation":  # its period in the page's words
        detail = re.sub(r"\d{4}-\d{2}-\d{2}", lambda m: i18n.day(m.group(0), lang), detail)
    return {
        "when": _when(item.when, lang),
        "sector": _words(item.sector, SECTOR_NAMES, t) if item.sector else "",
        "sector_code": item.sector or "other",
        "what": _words(item.code, CONTACTS, t),
        "detail": detail,
        "status": _status(item.status, t, lang),
        "link": _task_link(item.code, item.task) if item.task else "",
    }


def _status(status: str, t: Any, lang: str) -> str:
    """A status in the page's words: a workflow's state by its definition, else FHIR's status."""
    if status.startswith("state:"):
        _, code, name = [*status.split(":"), "", ""][:3]
        flow = by_code(code)
        state = flow.states.get(name) if flow else None
        return _title(state, lang) if state else name
    words = _words(status, STATUSES, t)
    return words[:1].upper() + words[1:]


def _responsible_row(r: Any, t: Any, lang: str, own: bool = False) -> dict[str, str]:
    what = str(t((OWN if own else RESPONSIBLE)[r.what]))
    if r.code in SETTINGS:
        what += f": {t(SETTINGS[r.code])}"
    elif r.what == "stay" and r.code in CONTACTS:
        what += f": {t(CONTACTS[r.code])}"
    return {
        "what": what,
        "who": r.who,
        "since": i18n.day(r.since, lang) if r.since else "",
        "detail": r.detail,
    }


def _activity_row(activity: dict[str, Any]) -> dict[str, str]:
    detail = activity.get("detail") or {}
    return {
        "description": str(detail.get("description", "")),
        "who": str(((detail.get("performer") or [{}])[0]).get("display", "")),
        "area": str(((detail.get("code") or {}).get("coding") or [{}])[0].get("display", "")),
    }


def _sections(plan: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The plan's palliative and psychiatric sections as words: each part's text or organisation."""
    found: dict[str, dict[str, str]] = {}
    for section in plan.get("extension") or []:
        parts = {}
        for part in section.get("extension") or []:
            value = part.get("valueString") or (part.get("valueReference") or {}).get("display", "")
            parts[str(part.get("url"))] = str(value)
        found[str(section.get("url", "")).rsplit("/", 1)[-1]] = parts
    return found


# -- one page for the Tasks of the other workflows (follow-up, referral): moves from their definitions --


def add_task_pages(app: FastAPI) -> None:
    from naer.coordination import followup, referral

    def module_of(task: dict[str, Any]) -> Any:
        code = (v.codes(task.get("code"), v.WORKFLOW_CODES) or [""])[0]
        return {"discharge-follow-up": followup, "diagnostic-referral": referral}.get(code)

    @app.get("/task/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    def task_page(request: Request, task_id: str) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _task_page(request, context, task_id[:ID_LIMIT], None, 200)

    @app.post("/task/{task_id}/{transition}", response_class=HTMLResponse, include_in_schema=False)
    async def task_move(request: Request, task_id: str, transition: str) -> Response:
        def move(
            db: Any, context: AccessContext, rid: str, name: str, text: str | None, version: int | None
        ) -> Any:
            module = module_of(v.load(store.read(db, context, "Task", v.ident(rid, "task"))))
            if module is None:
                raise NotFound(f"Task/{rid} is not moved on here")
            return module.move(db, context, rid, name, text, version)

        return await _form_move(request, task_id, transition, move, _task_page, "/task", "/inbox")

    def _task_page(
        request: Request, context: AccessContext, task_id: str, message: dict[str, str] | None, status: int
    ) -> Response:
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        db = request.app.state.db
        try:
            found = store.read(db, context, "Task", v.ident(task_id, "task"))
        except StoreError:
            return refuse(request, 404, t("No such task, or you may not see it."))
        task = v.load(found)
        module = module_of(task)
        if module is None:
            return refuse(request, 404, t("No such task, or you may not see it."))
        flow = by_code((v.codes(task.get("code"), v.WORKFLOW_CODES) or [""])[0])
        if flow is None:
            return refuse(request, 404, t("No such task, or you may not see it."))
        state_code = v.state_of(task, flow) or flow.start
        mine = module.parties(context.principal, task)
        moves = [
            {"name": name, "title": _title(move, lang), "text": move.text}
            for name, move in flow.transitions.items()
            if move.by in mine and state_code in move.from_
        ]
        messages: list[dict[str, str]] = []
        if module is referral:
            thread = referral.thread(db, context, task_id)
            messages = _entries(thread, lang)
        for note in task.get("note") or []:
            messages.append({"who": (note.get("authorReference") or {}).get("display", ""),
                             "when": _when(note.get("time"), lang), "text": str(note.get("text", "")),
                             "kind": "answer"})  # fmt: skip
        patient_ref = (task.get("for") or {}).get("reference", "")
        try:
            patient = v.load(store.read(db, context, "Patient", patient_ref.split("/", 1)[-1]))
        except StoreError:
            patient = {}
        state = flow.states.get(state_code)
        return render(
            request, "task.html", status, principal=context.principal, task=task, version=found.version_id,
            title=_title(flow, lang), state=_title(state, lang) if state else state_code,
            name=people.name_of(patient) or patient_ref, cpr=people.cpr_of(patient),
            patient=patient_ref.split("/", 1)[-1], description=str(task.get("description", "")),
            owner=(task.get("owner") or {}).get("display") or (task.get("owner") or {}).get("reference", ""),
            requester=(task.get("requester") or {}).get("display", ""),
            deadline=_when(((task.get("restriction") or {}).get("period") or {}).get("end"), lang),
            entries=messages, moves=moves, message=message, action=f"/task/{task['id']}",
        )  # fmt: skip


# -- the collaboration's figures ----------------------------------------------------------------------------


def _share_row(share: Any, below: int | None) -> dict[str, Any]:
    """A row of figures; counts from 1 to below-1 hidden (with what could work them back) when asked."""
    counts = (share.total, share.within, share.open, share.open_overdue)
    hidden = below is not None and any(0 < n < below for n in counts)
    percent = round(100 * share.within / share.total) if share.total and not hidden else None
    return {
        "group": share.group, "detail": share.detail, "hidden": hidden,
        "total": None if hidden else share.total, "within": None if hidden else share.within,
        "percent": percent, "open": None if hidden else share.open,
        "overdue": None if hidden else share.open_overdue,
    }  # fmt: skip


def _month_rows(months: Any, below: int | None, lang: str) -> list[dict[str, Any]]:
    """A series' months as the page shows them: a month with 1 to below-1 finished is hidden (planners)."""
    rows = []
    for m in months:
        hidden = below is not None and 0 < m.total < below
        first = datetime.strptime(m.month, "%Y-%m").date()
        rows.append({
            "month": m.month, "shown": i18n.month(first, lang), "total": None if hidden else m.total,
            "hidden": hidden, "share": None if hidden or not m.total else m.share,
            "low": None if hidden else m.low, "high": None if hidden else m.high,
        })  # fmt: skip
    return rows


def _month_chart(rows: list[dict[str, Any]], title: str, t: Callable[[str], str]) -> dict[str, Any]:
    """The share in time by month with its 95 % interval (a band), as Vega-Lite; months without a share
    (none finished, or hidden) are left out of the marks."""
    values = [r for r in rows if r["share"] is not None]
    x = {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "title": t("Month")}
    y = {"type": "quantitative", "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": title, "width": "container", "height": 220, "data": {"values": values},
        "layer": [
            {"mark": {"type": "area", "opacity": 0.25, "color": "#2a6f97", "aria": False},
             "encoding": {"x": x, "y2": {"field": "high"},
                          "y": {"field": "low", **y, "title": t("Share in time (95 percent interval)")}}},
            {"mark": {"type": "line", "point": {"aria": False, "color": "#2a6f97"}, "color": "#2a6f97",
                      "aria": False},
             "encoding": {"x": x, "y": {"field": "share", **y},
                          "tooltip": [{"field": "month", "type": "temporal", "timeUnit": "yearmonth",
                                       "title": t("Month")},
                                      {"field": "share", "format": ".0%", "title": t("In time")},
                                      {"field": "total", "title": t("Finished")}]}},
        ],
    }  # fmt: skip


def _agreement_title(agreement_id: str, lang: str) -> str:
    found = agreements.by_id(agreement_id)
    if found is None:
        return agreement_id
    return found.title_da if lang == "da" else found.title


def add_figures_pages(app: FastAPI) -> None:
    from naer.access.policy import policy
    from naer.coordination.figures import figures

    @app.get("/figures", response_class=HTMLResponse, include_in_schema=False)
    def figures_page(request: Request) -> Response:
        context = _context(request)
        if context is None:
            return session.to_login(request)
        role = context.rules.roles[context.principal.role]
        t = i18n.gettext_for(session.language(request))
        if not role.dashboard:
            return refuse(
                request, 403, t("The figures are for planners, administrators and health professionals.")
            )
        below = policy().suppress_below if role.records == "none" else None
        found = figures(request.app.state.db)
        lang = session.language(request)
        series = {
            "advice": _month_rows(found.advice_by_month, below, lang),
            "follow_up": _month_rows(found.follow_up_by_month, below, lang),
        }
        specs = {
            "advice": _month_chart(series["advice"], t("Advice answered within the agreed time"), t),
            "follow_up": _month_chart(series["follow_up"], t("Follow-up after discharge done on time"), t),
        }
        return render(
            request, "figures.html", principal=context.principal,
            at=_when(v.instant(found.at), lang),
            advice=[
                {**_share_row(a, below), "detail": _agreement_title(a.detail, lang)} for a in found.advice
            ],
            follow_up=[_share_row(s, below) for s in found.follow_up],
            beds=found.beds, in_force=found.delegations_in_force, expiring=found.delegations_expiring,
            suppressed=below is not None, series=series, specs=specs,
            locale=json.dumps(DANISH_LOCALE) if lang == "da" else "null",
            indicators=list(catalogue().values()), figures_page=True,
        )  # fmt: skip
