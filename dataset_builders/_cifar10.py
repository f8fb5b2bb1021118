"""What the crafted CIFAR-10 poisons (gradient matching, gradient canceling) share: pixels in, PNG out, a clean model.

Both attacks optimise pixels against a model trained on clean data (the attacker's copy of the victim's recipe), and
both store their poisons as images, not as noise: crafted rows are quantised to 8 bit and written losslessly (PNG),
while clean rows keep the source's encoded bytes. Keeping that here means the two builders hold only their attack.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hf_unlearn.data import decode_images, raw_image_column, task_spec
from hf_unlearn.poisons.gaussian import train_subset

if TYPE_CHECKING:  # hf_unlearn.train imports torch; the builders' CLI (and `hf-unlearn --help`) must not
    from hf_unlearn.train import TrainConfig

logger = logging.getLogger(__name__)

TASK = "cifar10"
SOURCE_HELP = "clean CIFAR-10: Hub id (default uoft-cs/cifar10), folder/parquet, or 'samples'"  # every CIFAR builder's


def image_features(adversarial_label: bool = False):
    """The columns of a crafted-poison repo: DESIGN.md's table without ``noise`` (+ the targets' goal label)."""
    import datasets

    cols = {
        "img": datasets.Image(),
        "label": datasets.ClassLabel(names=list(task_spec(TASK).label_names)),
        "index": datasets.Value("int64"),
        "is_poison": datasets.Value("bool"),
    }
    if adversarial_label:
        cols["adversarial_label"] = datasets.Value("int64")
    return datasets.Features(cols)


def png_bytes(img: np.ndarray) -> bytes:
    """One uint8 (3, 32, 32) image as lossless PNG; the same pixels give the same bytes (fixed encoder settings)."""
    from PIL import Image

    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.shape != (3, 32, 32):
        raise ValueError(f"png_bytes takes a uint8 (3, 32, 32) CHW image, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)), mode="RGB").save(
        buf, format="PNG", optimize=False, compress_level=6
    )
    return buf.getvalue()


def image_rows_dataset(images: list[bytes], labels, index, is_poison, adversarial_label=None):
    """A split from encoded images and their columns (``adversarial_label`` only for targeted repos)."""
    import datasets

    columns: dict[str, Any] = {
        "img": [{"bytes": b, "path": None} for b in images],
        "label": [int(v) for v in labels],
        "index": np.asarray(index, dtype=np.int64),
        "is_poison": [bool(v) for v in is_poison],
    }
    n = len(images)
    if any(len(columns[k]) != n for k in ("label", "index", "is_poison")):
        raise ValueError("image_rows_dataset: images, labels, index and is_poison differ in length")
    if adversarial_label is not None:
        columns["adversarial_label"] = np.asarray(adversarial_label, dtype=np.int64)
        if len(columns["adversarial_label"]) != n:
            raise ValueError("image_rows_dataset: adversarial_label differs in length from the images")
    return datasets.Dataset.from_dict(columns, features=image_features(adversarial_label is not None))


def source_bytes(part, rows: np.ndarray) -> list[bytes]:
    """The source's own encoded bytes of ``rows`` (clean rows are stored untouched)."""
    return [c["bytes"] for c in raw_image_column(part.select(np.asarray(rows, dtype=np.int64)))]


def decoded_train(source_ds, max_train_rows: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source rows, uint8 images, labels) of the training subset every variant of ``max_train_rows`` shares."""
    rows = train_subset(len(source_ds["train"]), max_train_rows)
    part = source_ds["train"].select(rows)
    x = decode_images(raw_image_column(part))
    y = np.asarray(part["label"], dtype=np.int64)
    return rows, x, y


def decoded_test(source_ds) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of the source's test split."""
    part = source_ds["test"]
    return decode_images(raw_image_column(part)), np.asarray(part["label"], dtype=np.int64)


def _preset_train(name: str) -> TrainConfig:
    from hf_unlearn.config import load_preset

    return load_preset(name).train


# The victim regime each crafting recipe is for (a recipe not named after its regime says which it is).
RECIPE_REGIME = {"paper": "paper", "cpu": "cpu", "cpunear": "cpu", "tiny": "tiny"}


def crafting_train_config(recipe: str, attack: str | None = None) -> TrainConfig:
    """The clean model a recipe crafts against: the victim recipe of the recipe's regime (``RECIPE_REGIME``).

    With ``attack``, the training section of that attack's own preset (``cifar10-<attack>`` for "cpu",
    ``cifar10-<attack>-paper`` for "paper"): the attacker knows the victim's recipe (Witches' Brew's grey-box
    setting), so the crafting model is trained as the victim will be. Without it, the Gaussian regimes'
    (``paper``; ``cpu-fidelity``). ``tiny``: a width-4 network trained one epoch, for tests only.
    """
    if recipe not in RECIPE_REGIME:
        raise ValueError(f"recipe={recipe!r}: expected one of {sorted(RECIPE_REGIME)}")
    regime = RECIPE_REGIME[recipe]
    if regime == "tiny":
        from hf_unlearn.train import TrainConfig

        return TrainConfig(epochs=1, batch_size=64, lr=0.05, width=4, augment="none", seed=0, eval_batch_size=256)
    if attack is not None:
        return _preset_train(f"cifar10-{attack}" + ("-paper" if regime == "paper" else ""))
    return _preset_train("paper" if regime == "paper" else "cpu-fidelity")


def weights_sha256(model) -> str:
    """A digest of a model's parameters and buffers (names, dtypes, bytes): which crafting model a card used."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


CACHE_ENV = "HF_UNLEARN_CRAFTING_CACHE"


def crafting_cache_dir() -> Path | None:
    """Where trained crafting models are kept between builds: ``$HF_UNLEARN_CRAFTING_CACHE`` ("off" disables),
    default ``~/.cache/hf_unlearn/crafting-models``.

    Why: a crafting model costs a full training run (hours on a CPU at the CPU presets' scale), and it depends only
    on the training images and the victim recipe. Without a cache every new build process (another seed added to a
    repo, a build resumed after an interruption) trains it again, and training in another process is not guaranteed
    to give the same bits, so variants built in two sittings would be crafted against two different models.
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "hf_unlearn" / "crafting-models"


def crafting_cache_key(x_uint8: np.ndarray, y: np.ndarray, train_config: TrainConfig) -> str:
    """sha256 of the training images, their labels and the training recipe: what the crafting model is a function
    of (on one software stack; the torch version is part of the key, since another one may train other bits)."""
    import torch

    h = hashlib.sha256()
    for part in (np.ascontiguousarray(x_uint8, dtype=np.uint8), np.ascontiguousarray(y, dtype=np.int64)):
        h.update(str(part.shape).encode())
        h.update(part.tobytes())
    h.update(json.dumps(asdict(train_config), sort_keys=True, default=str).encode())
    h.update(torch.__version__.encode())
    return h.hexdigest()


def _load_cached(folder: Path):
    """(model, info) from a cache entry, or None when it is absent, unreadable or its weights' digest differs from
    the one recorded at training time (a truncated or edited file is retrained, never used)."""
    from hf_unlearn.models.resnet import ResNet18

    info_path = folder / "crafting_model.json"
    if not info_path.is_file():
        return None
    try:
        info = json.loads(info_path.read_text())
        model = ResNet18.from_pretrained(str(folder)).eval()
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is rebuilt, with the reason shown
        logger.warning("crafting-model cache entry %s is unreadable (%s); training again", folder, exc)
        return None
    if weights_sha256(model) != info.get("sha256"):
        logger.warning("crafting-model cache entry %s does not match its recorded digest; training again", folder)
        return None
    for p in model.parameters():
        p.requires_grad_(True)
    return model, info


def _store_cached(folder: Path, model, info: dict[str, Any]) -> None:
    """Write the entry to a temporary sibling and rename it into place, so a reader never sees half an entry; a
    damaged entry it replaces is first renamed aside (``_load_cached`` refused it)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        model.save_pretrained(str(tmp))
        (tmp / "crafting_model.json").write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
        if folder.exists():
            stale = Path(tempfile.mkdtemp(prefix=folder.name + ".stale-", dir=folder.parent))
            os.replace(folder, stale / "entry")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if _load_cached(folder) is None:  # unless another build stored the same entry first, a real failure
            raise


def crafting_model(x_uint8: np.ndarray, y: np.ndarray, train_config: TrainConfig, *, progress: bool = True):
    """A clean ResNet-18 trained with ``hf_unlearn.train.train`` on these images (CPU, in a temporary folder), or
    the same model from the crafting-model cache (``crafting_cache_dir``) when an earlier build trained it.

    Returns (model in eval mode, info for the card: ``train_config``, ``training_cost``, ``num_train`` and the
    weights' ``sha256``; the same whether trained or loaded, so the card does not depend on the cache). Training
    is seeded by ``train_config.seed``, so a rebuild gets the same weights on the same software; the card's digest
    shows when it did not.
    """
    import torch

    cache = crafting_cache_dir()
    entry = cache / crafting_cache_key(x_uint8, y, train_config) if cache is not None else None
    if entry is not None and (cached := _load_cached(entry)) is not None:
        logger.info("crafting model: loaded from the cache %s (sha256 %s)", entry, cached[1]["sha256"][:12])
        return cached

    from hf_unlearn.train import RunOptions, train
    from hf_unlearn.variant import ImageSplit

    x = torch.from_numpy(np.ascontiguousarray(x_uint8))
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    n = len(labels)
    split = ImageSplit(x, labels, torch.arange(n), torch.zeros(0, 3, 32, 32), torch.full((n,), -1, dtype=torch.int64))
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-crafting-") as tmp:
        options = RunOptions(output_dir=os.path.join(tmp, "model"), cpu=not torch.cuda.is_available(),
                             checkpointing=False, resume=False, progress=progress)
        result = train(split, None, replace(train_config), options, task=TASK)
    model = result.model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    info = {
        "train_config": asdict(train_config),
        "training_cost": float(result.training_cost),
        "num_train": n,
        "sha256": weights_sha256(model),
    }
    if entry is not None:
        _store_cached(entry, model, info)
    return model, info


def build_crafted(repo, source: str | None, variants: list, out_dir, attack: str, build_variant, *,
                  progress: bool = True):
    """Build a crafted attack's variants into ``out_dir`` (``repo.build``), training one clean crafting model per
    (training subset, recipe): it depends on neither seed nor budget, so ten seeds cost one training, not ten.
    ``build_variant(source_ds, cfg, clean_model, progress=)`` makes one variant."""
    from dataset_builders.poisoned_cifar10_gaussian import source_fingerprint
    from hf_unlearn.data import load_source

    source_ds = load_source(TASK, source)
    models: dict[tuple[Any, str], Any] = {}

    def make(cfg):
        key = (cfg.max_train_rows, cfg.recipe)
        if key not in models:
            _, x, y = decoded_train(source_ds, cfg.max_train_rows)
            models[key] = crafting_model(x, y, crafting_train_config(cfg.recipe, attack), progress=progress)
        return build_variant(source_ds, cfg, models[key], progress=progress)

    return repo.build(out_dir, variants, make, source=source or task_spec(TASK).hub_id,
                      fingerprint=source_fingerprint(source_ds), progress=progress)
