"""CIFAR-10: pixels in [0, 1], the CIFAR ResNet-18, Gaussian noise in pixel space.

Wraps what the core did before tasks existed (``variant.ImageSplit``, ``models.resnet``,
``scoring.input_gradients``), so a CIFAR-10 run computes exactly the same numbers through
the registry as it did by calling those directly.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from hf_unlearn.data import TASKS as SOURCES
from hf_unlearn.variant import ImageSplit

_SOURCE = SOURCES["cifar10"]  # the source loader's table: Hub id, input column, class names


@dataclass(frozen=True)
class Cifar10Task:
    """The ``cifar10`` task (interface: ``hf_unlearn.tasks``)."""

    name: str = "cifar10"
    hub_id: str = _SOURCE.hub_id
    input_column: str = _SOURCE.input_column
    label_names: tuple[str, ...] = _SOURCE.label_names
    split_class: type = ImageSplit
    image_augmentation: bool = True  # flips and crops move the noise with its image
    model_title: str = "ResNet-18"
    card_tag: str = "image-classification"
    card_model: str = "CIFAR ResNet-18"
    card_inputs: str = ("Inputs are pixels in [0, 1]; normalisation is the first layer. Poisoned rows are\n"
                        "trained on `x + noise` exactly (no clipping); see the dataset card.")

    def card_usage(self, repo_hint: str) -> str:
        """The model card's loading snippet."""
        return (f"from hf_unlearn.models.resnet import ResNet18\n"
                f'model = ResNet18.from_pretrained("{repo_hint}")  # inputs: pixels in [0, 1], (B, 3, 32, 32)')

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    # ------------------------------------------------------------------ data
    def load_splits(self, dataset_dict: Mapping[str, Any], config_name: str) -> dict[str, ImageSplit]:
        """Decode the variant's train/forget/test splits (and a targeted variant's ``targets``) present in
        ``dataset_dict`` into ImageSplits (``pipeline.load_splits`` checks which are required)."""
        from hf_unlearn.variant import image_split

        return {name: image_split(dataset_dict[name]) for name in ("train", "forget", "test", "targets")
                if name in dataset_dict}

    # ------------------------------------------------------------------ models
    def build_model(self, train_config: Any, num_classes: int) -> torch.nn.Module:
        """A fresh ResNet-18 of the recipe's ``width`` (the caller seeds first: the seed fixes the weights)."""
        from hf_unlearn.models.resnet import ResNet18

        extra = dict(getattr(train_config, "model", None) or {})
        if extra:
            raise ValueError(f"train.model={extra!r}: the cifar10 task's ResNet-18 takes no model keys; "
                             "set its size with train.width")
        return ResNet18(num_classes=num_classes, width=train_config.width)

    def load_model(self, folder_or_repo: str, revision: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
        """A ResNet-18 checkpoint and its training summary (safetensors only; nothing is unpickled)."""
        from hf_unlearn.hub import check_local_or_repo_id
        from hf_unlearn.models.resnet import ResNet18

        path = Path(folder_or_repo)
        if check_local_or_repo_id(str(folder_or_repo), "checkpoint"):
            if not (path / "model.safetensors").exists():
                raise FileNotFoundError(
                    f"{path} has no model.safetensors; point at a folder written by `hf-unlearn train` or a Hub model id"
                )
            with contextlib.redirect_stdout(io.StringIO()):  # the mixin prints "Loading weights..." to stdout
                model = ResNet18.from_pretrained(str(path))
            summary_path = path / "training_summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        else:
            from hf_unlearn import hub

            model, summary = hub.load_model(str(folder_or_repo), revision=revision)
        model.eval()
        return model, summary

    # ------------------------------------------------------------------ scoring space
    def input_gradients(self, model: torch.nn.Module, split: ImageSplit, batch_size: int = 256) -> torch.Tensor:
        """d loss_i / d pixels_i at the clean image with its label, flattened to (N, 3072)."""
        from hf_unlearn.scoring import input_gradients

        return input_gradients(model, split.inputs(torch.arange(len(split)), noisy=False), split.y, batch_size)

    def noise_matrix(self, split: ImageSplit) -> torch.Tensor:
        """Each row's stored noise flattened to (N, 3072); zeros for rows without noise."""
        dim = int(torch.tensor(split.x.shape[1:]).prod())
        slots = split.noise_slot
        if bool((slots >= 0).all()):
            return split.noise[slots].reshape(len(split), dim)
        out = torch.zeros(len(split), dim, dtype=torch.float32)
        hit = slots >= 0
        out[hit] = split.noise[slots[hit]].reshape(int(hit.sum()), dim)
        return out

    def accuracy(self, model: torch.nn.Module, split: ImageSplit, batch_size: int = 512, device=None) -> float:
        from hf_unlearn.train import accuracy

        return accuracy(model, split, batch_size, device)


TASK = Cifar10Task()
