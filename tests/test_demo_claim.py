"""The demo's claim, measured: the poisoned model is far above the null and Retrain sits at it.

Runs the demo preset itself (two 40-epoch trainings of a width-16 ResNet-18 on 1,000
images; about 6 minutes on 2 cores). Thresholds come from the issue that defines the
demo; the run is seeded, so the numbers are reproducible on the same software stack.
"""

from __future__ import annotations

import pytest

from hf_unlearn.config import load_preset
from hf_unlearn.demo import run_demo


@pytest.mark.slow
def test_demo_default_shows_the_effect(tmp_path):
    out = run_demo(load_preset("demo"), str(tmp_path / "demo"), progress=False, cpu=True, methods=("none", "retrain"))
    by_method = {r["method"]: r["metrics"] for r in out["records"]}
    poisoned, retrained = by_method["none"], by_method["retrain"]
    assert poisoned["gus"] >= 5 * poisoned["gus_stderr"], f"poisoned GUS not 5 s.e. above 0: {poisoned}"
    assert poisoned["tpr_at_fpr_0.01"] >= 0.08, f"poisoned TPR@1% below 0.08: {poisoned}"
    assert abs(retrained["gus"]) <= 3 * retrained["gus_stderr"], f"retrained GUS not within 3 s.e. of 0: {retrained}"
    # At the null each of the 50 poisons passes the 1% threshold with probability 0.01: at most 3 of them do
    # except with probability P(Binomial(50, 0.01) >= 4) = 0.0016. (The earlier bound, one poison, failed a
    # model that never saw the noise 9% of the time.)
    assert 0.0 <= retrained["tpr_at_fpr_0.01"] <= 0.06, f"retrained TPR@1% above 3 of 50 poisons: {retrained}"
    assert retrained["tpr_at_fpr_0.01_exact"] <= 0.06, f"retrained exact-threshold TPR@1% too high: {retrained}"
    assert poisoned["num_nulls"] == 10_000  # 200 draws x 50 poisons: TPR@0.1% stable (0.001 x 10,000 = 10)
