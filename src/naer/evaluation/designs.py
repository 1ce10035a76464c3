"""Three established designs for the effect of an initiative on one indicator of one treated area,
each against a counterfactual, each with an honest 95 % interval.

- **Difference in differences** against the comparison municipalities whose pre-period path runs most
  parallel to the treated area's: two-way fixed effects (statsmodels WLS, weighted by the citizen-years
  or units of each month), an event study by quarter with a joint test of the pre-period terms (do the
  paths run parallel before?). With one treated area, a cluster-robust interval is far too narrow (one
  cluster); the interval is Conley and Taber's: the distribution of the same estimate with each
  comparison municipality in the treated area's place.
- **Synthetic control** (Abadie, Diamond and Hainmueller 2010): non-negative weights summing to one on
  the region's other municipalities that reproduce the treated area's pre-period path (scipy's SLSQP),
  the gap after the start as the effect, and placebos in space (each municipality in turn) for the
  p-value (the rank of the post/pre RMSPE ratio) and the interval (the placebos' gaps).
- **Interrupted time series** of the treated area alone: segmented regression with a level and a slope
  change at the start and month-of-year seasonality (statsmodels OLS, Newey-West errors); the effect is
  the mean change over the evaluated months.

Each returns the effect on the indicator's scale (its value per ``per``), the same as a share of the
counterfactual level, and what the report needs to draw it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy.optimize import minimize, nnls
from scipy.stats import t as student_t
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from naer.errors import UserError

Z = 1.959963984540054
MIN_CONTROLS = 4  # fewer comparison units leave no interval worth the name (Conley-Taber, placebos)


@dataclass
class Estimate:
    design: str
    effect: float  # mean difference over the evaluated months, on the indicator's scale
    low: float
    high: float
    baseline: float  # the counterfactual's mean over the evaluated months
    p_value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # what the report draws (series, placebos ...)
    trusted: bool = True
    why: str = ""

    @property
    def relative(self) -> float:
        return self.effect / self.baseline if self.baseline else float("nan")


@dataclass(frozen=True)
class Setting:
    """One evaluation: a treated unit's series and the comparison units' (rows), the months before the
    start (``pre``: indices), the evaluated months (``post``), and each month's weight."""

    treated: np.ndarray  # months
    controls: np.ndarray  # units x months
    weights_treated: np.ndarray
    weights_controls: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    months: list[str]
    control_names: list[str]


def _complete(setting: Setting) -> None:
    if len(setting.pre) < 12:
        raise UserError("fewer than 12 months before the start: no design can be checked against the past")
    if len(setting.post) < 1:
        raise UserError("no evaluated month in the data: the period is outside the data")
    if setting.controls.shape[0] < MIN_CONTROLS:
        raise UserError(
            f"{setting.controls.shape[0]} comparison units: at least {MIN_CONTROLS} are needed for an "
            "interval"
        )


# -- difference in differences ---------------------------------------------------------------------------


def parallel_controls(setting: Setting, keep: int) -> np.ndarray:
    """The comparison units whose pre-period path runs most parallel to the treated unit's (the least
    squared difference after each path's own pre-period mean is taken away)."""
    return _closest(setting.treated, setting.controls, setting.pre, keep)


def _closest(target: np.ndarray, pool: np.ndarray, pre: np.ndarray, keep: int) -> np.ndarray:
    t = target[pre] - np.nanmean(target[pre])
    c = pool[:, pre]
    c = c - np.nanmean(c, axis=1, keepdims=True)
    distance = np.nanmean((c - t) ** 2, axis=1)
    return np.argsort(distance)[: max(min(keep, len(pool)), min(MIN_CONTROLS, len(pool)))]


def _interval(effect: float, placebos: np.ndarray) -> tuple[float, float, float]:
    """A 95 % interval and a two-sided p-value from the estimate's spread under no effect (the placebos):
    Student's t with the placebos' degrees of freedom, since a region has 18 comparison municipalities
    and the 2.5 % and 97.5 % quantiles of 18 values are nearly their extremes (coverage near 17/19)."""
    spread = float(np.std(placebos, ddof=1)) if len(placebos) > 1 else float("inf")
    q = float(student_t.ppf(0.975, max(len(placebos) - 1, 1)))
    t_stat = abs(effect) / spread if spread > 0 else float("inf")
    p_value = float(2 * student_t.sf(t_stat, max(len(placebos) - 1, 1)))
    return effect - q * spread, effect + q * spread, p_value


def _noise(unit: np.ndarray, others: np.ndarray, pre: np.ndarray) -> float:
    """The month-to-month spread of a unit's pre-period path around the others' mean path."""
    return float(np.nanstd(unit[pre] - np.nanmean(others[:, pre], axis=0)))


def _did_point(treated: np.ndarray, controls: np.ndarray, pre: np.ndarray, post: np.ndarray) -> float:
    """The 2x2 difference in differences of means (equal to two-way fixed effects on a balanced panel with
    one treated unit and one start)."""
    return float(
        (np.nanmean(treated[post]) - np.nanmean(treated[pre]))
        - (np.nanmean(controls[:, post]) - np.nanmean(controls[:, pre]))
    )


def did(setting: Setting, keep: int = 8) -> Estimate:
    _complete(setting)
    chosen = parallel_controls(setting, keep)
    controls = setting.controls[chosen]
    effect = _did_point(setting.treated, controls, setting.pre, setting.post)
    # Conley-Taber: the estimate's distribution under no effect, each comparison unit in the treated place,
    # each scaled to the treated unit's own noise (Ferman and Pinto 2019: a small area's monthly rate is
    # noisier than a large one's, and the placebos must be as noisy as the estimate they stand for)
    noise = _noise(setting.treated, controls, setting.pre)
    placebos = []
    everyone = setting.controls
    for k in range(everyone.shape[0]):  # every comparison unit of the pool, with its own parallel peers
        rest = np.delete(everyone, k, axis=0)
        peers = rest[_closest(everyone[k], rest, setting.pre, controls.shape[0])]
        scale = noise / max(_noise(everyone[k], peers, setting.pre), 1e-12)
        placebos.append(_did_point(everyone[k], peers, setting.pre, setting.post) * scale)
    low, high, p_value = _interval(effect, np.asarray(placebos))
    baseline = float(np.nanmean(setting.treated[setting.post]) - effect)
    study, pre_test = _event_study(setting, chosen)
    trusted = pre_test >= 0.05
    why = (
        f"forløbene var parallelle før start (fælles test af kvartalerne før start: p = {pre_test:.2f})"
        if trusted
        else f"forløbene var ikke parallelle før start (p = {pre_test:.3f}): forskellen ville bære den "
        "tidligere afvigelse med sig"
    )
    return Estimate(
        "did", effect, low, high, baseline, p_value,
        {"event_study": study, "pre_trend_p": pre_test,
         "controls": [setting.control_names[i] for i in chosen], "placebos": placebos},
        trusted, why,
    )  # fmt: skip


def _event_study(setting: Setting, chosen: np.ndarray) -> tuple[list[dict[str, float]], float]:
    """Two-way fixed effects with a term per quarter relative to the start (the last pre-period quarter
    left out): each term's estimate and interval, and the joint test that the pre-period terms are zero."""
    last = int(setting.post[-1]) + 1  # months after the evaluated ones are left out
    units = np.vstack([setting.treated, setting.controls[chosen]])[:, :last]
    weights = np.vstack([setting.weights_treated, setting.weights_controls[chosen]])[:, :last]
    n_units, n_months = units.shape
    start = int(setting.post[0])
    quarters = (np.arange(n_months) - start) // 3
    shown = [q for q in sorted(set(quarters.tolist())) if q >= -8]
    terms = [q for q in shown if q != -1]
    rows, ys, ws = [], [], []
    for i in range(n_units):
        for t in range(n_months):
            if np.isnan(units[i, t]):
                continue
            x = np.zeros(n_units + n_months + len(terms))
            x[i] = 1.0
            if t > 0:  # (the first month is the reference: unit and month terms together would be collinear)
                x[n_units + t] = 1.0
            if i == 0 and quarters[t] in terms:
                x[n_units + n_months + terms.index(int(quarters[t]))] = 1.0
            rows.append(x)
            ys.append(units[i, t])
            ws.append(max(float(weights[i, t]), 1e-9))
    design = np.asarray(rows)
    with warnings.catch_warnings():  # a quarter every unit lacks makes the design rank-deficient: expected
        warnings.simplefilter("ignore", SingularMatrixWarning)
        fit = sm.WLS(np.asarray(ys), design, weights=np.asarray(ws)).fit(cov_type="HC1")
    params = np.asarray(fit.params)
    cov = np.asarray(fit.cov_params())
    base = n_units + n_months
    study = []
    for k, q in enumerate(terms):
        se = float(np.sqrt(max(cov[base + k, base + k], 0.0)))
        value = float(params[base + k])
        study.append({"quarter": float(q), "effect": value, "low": value - Z * se, "high": value + Z * se})
    study.append({"quarter": -1.0, "effect": 0.0, "low": 0.0, "high": 0.0})
    leads = [base + k for k, q in enumerate(terms) if q < -1]
    if not leads:
        return sorted(study, key=lambda s: s["quarter"]), 1.0
    restriction = np.zeros((len(leads), design.shape[1]))
    for r, column in enumerate(leads):
        restriction[r, column] = 1.0
    test = fit.wald_test(restriction, scalar=True)
    return sorted(study, key=lambda s: s["quarter"]), float(test.pvalue)


# -- synthetic control -----------------------------------------------------------------------------------


def _weights(target: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one that bring the donors' pre-period paths closest to the target's.

    The loss is the mean squared gap on the target's own scale: SLSQP on raw sums of squares of values
    near 100 stops where it starts (California's cigarette sales: uniform weights, -41.7 packs instead of
    -19.5). Where SLSQP still fails, non-negative least squares with the sum held by a heavy penalty."""
    n = donors.shape[0]
    mask = ~np.isnan(target) & ~np.isnan(donors).any(axis=0)
    scale = float(np.std(target[mask])) or float(np.mean(np.abs(target[mask]))) or 1.0
    t, d = target[mask] / scale, donors[:, mask] / scale
    m = max(len(t), 1)

    def loss(w: np.ndarray) -> float:
        return float(np.sum((t - w @ d) ** 2) / m)

    def grad(w: np.ndarray) -> np.ndarray:
        return np.asarray(-2 * d @ (t - w @ d) / m)

    found = minimize(
        loss, np.full(n, 1 / n), jac=grad, method="SLSQP", bounds=[(0.0, 1.0)] * n,
        constraints=({"type": "eq", "fun": lambda w: np.sum(w) - 1, "jac": lambda w: np.ones_like(w)},),
        options={"maxiter": 1000, "ftol": 1e-12},
    )  # fmt: skip
    w = np.clip(found.x, 0, None)
    if not found.success or not np.isfinite(w).all():
        penalty = 1e3 * max(float(np.abs(d).max()), 1.0)
        w, _ = nnls(np.vstack([d.T, np.full((1, n), penalty)]), np.concatenate([t, [penalty]]))
    return np.asarray(w / w.sum() if w.sum() > 0 else np.full(n, 1 / n))


def _gap(
    target: np.ndarray, donors: np.ndarray, pre: np.ndarray, post: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # A donor's month without a value (a share with no unit that month) takes the donor's own mean
    donors = np.where(np.isnan(donors), np.nanmean(donors, axis=1, keepdims=True), donors)
    w = _weights(target[pre], donors[:, pre])
    synthetic = w @ donors
    return target - synthetic, w


def synthetic_control(setting: Setting) -> Estimate:
    _complete(setting)
    gap, weights = _gap(setting.treated, setting.controls, setting.pre, setting.post)
    effect = float(np.nanmean(gap[setting.post]))

    def rmspe(values: np.ndarray, months: np.ndarray) -> float:
        return float(np.sqrt(np.nanmean(values[months] ** 2)))

    ratio = rmspe(gap, setting.post) / max(rmspe(gap, setting.pre), 1e-12)
    placebo_effects, placebo_ratios, placebo_gaps = [], [], []
    for k in range(setting.controls.shape[0]):
        donors = np.delete(setting.controls, k, axis=0)
        g, _ = _gap(setting.controls[k], donors, setting.pre, setting.post)
        scale = rmspe(gap, setting.pre) / max(rmspe(g, setting.pre), 1e-12)  # as noisy as the treated fit
        placebo_effects.append(float(np.nanmean(g[setting.post])) * scale)
        placebo_ratios.append(rmspe(g, setting.post) / max(rmspe(g, setting.pre), 1e-12))
        placebo_gaps.append(g.tolist())
    low, high, _ = _interval(effect, np.asarray(placebo_effects))
    # The p-value is Abadie's: the rank of the treated area's post/pre RMSPE ratio among all the placebos'
    p_value = float((np.sum(np.asarray(placebo_ratios) >= ratio) + 1) / (len(placebo_ratios) + 1))
    observed = setting.treated
    synthetic = observed - gap
    baseline = float(np.nanmean(synthetic[setting.post]))
    pre_fit = rmspe(gap, setting.pre)
    noise = float(np.nanstd(setting.treated[setting.pre]))
    trusted = pre_fit <= noise
    why = (
        f"det syntetiske område fulgte det behandlede før start (RMSPE før start {pre_fit:.2f} mod "
        f"månedsudsvingene {noise:.2f})"
        if trusted
        else "ingen vægtning af de andre kommuner fulgte det behandlede område før start "
        f"(RMSPE før start {pre_fit:.2f}, større end månedsudsvingene {noise:.2f})"
    )
    return Estimate(
        "synthetic-control", effect, low, high, baseline, p_value,
        {"observed": observed.tolist(), "synthetic": synthetic.tolist(),
         "weights": {setting.control_names[i]: float(w) for i, w in enumerate(weights) if w > 0.005},
         "placebo_effects": placebo_effects, "placebo_gaps": placebo_gaps, "gap": gap.tolist(),
         "ratio": ratio},
        trusted, why,
    )  # fmt: skip


# -- interrupted time series -----------------------------------------------------------------------------


def segmented(
    y: np.ndarray, times: np.ndarray, t0: int, extra: np.ndarray | None = None, lags: int = 3
) -> tuple[Any, np.ndarray]:
    """Segmented regression: a level, a trend, a level change and a trend change at ``t0`` (and ``extra``
    columns: the season), by OLS with Newey-West errors (``lags``). Returns the fit and its design."""
    time = times.astype(float)
    after = (times >= t0).astype(float)
    since = np.where(after > 0, times - t0, 0).astype(float)
    columns = [np.ones(len(times)), time, after, since]
    design = np.column_stack([*columns, extra] if extra is not None else columns)
    with warnings.catch_warnings():  # a short period makes the design rank-deficient: the error says so
        warnings.simplefilter("ignore", SingularMatrixWarning)
        return sm.OLS(y, design).fit(cov_type="HAC", cov_kwds={"maxlags": lags}), design


def its(setting: Setting) -> Estimate:
    if len(setting.pre) < 24:
        raise UserError("fewer than 24 months before the start: the season and trend cannot be told apart")
    if len(setting.post) < 1:
        raise UserError("no evaluated month in the data: the period is outside the data")
    months = np.concatenate([setting.pre, setting.post])
    y = setting.treated[months]
    keep = ~np.isnan(y)
    t0 = int(setting.post[0])
    after = (months >= t0).astype(float)
    season = np.zeros((len(months), 11))
    for row, m in enumerate(months):
        month_of_year = int(setting.months[m][5:7])
        if month_of_year > 1:
            season[row, month_of_year - 2] = 1.0
    fit, design = segmented(y[keep], months[keep], t0, season[keep], lags=3)
    mean_since = float(np.mean(setting.post - t0))
    contrast = np.zeros(design.shape[1])
    contrast[2], contrast[3] = 1.0, mean_since
    test = fit.t_test(contrast)
    effect = float(np.asarray(test.effect).ravel()[0])
    se = float(np.asarray(test.sd).ravel()[0])
    p_value = float(np.asarray(test.pvalue).ravel()[0])
    fitted = design @ np.asarray(fit.params)
    counter = fitted - design[:, 2] * fit.params[2] - design[:, 3] * fit.params[3]
    baseline = float(np.mean(counter[after[keep] > 0]))
    return Estimate(
        "its", effect, effect - Z * se, effect + Z * se, baseline, p_value,
        {"observed": y.tolist(), "counterfactual": counter.tolist(),
         "months": [setting.months[m] for m in months]},
        True,
        "intet sammenligningsområde: en ændring ved start, der også rammer resten af regionen (en ny "
        "national regel, en hård vinter), ville blive regnet som initiativets",
    )  # fmt: skip


DESIGNS = {"did": did, "synthetic-control": synthetic_control, "its": its}
