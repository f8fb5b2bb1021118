"""A poisoned dataset variant, loaded once into tensors for training and scoring.

CIFAR-10 at this scale fits in memory many times over, so each split is decoded
once to a uint8 tensor (airbench's approach) and batches are gathered by index:
no worker processes, no per-row Python in the training loop. Poison noise is
kept only for the poisoned rows and added per batch, in float32, unclipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from hf_unlearn.poisons.gaussian import GaussianPoisonConfig

VARIANT_COLUMNS = ("img", "label", "index", "is_poison", "noise")


@dataclass
class ImageSplit:
    """One split as tensors: uint8 images, labels, source indices, and noise for the poisoned rows."""

    x: torch.Tensor  # uint8 (N, 3, 32, 32)
    y: torch.Tensor  # int64 (N,)
    index: torch.Tensor  # int64 (N,), row in the source split
    noise: torch.Tensor  # float32 (P, 3, 32, 32), P = number of noisy rows
    noise_slot: torch.Tensor  # int64 (N,), row of ``noise`` or -1
    # The ``is_poison`` column, for variants whose poisons are the stored images themselves (targeted,
    # indiscriminate: no noise to tell them by); None: a row is a poison exactly when it has noise.
    poison: torch.Tensor | None = None  # bool (N,)
    # The ``targets`` split's attack goal per row (-1: not a target); None when the variant has no such column.
    adversarial_label: torch.Tensor | None = None  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_poison(self) -> torch.Tensor:
        return self.noise_slot >= 0 if self.poison is None else self.poison

    def inputs(self, rows: torch.Tensor, *, noisy: bool = True) -> torch.Tensor:
        """Float pixels in [0, 1] for ``rows``, plus each poisoned row's noise if ``noisy``."""
        x = self.x[rows].float().div_(255.0)
        if noisy and len(self.noise):
            slots = self.noise_slot[rows]
            hit = slots >= 0
            if hit.any():
                x[hit] += self.noise[slots[hit]]
        return x

    def subset(self, keep: torch.Tensor) -> "ImageSplit":
        """Rows where ``keep`` is True (a bool mask), noise table re-indexed."""
        slots = self.noise_slot[keep]
        used = slots >= 0
        new_slots = torch.full_like(slots, -1)
        new_slots[used] = torch.arange(int(used.sum()))
        return ImageSplit(self.x[keep], self.y[keep], self.index[keep], self.noise[slots[used]], new_slots,
                          _rows(self.poison, keep), _rows(self.adversarial_label, keep))

    def without_noise(self) -> "ImageSplit":
        """The same rows with no noise (an is_poison column, if any, is kept: the rows are still the poisons)."""
        return ImageSplit(self.x, self.y, self.index, self.noise[:0], torch.full_like(self.noise_slot, -1),
                          self.poison, self.adversarial_label)

    @classmethod
    def concat(cls, a: "ImageSplit", b: "ImageSplit") -> "ImageSplit":
        """Rows of ``a`` then ``b`` (noise tables merged), e.g. retain + forget = the training set."""
        slots_b = torch.where(b.noise_slot >= 0, b.noise_slot + len(a.noise), b.noise_slot)
        poison = None if a.poison is None and b.poison is None else torch.cat([a.is_poison, b.is_poison])
        adversarial = None
        if a.adversarial_label is not None or b.adversarial_label is not None:
            adversarial = torch.cat([_or_none_label(a), _or_none_label(b)])
        return cls(
            torch.cat([a.x, b.x]), torch.cat([a.y, b.y]), torch.cat([a.index, b.index]),
            torch.cat([a.noise, b.noise]), torch.cat([a.noise_slot, slots_b]), poison, adversarial,
        )

    @classmethod
    def cat_inputs(cls, inputs: list[torch.Tensor]) -> torch.Tensor:
        """Model inputs of several batches as one batch (pixels: one tensor)."""
        return torch.cat(list(inputs))


def _rows(column: torch.Tensor | None, keep: torch.Tensor) -> torch.Tensor | None:
    return None if column is None else column[keep]


def _or_none_label(split: ImageSplit) -> torch.Tensor:
    """A split's adversarial labels, or -1 (no target) for each row of a split without them."""
    if split.adversarial_label is not None:
        return split.adversarial_label
    return torch.full((len(split),), -1, dtype=torch.int64)


def load_variant(dataset: str | os.PathLike, config: str, revision: str | None = None,
                 columns: tuple[str, ...] = VARIANT_COLUMNS):
    """``load_dataset(dataset, config)`` with errors that say what to do; every split must have ``columns``
    (default: a Gaussian image variant's; ``pipeline.load_splits`` passes the task's and attack's).

    A local folder loads through a cache keyed by its content (``cards.local_variant_key``), under datasets'
    cache root. datasets 5.2 keys a folder's cache by its name, config and card patterns only, so a folder
    rebuilt with other rows under the same name (``runs/a/poisoned-cifar10-gaussian`` then
    ``runs/b/poisoned-cifar10-gaussian``, or one folder rebuilt in place) came back with the first build's rows.
    An unchanged folder still loads from its cache. A Hub id is first fetched as a snapshot of its card and the
    config's shards (``hub.dataset_snapshot``, through the Hub cache) and then loaded like a folder.

    A local folder's (or snapshot's) shards are checked against the sha256 its card records (``cards.verify_local_variant``)
    before loading: a variant modified after it was built raises ``VariantModifiedError`` (a ValueError) naming
    the file. The check is remembered in the content-keyed cache folder, so an unchanged folder (same files,
    sizes, mtimes and recorded checksums) is hashed once, not on every load.
    """
    from pathlib import Path

    import datasets

    from hf_unlearn.cards import local_variant_key, verify_local_variant
    from hf_unlearn.hub import check_local_or_repo_id

    name = str(dataset)  # what the user gave, for messages (a Hub id is replaced by its snapshot folder)
    if not check_local_or_repo_id(name, "dataset"):
        # A Hub id: a snapshot of the card and this config's shards, checked like a folder (hub.dataset_snapshot).
        from hf_unlearn.hub import dataset_snapshot

        dataset, revision = dataset_snapshot(str(dataset), config, revision), None
    # A cache of the folder's own content (see above).
    cache = Path(datasets.config.HF_DATASETS_CACHE) / "hf_unlearn-local" / local_variant_key(dataset, config)
    verified = cache / ".sha256-verified"
    if not verified.is_file():
        checked = verify_local_variant(dataset, config)
        if checked:
            cache.mkdir(parents=True, exist_ok=True)
            verified.write_text(f"{checked} shard(s) of {config!r} match the card\n")
    cache_dir = str(cache)
    try:
        ds = datasets.load_dataset(str(dataset), config, revision=revision, cache_dir=cache_dir)
    except ValueError as exc:
        if "BuilderConfig" in str(exc) or "config" in str(exc).lower():
            raise ValueError(f"dataset {name} has no config {config!r}: {exc}") from None
        raise
    for split, part in ds.items():
        missing = [c for c in columns if c not in part.column_names]
        if missing:
            raise ValueError(
                f"{name} [{config}] split {split!r} lacks columns {missing}; is it a poisoned-<task>-<attack> "
                "variant built by dataset_builders/?"
            )
    return ds


def variant_config(config: str) -> GaussianPoisonConfig:
    return GaussianPoisonConfig.from_name(config)


def image_split(part) -> ImageSplit:
    """Decode a variant split into an ImageSplit (images via their stored bytes).

    A Gaussian variant's poisons are told by their noise; a targeted or indiscriminate variant has no ``noise``
    column and its poisons are the stored images, told by ``is_poison``; ``adversarial_label`` (targeted) is kept.
    """
    from hf_unlearn.data import decode_images, raw_image_column

    x = torch.from_numpy(decode_images(raw_image_column(part)))
    if part._indices is not None:  # a .select()ed view: materialise the rows
        part = part.flatten_indices()
    table = part.data.table
    y = torch.from_numpy(np.array(table.column("label").to_numpy(), dtype=np.int64))
    index = torch.from_numpy(np.array(table.column("index").to_numpy(), dtype=np.int64))
    names = set(table.column_names)
    adversarial = None
    if "adversarial_label" in names:
        adversarial = torch.from_numpy(np.array(table.column("adversarial_label").to_numpy(), dtype=np.int64))
    if "noise" not in names:
        flags = np.asarray(table.column("is_poison").to_numpy(zero_copy_only=False), dtype=bool)
        return ImageSplit(x, y, index, torch.zeros(0, *x.shape[1:], dtype=torch.float32),
                          torch.full((len(y),), -1, dtype=torch.int64), torch.from_numpy(flags.copy()), adversarial)
    noise_col = table.column("noise").combine_chunks()
    valid = np.asarray(noise_col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    flat = noise_col.filter(noise_col.is_valid()).flatten().to_numpy(zero_copy_only=False)
    noise = torch.from_numpy(np.asarray(flat, dtype=np.float32).reshape(-1, 3, 32, 32).copy())
    slots = np.full(len(valid), -1, dtype=np.int64)
    slots[valid] = np.arange(int(valid.sum()))
    if not np.all(np.isfinite(flat)):
        raise ValueError("the noise column holds NaN or infinite values; rebuild the variant")
    return ImageSplit(x, y, index, noise, torch.from_numpy(slots), adversarial_label=adversarial)
