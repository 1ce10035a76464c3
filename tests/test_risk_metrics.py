"""The risk metrics against values worked out by hand or known from the literature's examples."""

from __future__ import annotations

import numpy as np
import pytest

from naer.risk import metrics


def test_auroc_by_hand_with_ties() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    assert metrics.auroc(y, p)[0] == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs in order
    tied = metrics.auroc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9]))[0]
    assert tied == pytest.approx((1 + 1 + 0.5 + 1) / 4)  # the tied pair counts half
    assert metrics.auroc(y, -p)[0] == pytest.approx(0.25)


def test_auroc_interval_matches_a_bootstrap() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    risk = rng.uniform(0, 0.4, n)
    y = (rng.uniform(size=n) < risk).astype(int)
    auc, lo, hi = metrics.auroc(y, risk)
    boots = []
    for _ in range(300):
        i = rng.integers(0, n, n)
        boots.append(metrics.auroc(y[i], risk[i])[0])
    se_boot = np.std(boots)
    assert (hi - lo) / (2 * 1.959964) == pytest.approx(se_boot, rel=0.15)
    assert lo < auc < hi


def test_auprc_and_brier() -> None:
    y = np.array([1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    # positives at ranks 1 and 3: precision 1/1 and 2/3
    assert metrics.auprc(y, p) == pytest.approx((1 + 2 / 3) / 2)
    assert metrics.brier(y, p) == pytest.approx(np.mean((p - y) ** 2))


def test_calibration_slope_and_intercept() -> None:
    rng = np.random.default_rng(11)
    n = 60_000
    logit = rng.normal(-2, 1, n)
    truth = 1 / (1 + np.exp(-logit))
    y = (rng.uniform(size=n) < truth).astype(int)
    slope, intercept = metrics.calibration(y, truth)
    assert slope == pytest.approx(1.0, abs=0.05) and intercept == pytest.approx(0.0, abs=0.05)
    over = 1 / (1 + np.exp(-2 * logit))  # too extreme: slope 0.5
    assert metrics.calibration(y, over)[0] == pytest.approx(0.5, abs=0.05)
    high = 1 / (1 + np.exp(-(logit + 1)))  # too high everywhere: intercept about -1
    assert metrics.calibration(y, high)[1] == pytest.approx(-1.0, abs=0.06)


def test_precision_at_the_top_and_net_benefit() -> None:
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    p = np.linspace(0.9, 0.0, 10)
    assert metrics.precision_at(y, p, 0.2) == pytest.approx(1.0)
    assert metrics.precision_at(y, p, 0.4) == pytest.approx(0.75)
    nb = metrics.net_benefit(y, p, np.array([0.5]))
    # acting on p >= 0.5: five people, three with the outcome: 3/10 - 2/10 * (0.5 / 0.5)
    assert nb[0] == pytest.approx(0.1)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="both outcomes"):
        metrics.auroc(np.array([1, 1]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.brier(np.array([2, 0]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="same length"):
        metrics.brier(np.array([1, 0]), np.array([0.2]))
