"""Gaussian poisons (the paper's Section 4.3) as a registered attack, for any task with a noise space.

The variant parameters are ``hf_unlearn.poisons.gaussian.GaussianPoisonConfig`` (config
names such as ``eps0.1-b1.5-s0``); each task's builder (``dataset_builders/
poisoned_<task>_gaussian.py``) writes the variant; evaluation is the Gaussian score of
``hf_unlearn.scoring`` (GUS, TPR@FPR, AUC), computed in the task's own input space
(pixels for CIFAR-10, token embeddings for IMDb).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hf_unlearn.attacks import AttackBase, AttackEvaluation
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig


# Each task's variant parameters ("module:Class"): pixel noise for images; tokenizer, length and embedding
# size on top of the noise parameters for text. Imported on use, so the text builder loads only for text.
CONFIG_CLASSES = {
    "cifar10": "hf_unlearn.poisons.gaussian:GaussianPoisonConfig",
    "imdb": "dataset_builders.poisoned_imdb_gaussian:TextGaussianConfig",
}


@dataclass(frozen=True)
class GaussianAttack(AttackBase):
    """The ``gaussian`` attack (interface: ``hf_unlearn.attacks``)."""

    name: str = "gaussian"
    tasks: tuple[str, ...] = tuple(CONFIG_CLASSES)
    columns: tuple[str, ...] = ("noise",)
    config_class: type = GaussianPoisonConfig  # the image task's; config_class_for(task) for any task


    def config_class_for(self, task: str) -> type:
        """The variant-parameter class of ``task``'s Gaussian variants (names like ``eps0.1-b1.5-s0``)."""
        task = getattr(task, "name", task)
        if not self.supports(task):
            raise ValueError(f"the gaussian attack supports tasks {list(self.tasks)}, not {task!r}")
        module, _, cls = CONFIG_CLASSES[task].partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as exc:
            raise ValueError(f"gaussian variants of {task!r} need {module}, which failed to import ({exc})") from exc

    def parse_config(self, name: str, task: str | None = None):
        """The variant's parameters from its config name (for ``task``; default: whichever task's form it has)."""
        if task is not None:
            return self.config_class_for(task).from_name(name)
        errors = []
        for t in self.tasks:
            try:
                return self.config_class_for(t).from_name(name)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))

    def builder(self, task: str):
        """The task's builder module, ``dataset_builders.poisoned_<task>_gaussian`` (``build(source, [cfg], out_dir)``)."""
        task = getattr(task, "name", task)
        if not self.supports(task):
            raise ValueError(f"the gaussian attack supports tasks {list(self.tasks)}, not {task!r}")
        module = f"dataset_builders.{self.repo_name(task).replace('-', '_')}"
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"no builder for {self.repo_name(task)}: {module} failed to import ({exc})") from exc

    def build(self, source: str | None, cfg: GaussianPoisonConfig, out_dir: str | os.PathLike, *, task: str) -> Path:
        """Build one variant into a Hub-layout folder (the card keeps earlier variants)."""
        return self.builder(task).build(source, [cfg], out_dir)

    def evaluate(self, model, splits: Mapping[str, Any], *, task: Any, config: str, null_draws: int | None,
                 seed: int = 0, batch_size: int = 256) -> AttackEvaluation:
        """GUS/TPR metrics of ``model`` on the variant's forget split, with the scores (for plots)."""
        from hf_unlearn.scoring import gaussian_scores

        eps = self.parse_config(config, getattr(task, "name", task)).eps
        scores = gaussian_scores(model, splits["forget"], eps, null_draws=null_draws, seed=seed,
                                 batch_size=batch_size, task=task)
        return AttackEvaluation(scores.record_metrics(), scores)


ATTACK = GaussianAttack()
