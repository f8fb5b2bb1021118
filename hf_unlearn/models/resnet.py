"""The CIFAR ResNet-18 (He et al. 2016, CIFAR variant: 3x3 stem, no max-pool).

Inputs are pixels in [0, 1]; mean/std normalisation is the first layer, so input
gradients and Gaussian poisons live in the same space (DESIGN.md, "Input space").
``width`` scales every stage (64 is the paper's network; 16 is the CPU preset's),
and ``PyTorchModelHubMixin`` gives ``save_pretrained``/``from_pretrained``/
``push_to_hub`` with safetensors weights and a ``config.json`` built from the
constructor arguments. A model loaded with ``from_pretrained`` keeps the folder's
``training_summary.json`` and card, and the mixin's ``save_pretrained``/``push_to_hub``
write them back: a checkpoint published that way can still be unlearned (the budget
is a fraction of the training cost its summary records).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
SUMMARY_FILE = "training_summary.json"  # beside the weights: the training cost an unlearning budget is a fraction of


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="hf-unlearn",
    tags=["image-classification", "machine-unlearning", "data-poisoning"],
    repo_url="https://github.com/hf-unlearn/hf-unlearn",
):
    """CIFAR ResNet-18 whose ``blocks`` (stem, 8 residual blocks, head) EU-k/CF-k address by position."""

    def __init__(
        self,
        num_classes: int = 10,
        width: int = 64,
        mean: tuple[float, float, float] = CIFAR10_MEAN,
        std: tuple[float, float, float] = CIFAR10_STD,
    ) -> None:
        super().__init__()
        # The checkpoint's training summary and model card, set by ``from_pretrained`` (or by whoever saves the
        # model) and written back by ``_save_pretrained``; None for a fresh network.
        self.training_summary: dict[str, Any] | None = None
        self.card_text: str | None = None
        if width < 1 or num_classes < 2:
            raise ValueError(f"width={width}, num_classes={num_classes}: need width >= 1 and num_classes >= 2")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, in_planes = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            layers.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(in_planes, num_classes)

    # ------------------------------------------------------------------ Hub mixin hooks
    def _save_pretrained(self, save_directory: Path) -> None:
        """Weights (the mixin's safetensors), then the summary and card the model was loaded with.

        The mixin writes ``README.md`` only when the folder has none, so the project's card written here survives
        ``save_pretrained`` and ``push_to_hub``; a summary without a card gets a fresh project card.
        """
        super()._save_pretrained(save_directory)
        if self.training_summary is not None:
            (Path(save_directory) / SUMMARY_FILE).write_text(
                json.dumps(self.training_summary, indent=2, sort_keys=True, default=str, allow_nan=False))
        if self.card_text is not None:
            (Path(save_directory) / "README.md").write_text(self.card_text, encoding="utf-8")
        elif self.training_summary is not None:
            from hf_unlearn.cards import write_model_card

            role = self.training_summary.get("role", "poisoned")
            write_model_card(save_directory, self.training_summary, title=f"hf-unlearn ResNet-18 ({role})",
                             task=self.training_summary.get("task"))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None, **kwargs: Any):
        """The mixin's loader, plus the folder's (or repo's) ``training_summary.json`` and ``README.md``."""
        model = super()._from_pretrained(model_id=model_id, revision=revision, cache_dir=cache_dir,
                                         force_download=force_download, local_files_only=local_files_only,
                                         token=token, **kwargs)
        summary = _companion(model_id, SUMMARY_FILE, revision=revision, cache_dir=cache_dir,
                             force_download=force_download, local_files_only=local_files_only, token=token)
        card = _companion(model_id, "README.md", revision=revision, cache_dir=cache_dir,
                          force_download=force_download, local_files_only=local_files_only, token=token)
        model.training_summary = json.loads(summary) if summary is not None else None
        model.card_text = card
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W) in [0, 1], got {tuple(x.shape)}")
        out = self.stem(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Normalisation, first convolution and its batch norm, always in float32.

        Under mixed precision (``--mixed-precision bf16``, an outer ``torch.autocast``) the
        convolution would otherwise see ``x + xi`` rounded to bfloat16 (8 bits of mantissa:
        about 1% of eps), against the contract that the model sees exactly ``x + xi``
        (DESIGN.md, "Gaussian poisons"). Autocast is switched off here; the output is cast
        back to the autocast dtype so the rest of the network keeps its speed.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = (x.float() - self.mean) / self.std
            out = F.relu(self.bn1(self.conv1(x)))
        if torch.is_autocast_enabled(x.device.type):
            out = out.to(torch.get_autocast_dtype(x.device.type))
        return out

    def blocks(self) -> list[nn.Module]:
        """Stem, the eight residual blocks, then the head, input to output.

        "The last k blocks" in EU-k / CF-k means ``blocks()[-k:]``.
        """
        stem = nn.ModuleList([self.conv1, self.bn1])
        residual = [b for layer in (self.layer1, self.layer2, self.layer3, self.layer4) for b in layer]
        return [stem, *residual, self.linear]


def _companion(model_id: str, filename: str, **download: Any) -> str | None:
    """A small file beside the weights (local folder or Hub repo), or None where there is none."""
    if os.path.isdir(model_id):
        path = Path(model_id) / filename
        return path.read_text(encoding="utf-8") if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=model_id, filename=filename, **download)).read_text(encoding="utf-8")
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None
