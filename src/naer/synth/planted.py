"""An effect planted in the synthetic population: from a day, in an area, for a target group, a share of
the acute admissions is handled otherwise - in a municipal acute bed instead, or averted (treated at home).

The change is made to a chunk's simulated events after the simulation, with its own random stream, so
the population, its every other contact and every other admission are the same as without it: the data
with and without the change differ in exactly the changed admissions. That is what makes the planted
effect a truth an evaluation can be held to (``naer.evaluation.truth`` measures it on both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from naer.synth.engine import ACUTE, DISP_ACUTE_BED, DISP_EXPIRED, ChunkEvents, ChunkSpec, Episode, Stay

Change = Literal["acute-bed-instead", "averted"]
STREAM = 7919  # the planted change's own random stream (beside the chunk's seed and index)


@dataclass(frozen=True)
class Planted:
    municipalities: frozenset[str]  # four-digit codes
    min_age: int
    start: date
    end: date  # exclusive
    change: Change
    share: float  # of the target group's acute admissions in the period
    diagnoses: tuple[str, ...] = ()  # SKS code prefixes (DJ44); empty: every acute admission


@dataclass(frozen=True)
class Changed:
    person: int
    start: int  # minutes since the data's start
    code: str
    change: Change


def plant(events: ChunkEvents, spec: ChunkSpec, planted: Planted) -> list[Changed]:
    """Change the chunk's events in place; return what was changed (nothing outside the area)."""
    if spec.municipality.code not in planted.municipalities:
        return []
    rng = np.random.default_rng([spec.seed, spec.global_index, STREAM])
    first = (planted.start - spec.start).days * 1440
    last = (planted.end - spec.start).days * 1440
    birth = events.people["birth"]
    parts: dict[int, list[int]] = {}
    for i, stay in enumerate(events.stays):
        if stay.part_of >= 0:
            parts.setdefault(stay.part_of, []).append(i)
    drop: set[int] = set()
    changed: list[Changed] = []
    step_downs = {(e.person, e.start): k for k, e in enumerate(events.episodes) if e.kind == "acutebed"}
    gone_episodes: set[int] = set()
    for i, stay in enumerate(events.stays):
        if stay.kind != ACUTE or stay.part_of >= 0 or not (first <= stay.start < last):
            continue
        if (stay.start // 1440 - int(birth[stay.person])) / 365.25 < planted.min_age:
            continue
        if planted.diagnoses and not stay.main_code.startswith(planted.diagnoses):
            continue
        admission = [i, *parts.get(i, [])]
        final = events.stays[admission[-1]]
        if final.disposition == DISP_EXPIRED:  # a death in hospital stays where it happened
            continue
        if rng.random() >= planted.share:
            continue
        drop.update(admission)
        end = final.end
        after = step_downs.get((stay.person, final.end + 30)) if final.disposition == DISP_ACUTE_BED else None
        if after is not None:  # the step-down after it is part of the same course
            gone_episodes.add(after)
            end = events.episodes[after].end
        if planted.change == "acute-bed-instead":
            events.episodes.append(Episode(stay.person, "acutebed", stay.start, end, stay.main_code))
        changed.append(Changed(stay.person, stay.start, stay.main_code, planted.change))
    if drop:
        events.stays[:] = _without(events.stays, drop)
        events.episodes[:] = [e for k, e in enumerate(events.episodes) if k not in gone_episodes]
    return changed


def _without(stays: list[Stay], drop: set[int]) -> list[Stay]:
    """The stays but the dropped ones, with each transfer's reference to its first stay renumbered."""
    kept: list[Stay] = []
    new_index: dict[int, int] = {}
    for i, stay in enumerate(stays):
        if i in drop:
            continue
        new_index[i] = len(kept)
        if stay.part_of >= 0:
            stay.part_of = new_index[stay.part_of]
        kept.append(stay)
    return kept
