"""Batch a poisoned variant's rows for a plain ``torch.utils.data.DataLoader``.

The project itself never iterates a variant row by row (``variant.image_split`` decodes each split once into
tensors), but users of the published datasets will reach for ``DataLoader``. Its default collate cannot batch
a variant's train split: the Gaussian ``noise`` column is null on every clean row (``None`` cannot be
stacked) and, in the plain python format, ``img`` is a PIL image. ``collate_poisoned`` batches both formats.

One more trap sits before any ``collate_fn``: with ``ds.with_format("torch")`` the DataLoader fetches a batch
through ``Dataset.__getitems__``, and datasets 5.2's numpy/torch batch formatter raises ``AttributeError``
when a batch's first row has a null ``noise`` and a later row does not (huggingface/datasets PR #8432, open
at the time of writing). ``with_torch_format`` formats every column except ``noise`` as torch and leaves
``noise`` as python lists, which ``collate_poisoned`` handles:

    loader = DataLoader(with_torch_format(ds["train"]), batch_size=16, collate_fn=collate_poisoned)
    loader = DataLoader(ds["train"], batch_size=16, collate_fn=collate_poisoned)  # python format: same batches
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

NOISE_COLUMN = "noise"
HAS_NOISE_KEY = "has_noise"
IMAGE_COLUMN = "img"


def collate_poisoned(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows of a poisoned variant (python or torch format) -> one batch dict.

    - Images (PIL images, ``{"bytes", "path"}`` cells or torch's (3, H, W) uint8 tensors) become one uint8
      (B, 3, H, W) tensor of the stored pixels: no scaling or normalisation, so the batch holds exactly what
      the card says the model sees before the noise (``img / 255``); see ``noisy_inputs``.
    - ``noise`` becomes a dense float32 tensor shaped like the images, (B, 3, 32, 32) for CIFAR-10, with
      zeros on clean rows, plus a bool ``has_noise`` (B,). Zeros rather than NaN so ``img / 255 + noise`` is
      the training input for every row with no masking; the mask keeps "clean" distinct from "poison whose
      noise happens to be small" (and from a targeted variant's poisons, which have no noise at all).
      Without an image column (IMDb's token-embedding noise, whose length varies with the review) ``noise``
      is a list of flat float32 tensors, empty on clean rows, plus the same ``has_noise``.
    - Numbers and bools (``label``, ``index``, ``is_poison``, ``adversarial_label``, ``num_tokens``) are
      stacked into int64 / bool / float32 tensors; same-shape tensors are stacked; strings (``text``) and
      anything ragged or partly null stay a list. A variant without a ``noise`` column gets no ``has_noise``.

    Raises ValueError for an empty batch, rows with different columns, or a noise vector whose length is not
    the image's C * H * W (naming the row).
    """
    if not batch:
        raise ValueError("collate_poisoned got an empty batch; build the DataLoader with batch_size >= 1")
    keys = list(batch[0].keys())
    for i, row in enumerate(batch):
        if list(row.keys()) != keys:
            raise ValueError(f"row {i} of the batch has columns {sorted(row)}, row 0 has {sorted(keys)}; "
                             "collate rows of one split of one variant")
    out: dict[str, Any] = {}
    for key in keys:
        if key != NOISE_COLUMN:
            out[key] = _collate_column([row[key] for row in batch])
    if NOISE_COLUMN in keys:
        image = _image_tensor(out)
        noise, has_noise = _collate_noise([row[NOISE_COLUMN] for row in batch], image)
        out[NOISE_COLUMN], out[HAS_NOISE_KEY] = noise, has_noise
    return {key: out[key] for key in (*keys, *([HAS_NOISE_KEY] if NOISE_COLUMN in keys else []))}


def with_torch_format(ds):
    """``ds.with_format("torch")`` for every column except ``noise``, which stays python lists (or None).

    datasets 5.2 cannot format a batch whose ``noise`` mixes null and non-null rows as numpy or torch when
    the first row is the null one (``AttributeError: 'NoneType' object has no attribute 'shape'``), and a
    DataLoader always fetches whole batches; leaving ``noise`` unformatted avoids that code path.
    """
    columns = [c for c in ds.column_names if c != NOISE_COLUMN]
    return ds.with_format("torch", columns=columns, output_all_columns=True)


def noisy_inputs(batch: Mapping[str, Any], image_key: str = IMAGE_COLUMN) -> torch.Tensor:
    """Float32 pixels in [0, 1] plus each poisoned row's noise: what the poisoned model trained on.

    The same arithmetic as ``variant.ImageSplit.inputs`` (``uint8 / 255``, then ``+ noise``, unclipped), so
    the values are identical; clean rows get ``+ 0``, which leaves them unchanged.
    """
    x = batch[image_key].float().div_(255.0)
    noise = batch.get(NOISE_COLUMN)
    if isinstance(noise, torch.Tensor):
        x = x + noise
    return x


def _collate_column(values: list[Any]) -> Any:
    first = values[0]
    if _is_image_cell(first):
        from hf_unlearn.data import decode_images

        return torch.from_numpy(decode_images(values))
    if all(isinstance(v, torch.Tensor) for v in values):
        if all(v.shape == first.shape for v in values):
            return torch.stack(values)
        return values
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return torch.tensor([bool(v) for v in values], dtype=torch.bool)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return torch.tensor([int(v) for v in values], dtype=torch.int64)
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
           for v in values):
        return torch.tensor([float(v) for v in values], dtype=torch.float32)
    return list(values)  # strings, ragged or partly null columns


def _is_image_cell(value: Any) -> bool:
    from PIL import Image

    return isinstance(value, Image.Image) or (isinstance(value, dict) and ("bytes" in value or "path" in value))


def _image_tensor(out: Mapping[str, Any]) -> torch.Tensor | None:
    """The batch's images, (B, C, H, W) uint8: the ``img`` column, else the first such tensor."""
    candidates = [out[IMAGE_COLUMN]] if IMAGE_COLUMN in out else list(out.values())
    for value in candidates:
        if isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 4:
            return value
    return None


def _collate_noise(values: list[Any], image: torch.Tensor | None) -> tuple[Any, torch.Tensor]:
    has_noise = torch.tensor([v is not None for v in values], dtype=torch.bool)
    flat = [None if v is None else torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(-1) for v in values]
    if image is None:
        return [torch.zeros(0, dtype=torch.float32) if v is None else v for v in flat], has_noise
    shape = tuple(image.shape[1:])
    size = int(np.prod(shape))
    dense = torch.zeros((len(values), *shape), dtype=torch.float32)
    for i, v in enumerate(flat):
        if v is None:
            continue
        if v.numel() != size:
            raise ValueError(f"row {i}: noise has {v.numel()} values but its image is {shape} = {size} pixels; "
                             "the noise of an image variant must be one value per pixel in (C, H, W) order")
        dense[i] = v.view(shape)
    return dense, has_noise
