"""The register of initiatives as a page: each collaboration effort, who owns it, where and for whom, when,
what it should move, how it is judged, and - once ``naer evaluate`` has run it into the data folder's
``evaluation/ID`` - what the trusted design found, with the whole report beside it.

For the people who plan and steer (the roles that see the dashboard); the figures are aggregates.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from naer.errors import UserError
from naer.evaluation.register import Initiative, register
from naer.indicators.definition import catalogue
from naer.settings import get_settings
from naer.web import i18n, session
from naer.web.i18n import mark as _
from naer.web.signin import refuse, render

FILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}\.(svg|html)$")
DESIGNS = {
    "did": _("Difference in differences"),
    "synthetic-control": _("Synthetic control"),
    "its": _("Interrupted time series"),
}
STATES = {"planned": _("planned"), "running": _("running"), "evaluated": _("evaluated")}
EXPECTED = {"lower": _("lower"), "higher": _("higher")}


def reports_folder() -> Path:
    """Where ``naer evaluate --out`` puts an initiative's report for the page to find (``evaluation/ID``)."""
    return get_settings().data_dir / "evaluation"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)  # (an integer of 400 digits does not fit)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def results(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The trusted design's estimate by indicator from a report's ``results.json`` (each value checked), or
    None when there is no report."""
    path = folder / "results.json"
    if not path.is_file() or path.stat().st_size > 20 * 1024 * 1024:
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        outcomes = raw["outcomes"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(outcomes, list):
        return None
    found: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if not isinstance(o, dict) or not isinstance(o.get("indicator"), str):
            continue
        trusted = o.get("trusted") if isinstance(o.get("trusted"), str) else None
        listed = o.get("estimates")
        estimates: list[Any] = listed if isinstance(listed, list) else []
        chosen = next((e for e in estimates if isinstance(e, dict) and e.get("design") == trusted), None)
        detectable = o.get("minimum_detectable")
        found[o["indicator"]] = {
            "design": trusted if isinstance(trusted, str) and trusted in DESIGNS else None,
            "effect": _number(chosen.get("effect")) if chosen else None,
            "low": _number(chosen.get("low")) if chosen else None,
            "high": _number(chosen.get("high")) if chosen else None,
            "detectable": _number(detectable.get(trusted))
            if isinstance(detectable, dict) and trusted
            else None,
            "truth": _number(o.get("planted_truth")),
        }
    return found


def _row(initiative: Initiative, lang: str) -> dict[str, Any]:
    t = i18n.gettext_for(lang)
    known = catalogue()
    folder = reports_folder() / initiative.id
    found = results(folder)
    return {
        "id": initiative.id,
        "name": initiative.name_da if lang == "da" else initiative.name,
        "target": initiative.target.description_da if lang == "da" else initiative.target.description,
        "owners": initiative.owners,
        "area": initiative.area.municipalities,
        "start": initiative.start,
        "end": initiative.end,
        "state": t(STATES[initiative.state]),
        "designs": [t(DESIGNS[d]) for d in initiative.designs],
        "indicators": [
            {
                "id": i.id,
                "title": known[i.id].title_da if lang == "da" else known[i.id].title,
                "per": known[i.id].per,
                "expected": t(EXPECTED[i.expected]),
                "result": (found or {}).get(i.id),
            }
            for i in initiative.indicators
        ],
        "resources": [known[r].title_da if lang == "da" else known[r].title for r in initiative.resources],
        "report": found is not None and (folder / "report.html").is_file(),
        "planted": initiative.planted is not None,
    }


def add_initiative_pages(app: FastAPI) -> None:
    def allowed(request: Request) -> Response | None:
        found = session.principal(request)
        if found is None:
            return session.to_login(request)
        context = request.app.state.auth.access(found)
        if not context.rules.roles[context.principal.role].dashboard:
            t = i18n.gettext_for(session.language(request))
            return refuse(
                request, 403, t("The initiatives are for planners, administrators and health professionals.")
            )
        return None

    def _register(request: Request) -> dict[str, Initiative] | Response:
        try:
            return register()
        except UserError as error:  # a register file that does not read: say which, do not fail the page
            return refuse(request, 503, str(error))

    @app.get("/initiatives", response_class=HTMLResponse, include_in_schema=False)
    def initiatives_page(request: Request) -> Response:
        stop = allowed(request)
        if stop is not None:
            return stop
        known = _register(request)
        if isinstance(known, Response):
            return known
        lang = session.language(request)
        rows = [_row(i, lang) for i in sorted(known.values(), key=lambda i: i.start, reverse=True)]
        return render(
            request, "initiatives.html", rows=rows, designs=DESIGNS, initiatives_page=True,
            indicators=list(catalogue().values()), folder=reports_folder(),
        )  # fmt: skip

    @app.get("/initiatives/{initiative_id}/report/{name}", include_in_schema=False)
    def report_file(request: Request, initiative_id: str, name: str) -> Response:
        stop = allowed(request)
        if stop is not None:
            return stop
        known = _register(request)
        if isinstance(known, Response):
            return known
        t = i18n.gettext_for(session.language(request))
        folder = reports_folder() / initiative_id
        if initiative_id not in known or not FILE.match(name) or not (folder / name).is_file():
            return refuse(request, 404, t("No such report"))
        media = "text/html; charset=utf-8" if name.endswith(".html") else "image/svg+xml"
        response = FileResponse(folder / name, media_type=media)
        # The report is Nær's own file; it runs no script and loads only its charts from beside it
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
        )
        response.headers["Cache-Control"] = "no-store"
        return response
