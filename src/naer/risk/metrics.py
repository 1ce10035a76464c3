"""How good a risk score is, in the measures a model card reports (TRIPOD): discrimination (AUROC with
DeLong's interval, AUPRC), accuracy (Brier score), calibration (slope and intercept), the precision of a
worklist of the top few per cent, and net benefit across thresholds (decision curve).

Plain numpy/scipy, so that the baselines, the model and the oracle are measured by the same code.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata


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


def _logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Maximum-likelihood logistic regression by Newton-Raphson (x with an intercept column)."""
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        eta = np.clip(x @ beta + offset, -30, 30)
        mu = 1 / (1 + np.exp(-eta))
        w = mu * (1 - mu)
        step = np.linalg.solve(x.T @ (x * w[:, None]) + 1e-12 * np.eye(x.shape[1]), x.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic regression of the outcome on the score's logit; 1 is ideal) and
    calibration intercept (calibration-in-the-large: the intercept with the logit as offset; 0 is ideal),
    as in Van Calster B et al., J Clin Epidemiol 2016;74:167-176."""
    y, p = _arrays(y, p)
    logit = np.log(np.clip(p, 1e-12, 1 - 1e-12) / np.clip(1 - p, 1e-12, 1))
    ones = np.ones_like(logit)
    slope = _logistic(np.column_stack([ones, logit]), y, np.zeros_like(logit))[1]
    intercept = _logistic(ones[:, None], y, logit)[0]
    return float(slope), float(intercept)


def precision_at(y: np.ndarray, p: np.ndarray, fraction: float) -> float:
    """The share with the outcome among the highest-scored ``fraction`` (a worklist of the top 2 %)."""
    y, p = _arrays(y, p)
    k = max(round(fraction * len(y)), 1)
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean())


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of acting on everyone above each threshold: true positives per person minus false
    positives per person weighted by the threshold's odds (Vickers AJ, Elkin EB, Med Decis Making 2006)."""
    y, p = _arrays(y, p)
    t = np.asarray(thresholds, dtype=float)
    n = len(y)
    acted = p[None, :] >= t[:, None]
    tp = (acted & (y[None, :] == 1)).sum(axis=1) / n
    fp = (acted & (y[None, :] == 0)).sum(axis=1) / n
    result: np.ndarray = tp - fp * t / (1 - t)
    return result
