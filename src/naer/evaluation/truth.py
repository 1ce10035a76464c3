"""The true effect of an initiative planted in a synthetic population (``naer synth --initiative``).

The truth is measured, not modelled: the initiative's area is generated twice with the same seed, once
with the planted change and once without (``naer.synth.planted`` changes only the chosen admissions, with
its own random stream, so everything else is the same to the byte), and each named indicator is counted
on both by the same definitions the evaluation uses. The difference, month by month, is what the
initiative did to *this* population - the effect on the treated (the estimand of every design here),
with none of the noise of a second, different population in it. Its mean over the initiative's months is
the number an estimate's interval should cover.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from naer.errors import UserError
from naer.evaluation.panel import panels
from naer.evaluation.register import Initiative
from naer.synth.planted import Planted
from naer.synth.run import SynthRequest

TRUTH = "truth/planted.json"


def planted_change(initiative: Initiative) -> Planted:
    """The initiative's ``planted`` section as the change the synthetic population gets."""
    if initiative.planted is None:
        raise UserError(
            f"initiative {initiative.id} plants nothing: add a planted section (change, share) to plant it"
        )
    return Planted(
        municipalities=frozenset(c.zfill(4) for c in initiative.area.municipalities),
        min_age=initiative.target.min_age,
        start=initiative.start,
        end=initiative.end,
        change=initiative.planted.change,
        share=initiative.planted.share,
        diagnoses=tuple(initiative.planted.diagnoses),
    )


def check(request: SynthRequest, initiative: Initiative) -> None:
    """The initiative can be planted in the requested data: its area is in it and its start inside."""
    planted = planted_change(initiative)
    from naer.synth.areas import resolve_area
    from naer.synth.model import load_model

    _name, municipalities = resolve_area(load_model(), request.area)
    missing = sorted(planted.municipalities - {m.code for m in municipalities})
    if missing:
        raise UserError(
            f"initiative {initiative.id} is planted in {', '.join(missing)}, which is not in --area "
            f"{request.area}"
        )
    if planted.start < request.start or planted.start > request.end:
        raise UserError(
            f"initiative {initiative.id} starts {planted.start}, outside the data ({request.start} to "
            f"{request.end})"
        )


def measure(request: SynthRequest, initiative: Initiative) -> dict[str, Any]:
    """Generate the initiative's area with and without the change (the request's seed and scale) and
    return the true effect on each named indicator; written to ``TRUTH`` in ``request.out`` as well."""
    from naer.indicators.run import build_warehouse
    from naer.synth.run import synthesize

    planted = planted_change(initiative)
    codes = tuple(sorted(planted.municipalities))
    ids = [i.id for i in initiative.indicators]
    ids += [r for r in initiative.resources if r not in ids]
    work = Path(tempfile.mkdtemp(prefix=".naer-truth-", dir=request.out.resolve().parent))
    try:
        series: dict[str, Any] = {}
        for name, change in (("with", planted), ("without", None)):
            data = work / name
            synthesize(replace(request, out=data, only=codes, planted=change, force=False, gzip=False))
            build_warehouse(data, work / f"{name}.duckdb")
            series[name], _ = panels(work / f"{name}.duckdb", ids, planted.min_age)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    effects = {each: _effect(series["with"][each], series["without"][each], planted) for each in ids}
    truth = {
        "initiative": initiative.id,
        "method": "the same seed with and without the change; each indicator counted on both",
        "change": planted.change,
        "share": planted.share,
        "municipalities": list(codes),
        "minAge": planted.min_age,
        "start": planted.start.isoformat(),
        "end": planted.end.isoformat(),
        "effects": effects,
    }
    target = request.out / TRUTH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth


def _effect(with_: Any, without: Any, planted: Planted) -> dict[str, Any]:
    units = [u for u in with_.units if u in planted.municipalities]
    months = [m for m in with_.months if m in without.months]
    a, _ = with_.area(units)
    b, _ = without.area(units)
    a = a[[with_.months.index(m) for m in months]]
    b = b[[without.months.index(m) for m in months]]
    post = [k for k, m in enumerate(months) if _month(planted.start) <= m < _month(planted.end)]
    diff = a - b
    return {
        "effect": float(np.nanmean(diff[post])) if post else float("nan"),
        "without": float(np.nanmean(b[post])) if post else float("nan"),
        "months": [months[k] for k in post],
        "monthly": [None if np.isnan(diff[k]) else float(diff[k]) for k in post],
        "per": with_.indicator.per,
    }


def _month(day: date) -> str:
    return day.isoformat()[:7]


def read(path: Path, initiative: str | None = None) -> dict[str, float]:
    """The true effect by indicator from a ``truth/planted.json`` (or the data folder holding one); with
    ``initiative``, a truth planted for another initiative is refused."""
    file = path / TRUTH if path.is_dir() else path
    problem = f"{file}: not a planted truth written by naer synth --initiative"
    if not file.is_file() or file.stat().st_size > 10 * 1024 * 1024:
        raise UserError(f"{problem} (not a file of at most 10 MiB)")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
        effects = {str(k): float(v["effect"]) for k, v in raw["effects"].items()}
        planted_for = raw["initiative"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        raise UserError(f"{problem} ({str(exc)[:200]})") from None
    if not all(math.isfinite(v) for v in effects.values()):
        raise UserError(f"{problem} (an effect is not a finite number)")
    if initiative is not None and planted_for != initiative:
        raise UserError(f"{file}: the truth of {str(planted_for)[:80]!r}, not of {initiative}")
    return effects
