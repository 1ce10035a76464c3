"""How good a risk score is, in the measures a model card reports (TRIPOD): discrimination (AUROC with
DeLong's interval, AUPRC), accuracy (Brier score), calibration (slope and intercept), the precision of a
worklist of the top few per cent, and net benefit across thresholds (decision curve).

Plain numpy/scipy, so that the baselines, the model and the oracle are measured by the same code.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

Z95 = float(norm.ppf(0.975))


def _arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("outcomes and scores must be two vectors of the same length")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError("outcomes must be 0 or 1")
    return y, p


def auroc(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """Area under the ROC curve with DeLong's 95 % interval (DeLong ER et al., Biometrics 1988;44:837-845),
    computed from midranks (Sun X, Xu W, IEEE Signal Process Lett 2014;21:1389-1393); ties count half."""
    y, p = _arrays(y, p)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("AUROC needs both outcomes")
    ranks = rankdata(np.concatenate([pos, neg]))
    pos_ranks, neg_ranks = rankdata(pos), rankdata(neg)
    auc = (ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (ranks[:m] - pos_ranks) / n  # for each positive, the share of negatives it outranks
    v01 = 1 - (ranks[m:] - neg_ranks) / m  # for each negative, the share of positives that outrank it
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n if m > 1 and n > 1 else 0.0
    half = float(norm.ppf(0.975)) * np.sqrt(var)
    return float(auc), float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


def auprc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: the mean of the precision at each positive, ranked by score (ties as one step)."""
    y, p = _arrays(y, p)
    if y.sum() == 0:
        raise ValueError("AUPRC needs positive outcomes")
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    hits = np.cumsum(ys)
    last = np.r_[ps[1:] != ps[:-1], True]  # the end of each group of tied scores
    precision = hits[last] / (np.flatnonzero(last) + 1)
    new_hits = np.diff(np.r_[0.0, hits[last]])
    return float((precision * new_hits).sum() / y.sum())


def brier(y: np.ndarray, p: np.ndarray) -> float:
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2))


def logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression by Newton-Raphson (``x`` with an intercept column): the
    coefficients and their covariance (the inverse Fisher information)."""
    offset = np.zeros(len(y)) if offset is None else offset
    beta = np.zeros(x.shape[1])
    info = np.eye(x.shape[1])
    for _ in range(50):
        eta = np.clip(x @ beta + offset, -30, 30)
        mu = 1 / (1 + np.exp(-eta))
        w = mu * (1 - mu)
        info = x.T @ (x * w[:, None]) + 1e-12 * np.eye(x.shape[1])
        step = np.linalg.solve(info, x.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta, np.linalg.inv(info)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    result: np.ndarray = np.log(p / (1 - p))
    return result


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic regression of the outcome on the score's logit; 1 is ideal) and
    calibration intercept (calibration-in-the-large: the intercept with the logit as offset; 0 is ideal),
    as in Van Calster B et al., J Clin Epidemiol 2016;74:167-176."""
    (slope, _), (intercept, _) = calibration_ci(y, p)
    return slope, intercept


def calibration_ci(y: np.ndarray, p: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Calibration slope and intercept, each with its standard error (from the Fisher information)."""
    y, p = _arrays(y, p)
    lp = logit(p)
    ones = np.ones_like(lp)
    beta, cov = logistic(np.column_stack([ones, lp]), y)
    alpha, cov0 = logistic(ones[:, None], y, lp)
    return (float(beta[1]), float(np.sqrt(cov[1, 1]))), (float(alpha[0]), float(np.sqrt(cov0[0, 0])))


def brier_ci(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """Brier score with a normal 95 % interval (it is a mean of independent squared errors)."""
    y, p = _arrays(y, p)
    e = (p - y) ** 2
    half = Z95 * e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else 0.0
    return float(e.mean()), float(e.mean() - half), float(e.mean() + half)


def auprc_ci(y: np.ndarray, p: np.ndarray, reps: int = 100, seed: int = 0) -> tuple[float, float, float]:
    """AUPRC with a percentile bootstrap 95 % interval (it has no closed-form variance)."""
    y, p = _arrays(y, p)
    point = auprc(y, p)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        if y[i].sum() > 0:
            boots.append(auprc(y[i], p[i]))
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
    return point, float(lo), float(hi)


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 20) -> list[dict[str, float]]:
    """Observed against predicted risk in groups of equal size by predicted risk (quantiles), each with
    the observed share's Wilson interval: the points of a calibration plot."""
    y, p = _arrays(y, p)
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, min(bins, len(order))):
        if len(part) == 0:
            continue
        k, n = float(y[part].sum()), float(len(part))
        centre = (k / n + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * np.sqrt(k / n * (1 - k / n) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
        out.append(
            {
                "predicted": float(p[part].mean()),
                "observed": k / n,
                "low": float(max(centre - half, 0.0)),
                "high": float(min(centre + half, 1.0)),
                "n": n,
            }
        )
    return out


def precision_at(y: np.ndarray, p: np.ndarray, fraction: float) -> float:
    """The share with the outcome among the highest-scored ``fraction`` (a worklist of the top 2 %)."""
    return precision_at_ci(y, p, fraction)[0]


def precision_at_ci(y: np.ndarray, p: np.ndarray, fraction: float) -> tuple[float, float, float]:
    """Precision in the top ``fraction`` with its Wilson 95 % interval."""
    y, p = _arrays(y, p)
    k = max(round(fraction * len(y)), 1)
    top = np.argsort(-p, kind="stable")[:k]
    hits = float(y[top].sum())
    share = hits / k
    centre = (share + Z95**2 / (2 * k)) / (1 + Z95**2 / k)
    half = Z95 * np.sqrt(share * (1 - share) / k + Z95**2 / (4 * k * k)) / (1 + Z95**2 / k)
    return share, float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of acting on everyone at or above each threshold: true positives per person minus false
    positives per person weighted by the threshold's odds (Vickers AJ, Elkin EB, Med Decis Making 2006)."""
    y, p = _arrays(y, p)
    t = np.asarray(thresholds, dtype=float)
    n = len(y)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    positives_above = np.r_[np.cumsum(ys[::-1])[::-1], 0.0]  # positives at index i or later
    first = np.searchsorted(ps, t, side="left")  # the first score at or above each threshold
    tp = positives_above[first] / n
    fp = (n - first - positives_above[first]) / n
    result: np.ndarray = tp - fp * t / (1 - t)
    return result
