"""The arrows of DESIGN.md's data flow as functions: build -> train -> score -> record.

Each step reads and writes an inspectable folder or file, so the CLI verbs are
thin wrappers and any stage can be rerun alone. A finished step whose output
already matches its inputs is skipped, which makes whole runs resumable.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
from hf_unlearn.results import ResultRecord, collect_versions
from hf_unlearn.train import RunOptions, TrainConfig, TrainResult, load_checkpoint, train
from hf_unlearn.variant import ImageSplit, image_split, load_variant, variant_config

DATASET_REPO = "poisoned-cifar10-gaussian"


def build_dataset(source: str | None, poison: GaussianPoisonConfig, out_dir: str | os.PathLike) -> Path:
    """Build one variant into a Hub-layout folder (the card keeps earlier variants)."""
    from dataset_builders.poisoned_cifar10_gaussian import build

    return build(source, [poison], out_dir)


def load_splits(dataset: str | os.PathLike, config: str, revision: str | None = None) -> dict[str, ImageSplit]:
    ds = load_variant(dataset, config, revision)
    missing = [s for s in ("train", "forget", "test") if s not in ds]
    if missing:
        raise ValueError(f"{dataset} [{config}] lacks split(s) {missing}")
    return {name: image_split(ds[name]) for name in ("train", "forget", "test")}


def _finished(folder: Path, expect: dict[str, Any]) -> bool:
    summary = folder / "training_summary.json"
    if not (folder / "model.safetensors").exists() or not summary.exists():
        return False
    have = json.loads(summary.read_text())
    return all(have.get(k) == v for k, v in expect.items())


def train_model(
    splits: dict[str, ImageSplit],
    dataset_ref: dict[str, Any],
    train_config: TrainConfig,
    output_dir: str | os.PathLike,
    *,
    role: str = "poisoned",
    options: RunOptions | None = None,
    on_epoch_end=None,
) -> TrainResult:
    """Train on the variant's train split (``role="poisoned"``) or on it minus the forget rows
    (``role="retrain"``), unless a finished checkpoint with the same recipe is already there.
    ``on_epoch_end(epoch, {"loss", "cost"})`` is passed to ``train`` (progress logs of sweeps)."""
    if role not in ("poisoned", "retrain"):
        raise ValueError(f"role={role!r}: expected 'poisoned' or 'retrain'")
    train_split = splits["train"]
    if role == "retrain":
        train_split = train_split.subset(~train_split.is_poison)
    out = Path(output_dir)
    expect = {"train_config": asdict(train_config), "dataset": dataset_ref, "role": role}
    if _finished(out, expect):
        model, summary = load_checkpoint(str(out))
        return TrainResult(model, summary["training_cost"], summary["test_accuracy"], 0.0, summary)
    opts = options or RunOptions()
    opts.output_dir = str(out)
    return train(train_split, splits["test"], train_config, opts, card_info={"dataset": dataset_ref, "role": role},
                 on_epoch_end=on_epoch_end)


def score_to_record(
    model,
    splits: dict[str, ImageSplit],
    *,
    dataset_ref: dict[str, Any],
    model_ref: dict[str, Any],
    method: str,
    null_draws: int,
    seed: int,
    score_seed: int = 0,
    compute_used: float = 0.0,
    budget_fraction: float | None = None,
    method_config: dict[str, Any] | None = None,
    test_accuracy: float | None = None,
):
    """Score a model on the variant's poisons and return (record, GaussianScores)."""
    from hf_unlearn.scoring import gaussian_scores
    from hf_unlearn.train import accuracy

    eps = variant_config(dataset_ref["config"]).eps
    scores = gaussian_scores(model, splits["forget"], eps, null_draws=null_draws, seed=score_seed)
    retain = splits["train"].subset(~splits["train"].is_poison)
    metrics = {
        "test_accuracy": accuracy(model, splits["test"]) if test_accuracy is None else test_accuracy,
        "retain_accuracy": accuracy(model, retain),
        "forget_accuracy": accuracy(model, splits["forget"]),
        **scores.record_metrics(),
    }
    record = ResultRecord(
        task="cifar10",
        attack="gaussian",
        dataset=dataset_ref,
        model=model_ref,
        method=method,
        method_config=method_config or {},
        budget_fraction=budget_fraction,
        compute_used=compute_used,
        seed=seed,
        metrics=metrics,
        versions=collect_versions(),
        scoring={"seed": score_seed, "null_draws": null_draws},
    )
    return record, scores
