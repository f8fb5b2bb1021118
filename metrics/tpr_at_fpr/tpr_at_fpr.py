# Copyright 2025 The hf-unlearn authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""TPR@FPR metric: true-positive rate of a member-vs-null score test at fixed false-positive rates.

Load it from the Hub, where ``hf-unlearn publish --namespace ORG`` puts this folder as the Space ``ORG/tpr_at_fpr``,
or from a checkout by the path of this folder (evaluate runs the ``tpr_at_fpr.py`` it finds there):

    evaluate.load("ORG/tpr_at_fpr")                          # the Space
    evaluate.load("metrics/tpr_at_fpr")                      # working directory: the repository root
    evaluate.load("/path/to/hf-unlearn/metrics/tpr_at_fpr")  # any working directory

A bare ``evaluate.load("tpr_at_fpr")`` finds the folder only from inside ``metrics/``; elsewhere evaluate looks the
name up on the Hub (under ``evaluate-metric/``), where this module is not.
"""

import math

import datasets
import numpy as np
from scipy import stats

import evaluate


# The hf-unlearn repository (the URL ResNet18 declares as its repo_url in hf_unlearn/models/resnet.py). Not the
# Space: that only serves this module.
_HOMEPAGE = "https://github.com/hf-unlearn/hf-unlearn"

_DESCRIPTION = """
TPR@FPR=a measures how well per-example scores separate members (e.g. the influence scores of
Gaussian poisons, `references=1`) from non-members (null scores computed with fresh, independent
noise, `references=0`). A score `s` is called a member when `s >= t`. The threshold `t` is the
smallest observed score (members and non-members together) whose false-positive rate
`FPR(t) = mean(null >= t)` is at most `a`; then `TPR@FPR=a = mean(member >= t)`. If no observed
score qualifies, `t = +inf` and the TPR is 0. This is the step rule of scikit-learn's
`roc_curve(..., drop_intermediate=False)` read at the last point with `fpr <= a`, with no
interpolation.

Range: 0 to 1, higher means the scores identify members better. At chance (scores independent of
membership) TPR@FPR=a is close to `a`; a value well above `a` at a small `a` (the headline is
a = 0.01) means the model still depends on the members, e.g. an unlearning method failed to remove
the poisons. The metric also returns the ROC AUC (0.5 at chance, 1 for perfect separation), ties
counted as 1/2 (the Mann-Whitney U statistic divided by the number of member/non-member pairs).

With `n` non-members the empirical FPR moves in steps of `1/n`, so an FPR `a < 1/n` cannot be
resolved: its TPR is returned as `None` and the reason is given under `unresolved`. Even when it is
resolved, the threshold is one of the few largest null scores: with fewer than 10 nulls expected
above it (`a * n < 10`) the TPR is biased upwards and noisy, and `a` is listed under `unstable`.
Every TPR comes with a 95% interval (`ci95`) that accounts for both the finite members and the
finite null (where the threshold could be).

When the null distribution is known exactly, `exact_null="normal"` also reads the TPR at the exact
threshold `Phi^-1(1 - a)` of the standard normal (`tpr_at_fpr_<a>_exact`): no threshold noise, an
unbiased estimate with a Wilson interval. Gaussian-poison scores have an exactly N(0, 1) null by
construction (fresh noise, unit-normalised gradient), so this is the estimate to trust at small `a`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): one score per example; higher means more likely a member.
        Must be finite (no NaN or inf).
    references (`list` of `int`): 1 for a member (a poison's score), 0 for a non-member (a null
        score). At least one of each.
    fpr (`float` or `list` of `float`, *optional*): the false-positive rates `a` at which to read
        the TPR, each in the open interval (0, 1). Defaults to `[0.01, 0.001]`.
    exact_null (`str`, *optional*): `"normal"` when the non-member scores are known to follow
        N(0, 1) exactly (Gaussian-poison scores): then the TPR is also read at the exact threshold
        `Phi^-1(1 - a)`. Defaults to `None` (empirical threshold only).

Returns:
    tpr_at_fpr_<a> (`float` or `None`): TPR at FPR=a, one key per requested `a`. `<a>` is
        `repr(float(a))`, the shortest form that reads back as the same float: 0.01 gives
        `tpr_at_fpr_0.01`, 0.001 gives `tpr_at_fpr_0.001`, 1e-4 gives `tpr_at_fpr_0.0001` and
        1e-5 gives `tpr_at_fpr_1e-05`. `None` when `a < 1/num_negatives` (see `unresolved`).
    auc (`float`): ROC AUC, ties counted as 1/2.
    num_positives (`int`): number of members (references == 1).
    num_negatives (`int`): number of non-members (references == 0).
    thresholds (`dict`): maps each `<a>` (the key suffix, a string) to the threshold `t` used:
        a `float` (`inf` if no observed score qualifies), or `None` if `a` is unresolved.
    unresolved (`dict`): maps each unresolved `<a>` to a sentence saying why; empty when every
        requested FPR can be resolved.
    unstable (`dict`): maps each `<a>` with `a * num_negatives < 10` to a sentence saying why its
        empirical TPR is not to be trusted (unresolved ones included); empty otherwise.
    ci95 (`dict`): maps each TPR key (`tpr_at_fpr_<a>`, and `tpr_at_fpr_<a>_exact`) to a 95%
        interval `[lo, hi]`, or `None` if unresolved. Empirical threshold: the true threshold is
        bracketed by two null order statistics (Binomial(num_negatives, a) quantiles) and the
        members are counted at each with a Wilson bound, each of the four pieces at level 0.0125
        (conservative). Exact threshold: the Wilson interval over the members.
    tpr_at_fpr_<a>_exact (`float`): only with `exact_null="normal"`: fraction of members with
        score >= `Phi^-1(1 - a)`.
    thresholds_exact (`dict`): only with `exact_null="normal"`: maps each `<a>` to `Phi^-1(1 - a)`.

Examples:
    Example 1: the default FPRs [0.01, 0.001] with 100 null scores. 1/100 = 0.01 can be resolved,
    0.001 cannot.
        >>> import evaluate
        >>> tpr_metric = evaluate.load("metrics/tpr_at_fpr")
        >>> nulls = [float(i) for i in range(100)]
        >>> members = [98.5, 99.5, 150.0, 50.0]
        >>> results = tpr_metric.compute(
        ...     predictions=members + nulls, references=[1] * len(members) + [0] * len(nulls)
        ... )
        >>> print(results["tpr_at_fpr_0.01"], results["tpr_at_fpr_0.001"])
        0.75 None
        >>> print(results["thresholds"])
        {'0.01': 98.5, '0.001': None}
        >>> print(list(results["unresolved"]))
        ['0.001']
        >>> print(round(results["auc"], 4), results["num_positives"], results["num_negatives"])
        0.8738 4 100

    Example 2: as Example 1, but with eight scores and the FPRs passed as a list.
        >>> import evaluate
        >>> tpr_metric = evaluate.load("metrics/tpr_at_fpr")
        >>> results = tpr_metric.compute(
        ...     predictions=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
        ...     references=[1, 1, 0, 1, 0, 1, 0, 0],
        ...     fpr=[0.25, 0.5],
        ... )
        >>> print(results["tpr_at_fpr_0.25"], results["tpr_at_fpr_0.5"], results["auc"])
        0.75 1.0 0.8125
        >>> print(results["thresholds"], results["unresolved"])
        {'0.25': 0.6, '0.5': 0.4} {}

    Example 3: as Example 1, but 50 members shifted by 2 against 2,000 nulls drawn from N(0, 1), and
    `exact_null="normal"`, which adds the TPR at the exact threshold Phi^-1(1 - a). 2,000 nulls leave
    FPR 0.001 unstable (0.001 * 2000 = 2 < 10).
        >>> import evaluate
        >>> import numpy as np
        >>> tpr_metric = evaluate.load("metrics/tpr_at_fpr")
        >>> rng = np.random.default_rng(0)
        >>> members, nulls = rng.normal(2.0, 1.0, 50), rng.normal(0.0, 1.0, 2000)
        >>> results = tpr_metric.compute(
        ...     predictions=np.r_[members, nulls], references=[1] * 50 + [0] * 2000, exact_null="normal"
        ... )
        >>> print(results["tpr_at_fpr_0.01"], results["tpr_at_fpr_0.01_exact"], results["tpr_at_fpr_0.001_exact"])
        0.42 0.4 0.18
        >>> print({k: round(v, 4) for k, v in results["thresholds_exact"].items()}, list(results["unstable"]))
        {'0.01': 2.3263, '0.001': 3.0902} ['0.001']
        >>> print([round(x, 3) for x in results["ci95"]["tpr_at_fpr_0.01_exact"]])
        [0.276, 0.538]
"""

_CITATION = """\
@inproceedings{pawelczyk2025machine,
  title={Machine Unlearning Fails to Remove Data Poisoning Attacks},
  author={Pawelczyk, Martin and Di, Jimmy Z. and Lu, Yiwei and Sekhari, Ayush and Kamath, Gautam and Neel, Seth},
  booktitle={The Thirteenth International Conference on Learning Representations},
  year={2025},
  url={https://arxiv.org/abs/2406.17216}
}
"""

_DEFAULT_FPR = (0.01, 0.001)
_EXACT_NULLS = ("normal",)
_MIN_NULLS_ABOVE = 10  # a * num_negatives below this: the empirical TPR@a is unstable
_Z95 = 1.96


def _wilson(successes, n, z=_Z95):
    """Wilson interval of a binomial proportion, clipped to [0, 1]."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _empirical_interval(members, nulls_descending, a, level=0.95):
    """95% interval of the TPR at the true FPR-a threshold, with the threshold's own uncertainty.

    C = #nulls >= t_a is Binomial(n, a); its quantiles bracket t_a between two null order
    statistics, and a Wilson bound counts the members at each; each piece gets (1 - level) / 4.
    """
    n, m = nulls_descending.size, members.size
    tail = (1.0 - level) / 4.0
    z = float(stats.norm.isf(tail))
    c_lo, c_hi = int(stats.binom.ppf(tail, n, a)), int(stats.binom.ppf(1.0 - tail, n, a))
    lower = _wilson(np.count_nonzero(members >= nulls_descending[c_lo - 1]), m, z)[0] if c_lo >= 1 else 0.0
    upper = _wilson(np.count_nonzero(members > nulls_descending[c_hi]), m, z)[1] if c_hi < n else 1.0
    return [float(lower), float(upper)]


def _fpr_key(a):
    """Key suffix for FPR `a`: the shortest string that reads back as the same float."""
    return repr(float(a))


def _check_fpr(fpr):
    """Return `fpr` as a list of floats in (0, 1), or raise a ValueError naming the bad value."""
    values = [fpr] if isinstance(fpr, (int, float, np.floating, np.integer)) else fpr
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"fpr must be a float or a list of floats in (0, 1); got {fpr!r}.") from None
    if not values:
        raise ValueError("fpr must name at least one false-positive rate in (0, 1); got an empty list.")
    checked = []
    for a in values:
        if isinstance(a, bool) or not isinstance(a, (int, float, np.floating, np.integer)):
            raise ValueError(f"fpr values must be floats in the open interval (0, 1); got {a!r}.")
        a = float(a)
        if not 0.0 < a < 1.0:  # also rejects nan
            raise ValueError(f"fpr values must be in the open interval (0, 1); got {a!r}.")
        checked.append(a)
    return checked


def _check_scores_and_labels(predictions, references):
    """Return (members, nulls) as float64 arrays, or raise a ValueError naming the bad input."""
    scores = np.asarray(predictions, dtype=np.float64).reshape(-1)
    labels = np.asarray(references).reshape(-1)
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"predictions and references must have the same length; got {scores.shape[0]} predictions "
            f"and {labels.shape[0]} references."
        )
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"predictions must be finite scores; got {scores[i].item()!r} at index {i} "
            f"({bad.size} non-finite value(s) in total)."
        )
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"references must be 1 (member) or 0 (non-member); got {labels[i].item()!r} at index {i}."
        )
    members, nulls = scores[labels == 1], scores[labels == 0]
    if members.size == 0 or nulls.size == 0:
        raise ValueError(
            "references must contain at least one 1 (member) and one 0 (non-member); "
            f"got {members.size} member(s) and {nulls.size} non-member(s)."
        )
    return members, nulls


def _check_labels_before_cast(references):
    """Reject non-integer labels before Arrow casts them to int32 (which would turn 0.5 into 0)."""
    labels = np.asarray(references)
    if labels.dtype.kind == "f":
        bad = np.flatnonzero((labels != 0.0) & (labels != 1.0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"references must be 1 (member) or 0 (non-member); got {labels.reshape(-1)[i].item()!r} "
                f"at index {i}."
            )


def _roc_auc(members, nulls):
    """ROC AUC with ties counted as 1/2, from average ranks (Mann-Whitney U / (m * n))."""
    m, n = members.size, nulls.size
    _, inverse, counts = np.unique(np.concatenate([members, nulls]), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # 1-based rank of the last copy of each distinct value
    average_ranks = ends - (counts - 1) / 2.0
    rank_sum = average_ranks[inverse.reshape(-1)[:m]].sum()
    return float((rank_sum - m * (m + 1) / 2.0) / (m * n))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TprAtFpr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("float64"),
                    "references": datasets.Value("int32"),
                }
            ),
            homepage=_HOMEPAGE,
            codebase_urls=[f"{_HOMEPAGE}/tree/main/metrics/tpr_at_fpr"],
            reference_urls=[
                "https://arxiv.org/abs/2406.17216",
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_curve.html",
            ],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (labels are checked before the int32 cast).\n"""
        _check_labels_before_cast(references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction and reference (the label is checked before the int32 cast).\n"""
        _check_labels_before_cast([reference])
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, fpr=None, exact_null=None):
        members, nulls = _check_scores_and_labels(predictions, references)
        rates = _check_fpr(_DEFAULT_FPR if fpr is None else fpr)
        if exact_null is not None and exact_null not in _EXACT_NULLS:
            raise ValueError(
                f"exact_null must be None or one of {list(_EXACT_NULLS)} (the non-member scores' known "
                f"distribution); got {exact_null!r}."
            )
        m, n = members.size, nulls.size
        nulls_descending = np.sort(nulls)[::-1]

        # Candidate thresholds: every distinct observed score, ascending. FPR(t) is non-increasing
        # in t, so the scores whose FPR is <= a form a suffix of this array.
        candidates = np.unique(np.concatenate([members, nulls]))
        nulls_at_or_above = n - np.searchsorted(np.sort(nulls), candidates, side="left")
        fpr_at_candidates = nulls_at_or_above / n

        results, thresholds, unresolved, unstable, ci95 = {}, {}, {}, {}, {}
        thresholds_exact = {}
        for a in rates:
            key = _fpr_key(a)
            if exact_null == "normal":
                t_exact = float(stats.norm.isf(a))
                called = int(np.count_nonzero(members >= t_exact))
                results[f"tpr_at_fpr_{key}_exact"] = called / m
                thresholds_exact[key] = t_exact
                ci95[f"tpr_at_fpr_{key}_exact"] = _wilson(called, m)
            if a * n < _MIN_NULLS_ABOVE:
                unstable[key] = (
                    f"a * num_negatives = {key} * {n} = {a * n:.3g} < {_MIN_NULLS_ABOVE}: the threshold is "
                    f"one of the few largest null scores, so the TPR is biased upwards and noisy; pass at "
                    f"least {math.ceil(_MIN_NULLS_ABOVE / a)} non-member scores"
                    + (" or read tpr_at_fpr_" + key + "_exact." if exact_null else ".")
                )
            if a < 1.0 / n:
                ci95[f"tpr_at_fpr_{key}"] = None
                results[f"tpr_at_fpr_{key}"] = None
                thresholds[key] = None
                unresolved[key] = (
                    f"FPR {key} is below 1/num_negatives = 1/{n} = {1.0 / n:.3g}: with {n} non-member "
                    f"scores the empirical FPR moves in steps of 1/{n}; pass at least {math.ceil(1.0 / a)} "
                    "non-member scores to resolve it."
                )
                continue
            qualifies = fpr_at_candidates <= a
            if qualifies.any():
                t = float(candidates[np.argmax(qualifies)])  # smallest qualifying score
                tpr = float(np.count_nonzero(members >= t) / m)
            else:
                t, tpr = math.inf, 0.0
            results[f"tpr_at_fpr_{key}"] = tpr
            thresholds[key] = t
            ci95[f"tpr_at_fpr_{key}"] = _empirical_interval(members, nulls_descending, a)

        results["auc"] = _roc_auc(members, nulls)
        results["num_positives"] = int(m)
        results["num_negatives"] = int(n)
        results["thresholds"] = thresholds
        results["unresolved"] = unresolved
        results["unstable"] = unstable
        results["ci95"] = ci95
        if exact_null is not None:
            results["thresholds_exact"] = thresholds_exact
        return results
