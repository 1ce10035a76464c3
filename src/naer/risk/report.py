"""The evaluation's report: metrics.json, the charts as SVG, and one HTML page a clinician or analyst
reads."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from naer.risk import charts

HERE = Path(__file__).parent


def finite(value: Any) -> Any:
    """NaN and infinities as null, all the way down (JSON has no NaN)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write(out: Path, result: dict[str, Any], curves: dict[str, Any]) -> list[Path]:
    """Write the report into ``out`` (made in a temporary folder beside it and moved in place, so a failed run
    leaves the old report)."""
    import vl_convert as vlc

    specs = {
        "calibration": charts.calibration(
            curves["calibration"], "Acute admission within 12 months: calibration"
        ),
        "decision_curve": charts.decision_curve(
            curves["decision"], "Acute admission within 12 months: decision curve"
        ),
        "calibration_readmission": charts.calibration(
            curves["calibration_readmission"], "Readmission within 30 days: calibration"
        ),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        svgs = {}
        for name, spec in specs.items():
            svgs[name] = vlc.vegalite_to_svg(spec)
            (tmp / f"{name}.svg").write_text(svgs[name], encoding="utf-8")
            (tmp / f"{name}.vl.json").write_text(json.dumps(spec), encoding="utf-8")
        (tmp / "metrics.json").write_text(
            json.dumps(finite(result), indent=1, allow_nan=False), encoding="utf-8"
        )
        env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
        html = env.get_template("report.html").render(m=result, svg=svgs)
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
