"""The population dashboard: a page per indicator with filters, funnel plot, time series, table and
downloads, server-rendered (Jinja2) and updated in place with HTMX; charts are Vega-Lite, drawn in the
browser by the vendored Vega files (no CDN: the pages work offline).

It reads the indicator results file (``naer indicators ... --by every --period every --out FILE.parquet``)
once and filters it in memory per request, so a page answers in milliseconds whatever the population.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from naer.access.policy import policy
from naer.indicators import charts
from naer.indicators.definition import Indicator, catalogue
from naer.indicators.engine import GROUPINGS, PERIODS, WITHIN, crossable
from naer.indicators.numbers import without_nan
from naer.indicators.run import SOURCE_KEY
from naer.web import i18n, session
from naer.web.gate import has_worklists
from naer.web.i18n import mark as _

HERE = Path(__file__).parent
BY_LABEL = {
    "municipality": _("Municipality"),
    "cluster": _("Cluster"),
    "gp_clinic": _("GP clinic"),
    "age_band": _("Age band"),
    "sex": _("Sex"),
    "education": _("Education"),
    "all": _("Whole area"),
}
PERIOD_LABEL = {"year": _("Year"), "quarter": _("Quarter"), "month": _("Month")}
GROUP_WORDS = {
    "unknown": _("Unknown"),
    "male": _("Men"),
    "female": _("Women"),
    "other": _("Other"),
    "all": _("Whole area"),
    # groupings.yaml's education groups (Statistics Denmark's HFUDD main groups)
    "basic school": _("Basic school"),
    "upper secondary or vocational": _("Upper secondary or vocational"),
    "higher education": _("Higher education"),
}
"""Group labels that are words of Nær's own (not names from the data), shown in the page's language."""
COLUMNS = (
    "indicator",
    "period",
    "by",
    "group",
    "group_label",
    "numerator",
    "denominator",
    "value",
    "ci_low",
    "ci_high",
    "std_value",
    "std_ci_low",
    "std_ci_high",
    "expected",
    "ratio",
    "within",
    "area",
    "area_label",
)


class NotReady(Exception):
    """The results file is missing or unreadable: the page says how to make it."""


SMALL = ("numerator", "denominator", "value", "ci_low", "ci_high", "std_value", "std_ci_low", "std_ci_high",
         "ratio")  # fmt: skip


def suppress(row: dict[str, Any], below: int) -> dict[str, Any]:
    """Counts from 1 to ``below - 1`` (a person or a few) are not shown, as Danish official statistics do:
    neither the count nor anything it can be worked back from (the rate, its interval, O/E). Zero stays."""
    small = any(
        isinstance(row.get(k), int | float) and 0 < row[k] < below for k in ("numerator", "denominator")
    )
    if not small:
        return row
    return {**row, **dict.fromkeys(SMALL), "suppressed": True}


@dataclass
class Results:
    path: Path
    stamp: float = -1.0
    table: pa.Table | None = None
    parts: dict[tuple[str, str, str, str], list[dict[str, Any]]] | None = None
    source: dict[str, Any] | None = None  # the data set the results were made from (naer synth's word)

    def load(self) -> pa.Table:
        """The results, read again when the file changes (a new `naer indicators` run)."""
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            raise NotReady(f"no indicator results at {self.path}") from None
        if self.table is None or stamp != self.stamp:
            try:
                self.table = pq.read_table(self.path)
            except (OSError, pa.ArrowInvalid) as error:
                raise NotReady(f"{self.path} is not an indicator results file ({error})") from None
            missing = [c for c in (*COLUMNS, "period_kind") if c not in self.table.column_names]
            if missing and set(missing) <= {"within", "area", "area_label"}:  # a file made without --within
                n = self.table.num_rows
                for column in missing:
                    self.table = self.table.append_column(column, pa.array(["all"] * n, pa.string()))
                missing = []
            if missing:
                self.table = None
                raise NotReady(f"{self.path} lacks the columns {', '.join(missing)}: make it again") from None
            self.parts = self._partition(self.table)
            self.source = _source(self.table)
            self.stamp = stamp
        return self.table

    @staticmethod
    def _partition(table: pa.Table) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
        """Rows by (indicator, grouping, period kind, area kind), made once per file: a page only looks up."""
        names = ["indicator", "by", "period_kind", "within"]
        parts: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        below = policy().suppress_below
        for row in without_nan(table.select([*COLUMNS, "period_kind"]).to_pylist()):
            parts.setdefault(tuple(row[n] for n in names), []).append(suppress(row, below))
        return parts

    def rows(self, indicator: str, by: str, period_kind: str, within: str = "all") -> list[dict[str, Any]]:
        self.load()
        assert self.parts is not None
        return self.parts.get((indicator, by, period_kind, within), [])

    def available(self, indicator: str) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        """The groupings, period kinds and areas (``cluster:Aarhus``, label) the file holds for
        ``indicator``."""
        self.load()
        assert self.parts is not None
        keys = [k for k in self.parts if k[0] == indicator]
        bys = {k[1] for k in keys}
        kinds = {k[2] for k in keys}
        areas: dict[str, str] = {}
        for within in WITHIN:
            if any(k[3] == within for k in keys):
                for r in self.parts.get((indicator, within, "year", "all"), []):
                    areas[f"{within}:{r['group']}"] = f"{BY_LABEL[within]}: {r['group_label']}"
        ordered = sorted(areas.items(), key=lambda kv: (not kv[0].startswith("cluster"), kv[1]))
        return [b for b in GROUPINGS if b in bys], [p for p in PERIODS if p in kinds], ordered


def _source(table: pa.Table) -> dict[str, Any] | None:
    """The note ``naer indicators`` kept of its data set (indicators.run.data_set), or None; a file from
    elsewhere may hold anything there, so only well-formed numbers and names are kept."""
    raw = (table.schema.metadata or {}).get(SOURCE_KEY)
    try:
        about = json.loads(raw) if raw else None
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not isinstance(about, dict):
        return None
    towns = [
        m
        for m in about.get("municipalities", [])
        if isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("citizens"), int)
    ]
    whole = [m for m in towns if m.get("full") is True]
    sampled = [m for m in towns if m.get("full") is not True]
    scale, least = about.get("scale"), about.get("atLeast", 1)
    if not isinstance(scale, int | float) or not 0 < scale <= 10 or not isinstance(least, int):
        return None
    return {
        "area": str(about.get("areaName", "")),
        "whole": whole,
        "sampled": sampled,
        "percent": float(scale) * 100,
        "at_least": least,
        "sampled_citizens": sum(m["citizens"] for m in sampled),
    }


def add_dashboard(app: FastAPI, results_file: Path) -> None:
    """Register the dashboard's pages, fragments, downloads and static files on ``app``."""
    results = Results(results_file)
    with contextlib.suppress(NotReady):  # the pages say how to make the results
        results.load()  # at start, so that the first page is as quick as the others
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["num"] = i18n.number_filter
    if not any(getattr(r, "name", None) == "static" for r in app.routes):  # the access pages mount it too
        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = session.language(request)
        html = env.get_template(name).render(
            indicators=list(catalogue().values()),
            source=results.source,
            worklists=has_worklists(request),
            **{**i18n.helpers(lang, request), **context},
        )
        return session.remember_language(request, HTMLResponse(html, status_code=status))  # type: ignore[return-value]

    def not_ready(request: Request, error: NotReady) -> HTMLResponse:
        return page(request, "not_ready.html", 503, message=str(error), path=results_file)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request) -> Response:
        try:
            cards = []
            for indicator in catalogue().values():
                series = results.rows(indicator.id, "all", "year")
                cards.append(
                    {"indicator": indicator, "last": series[-1] if series else None, "series": series}
                )
        except NotReady as error:
            return not_ready(request, error)
        return page(request, "overview.html", cards=cards)

    @app.get("/indicators/{indicator_id}", response_class=HTMLResponse, include_in_schema=False)
    def indicator_page(request: Request, indicator_id: str) -> Response:
        return _panel(request, indicator_id, whole=True)

    @app.get("/indicators/{indicator_id}/panel", response_class=HTMLResponse, include_in_schema=False)
    def indicator_panel(request: Request, indicator_id: str) -> Response:
        response = _panel(request, indicator_id, whole=False)
        query = request.url.query
        response.headers["HX-Replace-Url"] = f"/indicators/{indicator_id}" + (f"?{query}" if query else "")
        return response

    @app.get("/indicators/{indicator_id}/download.csv", include_in_schema=False)
    def download(request: Request, indicator_id: str) -> Response:
        state = _state(request, indicator_id)
        if isinstance(state, Response):
            return state
        rows = state["units"]  # every period of the units shown (of the chosen area, when one is)
        name = f"{indicator_id}-{state['by']}-{state['period']}.csv"
        return Response(
            csv_bytes(rows, state["lang"]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/indicators/{indicator_id}/chart/{kind}.{suffix}", include_in_schema=False)
    def chart_file(request: Request, indicator_id: str, kind: str, suffix: str) -> Response:
        state = _state(request, indicator_id)
        if isinstance(state, Response):
            return state
        specs = _specs(state)
        if kind not in specs or specs[kind] is None or suffix not in ("svg", "png"):
            message = state["t"](_("No %(kind)s chart as %(suffix)s for this selection"))
            return page(request, "error.html", 404, message=message % {"kind": kind, "suffix": suffix})
        import vl_convert as vlc

        locale = charts.DANISH_LOCALE if state["lang"] == "da" else None
        name = f"{indicator_id}-{kind}-{state['by']}-{state['at']}.{suffix}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if suffix == "svg":
            svg = vlc.vegalite_to_svg(specs[kind], format_locale=locale)
            return Response(svg, media_type="image/svg+xml", headers=headers)
        png = vlc.vegalite_to_png(specs[kind], scale=2, format_locale=locale)
        return Response(png, media_type="image/png", headers=headers)

    def _state(request: Request, indicator_id: str) -> dict[str, Any] | Response:
        """The page's filters from the query, each checked against what exists."""
        q = request.query_params
        lang = session.language(request)
        t = i18n.gettext_for(lang)
        indicator = catalogue().get(indicator_id)
        if indicator is None:
            message = t(_("No indicator %(id)s")) % {"id": repr(indicator_id)}
            return page(request, "error.html", 404, message=message)
        try:
            bys, kinds, areas = results.available(indicator_id)
        except NotReady as error:
            return not_ready(request, error)
        by = q.get("by") or ("municipality" if "municipality" in bys else (bys[0] if bys else "all"))
        period = q.get("period") or ("year" if "year" in kinds else (kinds[0] if kinds else "year"))
        if by not in GROUPINGS:
            return page(
                request, "error.html", 400,
                message=t(_("Unknown grouping %(by)s; choose one of %(known)s"))
                % {"by": repr(by), "known": ", ".join(GROUPINGS)},
            )  # fmt: skip
        if period not in PERIODS:
            return page(
                request, "error.html", 400,
                message=t(_("Unknown period %(period)s; choose one of %(known)s"))
                % {"period": repr(period), "known": ", ".join(PERIODS)},
            )  # fmt: skip
        if by not in bys or period not in kinds:
            return page(
                request,
                "error.html",
                404,
                message=t(
                    _(
                        "The results have no %(id)s by %(by)s and %(period)s: run naer indicators with "
                        "--by every --period every"
                    )
                )
                % {"id": indicator_id, "by": by, "period": period},
            )
        place = q.get("area") or ""
        if place and place not in dict(areas):
            message = t(_("No area %(area)s in the results")) % {"area": repr(place)}
            return page(request, "error.html", 400, message=message)
        within, code = place.split(":", 1) if place else ("all", "")
        area = results.rows(indicator_id, "all", period)
        place_rows = (
            [r for r in results.rows(indicator_id, within, period) if r["group"] == code] if place else []
        )
        if place and crossable(by, within):
            units = [r for r in results.rows(indicator_id, by, period, within) if r["area"] == code]
        else:
            units = results.rows(indicator_id, by, period)
        periods = sorted({r["period"] for r in area})
        at = within_period(q.get("at") or "", periods)
        if periods and at not in periods:
            return page(
                request, "error.html", 400,
                message=t(_("No period %(at)s; the data has %(first)s to %(last)s"))
                % {"at": repr(q.get("at")), "first": periods[0], "last": periods[-1]},
            )  # fmt: skip
        unit = q.get("unit") or ""
        units = [_worded(r, t) for r in units]
        known_units = {r["group"]: r["group_label"] for r in units}
        if unit and unit not in known_units:
            unit = ""
        return {
            "indicator": indicator,
            "by": by,
            "period": period,
            "at": at,
            "unit": unit,
            "units": units,
            "area": area,
            "place": place,
            "place_rows": place_rows,
            "place_label": i18n.labelled(dict(areas).get(place, ""), t),
            "places": [(code, i18n.labelled(label, t)) for code, label in areas],
            "split": bool(place) and crossable(by, within),
            "periods": periods,
            "unit_choices": sorted(known_units.items(), key=lambda kv: kv[1]),
            "bys": bys,
            "kinds": kinds,
            "lang": lang,
            "t": t,
        }

    def _specs(state: dict[str, Any]) -> dict[str, Any]:
        indicator: Indicator = state["indicator"]
        # Units are compared with the whole data's level, also when only one area's units are shown.
        area_at = next((r for r in state["area"] if r["period"] == state["at"]), None)
        latest = [r for r in state["units"] if r["period"] == state["at"]]
        funnel = None
        t = state["t"]
        if area_at and state["by"] not in ("all", "age_band") and indicator.funnel and latest:
            funnel = charts.funnel(indicator, latest, area_at, t(BY_LABEL[state["by"]]), t, state["lang"])
        more = []
        if state["place_rows"]:
            more.append((state["place_label"].split(": ", 1)[-1], state["place_rows"]))
        chosen = [r for r in state["units"] if r["group"] == state["unit"]] if state["unit"] else []
        if chosen:
            more.append((chosen[0]["group_label"], chosen))
        series = charts.time_series(indicator, state["area"], *more, t=t, lang=state["lang"])
        return {"funnel": funnel, "time": series}

    def _panel(request: Request, indicator_id: str, whole: bool) -> Response:
        state = _state(request, indicator_id)
        if isinstance(state, Response):
            return state
        specs = _specs(state)
        table = ordered(state["by"], [r for r in state["units"] if r["period"] == state["at"]])
        indicator: Indicator = state["indicator"]
        t = state["t"]
        if indicator.kind == "rate":
            counted = t("bed days") if indicator.params.get("value") == "bed_days" else t("events")
            out_of = t("citizen-years")
        else:
            counted, out_of = t("counted"), t("out of")
        query = str(request.url.query)
        context = dict(
            state,
            specs={k: v or None for k, v in specs.items()},  # rendered with |tojson: escaped for <script>
            table=table,
            suppressed=any(r.get("suppressed") for r in table),
            by_label={k: t(v) for k, v in BY_LABEL.items()},
            period_label={k: t(v) for k, v in PERIOD_LABEL.items()},
            numerator_label=counted,
            denominator_label=out_of,
            query=query,
            whole=whole,
            locale=json.dumps(charts.DANISH_LOCALE) if state["lang"] == "da" else "null",
        )
        return page(request, "indicator.html" if whole else "panel.html", **context)


def _worded(row: dict[str, Any], t: Any) -> dict[str, Any]:
    """A row whose group is one of Nær's own words (Unknown, Men ...) labelled in the page's language."""
    word = GROUP_WORDS.get(str(row.get("group_label", "")).lower())
    return {**row, "group_label": t(word)} if word else row


def within_period(asked: str, periods: list[str]) -> str:
    """The period to show: the asked one, or, when the period kind changed (a year asked of quarters or
    months), the last period inside the asked one (2024 -> 2024-Q4 or 2024-12); else the latest."""
    if not periods:
        return asked
    if not asked:
        return periods[-1]
    if asked in periods:
        return asked
    inside = [p for p in periods if p.startswith(asked[:4])]
    well_formed = re.fullmatch(r"\d{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?", asked)  # (2024-13 is no month)
    return inside[-1] if inside and well_formed else asked


def _age_key(label: str) -> tuple[int, str]:
    found = re.match(r"\d+", label)
    return (int(found.group()) if found else 10_000, label)


def ordered(by: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows: age bands youngest first, other groupings by the standardised value, highest
    first (no value last)."""
    if by == "age_band":
        return sorted(rows, key=lambda r: _age_key(str(r["group_label"])))
    return sorted(rows, key=lambda r: (r["std_value"] is None, -(r["std_value"] or 0)))


def _inert(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (a name from the data such as ``=HYPERLINK(..)``
    gets a leading apostrophe, OWASP's advice against CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_bytes(rows: list[dict[str, Any]], lang: str) -> bytes:
    """The rows as CSV for a spreadsheet in the page's language: Danish Excel reads semicolons, decimal
    commas and UTF-8 with a byte-order mark; English gets commas and points. Values are rounded to 4
    decimals (the data hold no more precision than that)."""
    danish = lang == "da"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if danish else ",", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        cells = []
        for column in COLUMNS:
            value = r.get(column)
            if isinstance(value, float):
                text = "" if value != value else f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
                cells.append(text.replace(".", ",") if danish else text)
            else:
                cells.append(_inert("" if value is None else str(value)))
        writer.writerow(cells)
    return ("\ufeff" if danish else "").encode() + out.getvalue().encode("utf-8")
