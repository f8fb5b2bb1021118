"""The arrows of DESIGN.md's data flow as functions: build -> train -> score -> record.

Each step reads and writes an inspectable folder or file, so the CLI verbs are
thin wrappers and any stage can be rerun alone. A finished step whose output
already matches its inputs is skipped, which makes whole runs resumable.

Nothing here names a task or an attack: a variant says which it is (its repo or
folder name ``poisoned-<task>-<attack>``, ``hf_unlearn.attacks.variant_identity``)
and the registries (``hf_unlearn.tasks``, ``hf_unlearn.attacks``) do the rest.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hf_unlearn.attacks import DEFAULT_ATTACK, as_evaluation, get_attack, parse_config, variant_identity
from hf_unlearn.results import ResultRecord, collect_versions
from hf_unlearn.tasks import DEFAULT_TASK, get_task, task_of_split
from hf_unlearn.train import RunOptions, TrainConfig, TrainResult, load_checkpoint, train
from hf_unlearn.variant import load_variant

REQUIRED_SPLITS = ("train", "forget", "test")
OPTIONAL_SPLITS = ("targets",)  # decoded whenever a variant has them: attacks evaluate on them


def dataset_repo(task: str, attack: str) -> str:
    """The repo / default folder name of ``attack``'s variants of ``task``: ``poisoned-<task>-<attack>``."""
    return get_attack(attack, task).repo_name(task)


# The default variant family's folder name (kept for scripts written before tasks and attacks were plug-ins).
DATASET_REPO = dataset_repo(DEFAULT_TASK, DEFAULT_ATTACK)


def build_dataset(source: str | None, poison: Any, out_dir: str | os.PathLike, *, task: str | None = None,
                  attack: str | None = None) -> Path:
    """Build one variant (the attack's config object, or its config name) into a Hub-layout folder (the card
    keeps earlier variants).

    ``task``/``attack`` default to what ``out_dir``'s name says (``.../poisoned-<task>-<attack>``).
    """
    if task is None or attack is None:
        task, attack = variant_identity(out_dir, task=task, attack=attack)
    spec = get_attack(attack, task)
    if isinstance(poison, str):
        poison = parse_config(spec, poison, task)
    return spec.build(source, poison, out_dir, task=task)


def load_splits(dataset: str | os.PathLike, config: str, revision: str | None = None, *, task: str | None = None,
                attack: str | None = None, needed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The variant's splits as the task's split objects (``{"train", "forget", "test", ...}``).

    ``needed`` restricts decoding to those splits (scoring needs only forget and test) plus the attack's
    evaluation splits (``targets``) when the variant has them.
    """
    task, attack = variant_identity(dataset, config, task=task, attack=attack)
    spec, attack_spec = get_task(task), get_attack(attack, task)
    columns = (spec.input_column, "label", "index", "is_poison", *getattr(attack_spec, "columns", ()))
    ds = load_variant(dataset, config, revision, columns=columns)
    want = tuple(needed) if needed is not None else REQUIRED_SPLITS
    missing = [s for s in want if s not in ds]
    if missing:
        raise ValueError(f"{dataset} [{config}] lacks split(s) {missing}")
    # The attack's own evaluation splits (a targeted variant's ``targets``) come along whenever the variant has them.
    extra = [name for name in OPTIONAL_SPLITS if name in ds and name not in want]
    parts = {name: ds[name] for name in (*want, *extra)} if needed is not None else ds
    return spec.load_splits(parts, config)


def _same_recipe(have: Any, want: dict[str, Any]) -> bool:
    """Stored and wanted ``train_config`` agree, reading keys an older summary lacks as their defaults."""
    if not isinstance(have, dict):
        return False
    try:
        return asdict(TrainConfig(**have)) == want
    except (TypeError, ValueError):
        return False


def _finished(folder: Path, expect: dict[str, Any]) -> bool:
    summary = folder / "training_summary.json"
    if not (folder / "model.safetensors").exists() or not summary.exists():
        return False
    have = json.loads(summary.read_text())
    return all(_same_recipe(have.get(k), v) if k == "train_config" else have.get(k) == v for k, v in expect.items())


def train_model(
    splits: dict[str, Any],
    dataset_ref: dict[str, Any],
    train_config: TrainConfig,
    output_dir: str | os.PathLike,
    *,
    role: str = "poisoned",
    options: RunOptions | None = None,
    on_epoch_end=None,
    task: str | None = None,
) -> TrainResult:
    """Train on the variant's train split (``role="poisoned"``) or on it minus the forget rows
    (``role="retrain"``), unless a finished checkpoint with the same recipe is already there.
    ``on_epoch_end(epoch, {"loss", "cost"})`` is passed to ``train`` (progress logs of sweeps).
    ``task`` defaults to the task whose split class the splits are."""
    if role not in ("poisoned", "retrain"):
        raise ValueError(f"role={role!r}: expected 'poisoned' or 'retrain'")
    train_split = splits["train"]
    task_spec = task_of_split(train_split) if task is None else get_task(task)
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
                 on_epoch_end=on_epoch_end, task=task_spec)


def score_to_record(
    model,
    splits: dict[str, Any],
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
    task: str | None = None,
    attack: str | None = None,
):
    """Score a model on the variant and return (record, the attack's scores, e.g. GaussianScores).

    The task and attack are the variant's (``variant_identity`` of ``dataset_ref``) unless given; the record's
    metrics are test/retain/forget accuracy then the attack's own metrics.
    """
    task, attack = variant_identity(dataset_ref["id"], dataset_ref.get("config"), task=task, attack=attack)
    task_spec, attack_spec = get_task(task), get_attack(attack, task)
    evaluation = as_evaluation(attack_spec.evaluate(
        model, splits, task=task_spec, config=dataset_ref.get("config"), null_draws=null_draws, seed=score_seed))
    retain = splits["train"].subset(~splits["train"].is_poison)
    metrics = {
        "test_accuracy": task_spec.accuracy(model, splits["test"]) if test_accuracy is None else test_accuracy,
        "retain_accuracy": task_spec.accuracy(model, retain),
        "forget_accuracy": task_spec.accuracy(model, splits["forget"]),
        **evaluation.metrics,
    }
    record = ResultRecord(
        task=task,
        attack=attack,
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
    return record, evaluation.scores
