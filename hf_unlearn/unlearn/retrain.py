"""Retrain: train from scratch on the retain set with the poisoned model's own recipe.

The exact-unlearning reference of the paper (Pawelczyk et al., ICLR 2025, Section 3:
"delete D_f from D and run the learning algorithm again on the remaining data").
It is not budgeted: its cost (a full training, metered by ``train``) is recorded so
every other method can be read as a fraction of it. The recipe is the ``TrainConfig``
stored in the poisoned checkpoint's ``training_summary.json``; the run's seed is added
to the recipe's seed. Seed 0 therefore starts from the poisoned model's initial weights
(``train`` seeds before building the model), but it does *not* repeat the poisoned run's
batch order minus the poisons: each epoch's order is ``randperm(N - P)`` from the seed and
epoch, unrelated to the poisoned run's ``randperm(N)``, so the two runs see the retain
rows in different orders (as two independent trainings would).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from hf_unlearn.unlearn.base import UnlearnContext, register_method


@dataclass
class RetrainConfig:
    epochs: int | None = None  # passes over the retain set; None = the recipe's (paper Section 3: same algorithm)


def _reusable(folder: Path, recipe: dict, num_train: int) -> bool:
    summary = folder / "training_summary.json"
    if not (folder / "model.safetensors").exists() or not summary.exists():
        return False
    have = json.loads(summary.read_text())
    return _same_recipe(have.get("train_config"), recipe) and have.get("num_train") == num_train and have.get("role") == "retrain"


def _same_recipe(have, recipe: dict) -> bool:
    """A stored recipe equals ``recipe``, keys an older summary lacks read as their defaults."""
    from hf_unlearn.train import TrainConfig

    try:
        return isinstance(have, dict) and dataclasses.asdict(TrainConfig(**have)) == recipe
    except (TypeError, ValueError):
        return False


@register_method("retrain", budgeted=False)
def retrain(ctx: UnlearnContext, cfg: RetrainConfig) -> nn.Module:
    from hf_unlearn.train import RunOptions, load_checkpoint, train

    if ctx.train_config is None:
        raise ValueError("retrain needs the poisoned model's TrainConfig (ctx.train_config); the runner reads it from "
                         "training_summary.json")
    recipe = dataclasses.replace(ctx.train_config, seed=ctx.train_config.seed + ctx.seed)
    if cfg.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=cfg.epochs)
    if ctx.work_dir is not None and _reusable(ctx.work_dir, dataclasses.asdict(recipe), len(ctx.retain)):
        model, summary = load_checkpoint(str(ctx.work_dir))  # a finished retrain with this recipe: reuse it
        ctx.meter.used += float(summary["training_cost"])
        return model.to(ctx.device)
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-retrain-") as tmp:
        options = RunOptions(
            output_dir=str(ctx.work_dir or tmp), cpu=ctx.device.type == "cpu", checkpointing=False, resume=False,
            progress=ctx.progress, channels_last=ctx.channels_last or None,
            mixed_precision=ctx.mixed_precision,  # Accelerate's state refuses a second, different setting
        )
        result = train(ctx.retain, None, recipe, options, num_classes=ctx.num_classes, card_info={"role": "retrain"})
    ctx.meter.used += result.training_cost  # recorded, never limited
    return result.model.to(ctx.device)
