"""Effects planted in the synthetic population (``naer synth --initiative``): the change touches only the
chosen admissions, the truth is measured with and without it, and an evaluation is shown beside it."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from scipy.stats import binom

from naer.errors import UserError
from naer.evaluation.coverage import check_method
from naer.evaluation.register import find
from naer.evaluation.truth import check, measure, planted_change, read
from naer.synth.planted import Planted
from naer.synth.run import SynthRequest, synthesize

from .conftest import read_ndjson

START, END = date(2018, 1, 1), date(2020, 12, 31)


def _request(out: Path, planted: Planted | None = None) -> SynthRequest:
    return SynthRequest("samsoe", START, END, 3, out, planted=planted)


def _trial(**change: Any) -> Planted:
    return replace(planted_change(find("samsoe-2019")), **change)


def _acute(folder: Path, kind: str) -> set[tuple[str, str]]:
    """(patient, start) of the encounters of one kind (acute-admission, acute-bed)."""
    found = set()
    for r in read_ndjson(folder / "Encounter.ndjson"):
        codes = {c.get("code") for t in r.get("type", []) for c in t.get("coding", [])}
        if kind in codes and "partOf" not in r:
            found.add((r["subject"]["reference"].removeprefix("Patient/"), r["period"]["start"][:16]))
    return found


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("planted")
    synthesize(_request(folder / "without"))
    synthesize(_request(folder / "with", _trial(share=0.5)))
    return folder / "without", folder / "with"


def test_the_change_is_made_to_the_chosen_admissions_and_nothing_else(pair: tuple[Path, Path]) -> None:
    without, with_ = pair
    for kind in ("Patient", "Observation", "Organization"):
        assert (without / f"{kind}.ndjson").read_bytes() == (with_ / f"{kind}.ndjson").read_bytes()
    with (with_ / "truth" / "planted.csv").open(encoding="utf-8") as fh:
        changed = list(csv.DictReader(fh))
    assert len(changed) >= 10
    assert {row["change"] for row in changed} == {"acute-bed-instead"}
    assert all("2019-05-01" <= row["admission_start"][:10] < "2020-05-01" for row in changed)
    moved = {(row["patient_id"], row["admission_start"][:16]) for row in changed}
    admitted_before, admitted_after = _acute(without, "acute-admission"), _acute(with_, "acute-admission")
    assert admitted_before - admitted_after == moved and admitted_after < admitted_before
    assert moved <= _acute(with_, "acute-bed") and not moved & _acute(without, "acute-bed")
    ages = {r["id"]: r["birthDate"] for r in read_ndjson(with_ / "Patient.ndjson")}
    assert all(int(row["admission_start"][:4]) - int(ages[row["patient_id"]][:4]) >= 64 for row in changed)
    manifest = orjson.loads((with_ / "manifest.json").read_bytes())
    assert manifest["naer"]["planted"]["rows"] == len(changed)


def test_a_change_planted_elsewhere_leaves_the_data_byte_for_byte(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    without, _ = pair
    synthesize(_request(tmp_path / "elsewhere", _trial(municipalities=frozenset({"0751"}))))
    for path in without.glob("*.ndjson"):
        assert (tmp_path / "elsewhere" / path.name).read_bytes() == path.read_bytes(), path.name


def test_averted_admissions_and_a_diagnosis_filter(tmp_path: Path) -> None:
    synthesize(_request(tmp_path / "d", _trial(change="averted", share=1.0, diagnoses=("DJ", "DI"))))
    with (tmp_path / "d" / "truth" / "planted.csv").open(encoding="utf-8") as fh:
        changed = list(csv.DictReader(fh))
    assert changed and all(row["diagnosis"][:2] in ("DJ", "DI") for row in changed)
    assert not {(r["patient_id"], r["admission_start"][:16]) for r in changed} & _acute(
        tmp_path / "d", "acute-bed"
    )


def test_the_truth_is_the_same_population_with_and_without(tmp_path: Path) -> None:
    trial = find("samsoe-2019")
    request = _request(tmp_path / "data", planted_change(trial))
    synthesize(request)
    truth = measure(request, trial)
    effects = truth["effects"]
    assert set(effects) == {"preventable-65plus", "acute-admissions", "readmission-30d", "acute-bed-stays",
                            "bed-days"}  # fmt: skip
    assert effects["acute-admissions"]["effect"] < 0 < effects["acute-bed-stays"]["effect"]
    assert effects["bed-days"]["effect"] < 0
    assert len(effects["acute-admissions"]["months"]) == 12
    assert read(tmp_path / "data") == {k: v["effect"] for k, v in effects.items()}


def test_planting_refuses_what_it_cannot_plant(tmp_path: Path, naer: Callable[..., Any]) -> None:
    trial = find("samsoe-2019")
    with pytest.raises(UserError, match="which is not in --area 727"):
        check(replace(_request(tmp_path / "x"), area="727"), trial)
    done = naer("synth", "--initiative", "samsoe-2019", "--area", "727", "--scale", "0.01",
                "--out", str(tmp_path / "elsewhere"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and not (tmp_path / "elsewhere").exists()
    with pytest.raises(UserError, match="plants nothing"):
        planted_change(trial.model_copy(update={"planted": None}))
    with pytest.raises(UserError, match="outside the data"):
        check(replace(_request(tmp_path / "x"), start=date(2020, 1, 1)), trial)
    done = naer("synth", "--initiative", "no-such-one", "--out", str(tmp_path / "y"), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (Path(__file__).parents[1] / "src/naer/evaluation/initiatives/samsoe-2019.yaml")
        .read_text(encoding="utf-8")
        .replace("share: 0.4", "share: 1.5"),
        encoding="utf-8",
    )
    done = naer("synth", "--initiative", str(bad), "--out", str(tmp_path / "z"), cwd=tmp_path)
    assert done.returncode == 2 and "planted.share" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(UserError, match="not a planted truth"):
        read(bad)


def test_intervals_hold_the_planted_truth_and_rarely_flag_where_none_was_planted(tmp_path: Path) -> None:
    """The method against the truth on whole synthetic populations (NAER_EVAL_SEEDS of them; the bench
    runs 40: docs/evaluation.md): the trial planted on Samsø, and its months in Syddjurs, planted nothing."""
    seeds = list(range(101, 101 + int(os.environ.get("NAER_EVAL_SEEDS", "2"))))
    found = check_method(find("samsoe-2019"), seeds, "0706", workers=2, folder=tmp_path)
    planted, none = found.total("planted"), found.total("none")
    assert planted.runs >= 2 * len(seeds) and none.runs >= 2 * len(seeds)  # most have a trusted design
    # Binomial bounds, not shares: with 8 trials a share is coarse. A method that holds the truth in 90 % of
    # trials and flags no effect in 10 % (the bench's 40 seeds: 89 % and 9 %) fails these in under 1 % of
    # seed sets; a method at 50 % coverage fails the first in most.
    assert planted.held >= binom.ppf(0.01, planted.runs, 0.9), found.planted
    assert none.flagged <= binom.isf(0.01, none.runs, 0.1), found.none
