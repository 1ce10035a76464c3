"""Rates, shares and their uncertainty: what lets a planner tell a real difference from noise.

- Rates: exact (Garwood) Poisson intervals for counts, which is the one-stratum case of Fay and Feuer's
  gamma interval used for directly age-standardised rates (Fay MP, Feuer EJ. Stat Med 1997;16:791-801).
  Sums that are not counts (bed days) carry their own variance (sum of squares) into the same interval.
- Shares: Wilson score intervals; standardised shares a normal interval.
- Funnel plots compare each unit's indirectly standardised value with the whole area's, with control limits
  at 95 % and 99.8 % for its precision (Spiegelhalter DJ. Stat Med 2005;24:1185-1202).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import chi2, norm

from naer.indicators.definition import Indicator, groupings

Z95 = float(norm.ppf(0.975))


def gamma_interval(
    y: np.ndarray, v: np.ndarray, wm: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, ...]:
    """Fay-Feuer interval of a weighted sum of Poisson-like counts: value ``y``, variance ``v``, largest
    weight ``wm``. With one stratum and unit weights it is the exact Poisson interval."""
    a = (1 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(y > 0, v / (2 * y) * chi2.ppf(a, 2 * y * y / np.where(v > 0, v, 1)), 0.0)
        vv, yy = v + wm * wm, y + wm
        hi = vv / (2 * yy) * chi2.ppf(1 - a, 2 * yy * yy / vv)
    return np.nan_to_num(lo), np.nan_to_num(hi)


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.nan_to_num(centre - half), np.nan_to_num(centre + half)


def funnel_limits(kind: str, centre: float, precision: np.ndarray, coverage: float) -> tuple[np.ndarray, ...]:
    """Control limits around ``centre`` at each precision: expected events for a rate, units for a share."""
    p = (1 - coverage) / 2
    e = np.asarray(precision, dtype=float)
    if kind == "rate":
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = chi2.ppf(p, 2 * e) / (2 * e)
            hi = chi2.ppf(1 - p, 2 * e + 2) / (2 * e)
        return np.nan_to_num(lo) * centre, np.nan_to_num(hi) * centre
    z = float(norm.ppf(1 - p))
    theta = centre / 100
    half = z * np.sqrt(theta * (1 - theta) / np.maximum(e, 1e-9))
    return np.clip(theta - half, 0, 1) * 100, np.clip(theta + half, 0, 1) * 100


def summarise(indicator: Indicator, cells: dict[str, np.ndarray], first_band: int) -> dict[str, Any]:
    """From cells (group, band, period: events x, sum of squares x2, largest xmax, denominator n) to one
    row per (period, group)."""
    per = indicator.per
    period, grp = (np.asarray(cells[k]).astype(str) for k in ("period", "grp"))
    band_i = np.asarray(cells["band"], dtype=int)
    x, x2, xmax, n = (np.asarray(cells[k], dtype=float) for k in ("x", "x2", "xmax", "n"))
    nb = len(groupings()["age_bands"])
    keys = np.char.add(np.char.add(period, "\x1f"), grp)
    uk, row = np.unique(keys, return_inverse=True)
    rows = len(uk)
    # Per-period, per-band totals of the whole area: the reference for indirect standardisation, and for
    # shares the standard age structure.
    up, prow = np.unique(period, return_inverse=True)
    tot_x = np.zeros((len(up), nb))
    tot_n = np.zeros((len(up), nb))
    np.add.at(tot_x, (prow, band_i), x)
    np.add.at(tot_n, (prow, band_i), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_rate = np.nan_to_num(tot_x / tot_n)
    if indicator.kind == "rate":
        std = np.zeros(nb)
        std[first_band:] = groupings()["standard_population"][first_band:]
        weight_of = np.broadcast_to(std, (len(up), nb))
    else:
        weight_of = tot_n
    # Weights renormalised over the bands in which the unit has a denominator.
    cell_w = weight_of[prow, band_i] * (n > 0)
    wsum = np.zeros(rows)
    np.add.at(wsum, row, cell_w)
    w = np.divide(cell_w, wsum[row], out=np.zeros_like(cell_w), where=wsum[row] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(n > 0, x / n, 0.0)
        term_v = np.where(n > 0, w * w * x2 / (n * n), 0.0)
        term_wm = np.where(n > 0, w * xmax / n, 0.0)

    def total(values: np.ndarray) -> np.ndarray:
        out = np.zeros(rows)
        np.add.at(out, row, values)
        return out

    num, den = total(x), total(n)
    num2 = total(x2)
    expected = total(n * ref_rate[prow, band_i])
    std_value = total(w * r)
    std_v = total(term_v)
    std_wm = np.zeros(rows)
    np.maximum.at(std_wm, row, term_wm)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(den > 0, num / den, np.nan)
        ratio = np.where(expected > 0, num / expected, np.nan)
    if indicator.kind == "rate":
        xm = np.zeros(rows)
        np.maximum.at(xm, row, xmax)
        lo, hi = gamma_interval(
            num / np.where(den > 0, den, 1),
            num2 / np.where(den > 0, den * den, 1),
            xm / np.where(den > 0, den, 1),
        )
        slo, shi = gamma_interval(std_value, std_v, std_wm)
    else:
        lo, hi = wilson(num, den)
        p_cell = np.where(n > 0, x / np.where(n > 0, n, 1), 0.0)
        var = total(np.where(n > 0, w * w * p_cell * (1 - p_cell) / np.where(n > 0, n, 1), 0.0))
        slo, shi = (
            np.clip(std_value - Z95 * np.sqrt(var), 0, 1),
            np.clip(std_value + Z95 * np.sqrt(var), 0, 1),
        )
    split = np.char.partition(uk.astype(str), "\x1f")
    empty = den <= 0
    return {
        "indicator": np.array([indicator.id] * rows, dtype=object),
        "period": split[:, 0],
        "group": split[:, 2],
        "numerator": num,
        "denominator": den,
        "value": value * per,
        "ci_low": np.where(empty, np.nan, lo * per),
        "ci_high": np.where(empty, np.nan, hi * per),
        "std_value": np.where(empty, np.nan, std_value * per),
        "std_ci_low": np.where(empty, np.nan, slo * per),
        "std_ci_high": np.where(empty, np.nan, shi * per),
        "expected": expected,
        "ratio": ratio,
    }
