"""The checkpoint-level runner: load a poisoned checkpoint, unlearn under the budget, save, score, record.

A real (tiny) pipeline on the shipped samples: 128 training rows with 6 Gaussian
poisons, a width-4 ResNet-18 trained for 2 epochs; seconds on one thread.
"""

from __future__ import annotations

import json

import pytest
import torch

from hf_unlearn.pipeline import build_dataset, load_splits, train_model
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
from hf_unlearn.results import read_records, validate_record
from hf_unlearn.train import RunOptions, TrainConfig
from hf_unlearn.unlearn.runner import describe_methods, retain_forget, unlearn_checkpoint

VARIANT = GaussianPoisonConfig(0.15, 5.0, 0, 128)
RECIPE = TrainConfig(epochs=2, batch_size=64, width=4, seed=0, eval_batch_size=500)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread beats two on a shared 2-core machine
    root = tmp_path_factory.mktemp("runner")
    folder = build_dataset("samples", VARIANT, root / "poisoned-cifar10-gaussian")
    splits = load_splits(folder, VARIANT.name)
    ref = {"id": str(folder), "config": VARIANT.name, "revision": None}
    # NCHW: oneDNN's NHWC backward crashes on width-4 networks with one thread (torch 2.14)
    train_model(splits, ref, RECIPE, root / "poisoned", options=RunOptions(progress=False, channels_last=False))
    yield {"root": root, "dataset": folder, "checkpoint": root / "poisoned", "splits": splits}
    torch.set_num_threads(before)


def test_retain_is_train_minus_forget(poisoned):
    retain, forget = retain_forget(poisoned["splits"])
    train = poisoned["splits"]["train"]
    assert len(retain) + len(forget) == len(train) and not retain.is_poison.any()
    assert set(retain.index.tolist()).isdisjoint(forget.index.tolist())


def test_unlearn_checkpoint_saves_scores_and_records_within_budget(poisoned, tmp_path):
    summary = json.loads((poisoned["checkpoint"] / "training_summary.json").read_text())
    results = tmp_path / "results.jsonl"
    out = unlearn_checkpoint(
        poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "gd", budget=0.5, seed=0,
        overrides=["batch_size=32"], output_dir=tmp_path / "gd", results_path=results, null_draws=5,
    )
    record = out.record.to_dict()
    validate_record(record)
    assert record["method"] == "gd" and record["budget_fraction"] == 0.5
    assert 0 < record["compute_used"] <= 0.5 * summary["training_cost"]
    assert record["method_config"]["batch_size"] == 32 and record["model"]["id"] == str(tmp_path / "gd")
    saved = json.loads((tmp_path / "gd" / "training_summary.json").read_text())
    assert (tmp_path / "gd" / "model.safetensors").exists() and (tmp_path / "gd" / "README.md").exists()
    assert saved["method"] == "gd" and saved["compute_used"] == record["compute_used"]
    assert [r.to_dict() for r in read_records(results)] == [record]
    # the saved checkpoint scores the same when loaded back (what the leaderboard's verification does)
    from hf_unlearn.scoring import score_checkpoint

    rescored = score_checkpoint(str(tmp_path / "gd"), str(poisoned["dataset"]), VARIANT.name, null_draws=5)
    assert rescored["test_accuracy"] == pytest.approx(record["metrics"]["test_accuracy"], abs=1e-6)
    assert rescored["gus"] == pytest.approx(record["metrics"]["gus"], abs=1e-4)


def test_references_are_recorded_without_a_budget(poisoned, tmp_path):
    none = unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "none", null_draws=5)
    assert none.record.budget_fraction is None and none.record.compute_used == 0 and none.checkpoint_dir is None
    assert none.record.model["id"] == str(poisoned["checkpoint"])
    retrain = unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "retrain", budget=0.01,
                                 output_dir=tmp_path / "retrain", null_draws=5)
    n_retain = len(poisoned["splits"]["train"]) - len(poisoned["splits"]["forget"])
    assert retrain.record.budget_fraction is None
    assert retrain.record.compute_used == 3 * n_retain * RECIPE.epochs, "retrain: one full training, not cut by the budget"


def test_bad_method_or_budget_fails_before_any_work(poisoned):
    with pytest.raises(ValueError, match="known methods"):
        unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "sgd")
    with pytest.raises(ValueError, match="budget=0"):
        unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "gd", budget=0)
    with pytest.raises(ValueError, match="valid keys"):
        unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "gd", overrides=["lrate=1"])


def test_describe_methods_lists_every_method_with_its_defaults():
    rows = {r["name"]: r for r in describe_methods()}
    assert rows["scrub"]["defaults"]["max_epochs"] == 2 and rows["retrain"]["budgeted"] is False
    assert all(r["summary"] for r in rows.values())


def test_records_say_why_a_method_stopped(poisoned, tmp_path):
    kw = dict(null_draws=5)
    gd = unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "gd", budget=0.2,
                            output_dir=tmp_path / "gd", **kw)
    ssd = unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "ssd", budget=2.0,
                             output_dir=tmp_path / "ssd", **kw)
    none = unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "none", **kw)
    assert (gd.record.stopped_by, ssd.record.stopped_by, none.record.stopped_by) == ("budget", "one_shot", None)
    saved = json.loads((tmp_path / "gd" / "training_summary.json").read_text())
    assert saved["stopped_by"] == "budget"


def test_the_validation_slice_is_held_out_of_unlearning(poisoned, tmp_path):
    from hf_unlearn.unlearn.runner import validation_slice

    retain, _ = retain_forget(poisoned["splits"])
    rest, val = validation_slice(retain, 0.25)
    assert len(rest) + len(val) == len(retain) and set(rest.index.tolist()).isdisjoint(val.index.tolist())
    assert torch.equal(validation_slice(retain, 0.25)[1].index, val.index), "the slice is seeded"
    out = unlearn_checkpoint(poisoned["checkpoint"], poisoned["dataset"], VARIANT.name, "gd", budget=10.0,
                             overrides=["epochs=1"], validation_fraction=0.25, output_dir=tmp_path / "gd", null_draws=5)
    assert out.result.compute_used == 3 * len(rest), "one epoch over the retain rows minus the slice"
    assert 0 <= out.validation_accuracy <= 1
    with pytest.raises(ValueError, match="validation_fraction"):
        validation_slice(retain, 1.5)
