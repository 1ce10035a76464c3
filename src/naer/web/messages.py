"""The MedCom message pages of an organisation: messages received and sent with their acknowledgement,
one message with its thread (CareCommunication) or its stay's notifications (HospitalNotification),
replying and forwarding, the municipal unit's citizens in hospital now, and writing a CareCommunication
from the citizen's page.

Every page acts for the signed-in person (naer.messaging.lists and compose): the access condition is in
the query, every citizen shown is audited, every form carries the CSRF token, and a refusal is shown with
the reason and nothing sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from naer.access.context import AccessContext
from naer.fhir.systems import SOR
from naer.messaging import carecommunication as cc
from naer.messaging import compose, lists, notification, outbox
from naer.messaging.definitions import load
from naer.store.context import SYSTEM
from naer.store.errors import StoreError
from naer.store.search.query import search
from naer.web import i18n, session
from naer.web.coordination import ID_LIMIT, _clinician, _when, clinician_form, problem
from naer.web.i18n import mark as _
from naer.web.signin import refuse, render

HEADER_LIMIT = 100  # SOR:ID (18 + 1 + 64)
TEXT_LIMIT = 100_001  # one more than a message may hold: a longer one is refused with the reason, not cut
FORM_LIMIT = 262_144  # bytes: a text of 100,000 characters URL-encoded is within it
ATTACHED_LIMIT = 15 * 1024 * 1024  # with an attachment of 10 MiB, base64 and URL-encoded
KIND_WORDS = {
    "hospital-notification": _("Hospital notification"),
    "care-communication": _("Care communication"),
    "acknowledgement": _("Acknowledgement"),
    "unknown": _("Unknown message"),
}
STATE_WORDS = {
    "applied": _("Received"),
    "rejected": _("Refused"),
    "pending": _("Waiting to be sent"),
    "sent": _("Sent, no answer yet"),
    "acknowledged": _("Acknowledged"),
    "negative": _("Refused by the receiver"),
    "attention": _("No answer: needs a person"),
}
STAY_WORDS = {
    "admitted": _("Admitted"),
    "emergency": _("Acute ambulant"),
    "leave": _("On leave"),
}
CC_CODES = {"new": _("New message"), "reply": _("Reply"), "forward": _("Forwarded")}


def _utc(moment: datetime) -> datetime:
    """A stored time (SQLite keeps them without their zone, always in UTC) with its zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _code_words(shown: Any, lang: str) -> str:
    if shown.kind == "hospital-notification":
        kind = notification.kinds().get(shown.code)
        if kind is not None:
            return f"{shown.code}: {kind.da if lang == 'da' else kind.en}"
    t = i18n.gettext_for(lang)
    return t(CC_CODES[shown.code]) if shown.code in CC_CODES else shown.code


def _row(shown: Any, lang: str) -> dict[str, Any]:
    t = i18n.gettext_for(lang)
    return {
        "href": f"/messages/{shown.direction}/{quote(shown.key, safe=':')}",
        "direction": t(_("Received")) if shown.direction == "in" else t(_("Sent")),
        "kind": t(KIND_WORDS.get(shown.kind, KIND_WORDS["unknown"])),
        "code": _code_words(shown, lang),
        "state": t(STATE_WORDS.get(shown.state, shown.state)),
        "state_code": shown.state,
        "when": _when(_utc(shown.happened).isoformat(), lang),
        "stored": _when(_utc(shown.created).isoformat(), lang),
        "counterpart": shown.counterpart,
        "citizen": shown.citizen or "",
        "patient": shown.patient or "",
        "topic": shown.topic or "",
    }


def _receivers(request: Request, own: str | None) -> list[tuple[str, str]]:
    """Units of the directory with a SOR code, to send or forward to (by name)."""
    found = search(request.app.state.db, SYSTEM, "Organization",
                   [("identifier", f"{SOR}|"), ("_count", "500"), ("_sort", "name")])  # fmt: skip
    units = []
    for item in found.matches:
        org = orjson.loads(item.content or "{}")
        sor = next((i.get("value") for i in org.get("identifier", []) if i.get("system") == SOR), None)
        if sor and item.id != own:
            units.append((str(sor), str(org.get("name", sor))))
    return units


def _attached(values: dict[str, str]) -> tuple[compose.Attachment, ...]:
    """The attachment the page's script put in the form (none without a file)."""
    data = values.get("attachment_data", "")
    if not data:
        return ()
    title = values.get("attachment_title", "")[:200] or "Bilag"
    return (compose.Attachment(title, values.get("attachment_type", "")[:100], data),)


def _categories(lang: str) -> list[tuple[str, str]]:
    defs = load()
    return sorted(
        ((code, defs.name(cc.CATEGORIES, code, lang)) for code in defs.codesystems.get(cc.CATEGORIES, ())),
        key=lambda pair: pair[1],
    )


def add_message_pages(app: FastAPI) -> None:
    @app.get("/messages", response_class=HTMLResponse, include_in_schema=False)
    def messages_page(request: Request, direction: str = "") -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        lang = session.language(request)
        chosen = direction if direction in ("in", "out") else ""
        shown = lists.listed(request.app.state.db, context, chosen or None)
        return render(request, "messages.html", rows=[_row(s, lang) for s in shown], direction=chosen)

    @app.get("/messages/admitted", response_class=HTMLResponse, include_in_schema=False)
    def admitted_page(request: Request) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        rows = [
            {
                "name": row["name"], "patient": row["patient"], "hospital": row["hospital"],
                "state": t(STAY_WORDS.get(row["state"], row["state"])), "code": row["code"],
                "since": _when(row["start"], lang) if row["start"] else "",
            }
            for row in lists.admitted(request.app.state.db, context)
        ]  # fmt: skip
        return render(request, "messages_admitted.html", rows=rows)

    @app.get("/messages/{direction}/{header}", response_class=HTMLResponse, include_in_schema=False)
    def message_page(request: Request, direction: str, header: str) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _one(request, context, direction, header[:HEADER_LIMIT], {}, None, 200)

    @app.post("/messages/{direction}/{header}/{action}", response_class=HTMLResponse, include_in_schema=False)
    async def message_action(request: Request, direction: str, header: str, action: str) -> Response:
        found = await clinician_form(request, FORM_LIMIT)
        if isinstance(found, Response):
            return found
        context, values = found
        header = header[:HEADER_LIMIT]
        db = request.app.state.db
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        if action not in ("reply", "forward", "retry"):
            return refuse(request, 404, t("No such action on a message."))
        here = await run_in_threadpool(lists.one, db, context, direction, header)
        if here is None:
            return refuse(request, 404, t("No such message in your organisation's messages."))
        try:
            if action == "retry":
                if direction != "out" or not await run_in_threadpool(outbox.retry, db, header):
                    return refuse(
                        request,
                        409,
                        t("Only a sent message that was refused or got no answer is sent again."),
                    )
                await run_in_threadpool(outbox.send_due, db)
                return RedirectResponse(f"/messages/out/{quote(header, safe='')}?retried=1", 303)
            sent = await run_in_threadpool(
                lambda: compose.send(
                    db, context, here[0].patient or "", values.get("text", "")[:TEXT_LIMIT],
                    values.get("phone", "")[:40], receiver=values.get("receiver", "")[:32] or None,
                    answering=(direction, header), forward=action == "forward",
                )
            )  # fmt: skip
        except StoreError as error:
            return _one(request, context, direction, header, values, problem(error, lang), error.status)
        return RedirectResponse(f"/messages/out/{quote(sent, safe='')}?sent=1", 303)

    @app.get("/citizen/{patient}/message", response_class=HTMLResponse, include_in_schema=False)
    def new_message_page(request: Request, patient: str) -> Response:
        context, refused = _clinician(request)
        if context is None:
            return refused  # type: ignore[return-value]
        return _compose(request, context, patient[:ID_LIMIT], {}, None, 200)

    @app.post("/citizen/{patient}/message", response_class=HTMLResponse, include_in_schema=False)
    async def new_message(request: Request, patient: str) -> Response:
        found = await clinician_form(request, ATTACHED_LIMIT)
        if isinstance(found, Response):
            return found
        context, values = found
        patient = patient[:ID_LIMIT]
        try:
            sent = await run_in_threadpool(
                lambda: compose.send(
                    request.app.state.db, context, patient, values.get("text", "")[:TEXT_LIMIT],
                    values.get("phone", "")[:40], receiver=values.get("receiver", "")[:32] or None,
                    category=values.get("category", "")[:64], topic=values.get("topic", "")[:200] or None,
                    priority="asap" if values.get("priority") == "asap" else None,
                    attachments=_attached(values),
                )
            )  # fmt: skip
        except StoreError as error:
            return _compose(
                request, context, patient, values, problem(error, session.language(request)), error.status
            )
        return RedirectResponse(f"/messages/out/{quote(sent, safe='')}?sent=1", 303)

    def _compose(
        request: Request, context: AccessContext, patient: str, values: dict[str, str],
        message: dict[str, str] | None, status: int,
    ) -> Response:  # fmt: skip
        lang = session.language(request)
        return render(
            request, "message_new.html", status=status, patient=patient, values=values, message=message,
            categories=_categories(lang), receivers=_receivers(request, context.principal.organization),
        )  # fmt: skip

    def _one(
        request: Request, context: AccessContext, direction: str, header: str, values: dict[str, str],
        message: dict[str, str] | None, status: int,
    ) -> Response:  # fmt: skip
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        found = lists.one(request.app.state.db, context, direction, header)
        if found is None:
            return refuse(request, 404, t("No such message in your organisation's messages."))
        shown, related = found
        said = [
            {"when": _when(s.at, lang), "author": s.author, "text": s.text, "title": s.title,
             "attachment": s.text is None, "has_data": s.has_data}
            for s in shown.said
        ]  # fmt: skip
        stay = None
        if shown.stay is not None:
            stay = {"klass": shown.stay.klass, "status": shown.stay.status,
                    "start": _when(shown.stay.start, lang) if shown.stay.start else "",
                    "end": _when(shown.stay.end, lang) if shown.stay.end else ""}  # fmt: skip
        category = load().name(cc.CATEGORIES, shown.category, lang) if shown.category else ""
        others = [r for r in related if (r.header, r.direction) != (shown.header, shown.direction)]
        answerable = shown.kind == "care-communication" and shown.state in ("applied", "acknowledged", "sent")
        return render(
            request, "message_one.html", status=status, row=_row(shown, lang), said=said, stay=stay,
            related=[_row(r, lang) for r in others],
            problems=shown.problems, category=category, values=values, message=message,
            can_answer=answerable, can_retry=direction == "out" and shown.state in ("attention", "negative"),
            receivers=_receivers(request, context.principal.organization),
            sent=request.query_params.get("sent") == "1", retried=request.query_params.get("retried") == "1",
        )  # fmt: skip
