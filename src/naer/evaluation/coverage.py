"""The method held to the truth: repeated synthetic populations with an initiative's effect planted, each
evaluated, counting how often the trusted design's 95 % interval holds the true effect - and, in the same
data, how often it flags an effect where none was planted (the initiative's months in a municipality
nothing was planted in, compared without the planted area).

Each seed is a new population (the region at a small scale, the planted area in full); the truth is the
same seed with and without the change (``naer.evaluation.truth``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from naer.evaluation.designs import DESIGNS, Setting
from naer.evaluation.register import Initiative


@dataclass
class Tally:
    runs: int = 0
    held: int = 0  # intervals holding the truth
    flagged: int = 0  # intervals without zero
    none_trusted: int = 0

    def add(self, low: float, high: float, truth: float) -> None:
        self.runs += 1
        self.held += low <= truth <= high
        self.flagged += not (low <= 0 <= high)


@dataclass
class Coverage:
    seeds: list[int]
    planted: dict[str, Tally] = field(default_factory=dict)  # by indicator: the planted area
    none: dict[str, Tally] = field(default_factory=dict)  # by indicator: the placebo area

    def total(self, which: str) -> Tally:
        found = Tally()
        for t in (self.planted if which == "planted" else self.none).values():
            found.runs += t.runs
            found.held += t.held
            found.flagged += t.flagged
            found.none_trusted += t.none_trusted
        return found


def placebo_of(initiative: Initiative, municipality: str) -> Initiative:
    """The initiative's months in another municipality, compared without the planted area."""
    return initiative.model_copy(update={
        "id": f"{initiative.id}-placebo", "planted": None,
        "area": initiative.area.model_copy(update={"municipalities": [municipality]}),
        "comparison": initiative.comparison.model_copy(
            update={"exclude": [*initiative.comparison.exclude, *initiative.area.municipalities]}
        ),
    })  # fmt: skip


def check_method(
    initiative: Initiative,
    seeds: list[int],
    placebo: str,
    *,
    scale: float = 0.01,
    at_least: int = 600,
    start: date = date(2015, 1, 1),
    end: date = date(2021, 12, 31),
    workers: int = 1,
    folder: Path | None = None,
    on_seed: Callable[[int], None] | None = None,
) -> Coverage:
    """Plant, measure, evaluate and count, once per seed (the region at ``scale``, the area in full)."""
    from naer.evaluation.run import evaluate
    from naer.evaluation.truth import measure, planted_change
    from naer.indicators.run import build_warehouse
    from naer.synth.run import SynthRequest, synthesize

    found = Coverage(seeds)
    other = placebo_of(initiative, placebo)
    with tempfile.TemporaryDirectory(prefix="naer-coverage-", dir=folder) as tmp:
        for seed in seeds:
            data, warehouse = Path(tmp) / f"d{seed}", Path(tmp) / f"w{seed}.duckdb"
            request = SynthRequest(
                "region-midt", start, end, seed, data, scale=scale, at_least=at_least,
                full=tuple(initiative.area.municipalities), workers=workers,
                planted=planted_change(initiative),
            )  # fmt: skip
            synthesize(request)
            truth = {name: v["effect"] for name, v in measure(request, initiative)["effects"].items()}
            build_warehouse(data, warehouse)
            for tallies, evaluated, known in ((found.planted, initiative, truth), (found.none, other, {})):
                for o in evaluate(evaluated, warehouse).outcomes:
                    tally = tallies.setdefault(o.indicator, Tally())
                    chosen = next((e for e in o.estimates if e.design == o.trusted), None)
                    if chosen is None:
                        tally.none_trusted += 1
                    else:
                        tally.add(chosen.low, chosen.high, known.get(o.indicator, 0.0))
            warehouse.unlink()
            shutil.rmtree(data)
            if on_seed:
                on_seed(seed)
    return found


def simulated_panel(
    seed: int, effect: float, units: int = 19, months: int = 120, start: int = 100, post: int = 12
) -> Setting:
    """Monthly rates per 1,000 citizen-years of municipalities of 1,000 to 20,000 citizens: their own
    level, a shared trend, season and month-to-month shock, and Poisson noise; ``effect`` added to the
    first municipality's rate in the evaluated months (the designs' own check, without the simulator)."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(1000, 20000, units)
    level = rng.normal(60, 8, units)
    shared = (
        np.linspace(0, 5, months)
        + 4 * np.sin(2 * np.pi * np.arange(months) / 12)
        + rng.normal(0, 1.5, months)
    )
    rate = level[:, None] + shared[None, :]
    rate[0, start : start + post] += effect
    exposure = np.repeat(size[:, None] / 12, months, axis=1)
    observed = rng.poisson(np.clip(rate, 0.1, None) * exposure / 1000) / exposure * 1000
    labels = [f"{2010 + m // 12}-{m % 12 + 1:02d}" for m in range(months)]
    return Setting(
        observed[0], observed[1:], exposure[0], exposure[1:], np.arange(start),
        np.arange(start, start + post), labels, [str(i) for i in range(1, units)],
    )  # fmt: skip


def check_designs(runs: int, effect: float = 6.0) -> dict[str, tuple[int, int]]:
    """(held, flagged) of each design over ``runs`` simulated panels with ``effect`` planted and as many
    without."""
    found = {}
    for name, design in DESIGNS.items():
        held = flagged = 0
        for seed in range(runs):
            planted = design(simulated_panel(seed, effect))
            held += planted.low <= effect <= planted.high
            none = design(simulated_panel(1000 + seed, 0.0))
            flagged += not (none.low <= 0 <= none.high)
        found[name] = (held, flagged)
    return found
