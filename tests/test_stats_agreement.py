"""The library's statistics and the evaluate modules implement one formula: they must agree."""

from __future__ import annotations

import numpy as np
import pytest

from hf_unlearn import stats


@pytest.fixture(scope="module")
def modules():
    import evaluate

    return (evaluate.load("metrics/gus", keep_in_memory=True), evaluate.load("metrics/tpr_at_fpr", keep_in_memory=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_library_stats_equal_metric_modules(modules, seed):
    gus, tpr = modules
    rng = np.random.default_rng(seed)
    pos = np.round(rng.normal(0.7, 1, 80), 2)
    neg = np.round(rng.normal(0, 1, 3000), 2)
    scores = np.r_[pos, neg].tolist()
    refs = [1] * len(pos) + [0] * len(neg)
    mine = stats.summarize(pos, neg, fprs=(0.01, 0.001))
    t = tpr.compute(predictions=scores, references=refs, fpr=[0.01, 0.001], exact_null="normal")
    g = gus.compute(predictions=scores, references=refs)
    for key in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "auc"):
        assert mine[key] == pytest.approx(t[key], abs=1e-12), key
    for key in ("gus", "gus_stderr", "null_mean"):
        assert mine[key] == pytest.approx(g[key], rel=1e-9), key
    assert mine["gus_ci95"] == pytest.approx(g["gus_ci95"], rel=1e-6)
    for a in ("0.01", "0.001"):
        assert mine[f"tpr_at_fpr_{a}_exact"] == t[f"tpr_at_fpr_{a}_exact"], a
        assert mine[f"threshold_exact_{a}"] == pytest.approx(t["thresholds_exact"][a], rel=1e-12), a
        assert mine[f"tpr_at_fpr_{a}_exact_ci95"] == pytest.approx(t["ci95"][f"tpr_at_fpr_{a}_exact"], abs=1e-12), a
        assert mine[f"tpr_at_fpr_{a}_ci95"] == pytest.approx(t["ci95"][f"tpr_at_fpr_{a}"], abs=1e-9), a
    assert mine["tpr_unstable"] == list(t["unstable"]) == ["0.001"]  # 0.001 * 3000 = 3 < 10


@pytest.mark.parametrize("num_nulls", [900, 1000, 12000])
def test_low_fpr_intervals_agree_including_unresolved(modules, num_nulls):
    """The finite-null interval and the unstable rule agree at the edges (unresolved, barely resolved, stable)."""
    _, tpr = modules
    rng = np.random.default_rng(num_nulls)
    pos, neg = rng.normal(2.0, 1, 40), rng.normal(0, 1, num_nulls)
    mine = stats.summarize(pos, neg, fprs=(0.01, 0.001))
    t = tpr.compute(predictions=np.r_[pos, neg], references=[1] * 40 + [0] * num_nulls, fpr=[0.01, 0.001])
    for a in ("0.01", "0.001"):
        if t[f"tpr_at_fpr_{a}"] is None:
            assert mine[f"tpr_at_fpr_{a}"] is None and mine[f"tpr_at_fpr_{a}_ci95"] is None and t["ci95"][f"tpr_at_fpr_{a}"] is None
        else:
            assert mine[f"tpr_at_fpr_{a}_ci95"] == pytest.approx(t["ci95"][f"tpr_at_fpr_{a}"], abs=1e-9), a
    assert mine["tpr_unstable"] == list(t["unstable"])
