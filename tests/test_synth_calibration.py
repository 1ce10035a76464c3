"""The generated population reproduces published Danish figures, and its risk has real signal."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from naer.synth.report import measure
from tests.conftest import read_ndjson


def test_region_rates_are_within_tolerance_of_their_targets(region: Path) -> None:
    rows = measure(region)
    assert len(rows) >= 11
    off = [f"{r.key}: {r.compared:.4g} vs {r.target:.4g} ({r.deviation:+.1%})" for r in rows if not r.within]
    assert not off
    for r in rows:
        assert abs(r.deviation) <= 0.15


def test_samsoe_is_older_than_the_region_as_published(samsoe: Path, region: Path) -> None:
    share = {r.key: r for r in measure(samsoe)}["share_65plus"]
    assert share.target == 0.33
    assert share.within
    assert share.crude > {r.key: r for r in measure(region)}["share_65plus"].crude + 0.05


def _auroc(score: np.ndarray, label: np.ndarray) -> float:
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score):  # mid-ranks for ties
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    pos = label.sum()
    neg = len(label) - pos
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def test_true_hazard_predicts_admissions_well_but_not_perfectly(region: Path) -> None:
    """The recorded hazard is the oracle: informative (the data has signal), yet far from 1 (chance)."""
    admitted: dict[int, set[str]] = defaultdict(set)
    for e in read_ndjson(region / "Encounter.ndjson"):
        if e["type"][0]["coding"][0]["code"] == "acute-admission" and "partOf" not in e:
            admitted[int(e["period"]["start"][:4])].add(e["subject"]["reference"].split("/")[1])
    scores, labels = [], []
    with (region / "truth" / "acute_admission_hazard.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["year"] == "2023":
                scores.append(float(row["annual_hazard"]))
                labels.append(row["patient_id"] in admitted[2023])
    auroc = _auroc(np.asarray(scores), np.asarray(labels))
    assert 0.70 < auroc < 0.92, auroc


def test_truth_holds_the_unobserved_frailty_and_deterioration(region: Path) -> None:
    """Beside the hazard, the truth file holds what no record shows (bench/risk_ceiling.py reads it): the
    frailty, gamma with mean 1 and shape 2 among the citizens of the first year, and the latent unstable
    state, rare and raising the hazard within the same age."""
    with (region / "truth" / "acute_admission_hazard.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    first = [float(r["frailty"]) for r in rows if r["year"] == "2015"]
    assert abs(np.mean(first) - 1) < 0.05 and abs(np.var(first) - 0.5) < 0.1  # gamma(2, 1/2): variance 1/2
    unstable = np.asarray([r["unstable"] == "1" for r in rows])
    assert 0.003 < unstable.mean() < 0.1
    # a citizen's hazard over their frailty is the same person's hazard without it, and higher when unstable
    base = np.asarray([float(r["annual_hazard"]) / float(r["frailty"]) for r in rows])
    assert np.median(base[unstable]) > 2 * np.median(base[~unstable])
