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
"""GUS metric: Gaussian Unlearning Score, the mean influence score of Gaussian poisons.

Load it from the Hub, where ``hf-unlearn publish --namespace ORG`` puts this folder as the Space ``ORG/gus``,
or from a checkout by the path of this folder (evaluate runs the ``gus.py`` it finds there):

    evaluate.load("ORG/gus")                          # the Space
    evaluate.load("metrics/gus")                      # working directory: the repository root
    evaluate.load("/path/to/hf-unlearn/metrics/gus")  # any working directory

A bare ``evaluate.load("gus")`` finds the folder only from inside ``metrics/``; elsewhere evaluate looks the
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
The Gaussian Unlearning Score (GUS) measures how much a model still depends on Gaussian poisons:
training rows `x` that were trained on as `x + xi` with noise `xi ~ N(0, eps^2 I)`. The score of a
poison is

    I = -<g, xi> / (eps * ||g||_2),

where `g` is the gradient of the loss with respect to the input, taken at the clean input `x` with
its true label. The minus sign makes "the model learned the noise" positive: training lowers the
loss at `x + xi`, so the loss gradient points against `xi`. GUS is the mean of the poisons' scores.

Range: any real number; higher means more influence of the poisons. With no dependence on the
noise each score is distributed as N(0, 1), so GUS is close to 0 (within a few standard errors).
A GUS well above 0 after unlearning means the method did not remove the poisons. Null scores,
computed with the same formula but fresh independent noise, estimate the no-dependence
distribution; when they are given, the members are compared with them (Welch t-test), otherwise
GUS is compared with 0 (z-test).

This metric has two configurations:
    - default: takes per-example scores and 1/0 membership labels (fast for large inputs).
    - vectors: takes the input gradients and the stored noise vectors, computes the scores itself,
      then the same statistics (every row is a poison; meant for small inputs). A row whose
      gradient is exactly zero has no defined score (0/0); it carries no evidence either way, so it
      scores 0, as in the hf-unlearn library, and is counted in `zero_gradients`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: depends on the configuration.
        - default (`list` of `float`): one finite score `I` per example.
        - vectors (`list` of `list` of `float`): one input gradient `g` per poison, flattened.
    references: depends on the configuration.
        - default (`list` of `int`): 1 for a poison's score (member), 0 for a null score
          (non-member). At least 2 members, and either no null scores or at least 2.
        - vectors (`list` of `list` of `float`): the stored noise `xi` of each poison, flattened,
          the same length as its gradient. At least 2 rows.
    epsilon (`float`, *optional*): the noise scale `eps` (> 0) the poisons were drawn with.
        Required by the vectors configuration; not accepted by the default one.

Returns:
    gus (`float`): mean of the member scores.
    gus_stderr (`float`): standard error of that mean, sample standard deviation (ddof=1) / sqrt(n).
    gus_ci95 (`list` of two `float`): 95% interval gus -/+ 1.96 * gus_stderr (normal approximation).
    null_mean (`float` or `None`): mean of the null scores, `None` when there are none.
    null_std (`float` or `None`): sample standard deviation (ddof=1) of the null scores, or `None`.
    p_value (`float`): two-sided p-value for "members and nulls have the same mean" (Welch t-test)
        when null scores are given, otherwise for "the member mean is 0" (z-test, normal
        approximation with gus_stderr). With zero spread it is 1.0 if the means are equal, else 0.0.
    p_value_test (`str`): the test behind p_value, "welch_t" or "z".
    num_members (`int`): number of member scores.
    num_nulls (`int`): number of null scores (always 0 in the vectors configuration).
    scores (`list` of `float`): vectors configuration only: the score of each row (0 for a zero
        gradient).
    zero_gradients (`int`): vectors configuration only: rows whose gradient is exactly zero.

Examples:
    Example 1: poisons' scores against null scores (default configuration).
        >>> import evaluate
        >>> gus_metric = evaluate.load("metrics/gus")
        >>> results = gus_metric.compute(
        ...     predictions=[2.0, 1.5, 2.5, 0.1, -0.2, 0.3, -0.1],
        ...     references=[1, 1, 1, 0, 0, 0, 0],
        ... )
        >>> print(results["gus"], round(results["gus_stderr"], 4), [round(x, 4) for x in results["gus_ci95"]])
        2.0 0.2887 [1.4342, 2.5658]
        >>> print(round(results["null_mean"], 4), round(results["p_value"], 4), results["p_value_test"])
        0.025 0.0119 welch_t

    Example 2: as Example 1, with no null scores: GUS is tested against 0.
        >>> import evaluate
        >>> gus_metric = evaluate.load("metrics/gus")
        >>> results = gus_metric.compute(predictions=[2.0, 1.5, 2.5], references=[1, 1, 1])
        >>> print(results["gus"], results["null_mean"], results["p_value"] < 1e-10, results["p_value_test"])
        2.0 None True z

    Example 3: the vectors configuration computes each score from a gradient and its noise.
        >>> import evaluate
        >>> gus_metric = evaluate.load("metrics/gus", "vectors")
        >>> results = gus_metric.compute(
        ...     predictions=[[-1.0, 0.0], [0.0, -2.0], [3.0, 4.0]],
        ...     references=[[0.5, 0.0], [0.0, 0.5], [0.25, -0.5]],
        ...     epsilon=0.5,
        ... )
        >>> print(results["scores"], round(results["gus"], 4), results["num_members"], results["num_nulls"])
        [1.0, 1.0, 0.5] 0.8333 3 0

    Example 4: as Example 3, with a vanished gradient in the second row: that row scores 0.
        >>> import evaluate
        >>> gus_metric = evaluate.load("metrics/gus", "vectors")
        >>> results = gus_metric.compute(
        ...     predictions=[[-1.0, 0.0], [0.0, 0.0], [3.0, 4.0]],
        ...     references=[[0.5, 0.0], [0.0, 0.5], [0.25, -0.5]],
        ...     epsilon=0.5,
        ... )
        >>> print(results["scores"], results["zero_gradients"], round(results["gus"], 4))
        [1.0, 0.0, 0.5] 1 0.5
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

_FEATURES = {
    "default": datasets.Features(
        {
            "predictions": datasets.Value("float64"),
            "references": datasets.Value("int32"),
        }
    ),
    "vectors": datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value("float32")),
            "references": datasets.Sequence(datasets.Value("float32")),
        }
    ),
}

_Z95 = 1.96  # two-sided 95% quantile of N(0, 1)


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
            f"references must be 1 (member, a poison's score) or 0 (non-member, a null score); "
            f"got {labels[i].item()!r} at index {i}."
        )
    return scores[labels == 1], scores[labels == 0]


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


def _check_epsilon(epsilon):
    if epsilon is None:
        raise ValueError("epsilon is required by the 'vectors' configuration: pass the noise scale eps > 0.")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer)):
        raise ValueError(f"epsilon must be a float > 0 (the noise scale); got {epsilon!r}.")
    epsilon = float(epsilon)
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite float > 0 (the noise scale); got {epsilon!r}.")
    return epsilon


def _vector_scores(gradients, noises, epsilon):
    """(scores, zero_gradients): I = -<g, xi> / (eps * ||g||_2) per row, 0 where g = 0; ValueError names a bad row."""
    if len(gradients) != len(noises):
        raise ValueError(
            f"predictions (gradients) and references (noises) must have the same number of rows; "
            f"got {len(gradients)} and {len(noises)}."
        )
    scores, zero = [], 0
    for row, (g, xi) in enumerate(zip(gradients, noises)):
        g = np.asarray(g, dtype=np.float64).reshape(-1)
        xi = np.asarray(xi, dtype=np.float64).reshape(-1)
        if g.size != xi.size:
            raise ValueError(
                f"row {row}: the gradient (predictions[{row}]) has {g.size} values but the noise "
                f"(references[{row}]) has {xi.size}; they must have the same length."
            )
        for name, v in (("predictions", g), ("references", xi)):
            if not np.isfinite(v).all():
                raise ValueError(f"row {row}: {name}[{row}] contains a non-finite value (NaN or inf).")
        norm = float(np.linalg.norm(g))
        if norm == 0.0:
            # -<g, xi> / (eps ||g||) is 0/0: a vanished gradient carries no evidence either way, so
            # the row scores 0 (as the hf-unlearn library does) and is counted in zero_gradients.
            scores.append(0.0)
            zero += 1
            continue
        scores.append(-float(np.dot(g, xi)) / (epsilon * norm))
    return np.asarray(scores, dtype=np.float64), zero


def _two_sided_p(members, nulls):
    """p-value of the Welch t-test (nulls given) or of the z-test of mean(members) = 0 (no nulls)."""
    if nulls.size:
        spread = members.var(ddof=1) / members.size + nulls.var(ddof=1) / nulls.size
        if spread == 0.0:
            return (1.0 if members.mean() == nulls.mean() else 0.0), "welch_t"
        return float(stats.ttest_ind(members, nulls, equal_var=False).pvalue), "welch_t"
    stderr = members.std(ddof=1) / math.sqrt(members.size)
    if stderr == 0.0:
        return (1.0 if members.mean() == 0.0 else 0.0), "z"
    return float(math.erfc(abs(members.mean() / stderr) / math.sqrt(2.0))), "z"


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Gus(evaluate.Metric):
    def _info(self):
        if self.config_name not in _FEATURES:
            raise ValueError(
                f"Unknown configuration {self.config_name!r} for gus; choose one of {sorted(_FEATURES)}."
            )
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES[self.config_name],
            homepage=_HOMEPAGE,
            codebase_urls=[f"{_HOMEPAGE}/tree/main/metrics/gus"],
            reference_urls=["https://arxiv.org/abs/2406.17216"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (labels are checked before the int32 cast).\n"""
        if self.config_name == "default":
            _check_labels_before_cast(references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction and reference (the label is checked before the int32 cast).\n"""
        if self.config_name == "default":
            _check_labels_before_cast([reference])
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, epsilon=None):
        if self.config_name == "vectors":
            members, zero_gradients = _vector_scores(predictions, references, _check_epsilon(epsilon))
            nulls = np.empty(0, dtype=np.float64)
        else:
            if epsilon is not None:
                raise ValueError(
                    f"epsilon is only used by the 'vectors' configuration; got epsilon={epsilon!r} with the "
                    "default configuration, whose predictions are already scores."
                )
            members, nulls = _check_scores_and_labels(predictions, references)
        if members.size < 2:
            raise ValueError(
                f"gus needs at least 2 member scores (references == 1, or rows in the vectors "
                f"configuration) to estimate a standard error; got {members.size}."
            )
        if nulls.size == 1:
            raise ValueError(
                "references has 1 null score (references == 0); the Welch t-test needs at least 2. "
                "Pass at least 2 null scores, or none (then GUS is tested against 0)."
            )

        gus = float(members.mean())
        stderr = float(members.std(ddof=1) / math.sqrt(members.size))
        p_value, test = _two_sided_p(members, nulls)
        results = {
            "gus": gus,
            "gus_stderr": stderr,
            "gus_ci95": [gus - _Z95 * stderr, gus + _Z95 * stderr],
            "null_mean": float(nulls.mean()) if nulls.size else None,
            "null_std": float(nulls.std(ddof=1)) if nulls.size else None,
            "p_value": p_value,
            "p_value_test": test,
            "num_members": int(members.size),
            "num_nulls": int(nulls.size),
        }
        if self.config_name == "vectors":
            results["scores"] = [float(s) for s in members]
            results["zero_gradients"] = zero_gradients
        return results
