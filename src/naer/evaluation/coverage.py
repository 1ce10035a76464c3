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
