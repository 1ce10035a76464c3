"""The designs against answers known in advance.

- Difference in differences against Card and Krueger (1994): full-time equivalent employment in fast-food
  restaurants in New Jersey and Pennsylvania before and after New Jersey's minimum wage rose, Table 3:
  New Jersey 20.44 then 21.03, Pennsylvania 23.33 then 21.17, a difference in differences of 2.76
  (2.75 from the rounded means).
- Synthetic control against California's Proposition 99 (Abadie, Diamond and Hainmueller 2010; the data in
  tests/data/california_prop99.csv): per-capita cigarette sales 1970-2000, the tax from 1989, the 38 other
  states as donors. Arkhangelsky et al. (2021, Table 1) give -19.6 packs for synthetic control on the
  outcome path and -27.3 for difference in differences against all 38; the weights on the outcome path
  put Utah, Montana and Nevada first.
- The interrupted time series' segmented regression against Linden (2015, Stata Journal 15(2), "Conducting
  interrupted time-series analysis for single- and multiple-group comparisons"), California alone, Newey-West
  with one lag: trend -1.7795, level change at 1989 -20.0581, trend change -1.4947.
- Synthetic control and the interrupted time series on series built so the answer is exact (a treated
  unit that is a convex mix of two others plus a planted step; a trend, a season and a step without noise).
- On panels like the region's (19 municipalities, 10 years of monthly rates with Poisson noise), with an
  effect planted or not, across many seeds: the share of 95 % intervals that hold the planted effect, and
  the share of runs that flag an effect where none was planted. NAER_EVAL_RUNS sets the number of seeds
  (small in CI; the figures in docs/evaluation.md are from more).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from naer.errors import UserError
from naer.evaluation.coverage import simulated_panel
from naer.evaluation.designs import Setting, _did_point, did, its, synthetic_control

RUNS = int(os.environ.get("NAER_EVAL_RUNS", "16"))


def test_did_reproduces_card_and_krueger() -> None:
    treated = np.array([20.44, 21.03])  # New Jersey, before and after
    control = np.array([[23.33, 21.17]])  # Pennsylvania
    effect = _did_point(treated, control, np.array([0]), np.array([1]))
    assert effect == pytest.approx(2.75, abs=0.005)  # the published 2.76 is from unrounded means


def test_synthetic_control_reproduces_california_s_proposition_99() -> None:
    from pathlib import Path

    text = (Path(__file__).parent / "data" / "california_prop99.csv").read_text(encoding="utf-8")
    lines = [line.split(";") for line in text.splitlines() if not line.startswith("#")]
    states = lines[0][1:]
    sales = np.array([[float(v) for v in row[1:]] for row in lines[1:]]).T  # states x years 1970-2000
    california, donors = sales[-1], sales[:-1]
    years = [f"{1970 + k}-01" for k in range(31)]
    setting = Setting(
        california,
        donors,
        np.ones(31),
        np.ones((38, 31)),
        np.arange(19),
        np.arange(19, 31),
        years,
        states[:-1],
    )
    assert _did_point(california, donors, setting.pre, setting.post) == pytest.approx(-27.35, abs=0.01)
    found = synthetic_control(setting)
    assert found.effect == pytest.approx(-19.6, abs=0.2)  # -19.51 at the exact optimum
    weights = found.detail["weights"]
    assert sorted(weights, key=weights.get, reverse=True)[:3] == ["Utah", "Montana", "Nevada"]


def test_segmented_regression_reproduces_linden_s_california_example() -> None:
    from pathlib import Path

    from naer.evaluation.designs import segmented

    text = (Path(__file__).parent / "data" / "california_prop99.csv").read_text(encoding="utf-8")
    rows = [line.split(";") for line in text.splitlines() if line[:1].isdigit()]  # the years' rows
    california = np.array([float(row[-1]) for row in rows])
    assert len(california) == 31
    fit, _ = segmented(california, np.arange(31), 19, lags=1)
    assert fit.params[1:] == pytest.approx([-1.7795, -20.0581, -1.4947], abs=1e-4)


def _months(n: int) -> list[str]:
    return [f"{2010 + m // 12}-{m % 12 + 1:02d}" for m in range(n)]


def test_synthetic_control_finds_a_step_in_a_mix_of_two_exactly() -> None:
    rng = np.random.default_rng(1)
    months = 72
    donors = 50 + np.cumsum(rng.normal(0, 1, (6, months)), axis=1)
    treated = 0.3 * donors[0] + 0.7 * donors[3]
    treated[60:] += 5.0
    setting = Setting(
        treated, donors, np.ones(months), np.ones((6, months)), np.arange(60), np.arange(60, 72),
        _months(months), [f"d{i}" for i in range(6)],
    )  # fmt: skip
    found = synthetic_control(setting)
    assert found.effect == pytest.approx(5.0, abs=1e-3)
    assert found.detail["weights"] == pytest.approx({"d0": 0.3, "d3": 0.7}, abs=1e-3)
    assert found.trusted


def test_interrupted_time_series_finds_a_step_exactly() -> None:
    months = 60
    t = np.arange(months, dtype=float)
    series = 20 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12)
    season = np.array([series[m] - (20 + 0.1 * m) for m in range(12)])
    exact = 20 + 0.1 * t + season[t.astype(int) % 12]
    exact[48:] += 4.0
    setting = Setting(exact, np.zeros((4, months)), np.ones(months), np.ones((4, months)), np.arange(48),
                      np.arange(48, 60), _months(months), ["a", "b", "c", "d"])  # fmt: skip
    found = its(setting)
    assert found.effect == pytest.approx(4.0, abs=1e-6)


@pytest.mark.parametrize("design", [did, synthetic_control, its], ids=["did", "synthetic-control", "its"])
def test_intervals_hold_a_planted_effect_and_flag_none_where_none_was_planted(design: object) -> None:
    planted = 6.0
    held = 0
    for seed in range(RUNS):
        found = design(simulated_panel(seed, planted))  # type: ignore[operator]
        held += found.low <= planted <= found.high
    flagged = 0
    for seed in range(RUNS):
        found = design(simulated_panel(1000 + seed, 0.0))  # type: ignore[operator]
        flagged += not (found.low <= 0 <= found.high)
    # Nominal: 95 % held, 5 % flagged. With RUNS seeds the check allows binomial slack (docs/evaluation.md
    # gives the rates from 400 seeds).
    assert held / RUNS >= 0.75, (held, RUNS)
    assert flagged / RUNS <= 0.25, (flagged, RUNS)


def test_too_little_data_is_a_clear_error() -> None:
    short = simulated_panel(1, 0.0, months=20, start=10)
    with pytest.raises(UserError, match="fewer than 12 months"):
        did(Setting(short.treated, short.controls, short.weights_treated, short.weights_controls,
                    np.arange(8), np.arange(8, 12), short.months, short.control_names))  # fmt: skip
    few = simulated_panel(1, 0.0, units=3)
    with pytest.raises(UserError, match="at least 4 are needed"):
        synthetic_control(few)
    with pytest.raises(UserError, match="fewer than 24 months"):
        its(Setting(short.treated, short.controls, short.weights_treated, short.weights_controls,
                    np.arange(10), np.arange(10, 20), short.months, short.control_names))  # fmt: skip
