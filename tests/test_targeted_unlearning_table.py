"""scripts/targeted_unlearning_table.py: aggregation over seeds and the table's counts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from targeted_unlearning_table import aggregate, markdown  # noqa: E402


def _row(method, budget, seed, success, true_class, adv_acc, test):
    return {"method": method, "budget": budget, "seed": seed, "num_targets": 1, "target_success": success,
            "target_true_class": true_class, "adversarial_class_accuracy": adv_acc, "test_accuracy": test}


def test_aggregate_counts_hits_and_orders_methods():
    rows = [_row("ga", 0.1, s, 0.0, 0.0, 0.1 + s / 10, 0.64) for s in range(3)]
    rows += [_row("retrain", None, s, 0.0, 1.0, 0.6, 0.73) for s in range(3)]
    rows += [_row("gd", 0.02, 0, 1.0, 0.0, 0.6, 0.73), _row("gd", 0.02, 1, 0.0, 0.0, 0.6, 0.71),  # a third class
             _row("gd", 0.02, 2, 0.0, 1.0, 0.6, 0.72)]
    lines = aggregate(rows)
    assert [x["method"] for x in lines] == ["retrain", "gd", "ga"], "the methods' order, references first"
    ga = lines[-1]
    assert (ga["n"], ga["hits"], ga["true_class_hits"], ga["targets"]) == (3, 0, 0, 3)
    assert ga["adversarial_class_accuracy"] == pytest.approx(0.2) and ga["adversarial_class_accuracy_std"] == pytest.approx(0.1)
    gd = lines[1]
    assert (gd["hits"], gd["true_class_hits"], gd["targets"]) == (1, 1, 3) and gd["test_accuracy"] == pytest.approx(0.72)
    gd_two = aggregate([r for r in rows if not (r["method"] == "gd" and r["seed"] == 2)])[1]
    assert (gd_two["hits"], gd_two["true_class_hits"]) == (1, 0), "success and a return to the true class differ"
    text = markdown(lines)
    assert "| GA | 10% | 3 | 0.640 ± 0.000 | 0/3 | 0/3 | 0.200 ± 0.100 |" in text
    assert "Retrain's adversarial-class test accuracy is 0.600" in text


def test_across_targets_counts_each_target_once():
    from targeted_unlearning_table import across_targets, across_targets_markdown

    from hf_unlearn.stats import wilson_interval

    def row(variant, method, budget, seed, success, test=0.7):
        return {**_row(method, budget, seed, success, 0.0, 0.5, test), "variant": variant}

    # target a: three seeds, poisoned on seed 0 only; targets b and c: seed 0 (and b seed 1), both poisoned
    rows = [row("a", "gd", 0.1, 0, 1.0), row("a", "gd", 0.1, 1, 0.0), row("a", "gd", 0.1, 2, 0.0),
            row("b", "gd", 0.1, 1, 0.0), row("b", "gd", 0.1, 0, 1.0), row("c", "gd", 0.1, 0, 0.0, test=0.4),
            row("a", "retrain", None, 0, 0.0)]  # one target only: no rate across targets
    lines = across_targets(rows)
    assert [x["method"] for x in lines] == ["gd"]
    gd = lines[0]
    assert (gd["seed"], gd["targets"], gd["hits"]) == (0, 3, 2), "one record per target, the common seed"
    assert (gd["ci_low"], gd["ci_high"]) == pytest.approx(wilson_interval(2, 3))
    assert gd["test_accuracy"] == pytest.approx(0.6)
    # targets a and b without b's seed 0: their common seed is 1, where neither is poisoned
    a_b1 = across_targets([r for r in rows if r["variant"] != "c" and not (r["variant"] == "b" and r["seed"] == 0)])
    assert (a_b1[0]["seed"], a_b1[0]["hits"], a_b1[0]["targets"]) == (1, 0, 2)
    # no seed every target has: no line rather than a mixed one
    assert across_targets([r for r in rows if not (r["variant"] == "b" and r["seed"] == 0)]) == []
    assert "| GD | 10% | 3 | 2/3 |" in across_targets_markdown(lines)
    assert across_targets(rows, min_targets=4) == []


def test_a_record_over_several_targets_counts_each_of_them():
    """A variant with 4 targets of which the model hits 3 is 3 hits of 4, not 0.75 of one target."""
    many = {**_row("gd", 0.1, 0, 0.75, 0.25, 0.5, 0.7), "num_targets": 4}
    one = _row("gd", 0.1, 1, 1.0, 0.0, 0.5, 0.7)
    (line,) = aggregate([many, one])
    assert (line["hits"], line["true_class_hits"], line["targets"]) == (4, 1, 5)
