"""Published prevalence by age band, as a curve over single years of age.

A band's prevalence is flat inside the band, but a citizen's risk is not: a 64-year-old is far more
likely to have diabetes than a 45-year-old. The engine therefore draws prevalence at entry, and the
incidence that keeps the population on the curve, from a piecewise-linear curve through each band's
middle. A band whose published prevalence is zero stays zero over its whole width, so no child gets a
disease the tables say children do not have.
"""

from __future__ import annotations

import numpy as np


def knots(table: np.ndarray, bands: np.ndarray, max_age: float) -> tuple[np.ndarray, np.ndarray]:
    """Ages and prevalences the curve passes through (strictly increasing ages).

    The knots sit at the bands' middles; their heights are fitted so that the curve's mean over each
    band equals the band's published prevalence (a straight line through the middles would not:
    where the curve is convex it overshoots).
    """
    ends = np.append(bands[1:], max_age)
    xs: list[float] = []
    fixed: list[bool] = []
    for low, high, value in zip(bands, ends, table, strict=True):
        points = [float(low), float(high)] if value == 0 else [(low + high) / 2]
        for x in points:
            if xs and x <= xs[-1]:
                continue
            xs.append(x)
            fixed.append(value == 0)
    x = np.asarray(xs)
    # Mean of each knot's hat function over each band, on a fine grid of ages.
    grid = np.linspace(0.0, 1.0, 201)
    means = np.empty((len(bands), len(x)))
    for i, (low, high) in enumerate(zip(bands, ends, strict=True)):
        ages = low + grid * (high - low)
        means[i] = [np.interp(ages, x, np.eye(len(x))[j]).mean() for j in range(len(x))]
    free = ~np.asarray(fixed)
    y = np.zeros(len(x))
    y[free] = np.asarray(table)[table > 0]
    target = np.asarray(table, dtype=np.float64)
    for _ in range(200):  # multiplicative updates keep every height non-negative
        fitted = means @ y
        ratio = np.divide(target, fitted, out=np.ones_like(target), where=fitted > 0)
        y[free] *= (means[:, free].T @ ratio) / means[:, free].sum(axis=0)
    return x, y


def at(xs: np.ndarray, ys: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prevalence and its slope (per year of age) at each age; flat beyond the outer knots."""
    value = np.interp(age, xs, ys)
    slopes = np.append(np.diff(ys) / np.diff(xs), 0.0)
    segment = np.searchsorted(xs, age, side="right") - 1
    slope = np.where(segment >= 0, slopes[np.clip(segment, 0, len(slopes) - 1)], 0.0)
    return value, slope
