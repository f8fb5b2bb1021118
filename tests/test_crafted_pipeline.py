"""The crafted CIFAR-10 attacks through the same verbs as the Gaussian one: `hf-unlearn demo` builds the variant,
trains the poisoned model on it and Retrain on it minus the poisons, unlearns and records each attack's own metrics.

Tiny settings (tiny crafting recipe, 100-row subset, width-4 network, one epoch): the attacks do nothing at this
size, so only the plumbing is asserted: which rows each model trained on, what the records carry, that they are
valid result records.
"""

from __future__ import annotations

import json

import pytest

from hf_unlearn.cli import main
from hf_unlearn.results import read_records, validate_record

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread

TINY = ["--set", "source=samples", "--set", "poison.max_train_rows=100", "--set", "poison.recipe=tiny",
        "--set", "train.epochs=1", "--set", "train.width=4", "--set", "train.batch_size=50",
        "--methods", "none", "retrain", "gd", "--cpu", "--no-progress"]


def _summary(out, name: str) -> dict:
    return json.loads((out / "models" / name / "training_summary.json").read_text())


def _records(out) -> dict[str, dict]:
    """The run's records, each validated as a result record (read_records raises on an invalid one)."""
    assert len(read_records(out / "results.jsonl")) == 3
    lines = (out / "results.jsonl").read_text().splitlines()
    records = {r["method"]: r for r in map(json.loads, lines)}
    for r in records.values():
        validate_record(r)
    return records


def test_targeted_demo_trains_on_the_poisons_retrains_without_them_and_records_target_success(tmp_path):
    out = tmp_path / "targeted"
    assert main(["demo", "--preset", "cifar10-targeted", "--set", "poison.budget=5", "--set", "poison.num_targets=3",
                 *TINY, "--output-dir", str(out)]) == 0
    poisoned, retrain = _summary(out, "poisoned"), _summary(out, "retrain")
    assert (poisoned["num_train"], poisoned["num_poisons_trained_on"]) == (100, 5)  # poisons in place, clean-label
    assert (retrain["num_train"], retrain["num_poisons_trained_on"]) == (95, 0)
    records = _records(out)
    assert set(records) == {"none", "retrain", "gd"}
    for r in records.values():
        assert (r["task"], r["attack"]) == ("cifar10", "targeted")
        assert r["metrics"]["num_targets"] == 3 and 0.0 <= r["metrics"]["target_success"] <= 1.0
        assert "gus" not in r["metrics"]
    assert records["gd"]["budget_fraction"] == 0.1 and records["gd"]["compute_used"] <= 0.1 * poisoned["training_cost"]


def test_indiscriminate_demo_appends_the_poisons_and_retrains_on_the_clean_rows(tmp_path):
    out = tmp_path / "indiscriminate"
    assert main(["demo", "--preset", "cifar10-indiscriminate", "--set", "poison.budget=4", *TINY,
                 "--output-dir", str(out)]) == 0
    poisoned, retrain = _summary(out, "poisoned"), _summary(out, "retrain")
    assert (poisoned["num_train"], poisoned["num_poisons_trained_on"]) == (104, 4)  # 4% of 100 rows appended
    assert (retrain["num_train"], retrain["num_poisons_trained_on"]) == (100, 0)
    records = _records(out)
    for r in records.values():
        assert (r["task"], r["attack"]) == ("cifar10", "indiscriminate")
        assert r["metrics"]["num_poisons"] == 4 and "target_success" not in r["metrics"]
    summary = (out / "summary.md").read_text()
    assert "No unlearning" in summary and "Retrain" in summary
