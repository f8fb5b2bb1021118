"""Unlearn one poisoned checkpoint with one method under a compute budget, score it, record it.

    outcome = unlearn_checkpoint("runs/poisoned", "poisoned-cifar10-gaussian", "eps0.15-b5-s0-n1000",
                                 "scrub", budget=0.1, seed=0)
    outcome.record.metrics["tpr_at_fpr_0.01"], outcome.checkpoint_dir

Steps: load the checkpoint and its ``training_summary.json`` (``training_cost``, the
``train_config`` recipe); split the variant's train rows into retain (train minus the
forget rows) and forget; run the method under ``ComputeMeter(limit=budget *
training_cost)`` (retrain: unlimited, same recipe on retain, cost recorded); save the
unlearned checkpoint (safetensors + summary + card); score it on the poisons; return
and optionally append the ``ResultRecord`` (with ``stopped_by``: why the method stopped).

With ``validation_fraction > 0`` a seeded slice of the retain rows is held out of the
unlearning (the method never sees it) and the unlearned model's accuracy on it is
returned: the benchmark's tuning selects settings with it (docs/unlearning.md, "Tuning").

Under ``accelerate launch --num_processes N`` (pass the ``accelerator``) every process runs
the method on its slice of each global batch (``hf_unlearn.unlearn.base``, "Data
parallelism") and returns the same outcome; only the main process writes the checkpoint
and appends the record. ``mixed_precision`` runs the method's losses under autocast; the
first layer, the noise addition and the scores stay float32 (the returned model is plain
float32 and ``hf_unlearn.scoring`` runs it outside autocast).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hf_unlearn.results import REFERENCE_METHODS  # recorded with budget_fraction None
from hf_unlearn.unlearn.base import Split, UnlearnResult, build_config, get_method, run_method

VALIDATION_SEED = 0  # the held-out validation slice is the same for every method, seed and budget


@dataclass
class UnlearnOutcome:
    record: Any  # hf_unlearn.results.ResultRecord
    result: UnlearnResult
    checkpoint_dir: Path | None  # None for `none` (the input checkpoint is the model)
    scores: Any  # the attack's scores (hf_unlearn.scoring.GaussianScores for Gaussian variants), or None
    validation_accuracy: float | None = None  # accuracy on the held-out retain slice (validation_fraction > 0)


def retain_forget(splits: Mapping[str, Split]) -> tuple[Split, Split]:
    """Retain = the train rows whose source index is not in the forget split; forget = the forget split."""
    train, forget = splits["train"], splits["forget"]
    if len(forget) == 0:
        raise ValueError("the variant's forget split is empty: there is nothing to unlearn")
    keep = ~torch.isin(train.index, forget.index)
    if int((~keep).sum()) != len(forget):
        raise ValueError(f"{len(forget)} forget rows but {int((~keep).sum())} matching train rows; is the variant intact?")
    return train.subset(keep), forget


def validation_slice(retain: Split, fraction: float, seed: int = VALIDATION_SEED) -> tuple[Split, Split]:
    """(retain minus the slice, the slice): a seeded ``fraction`` of the retain rows (at least one) that
    tuning uses to measure what unlearning kept, and that the method never sees."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction={fraction!r}: a fraction of the retain rows in (0, 1), e.g. 0.05")
    n = max(1, round(fraction * len(retain)))
    perm = torch.randperm(len(retain), generator=torch.Generator().manual_seed(seed))
    held = torch.zeros(len(retain), dtype=torch.bool)
    held[perm[:n]] = True
    return retain.subset(~held), retain.subset(held)


def cell_name(method: str, budget: float | None, seed: int) -> str:
    return f"{method}-s{seed}" if budget is None else f"{method}-b{budget:g}-s{seed}"


def unlearn_checkpoint(
    checkpoint: str | os.PathLike,
    dataset: str | os.PathLike,
    config: str,
    method: str,
    *,
    budget: float = 0.1,
    seed: int = 0,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    method_config_path: str | None = None,
    output_dir: str | os.PathLike | None = None,
    results_path: str | os.PathLike | None = None,
    null_draws: int = 40,
    score_seed: int = 0,
    dataset_revision: str | None = None,
    checkpoint_revision: str | None = None,
    device: torch.device | str | None = None,
    accelerator: Any = None,
    retrain_dir: str | os.PathLike | None = None,
    channels_last: bool = False,
    progress: bool = False,
    model: torch.nn.Module | None = None,
    summary: Mapping[str, Any] | None = None,
    splits: Mapping[str, Split] | None = None,
    validation_fraction: float = 0.0,
    tuning: Mapping[str, Any] | None = None,
    task: str | None = None,
    attack: str | None = None,
    mixed_precision: str | None = None,
) -> UnlearnOutcome:
    """Unlearn the forget split of ``dataset [config]`` from ``checkpoint`` with ``method``.

    ``budget`` is the fraction of the checkpoint's training cost the method may use
    (ignored by ``none``, which costs 0, and ``retrain``, which is recorded, not limited).
    ``overrides`` (``{"lr": 0.01}`` or ``["lr=0.01"]``) apply on top of the method's preset
    (``configs/methods/<method>.yaml``, or ``method_config_path``). The unlearned model is
    saved to ``output_dir`` (default ``runs/unlearn/<config>/<method>[-b<budget>]-s<seed>``).
    ``model``/``summary``/``splits`` skip loading when the caller already holds them (the
    benchmark). ``retrain_dir`` lets retrain reuse a finished retrain with the same recipe.
    ``validation_fraction`` holds a seeded slice of the retain rows out of the method's data
    (not for the references: Retrain trains on every retain row) and returns the unlearned
    model's accuracy on it; ``tuning`` is stored in the record as is (the benchmark's grid cells).
    ``task``/``attack`` default to what the variant says (``hf_unlearn.attacks.variant_identity``).
    ``mixed_precision`` ("no", "bf16", "fp16"; default: the ``accelerator``'s, else "no") applies to the method only.
    ``dataset_revision`` and ``checkpoint_revision`` are the Hub revisions of the variant and of the checkpoint: two
    repos, two commits, each loaded at and recorded as its own (one ``revision`` for both once recorded a model's
    commit as the dataset's).
    """
    from hf_unlearn.attacks import variant_identity
    from hf_unlearn.pipeline import load_splits, score_to_record
    from hf_unlearn.results import append_record
    from hf_unlearn.tasks import get_task
    from hf_unlearn.train import TrainConfig, load_checkpoint, save_checkpoint

    get_method(method)  # fails early, listing the known methods
    task, attack = variant_identity(dataset, config, task=task, attack=attack)  # fails early, naming the known ones
    task_spec = get_task(task)
    if not (isinstance(budget, (int, float)) and 0 < budget <= 10):
        raise ValueError(f"budget={budget!r}: a fraction of the training cost in (0, 10], e.g. 0.1")
    cfg = build_config(method, overrides, yaml_path=method_config_path or "preset")
    if model is None or summary is None:
        model, summary = load_checkpoint(str(checkpoint), revision=checkpoint_revision)
    if "training_cost" not in summary:
        raise ValueError(f"{checkpoint}: training_summary.json has no training_cost; the budget is a fraction of it")
    training_cost = float(summary["training_cost"])
    train_config = TrainConfig(**summary["train_config"]) if "train_config" in summary else None
    if splits is None:
        splits = load_splits(dataset, config, revision=dataset_revision, task=task, attack=attack)
    retain, forget = retain_forget(splits)
    validation = None
    if validation_fraction and method not in REFERENCE_METHODS:
        retain, validation = validation_slice(retain, validation_fraction)
    budget_fraction = None if method in REFERENCE_METHODS else float(budget)
    result = run_method(
        model, retain, forget, method, config=cfg, limit=budget * training_cost, seed=seed, device=device,
        accelerator=accelerator, train_config=train_config, num_classes=int(model.linear.out_features)
        if hasattr(model, "linear") else int(getattr(model, "num_labels", 0) or len(task_spec.label_names)),
        work_dir=retrain_dir, channels_last=channels_last,
        progress=progress, mixed_precision=mixed_precision,
    )
    is_main = accelerator is None or accelerator.is_main_process  # N processes: one writer
    dataset_ref = {"id": str(dataset), "config": config, "revision": dataset_revision}
    out_dir = None
    model_ref = {"id": str(checkpoint), "revision": checkpoint_revision}
    if method != "none":
        out_dir = Path(output_dir) if output_dir else Path("runs/unlearn") / config / cell_name(method, budget_fraction, seed)
        model_ref = {"id": str(out_dir), "revision": None}
    record, scores = score_to_record(
        result.model, splits, dataset_ref=dataset_ref, model_ref=model_ref, method=method, null_draws=null_draws,
        seed=seed, score_seed=score_seed, compute_used=result.compute_used, budget_fraction=budget_fraction,
        method_config=result.method_config, task=task, attack=attack,
    )
    record = dataclasses.replace(record, stopped_by=result.stopped_by, tuning=dict(tuning or {}))
    validation_accuracy = None
    if validation is not None:
        validation_accuracy = float(task_spec.accuracy(result.model, validation))
    if out_dir is not None and is_main:
        recipe = dict(summary.get("train_config", {}))
        if method == "retrain" and recipe:
            recipe["seed"] = recipe.get("seed", 0) + seed
            recipe.update({k: v for k, v in result.method_config.items() if v is not None and k in recipe})
        card = {
            "role": "retrain" if method == "retrain" else "unlearned",
            "task": task,
            "method": method,
            "method_config": result.method_config,
            "budget_fraction": budget_fraction,
            "compute_used": result.compute_used,
            "compute_limit": result.limit,
            "stopped_by": result.stopped_by,
            "validation_accuracy": validation_accuracy,
            "source_checkpoint": str(checkpoint),
            "dataset": dataset_ref,
            "seed": seed,
            "train_config": recipe,
            "training_cost": result.compute_used if method == "retrain" else training_cost,
            "test_accuracy": record.metrics["test_accuracy"],
            "num_train": len(retain) if method == "retrain" else len(splits["train"]),
            "num_poisons_trained_on": 0 if method == "retrain" else len(forget),
            "wall_seconds": result.wall_seconds,
        }
        title = f"hf-unlearn {getattr(task_spec, 'model_title', 'model')}, {method} on {config} (seed {seed})"
        save_checkpoint(result.model, out_dir, card, title=title, task=task_spec)
        from hf_unlearn.cards import add_eval_results

        add_eval_results(out_dir, record)  # the card's model-index: this run's metrics on its variant
    if results_path is not None and is_main:
        append_record(record, results_path)
    if accelerator is not None:
        accelerator.wait_for_everyone()  # the checkpoint exists for every process once this returns
    return UnlearnOutcome(record, result, out_dir, scores, validation_accuracy)


def describe_methods() -> list[dict[str, Any]]:
    """One row per registered method: name, one-line idea, budgeted, config fields with defaults."""
    from hf_unlearn.unlearn.base import list_methods

    rows = []
    for name in list_methods():
        spec = get_method(name)
        defaults = {f.name: f.default for f in dataclasses.fields(spec.config_cls)}
        rows.append({"name": name, "summary": spec.summary, "budgeted": spec.budgeted, "defaults": defaults})
    return rows
