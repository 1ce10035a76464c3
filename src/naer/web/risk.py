"""The worklist page: each GP clinic's and municipality's citizens most at risk of an acute admission, with
the reasons and the suggested action, filtered in place with HTMX; beside it the model's calibration plot and
decision curve from the last evaluation, so the people who act on the list can see how far to trust it.

It reads the risk folder (``worklist.parquet`` from ``naer risk worklist``, ``report/`` from ``naer risk
evaluate``) again whenever the files change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from naer.access.context import AccessContext
from naer.access.policy import policy
from naer.access.principal import Principal
from naer.indicators.charts import DANISH_LOCALE
from naer.indicators.definition import catalogue
from naer.web import i18n, people, session
from naer.web.i18n import mark as _

HERE = Path(__file__).parent
CHARTS = ("calibration", "decision_curve")
CHART_TITLES = {
    "calibration": _("Calibration: the predicted risk against the share admitted"),
    "decision_curve": _("Decision curve: the net benefit of acting on the list at each threshold"),
}
# The charts' headings (the page draws them again in the reader's language from the report's data).
CHART_HEADINGS = {
    "calibration": _("Acute admission within 12 months: calibration"),
    "decision_curve": _("Acute admission within 12 months: decision curve"),
}
# What each chart's data rows hold (read from the report's files; anything else is not drawn).
CHART_FIELDS: dict[str, dict[str, type]] = {
    "calibration": {"predicted": float, "observed": float, "low": float, "high": float, "n": float},
    "decision_curve": {"threshold": float, "net_benefit": float, "strategy": str},
}
SEX_WORDS = {"female": _("woman"), "male": _("man")}
FOR_WHOM = _("The worklists are for GPs and the municipality's nurses (each their own list).")
LIMITS = _("“Show the top” takes a whole number from 1 to 1,000, and “Risk at least” a share from 0 to 100 %")


@dataclass
class RiskFolder:
    path: Path
    stamps: tuple[float, float] = (-1.0, -1.0)
    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    chart_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the report's, checked

    def load(self) -> str | None:
        """Read the files again when they changed; the reason the page cannot show a list, or None."""
        worklist, metrics = self.path / "worklist.parquet", self.path / "report" / "metrics.json"
        if not worklist.is_file():
            return f"no worklist at {worklist}"
        stamps = (worklist.stat().st_mtime, metrics.stat().st_mtime if metrics.is_file() else 0.0)
        if stamps != self.stamps:
            try:
                table = pq.read_table(worklist)
            except (OSError, pa.ArrowInvalid) as error:
                return f"{worklist} is not a worklist ({error})"
            needed = {"patient_id", "probability", "lists", "reasons", "action", "owner", "due"}
            lacking = sorted(needed - set(table.column_names))
            if lacking:
                return f"{worklist} is not a worklist of this Nær (it lacks {', '.join(lacking)})"
            self.rows = table.to_pylist()
            self.metrics = json.loads(metrics.read_text()) if metrics.is_file() else None
            self.chart_rows = _chart_rows(self.path / "report")
            self.stamps = stamps
        return None

    def lists(self) -> list[tuple[str, str]]:
        """Every list in the file, (organisation id, label), municipalities first."""
        labels: dict[str, str] = {}
        for r in self.rows:
            for org in r["lists"]:
                if org == r.get("gp_clinic_id"):
                    labels[org] = _("GP clinic") + f": {r.get('gp_clinic_name') or org}"
                elif org == "all":
                    labels[org] = _("Everyone")
                else:
                    labels.setdefault(org, _("Municipality") + f": {r.get('municipality_name') or org}")
        return sorted(labels.items(), key=lambda kv: (not kv[1].startswith("Municipality"), kv[1]))


def _asker(request: Request) -> AccessContext | Response:
    """The signed-in person if their role has a worklist (a GP clinic's, a municipality's), else the
    answer: sign in first, or 403."""
    p = session.principal(request)
    if p is None:
        return session.to_login(request)
    role = policy().roles[p.role]
    if role.worklist is None:
        from naer.web.signin import refuse

        t = i18n.gettext_for(session.language(request))
        return refuse(request, 403, t(FOR_WHOM))
    return request.app.state.auth.access(p)  # type: ignore[no-any-return]


def _own_lists(p: Principal, kind: str | None) -> set[str]:
    """The lists a person works on: the own GP clinic's, or the own municipality's (the organisation or
    one above it)."""
    if kind == "clinic":
        return {p.organization} if p.organization else set()
    if kind == "municipality":
        return {o for o in (p.organization, *p.ancestors) if o}
    return set()


def _visible(request: Request, context: AccessContext, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Which of these citizens the person may see now (relations, blocks), with their Patient: a search in
    the store, so it is decided by the same condition and recorded in the audit log like any other look."""
    from naer.store.search.query import search

    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        result = search(
            request.app.state.db, context, "Patient", [("_id", ",".join(chunk)), ("_count", "200")]
        )
        found.update({m.id: orjson.loads(m.content or "{}") for m in result.matches})
    return found


def _made(row: dict[str, Any]) -> date | None:
    """The day the list was made: stored by a newer worklist, else its deadline less the rule's days."""
    from naer.risk.worklist import rules  # (not at start: it brings the model's libraries)

    if row.get("made"):
        return date.fromisoformat(str(row["made"]))
    rule = next((r for r in rules() if r["id"] == row.get("rule")), None)
    if rule is None or not row.get("due"):
        return None
    return date.fromisoformat(str(row["due"])) - timedelta(days=int(rule["within_days"]))


def _chart_rows(report: Path) -> dict[str, list[dict[str, Any]]]:
    """The data rows of the report's charts (its .vl.json files), read when the report changes; a chart
    whose rows are not what the report writes is left out."""
    found = {}
    for name in CHARTS:
        path = report / f"{name}.vl.json"
        if not path.is_file():
            continue
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        rows = spec.get("data", {}).get("values") if isinstance(spec, dict) else None
        if isinstance(rows, list) and rows and all(_row_of(r, CHART_FIELDS[name]) for r in rows):
            found[name] = rows
    return found


def _charts(chart_rows: dict[str, list[dict[str, Any]]], t: Any) -> dict[str, Any]:
    """The report's charts drawn again in the page's words."""
    from naer.risk import charts

    made = {}
    for name, rows in chart_rows.items():
        build = charts.calibration if name == "calibration" else charts.decision_curve
        made[name] = build(rows, t(CHART_HEADINGS[name]), t)
    return made


def _row_of(row: Any, fields: dict[str, type]) -> bool:
    if not isinstance(row, dict):
        return False
    for key, kind in fields.items():
        value = row.get(key)
        if kind is str and not isinstance(value, str):
            return False
        if kind is float and (
            isinstance(value, bool) or not isinstance(value, int | float) or value != value
        ):
            return False
    return True


def _shown(row: dict[str, Any], patient: dict[str, Any], lang: str, t: Any) -> dict[str, Any]:
    """A worklist row as the page shows it: the citizen's name and CPR number, the reasons and action in
    the page's language, the deadline as days from the day the list was made."""
    made = _made(row)
    due = date.fromisoformat(str(row["due"])) if row.get("due") else None
    days = (due - made).days if due and made else None
    danish = lang == "da"
    return {
        **row,
        "name": people.name_of(patient) or row["patient_id"],
        "cpr": people.cpr_of(patient),
        "reasons_shown": (row.get("reasons_da") if danish else None) or row.get("reasons") or [],
        "action_shown": (row.get("action_da") if danish else None) or row.get("action") or "",
        "sex_shown": t(SEX_WORDS.get(str(row.get("sex")), _("unknown sex"))),
        "days": days,
        "due_shown": i18n.day(due, lang) if due else "–",
    }


def add_risk_pages(app: FastAPI, folder: Path) -> None:
    """Register /risk (the page) and /risk/panel (the part HTMX swaps when a filter changes)."""
    risk = RiskFolder(folder)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["num"] = i18n.number_filter
    env.filters["day"] = i18n.day_filter

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        helpers = i18n.helpers(session.language(request), request)
        html = env.get_template(name).render(
            indicators=list(catalogue().values()), risk_page=True, worklists=True, **{**helpers, **context}
        )
        return session.remember_language(request, HTMLResponse(html, status_code=status))  # type: ignore[return-value]

    def state(request: Request) -> dict[str, Any] | Response:
        context = _asker(request)
        if isinstance(context, Response):
            return context
        problem = risk.load()
        if problem:
            return page(request, "risk_not_ready.html", 503, message=problem, folder=folder)
        q = request.query_params
        mine_only = _own_lists(context.principal, context.rules.roles[context.principal.role].worklist)
        t = i18n.gettext_for(session.language(request))
        lists = [(org, i18n.labelled(label, t)) for org, label in risk.lists() if org in mine_only]
        chosen = q.get("list") or (lists[0][0] if lists else "")
        if chosen and chosen not in dict(lists):
            return page(
                request,
                "error.html",
                400,
                message=t(_("%(list)s is not one of your worklists")) % {"list": repr(chosen)},
            )
        try:
            top = int(q.get("top") or 20)
            minimum = float(q.get("min") or 0) / 100
        except ValueError:
            return page(request, "error.html", 400, message=t(LIMITS))
        if not 1 <= top <= 1000 or not 0 <= minimum < 1:
            return page(request, "error.html", 400, message=t(LIMITS))
        action = q.get("action") or ""
        listed = [r for r in risk.rows if chosen in r["lists"]]
        seen = _visible(request, context, [r["patient_id"] for r in listed])
        lang = session.language(request)
        mine = [_shown(r, seen[r["patient_id"]], lang, t) for r in listed if r["patient_id"] in seen]
        actions = sorted({(r["rule"], r["action_shown"]) for r in mine}, key=lambda a: a[1])
        shown = [r for r in mine if r["probability"] >= minimum and (not action or r["rule"] == action)]
        shown.sort(key=lambda r: -r["probability"])
        return {
            "lists": lists,
            "chosen": chosen,
            "chosen_label": dict(lists).get(chosen, ""),
            "top": top,
            "min": q.get("min") or "",
            "action": action,
            "actions": actions,
            "rows": shown[:top],
            "total": len(mine),
            "made": next((m for m in (_made(r) for r in mine) if m), None),
            "metrics": risk.metrics,
            "specs": _charts(risk.chart_rows, t),
            "locale": json.dumps(DANISH_LOCALE) if session.language(request) == "da" else "null",
            "chart_titles": CHART_TITLES,
            "query": str(request.url.query),
        }

    @app.get("/risk", response_class=HTMLResponse, include_in_schema=False)
    def risk_page(request: Request) -> Response:
        s = state(request)
        return s if isinstance(s, Response) else page(request, "risk.html", **s)

    @app.get("/risk/report", response_class=HTMLResponse, include_in_schema=False)
    def risk_report(request: Request) -> Response:
        """The whole evaluation report of the model (naer risk evaluate): its goals, every outcome and the
        fairness of every group, for the people who use the lists (Nær wrote it; it holds no citizen)."""
        context = _asker(request)
        if isinstance(context, Response):
            return context
        report = folder / "report" / "report.html"
        if not report.is_file():
            return page(request, "risk_not_ready.html", 503, message=f"no report at {report}", folder=folder)
        return HTMLResponse(report.read_text(encoding="utf-8"))

    @app.get("/risk/panel", response_class=HTMLResponse, include_in_schema=False)
    def risk_panel(request: Request) -> Response:
        s = state(request)
        if isinstance(s, Response):
            return s
        response = page(request, "risk_panel.html", **s)
        response.headers["HX-Replace-Url"] = "/risk" + (f"?{s['query']}" if s["query"] else "")
        return response
