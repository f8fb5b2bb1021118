"""Summary statistics of Gaussian scores: GUS with its interval, TPR at low FPR, ROC.

These follow DESIGN.md exactly and agree with the ``metrics/gus`` and
``metrics/tpr_at_fpr`` evaluate modules (a test checks the two on random inputs).
They live here too because the library must not import ``evaluate`` (its import
alone takes ~14 s) and the evaluate modules must not import the library (they load
from a Space on their own).
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.96  # the convention the gus metric module documents (gus -/+ 1.96 * s.e.)


def _check(name: str, scores) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds {int((~np.isfinite(arr)).sum())} NaN or infinite value(s)")
    return arr


def gus_summary(poison_scores, null_scores=None) -> dict:
    """GUS = mean poison score, its standard error and normal 95% interval, and the null's mean."""
    pos = _check("poison scores", poison_scores)
    n = pos.size
    mean = float(pos.mean())
    se = float(pos.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    out = {"gus": mean, "gus_stderr": se, "gus_ci95": [mean - Z95 * se, mean + Z95 * se], "num_poisons": n}
    if null_scores is not None:
        neg = _check("null scores", null_scores)
        out.update(null_mean=float(neg.mean()), null_std=float(neg.std(ddof=1)) if neg.size > 1 else float("nan"))
    return out


def roc_curve(poison_scores, null_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct observed score, highest threshold first.

    Same points as ``sklearn.metrics.roc_curve(drop_intermediate=False)``, with the
    leading (0, 0, +inf) point.
    """
    pos = _check("poison scores", poison_scores)
    neg = _check("null scores", null_scores)
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
    tpr = (pos.size - np.searchsorted(pos_sorted, thresholds, side="left")) / pos.size
    fpr = (neg.size - np.searchsorted(neg_sorted, thresholds, side="left")) / neg.size
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thresholds]


def tpr_at_fpr(poison_scores, null_scores, fpr: float) -> tuple[float | None, float]:
    """TPR at the smallest observed threshold whose FPR <= ``fpr`` (step rule, no interpolation).

    Returns (None, nan) when ``fpr`` < 1/len(null_scores): that FPR cannot be resolved.
    """
    neg = np.asarray(null_scores).ravel()
    if fpr < 1.0 / neg.size:
        return None, float("nan")
    f, t, thr = roc_curve(poison_scores, null_scores)
    i = int(np.flatnonzero(f <= fpr + 1e-12)[-1])
    return float(t[i]), float(thr[i])


def roc_auc(poison_scores, null_scores) -> float:
    """P(poison > null) + P(tie)/2 (Mann-Whitney), via ranks."""
    pos = _check("poison scores", poison_scores)
    neg = _check("null scores", null_scores)
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(both.size)
    sorted_vals = both[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def wilson_halfwidth(p, n, z: float = Z95) -> np.ndarray:
    """Half-width of the Wilson 95% interval of proportions ``p`` over ``n`` trials (NaN where n <= 0).

    Vectorised for the leaderboard, which tabulates one interval per row.
    """
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.where(n > 0, half, np.nan)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% interval of a binomial proportion such as a TPR over n poisons.

    Wilson rather than p +- z*sqrt(p(1-p)/n): with 50 poisons a TPR of 0 is common (Retrain)
    and the normal interval would collapse to [0, 0], claiming certainty it does not have.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n and n > 0, got successes={successes}, n={n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = float(wilson_halfwidth(p, n, z))
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(poison_scores, null_scores, fprs=(0.01, 0.001)) -> dict:
    """Every headline number of a scored model, keyed as in the result record."""
    out = gus_summary(poison_scores, null_scores)
    for a in fprs:
        out[f"tpr_at_fpr_{a:g}"], out[f"threshold_at_fpr_{a:g}"] = tpr_at_fpr(poison_scores, null_scores, a)
    out["auc"] = roc_auc(poison_scores, null_scores)
    out["num_nulls"] = int(np.asarray(null_scores).size)
    return out
