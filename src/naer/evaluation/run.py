"""Evaluate one initiative: each named indicator, by each design, against the region's other
municipalities, with the minimum detectable effect, the resources before and during, and which design
the report trusts and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from naer.errors import UserError
from naer.evaluation.designs import DESIGNS, Estimate, Setting
from naer.evaluation.panel import Panel, panels
from naer.evaluation.register import Initiative

POWER_Z = 1.959963984540054 + 0.8416212335729143  # two-sided 5 % and 80 % power
PREFERENCE = ("synthetic-control", "did", "its")  # the first trusted one is the report's answer
MISSING = 0.25  # the share of months a comparison unit may be without a value


@dataclass
class Outcome:
    indicator: str
    title: str
    per: int
    expected: str
    estimates: list[Estimate]
    trusted: str | None
    why: str
    mde: dict[str, float]  # design -> minimum detectable effect at 80 % power (indicator's scale)
    pre_mean: float
    months: list[str] = field(default_factory=list)
    truth: float | None = None  # the planted true effect, where the data are synthetic with one


@dataclass
class Resources:
    indicator: str
    title: str
    before: float
    during: float


@dataclass
class Evaluation:
    initiative: Initiative
    outcomes: list[Outcome]
    resources: list[Resources]
    treated: list[str]
    comparison: list[str]
    limits: list[str]


def _setting(panel: Panel, initiative: Initiative, exclude: set[str], planning: bool = False) -> Setting:
    """The treated area's series against the comparison municipalities'. ``planning``: before the trial,
    every month of the data is "before" and none is evaluated (for the power)."""
    treated = [u for u in panel.units if u in {c.zfill(4) for c in initiative.area.municipalities}]
    if not treated:
        codes = ", ".join(initiative.area.municipalities)
        raise UserError(f"the area {codes} is not in the warehouse: no citizen of it was counted")
    start, end = initiative.start.isoformat()[:7], initiative.end.isoformat()[:7]
    if planning:
        first = last = len(panel.months)
    elif start not in panel.months:
        raise UserError(
            f"the initiative starts {initiative.start}, outside the data "
            f"({panel.months[0]} to {panel.months[-1]}): naer evaluate --power gives what a trial could show"
        )
    else:
        first = panel.months.index(start)
        last = panel.months.index(end) if end in panel.months else len(panel.months)
    # A comparison unit needs a value in most months up to the end (a share has no value in a month
    # without a single unit: a small municipality's discharges of citizens 65+; a quarter missing is kept)
    controls = [
        u for u in panel.units
        if u not in treated and u not in exclude
        and np.isnan(panel.value[panel.row(u), :last]).mean() <= MISSING
    ]  # fmt: skip
    c_rows = [panel.row(u) for u in controls]
    series, den = panel.area(treated)  # several treated municipalities are one treated area
    if np.nansum(den[:last]) <= 0:
        raise UserError(f"the target group has no citizens in the area for {panel.indicator.id}")
    return Setting(
        treated=series,
        controls=panel.value[c_rows],
        weights_treated=den,
        weights_controls=panel.denominator[c_rows],
        pre=np.arange(0, first),
        post=np.arange(first, last),
        months=panel.months,
        control_names=[panel.names.get(u, u) for u in controls],
    )


@dataclass
class Power:
    indicator: str
    title: str
    per: int
    level: float  # the area's mean over the last 12 months of the data
    detectable: dict[str, float]  # design -> minimum detectable effect at 80 % power


def power(initiative: Initiative, warehouse: Path) -> tuple[int, list[Power]]:
    """Before a trial: for each indicator, the smallest effect each design would find in 80 % of trials
    as long as the initiative's (its months), in its area and target group, from the data there is."""
    months = (
        (initiative.end.year - initiative.start.year) * 12 + initiative.end.month - initiative.start.month
    )
    ids = [i.id for i in initiative.indicators]
    found, _window = panels(warehouse, ids, initiative.target.min_age)
    exclude = {c.zfill(4) for c in initiative.comparison.exclude}
    result = []
    for each in ids:
        panel = found[each]
        setting = _setting(panel, initiative, exclude, planning=True)
        if len(setting.pre) < 24 + months:
            raise UserError(
                f"{len(setting.pre)} months of data: a {months}-month trial needs at least {24 + months} "
                "to be tried in the past"
            )
        detectable: dict[str, float] = {d: minimum_detectable(setting, d, months) for d in initiative.designs}
        level = float(np.nanmean(setting.treated[-12:]))
        result.append(Power(each, panel.indicator.title_da, panel.indicator.per, level, detectable))
    return months, result


def minimum_detectable(setting: Setting, design: str, duration: int) -> float:
    """The smallest effect the design would find in 80 % of trials of ``duration`` months: from the spread
    of its estimate in placebo trials started at earlier months of the pre-period (no effect there)."""
    estimates = []
    months = len(setting.pre)
    for start in range(max(24, months - 48), months - duration + 1, 3):
        fake = Setting(
            setting.treated[: start + duration], setting.controls[:, : start + duration],
            setting.weights_treated[: start + duration], setting.weights_controls[:, : start + duration],
            np.arange(0, start), np.arange(start, start + duration), setting.months, setting.control_names,
        )  # fmt: skip
        try:
            estimates.append(
                DESIGNS[design](fake).effect if design != "synthetic-control" else _sc_fast(fake)
            )
        except UserError:
            continue
    if len(estimates) < 3:
        return float("nan")
    return float(POWER_Z * np.std(estimates, ddof=1))


def _sc_fast(setting: Setting) -> float:
    from naer.evaluation.designs import _gap

    gap, _ = _gap(setting.treated, setting.controls, setting.pre, setting.post)
    return float(np.nanmean(gap[setting.post]))


def evaluate(
    initiative: Initiative,
    warehouse: Path,
    on_step: Callable[[str], None] | None = None,
    truth: dict[str, float] | None = None,
) -> Evaluation:
    """Every design on every indicator the initiative names; ``truth``: the planted true effect by
    indicator (``naer.evaluation.truth``), shown beside the estimates."""
    ids = [i.id for i in initiative.indicators]
    resources = [r for r in initiative.resources if r not in ids]
    found, window = panels(warehouse, ids + resources, initiative.target.min_age, until=initiative.end)
    if on_step:
        on_step("indicators by municipality and month")
    if initiative.end > window.end:
        raise UserError(f"the initiative ends {initiative.end}, outside the data (which ends {window.end})")
    exclude = {c.zfill(4) for c in initiative.comparison.exclude}
    outcomes = []
    setting: Setting | None = None
    for expected in initiative.indicators:
        panel = found[expected.id]
        setting = _setting(panel, initiative, exclude)
        estimates = []
        for design in initiative.designs:
            estimates.append(DESIGNS[design](setting))
            if on_step:
                on_step(f"{expected.id}: {design}")
        duration = len(setting.post)
        mde: dict[str, float] = {d: minimum_detectable(setting, d, duration) for d in initiative.designs}
        trusted, why = _trusted(estimates)
        outcomes.append(
            Outcome(
                expected.id, panel.indicator.title_da, panel.indicator.per, expected.expected, estimates,
                trusted, why, mde, float(np.nanmean(setting.treated[setting.pre][-24:])), panel.months,
                (truth or {}).get(expected.id),
            )
        )  # fmt: skip
    kept = []
    for rid in initiative.resources:
        panel = found[rid]
        s = _setting(panel, initiative, exclude)
        before = s.pre[-len(s.post) :]
        kept.append(Resources(rid, panel.indicator.title_da, float(np.nanmean(s.treated[before])),
                              float(np.nanmean(s.treated[s.post]))))  # fmt: skip
    assert setting is not None
    return Evaluation(
        initiative, outcomes, kept,
        [u for u in found[ids[0]].units if u in {c.zfill(4) for c in initiative.area.municipalities}],
        setting.control_names, _limits(initiative, setting),
    )  # fmt: skip


def _trusted(estimates: list[Estimate]) -> tuple[str | None, str]:
    by = {e.design: e for e in estimates}
    for design in PREFERENCE:
        estimate = by.get(design)
        if estimate is not None and estimate.trusted:
            return design, estimate.why
    reasons = "; ".join(f"{e.design}: {e.why}" for e in estimates)
    return None, f"intet design kan bære en konklusion her ({reasons})"


def _limits(initiative: Initiative, setting: Setting) -> list[str]:
    n = len(setting.control_names)
    return [
        f"Ét behandlet område og {n} sammenligningskommuner: den mindste p-værdi, placebo-testen kan "
        f"give, er 1/{n + 1} = {1 / (n + 1):.3f}, og intervallerne bygger på, at kommunerne ligner hinanden.",
        "Andre ændringer i området i samme periode (en ny læge, en ny rute til sygehuset) kan ikke skilles "
        "fra initiativets virkning.",
        "Hvis initiativet også påvirker sammenligningskommunerne (fælles sygehus, fælles personale), bliver "
        "virkningen undervurderet.",
        f"Perioden er {len(setting.post)} måneder; en virkning, der først kommer senere, ses ikke.",
    ]


def as_dict(found: Evaluation) -> dict[str, Any]:
    """The evaluation as JSON (results.json)."""
    return {
        "initiative": found.initiative.id,
        "start": found.initiative.start.isoformat(),
        "end": found.initiative.end.isoformat(),
        "treated": found.treated,
        "comparison": found.comparison,
        "outcomes": [
            {
                "indicator": o.indicator,
                "expected": o.expected,
                "trusted": o.trusted,
                "why": o.why,
                "pre_mean": o.pre_mean,
                "minimum_detectable": o.mde,
                "planted_truth": o.truth,
                "estimates": [
                    {"design": e.design, "effect": e.effect, "low": e.low, "high": e.high,
                     "relative": e.relative, "p_value": e.p_value, "trusted": e.trusted, "why": e.why}
                    for e in o.estimates
                ],
            }
            for o in found.outcomes
        ],
        "resources": [r.__dict__ for r in found.resources],
        "limits": found.limits,
        "made": date.today().isoformat(),
    }  # fmt: skip
