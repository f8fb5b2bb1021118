"""Summary statistics of Gaussian scores: GUS with its interval, TPR at low FPR, ROC.

TPR at a false-positive rate ``a`` is read two ways (docs/statistics.md):

- empirical: at the threshold set by the observed null scores (DESIGN.md's step rule). It
  makes no assumption about the null, but with ``a * num_nulls`` nulls above the threshold
  it rests on a handful of order statistics; it is biased upwards and noisy when that
  count is small, so it is marked unstable below ``MIN_NULLS_ABOVE`` and its interval
  (``empirical_tpr_interval``) accounts for where the threshold could be.
- exact: at ``Phi^-1(1 - a)``. The null is exactly N(0, 1) by construction (fresh noise,
  unit-normalised gradient), so this threshold is known without sampling; the estimate
  is an unbiased binomial proportion with a Wilson interval.

These follow DESIGN.md exactly and agree with the ``metrics/gus`` and
``metrics/tpr_at_fpr`` evaluate modules (a test checks the two on random inputs).
They live here too because the library must not import ``evaluate`` (its import
alone takes ~14 s) and the evaluate modules must not import the library (they load
from a Space on their own).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

Z95 = 1.96  # the convention the gus metric module documents (gus -/+ 1.96 * s.e.)
# The empirical TPR@a is marked unstable when fewer than this many null scores are expected
# above its threshold (a * num_nulls < 10): below that the threshold is one of a handful of
# order statistics and the estimate is visibly biased (docs/statistics.md, simulation).
MIN_NULLS_ABOVE = 10
_STANDARD_NORMAL = NormalDist()


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


def exact_threshold(fpr: float) -> float:
    """``Phi^-1(1 - fpr)``: the threshold whose false-positive rate under the N(0, 1) null is exactly ``fpr``."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr={fpr!r}: a false-positive rate must be in the open interval (0, 1)")
    return _STANDARD_NORMAL.inv_cdf(1.0 - fpr)


def normal_fpr(threshold: float) -> float:
    """``1 - Phi(threshold)``: the false-positive rate of a threshold under the N(0, 1) null."""
    if math.isinf(threshold):
        return 0.0 if threshold > 0 else 1.0
    return 0.5 * math.erfc(threshold / math.sqrt(2.0))


def tpr_at_exact_threshold(poison_scores, fpr: float) -> tuple[float, float, int]:
    """(TPR, threshold, members called) at the exact N(0, 1) threshold ``Phi^-1(1 - fpr)``.

    A poison is called when its score is >= the threshold. A poison whose input gradient
    vanished scores exactly 0 (scoring.scores_from_gradients), below the threshold for any
    fpr < 0.5, so it counts as a poison not detected: the denominator is every poison.
    """
    pos = _check("poison scores", poison_scores)
    t = exact_threshold(fpr)
    called = int(np.count_nonzero(pos >= t))
    return called / pos.size, t, called


def is_unstable(fpr: float, num_nulls: int) -> bool:
    """True when the empirical TPR@fpr rests on fewer than MIN_NULLS_ABOVE expected nulls above its threshold."""
    return fpr * num_nulls < MIN_NULLS_ABOVE


def _binom_quantile(n: int, p: float, q: float) -> int:
    """Smallest k with P(Binomial(n, p) <= k) >= q (exact pmf summed over a window around the mean)."""
    if p <= 0.0:
        return 0
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    lo, hi = max(0, int(mean - 12 * sd - 10)), min(n, int(math.ceil(mean + 12 * sd + 10)))
    ks = np.arange(lo, hi + 1)
    log_pmf = np.array(
        [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in ks.tolist()]
    ) + ks * math.log(p) + (n - ks) * math.log1p(-p)
    cdf = np.cumsum(np.exp(log_pmf))  # the mass below the window is < 1e-30
    return int(ks[min(int(np.searchsorted(cdf, q * (1 - 1e-12))), len(ks) - 1)])


def empirical_tpr_interval(poison_scores, null_scores, fpr: float, level: float = 0.95) -> tuple[float, float] | None:
    """An interval for the TPR at the true FPR-``fpr`` threshold, from the empirical null (None if unresolvable).

    The empirical threshold is an order statistic of the nulls, so the interval must cover
    both where the true threshold t_a lies and how many poisons exceed it. With C the number
    of nulls >= t_a, C ~ Binomial(num_nulls, fpr) for any continuous null; its quantiles
    bracket t_a between two order statistics of the nulls (distribution-free, as for a
    quantile's confidence interval). The TPR at t_a is then between the TPR at the upper
    bracket (Wilson lower bound) and at the lower bracket (Wilson upper bound). Each of the
    four pieces is allotted (1 - level) / 4, so the interval covers with probability
    >= ``level`` (a union bound: conservative). When even the lowest plausible count of nulls
    above t_a is 0, nothing bounds t_a from above and the lower end is 0: the finite null
    cannot rule out a threshold above every observed score.
    """
    pos = _check("poison scores", poison_scores)
    neg = _check("null scores", null_scores)
    n, m = neg.size, pos.size
    if fpr < 1.0 / n:
        return None
    tail = (1.0 - level) / 4.0
    z = _STANDARD_NORMAL.inv_cdf(1.0 - tail)
    c_lo, c_hi = _binom_quantile(n, fpr, tail), _binom_quantile(n, fpr, 1.0 - tail)
    desc = np.sort(neg)[::-1]
    if c_lo >= 1:  # at least c_lo nulls are >= t_a, so t_a <= the c_lo-th largest null
        lower = wilson_interval(int(np.count_nonzero(pos >= desc[c_lo - 1])), m, z)[0]
    else:
        lower = 0.0
    if c_hi < n:  # at most c_hi nulls are >= t_a, so t_a > the (c_hi + 1)-th largest null
        upper = wilson_interval(int(np.count_nonzero(pos > desc[c_hi])), m, z)[1]
    else:
        upper = 1.0
    return lower, upper


def summarize(poison_scores, null_scores, fprs=(0.01, 0.001)) -> dict:
    """Every headline number of a scored model, keyed as in the result record, plus the low-FPR detail.

    Per FPR ``a`` (key suffix ``a:g``): ``tpr_at_fpr_<a>`` (empirical threshold, None when
    a < 1/num_nulls) with ``tpr_at_fpr_<a>_ci95`` (empirical_tpr_interval) and
    ``threshold_at_fpr_<a>``; ``null_fpr_at_threshold_<a>``, the FPR that empirical threshold
    really has under the N(0, 1) null; ``tpr_at_fpr_<a>_exact`` at Phi^-1(1 - a) with its
    Wilson ``tpr_at_fpr_<a>_exact_ci95`` and ``threshold_exact_<a>``. ``tpr_unstable`` lists
    the ``<a>`` whose empirical TPR is unstable (a * num_nulls < MIN_NULLS_ABOVE).
    """
    out = gus_summary(poison_scores, null_scores)
    pos = _check("poison scores", poison_scores)
    num_nulls = int(np.asarray(null_scores).size)
    unstable = []
    for a in fprs:
        key = f"{a:g}"
        tpr, thr = tpr_at_fpr(poison_scores, null_scores, a)
        out[f"tpr_at_fpr_{key}"], out[f"threshold_at_fpr_{key}"] = tpr, thr
        interval = empirical_tpr_interval(poison_scores, null_scores, a)
        out[f"tpr_at_fpr_{key}_ci95"] = None if interval is None else list(interval)
        out[f"null_fpr_at_threshold_{key}"] = None if tpr is None else normal_fpr(thr)
        exact, t_exact, called = tpr_at_exact_threshold(pos, a)
        out[f"tpr_at_fpr_{key}_exact"], out[f"threshold_exact_{key}"] = exact, t_exact
        out[f"tpr_at_fpr_{key}_exact_ci95"] = list(wilson_interval(called, pos.size))
        if is_unstable(a, num_nulls):
            unstable.append(key)
    out["tpr_unstable"] = unstable
    out["auc"] = roc_auc(poison_scores, null_scores)
    out["num_nulls"] = num_nulls
    return out


def paired_accuracy_difference(correct_a, correct_b, z: float = Z95) -> tuple[float, float, float]:
    """Accuracy of A minus accuracy of B on the same examples, with a 95% interval: (diff, lo, hi).

    Paired, because both models answer the same test images: the variance is that of the per-example
    difference, which is far smaller than the sum of two binomial variances when the models agree on most
    images (an attack that flips 8 points out of 10,000 shared answers is resolved; two unpaired Wilson
    intervals would overlap). It is the test-set sampling error only: a second training seed moves a
    CPU-scale model's accuracy by about half a point (docs/benchmark.md), which this does not include.
    """
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired_accuracy_difference: need two 1-d arrays of the same length >= 2, got {a.shape} "
                         f"and {b.shape}")
    if not (np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
        raise ValueError("paired_accuracy_difference: inputs are per-example correctness, 0/1 or booleans")
    d = a - b
    mean = float(d.mean())
    half = z * float(d.std(ddof=1)) / math.sqrt(len(d))
    return mean, mean - half, mean + half
