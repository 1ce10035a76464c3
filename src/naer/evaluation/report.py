"""The evaluation's report: results.json, the charts as SVG, and one HTML page in Danish for the steering
group (written in a folder beside the target and moved in place, so a failed run keeps the old one)."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from naer.evaluation import charts
from naer.evaluation.run import Evaluation, as_dict
from naer.risk.report import finite

HERE = Path(__file__).parent
NAMES = {"did": "Forskel i forskelle", "synthetic-control": "Syntetisk kontrol", "its": "Afbrudt tidsserie"}


def _number(value: float, digits: int = 2) -> str:
    return "–" if value != value else f"{value:,.{digits}f}".replace(",", " ").replace(".", ",")


def _percent(value: float) -> str:
    return "–" if value != value else f"{value * 100:+.0f} %".replace("-", "−")


def write(out: Path, found: Evaluation) -> list[Path]:
    import vl_convert as vlc

    initiative = found.initiative
    specs: dict[str, dict[str, Any]] = {}
    rows, sections = [], []
    for o in found.outcomes:
        by = {e.design: e for e in o.estimates}
        names = []
        start = initiative.start.isoformat()
        specs[f"{o.indicator}-counterfactual"] = charts.counterfactual(
            f"{o.title}: observeret og uden initiativet", o.months, start, o.estimates
        )
        names.append(f"{o.indicator}-counterfactual")
        if "did" in by:
            specs[f"{o.indicator}-event"] = charts.event_study(
                f"{o.title}: forskel til sammenligningen pr. kvartal", by["did"].detail["event_study"]
            )
            names.append(f"{o.indicator}-event")
        if "synthetic-control" in by:
            sc = by["synthetic-control"]
            specs[f"{o.indicator}-placebo"] = charts.placebos(
                f"{o.title}: placebo i rum", sc.effect, sc.detail["placebo_effects"]
            )
            names.append(f"{o.indicator}-placebo")
        trusted = by.get(o.trusted) if o.trusted else None
        rows.append({
            "title": o.title, "expected": "lavere" if o.expected == "lower" else "højere",
            "trusted_name": NAMES.get(o.trusted or "", "intet"),
            "effect": (f"{_number(trusted.effect)} ({_number(trusted.low)} til {_number(trusted.high)})"
                       if trusted else "–"),
            "relative": _percent(trusted.relative) if trusted else "–",
            "p": _number(trusted.p_value or float("nan"), 3) if trusted else "–",
            "mde": _number(o.mde.get(o.trusted or "", float("nan"))) if trusted else "–",
            "truth": "–" if o.truth is None else _number(o.truth),
            "covered": "–" if o.truth is None or not trusted else
                       ("ja" if trusted.low <= o.truth <= trusted.high else "nej"),
        })  # fmt: skip
        sections.append({
            "id": o.indicator, "title": o.title, "why": o.why, "charts": names,
            "designs": [
                {"name": NAMES[e.design], "effect": _number(e.effect),
                 "interval": f"{_number(e.low)} til {_number(e.high)}", "relative": _percent(e.relative),
                 "p": _number(e.p_value or float("nan"), 3),
                 "mde": _number(o.mde.get(e.design, float("nan"))),
                 "why": ("ja: " if e.trusted else "nej: ") + e.why,
                 "covered": "–" if o.truth is None else ("ja" if e.low <= o.truth <= e.high else "nej")}
                for e in o.estimates
            ],
            "has_truth": o.truth is not None,
        })  # fmt: skip
    alts = {name: str(spec.get("title", name)) for name, spec in specs.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, spec in specs.items():
            (tmp / f"{name}.svg").write_text(vlc.vegalite_to_svg(spec), encoding="utf-8")
        (tmp / "results.json").write_text(
            json.dumps(finite(as_dict(found)), indent=1, allow_nan=False), encoding="utf-8"
        )
        env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
        facts = {
            "name_da": initiative.name_da, "target_da": initiative.target.description_da,
            "start": initiative.start.isoformat(), "end": initiative.end.isoformat(),
            "owners": ", ".join(initiative.owners), "area": ", ".join(initiative.area.municipalities),
            "comparison": found.comparison,
        }  # fmt: skip
        html = env.get_template("report.html").render(
            e=facts, outcomes=[{**r, **s} for r, s in zip(rows, sections, strict=True)], alt=alts,
            truth=any(o.truth is not None for o in found.outcomes),
            resources=[{"title": r.title, "before": _number(r.before), "during": _number(r.during)}
                       for r in found.resources],
            limits=found.limits, made=date.today().isoformat(),
        )  # fmt: skip
        (tmp / "report.html").write_text(html, encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(out.iterdir())
