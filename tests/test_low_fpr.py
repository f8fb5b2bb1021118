"""Low-FPR statistics a reader can trust (issue 8, item 4): simulations with known truth.

Members are N(mu, 1) and nulls N(0, 1), as Gaussian-poison scores are: mu is chosen so the true
TPR at FPR a is known, 1 - Phi(Phi^-1(1 - a) - mu). The simulations are seeded, so every
assertion is deterministic; each tolerance is stated in Monte-Carlo standard errors (s.e.).

Run ``python tests/test_low_fpr.py`` to print the table docs/statistics.md quotes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hf_unlearn import stats
from hf_unlearn.results import RecordError, ResultRecord, validate_record
from hf_unlearn.scoring import GaussianScores, null_scores, scores_from_gradients


def simulate(num_nulls: int, *, fpr: float = 0.001, true_tpr: float = 0.1, num_poisons: int = 50,
             reps: int = 2000, seed: int = 0) -> dict[str, float]:
    """Both estimators of TPR@fpr and both intervals over ``reps`` seeded replicates."""
    mu = stats.exact_threshold(fpr) - stats.exact_threshold(true_tpr) if true_tpr != fpr else 0.0
    rng = np.random.default_rng(seed)
    emp, exact, realised, cover_emp, cover_exact, width_emp, width_exact = [], [], [], 0, 0, [], []
    for _ in range(reps):
        pos, neg = rng.normal(mu, 1.0, num_poisons), rng.normal(0.0, 1.0, num_nulls)
        tpr, thr = stats.tpr_at_fpr(pos, neg, fpr)
        emp.append(tpr)
        realised.append(stats.normal_fpr(thr))
        value, _, called = stats.tpr_at_exact_threshold(pos, fpr)
        exact.append(value)
        lo, hi = stats.empirical_tpr_interval(pos, neg, fpr)
        cover_emp += lo <= true_tpr <= hi
        width_emp.append(hi - lo)
        lo, hi = stats.wilson_interval(called, num_poisons)
        cover_exact += lo <= true_tpr <= hi
        width_exact.append(hi - lo)
    emp_a, exact_a = np.asarray(emp), np.asarray(exact)
    return {
        "num_nulls": num_nulls, "fpr": fpr, "true_tpr": true_tpr,
        "empirical_mean": float(emp_a.mean()), "empirical_sd": float(emp_a.std(ddof=1)),
        "empirical_se": float(emp_a.std(ddof=1) / math.sqrt(reps)),
        "exact_mean": float(exact_a.mean()), "exact_sd": float(exact_a.std(ddof=1)),
        "exact_se": float(exact_a.std(ddof=1) / math.sqrt(reps)),
        "realised_fpr_mean": float(np.mean(realised)),
        "coverage_empirical_ci": cover_emp / reps, "coverage_exact_wilson": cover_exact / reps,
        "width_empirical_ci": float(np.mean(width_emp)), "width_exact_wilson": float(np.mean(width_exact)),
    }


@pytest.fixture(scope="module")
def few_nulls():
    """The issue's setting: 2,000 nulls (40 draws x 50 poisons), 50 poisons, true TPR@0.1% = 0.100."""
    return simulate(2000)


def test_empirical_tpr_at_0_1_percent_is_biased_with_2000_nulls(few_nulls):
    """0.001 x 2,000 = 2 nulls above the threshold: the threshold is the first observed score above the
    third-largest null; its true FPR averages 0.0013, not 0.001, so the estimate is biased upwards
    (measured +0.020, about 15 s.e.; assert > 5 s.e.)."""
    r = few_nulls
    bias = r["empirical_mean"] - r["true_tpr"]
    assert bias > 5 * r["empirical_se"], r
    assert r["realised_fpr_mean"] > 1.2 * r["fpr"], r
    assert r["empirical_sd"] > 1.2 * r["exact_sd"], "the finite null adds spread on top of the members' binomial"


def test_exact_threshold_tpr_is_unbiased(few_nulls):
    """Exact threshold: mean within 3 s.e. of the true 1 - Phi(z - mu) = 0.100, spread binomial."""
    r = few_nulls
    assert abs(r["exact_mean"] - r["true_tpr"]) < 3 * r["exact_se"], r
    binomial_sd = math.sqrt(0.1 * 0.9 / 50)
    assert abs(r["exact_sd"] - binomial_sd) < 0.1 * binomial_sd, r


def test_intervals_cover_the_true_tpr(few_nulls):
    """The finite-null interval is conservative by construction (union bound): coverage >= 95%. Wilson over
    50 poisons at p = 0.1 covers ~96% (discreteness); 2,000 replicates give coverage to +/- 0.005."""
    r = few_nulls
    assert r["coverage_empirical_ci"] >= 0.95, r
    assert 0.935 <= r["coverage_exact_wilson"] <= 0.985, r
    assert r["width_exact_wilson"] < r["width_empirical_ci"], "knowing the threshold must narrow the interval"


def test_enough_nulls_remove_most_of_the_bias():
    """At 0.001 x num_nulls = 10 (the stability rule's boundary) the bias is under a third of 2,000 nulls'."""
    few, enough = simulate(2000, reps=600, seed=1), simulate(10_000, reps=600, seed=1)
    assert enough["empirical_mean"] - 0.1 < (few["empirical_mean"] - 0.1) / 3 + 3 * enough["empirical_se"], (few, enough)
    assert abs(enough["exact_mean"] - 0.1) < 3 * enough["exact_se"]


def test_unstable_rule_and_summary_fields():
    assert stats.is_unstable(0.001, 9_999) and not stats.is_unstable(0.001, 10_000)
    assert stats.is_unstable(0.01, 999) and not stats.is_unstable(0.01, 1_000)
    rng = np.random.default_rng(0)
    s = stats.summarize(rng.normal(1, 1, 50), rng.normal(size=2000))
    assert s["tpr_unstable"] == ["0.001"]  # 0.01 x 2,000 = 20 is stable
    assert s["threshold_exact_0.001"] == pytest.approx(3.090232306167813, abs=1e-12)
    assert s["threshold_exact_0.01"] == pytest.approx(2.3263478740408408, abs=1e-12)
    unresolved = stats.summarize(rng.normal(1, 1, 50), rng.normal(size=500))
    assert unresolved["tpr_at_fpr_0.001"] is None and unresolved["tpr_at_fpr_0.001_ci95"] is None
    assert unresolved["tpr_at_fpr_0.001_exact"] is not None and unresolved["tpr_unstable"] == ["0.01", "0.001"]


def test_finite_null_interval_by_hand():
    """1,000 nulls 1..1000 (descending 1000, 999, ...), a = 0.01: C ~ Binomial(1000, 0.01) has 1.25% / 98.75%
    quantiles 4 and 18 (scipy agrees), so the true threshold lies in (982, 997] (the 19th and the 4th largest
    nulls); members are counted at >= 997 (lower end) and > 982 (upper end)."""
    from scipy.stats import binom

    assert (stats._binom_quantile(1000, 0.01, 0.0125), stats._binom_quantile(1000, 0.01, 0.9875)) == (4, 18)
    for n, a, q in ((2000, 0.001, 0.0125), (2000, 0.001, 0.9875), (10_000, 0.001, 0.0125), (50, 0.3, 0.5)):
        assert stats._binom_quantile(n, a, q) == int(binom.ppf(q, n, a)), (n, a, q)
    nulls = np.arange(1.0, 1001.0)
    members = np.array([999.5, 998.0, 990.0, 985.0, 983.0, 982.0, 10.0, 5.0])
    lo, hi = stats.empirical_tpr_interval(members, nulls, 0.01)
    z = stats.exact_threshold(0.0125)
    assert lo == pytest.approx(stats.wilson_interval(2, 8, z)[0])  # 999.5 and 998.0 are >= 997
    assert hi == pytest.approx(stats.wilson_interval(5, 8, z)[1])  # five members are > 982
    with pytest.raises(ValueError, match="open interval"):
        stats.exact_threshold(0.0)


def test_zero_gradient_rows_follow_the_stated_rule():
    """A vanished gradient: poison score 0 and null scores 0. Exact threshold: the poison is not detected and
    stays in the denominator; empirical threshold: its zero nulls stay in the pool (a threshold > 0 never
    counts them). Both are conservative for every a < 0.5."""
    gen = torch.Generator().manual_seed(0)
    grads = torch.randn(10, 64, generator=gen)
    noise = -grads * 3.0  # every live row scores high: -<g, -3g> / ||g|| = 3 ||g|| >> 3.09
    grads[[2, 7]] = 0.0
    poison, zero = scores_from_gradients(grads, noise, 1.0)
    null = null_scores(grads, torch.arange(10), draws=1000, seed=0)
    scores = GaussianScores(poison.double().numpy(), null.double().numpy(), zero)
    s = scores.summary()
    assert zero == 2 and s["zero_gradients"] == 2
    assert poison[2].item() == poison[7].item() == 0.0 and bool((null[[2, 7]] == 0).all())
    assert s["tpr_at_fpr_0.001_exact"] == s["tpr_at_fpr_0.01_exact"] == 0.8  # 8 of 10: zero rows are misses
    assert s["tpr_at_fpr_0.01"] == 0.8 and s["num_nulls"] == 10_000
    metrics = scores.record_metrics()
    assert metrics["zero_gradients"] == 2 and metrics["tpr_at_fpr_0.001_exact"] == 0.8
    # The FPR of the exact threshold with a fraction f of zero rows is (1 - f) a <= a: here 0.8 x 0.01.
    live = null[[i for i in range(10) if i not in (2, 7)]].numpy().ravel()
    assert np.mean(null.numpy().ravel() >= stats.exact_threshold(0.01)) == pytest.approx(0.8 * np.mean(live >= 2.3263))


def test_demo_table_shows_both_tprs_with_intervals_and_marks_unstable_ones():
    from hf_unlearn.demo import UNSTABLE_MARK, format_table

    rng = np.random.default_rng(0)
    records, summaries = [], {}
    for method, mu, draws in (("none", 2.0, 40), ("retrain", 0.0, 200), ("ga", 1.0, 10)):
        scores = GaussianScores(rng.normal(mu, 1, 50), rng.normal(size=(50, draws)), 0)
        records.append({"method": method, "compute_used": 1e6,
                        "metrics": {"test_accuracy": 0.5, **scores.record_metrics()}})
        summaries[method] = scores.summary()
    table = format_table(records, summaries)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()
            if line.startswith("| ") and "---" not in line}
    header = rows.pop("method")
    emp, exact = header.index("TPR@0.1% empirical [95% CI]"), header.index("TPR@0.1% exact [95% CI]")
    s = summaries["none"]
    lo, hi = s["tpr_at_fpr_0.001_ci95"]
    assert rows["No unlearning"][emp] == f"{s['tpr_at_fpr_0.001']:.2f} [{lo:.2f}, {hi:.2f}]{UNSTABLE_MARK}"  # 2,000 nulls
    lo, hi = s["tpr_at_fpr_0.001_exact_ci95"]
    assert rows["No unlearning"][exact] == f"{s['tpr_at_fpr_0.001_exact']:.2f} [{lo:.2f}, {hi:.2f}]"
    assert not rows["Retrain"][emp].endswith(UNSTABLE_MARK)  # 10,000 nulls: stable
    assert rows["ga"][emp] == "n/a" and rows["ga"][exact].startswith(f"{summaries['ga']['tpr_at_fpr_0.001_exact']:.2f} [")
    assert f"{UNSTABLE_MARK} unstable" in table
    assert format_table(records) == table, "the records alone carry the same numbers"
    old = [dict(r, metrics={k: v for k, v in r["metrics"].items() if "exact" not in k and "ci95" not in k}) for r in records]
    assert "| - |" in format_table(old), "a record written before the exact TPR shows '-', not a made-up number"


# --------------------------------------------------------------------------------------------
# Result record fields used by the low-FPR statistics and by the unlearning runner (H4)
# --------------------------------------------------------------------------------------------


def _record(**extra):
    base = dict(
        schema_version=1, task="cifar10", attack="gaussian", dataset={"id": "d", "config": "eps0.15-b5-s0"},
        model={"id": "m"}, method="ga", seed=0,
        metrics={"test_accuracy": 0.5, "gus": 1.0, "gus_stderr": 0.1, "tpr_at_fpr_0.01": 0.2, "auc": 0.7},
    )
    base.update(extra)
    return base


def test_records_accept_the_new_metrics_and_fields_and_old_records_still_read():
    rng = np.random.default_rng(0)
    metrics = {"test_accuracy": 0.5, **GaussianScores(rng.normal(1, 1, 50), rng.normal(size=(50, 40)), 0).record_metrics()}
    assert metrics["tpr_at_fpr_0.001_ci95_lo"] == 0.0  # 2,000 nulls: no null surely above the 0.1% threshold
    tuning = {"grid": "ga-lr", "setting": {"lr": 1e-3, "passes": 10, "schedule": "cosine", "nesterov": False},
              "selected": True, "tuning_compute": 1.5e9}
    rec = ResultRecord.from_dict(_record(metrics=metrics, stopped_by="collapsed", tuning=tuning))
    assert rec.stopped_by == "collapsed" and rec.tuning["setting"]["lr"] == 1e-3
    assert ResultRecord.from_dict(rec.to_dict()).to_dict() == rec.to_dict()
    old = ResultRecord.from_dict(_record())  # written before the fields existed
    assert old.stopped_by is None and old.tuning == {}
    for value in ("budget", "converged", "collapsed", "one_shot", None):
        validate_record(_record(stopped_by=value))


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"stopped_by": "timeout"}, r"stopped_by.*'timeout'.*budget.*one_shot"),
        ({"tuning": [1]}, r"tuning.*an object"),
        ({"tuning": {"grid": "g", "winner": True}}, r"tuning.*unknown \['winner'\]"),
        ({"tuning": {"grid": ""}}, r"tuning.grid.*non-empty string"),
        ({"tuning": {"setting": {"lr": [1e-3, 1e-4]}}}, r"tuning.setting.lr.*scalar"),
        ({"tuning": {"setting": {"lr": float("nan")}}}, r"tuning.setting.lr.*scalar"),
        ({"tuning": {"selected": "yes"}}, r"tuning.selected.*true or false"),
        ({"tuning": {"tuning_compute": -1.0}}, r"tuning.tuning_compute.*\[0.0, None\]"),
        ({"tuning": {"tuning_compute": float("inf")}}, r"tuning.tuning_compute.*finite"),
        ({"metrics": {**_record()["metrics"], "tpr_at_fpr_0.001_exact": None}}, r"tpr_at_fpr_0.001_exact.*finite"),
        ({"metrics": {**_record()["metrics"], "tpr_at_fpr_0.01_exact": 1.5}}, r"tpr_at_fpr_0.01_exact.*\[0.0, 1.0\]"),
    ],
)
def test_bad_record_fields_are_named(extra, match):
    with pytest.raises(RecordError, match=match):
        validate_record(_record(**extra))


if __name__ == "__main__":  # the figures of docs/statistics.md
    rows = [(2000, 0.001, 0.1), (10_000, 0.001, 0.1), (2000, 0.01, 0.3), (2000, 0.001, 0.001), (10_000, 0.001, 0.001)]
    print("| nulls | a | true TPR | empirical mean (sd) | exact mean (sd) | true FPR of empirical threshold "
          "| coverage: finite-null CI / Wilson | mean width: finite-null CI / Wilson |")
    print("|" + " --- |" * 8)
    for n, a, t in rows:
        r = simulate(n, fpr=a, true_tpr=t, reps=10_000, seed=0)
        print(f"| {n:,} | {a:g} | {t:.3f} | {r['empirical_mean']:.4f} ({r['empirical_sd']:.3f}) "
              f"| {r['exact_mean']:.4f} ({r['exact_sd']:.3f}) | {r['realised_fpr_mean']:.5f} "
              f"| {r['coverage_empirical_ci']:.3f} / {r['coverage_exact_wilson']:.3f} "
              f"| {r['width_empirical_ci']:.3f} / {r['width_exact_wilson']:.3f} |")
