"""Source data loaders: the clean CIFAR-10 and IMDb that every poisoned variant starts from.

A source is named three ways and all give the same columns and ClassLabel names
as the Hub copies (`img`/`text`, `label`):

- a Hub id (the default, ``uoft-cs/cifar10`` / ``stanfordnlp/imdb``);
- a local folder or parquet file(s), e.g. the offline copy ``../shared/data/cifar10``;
- ``"samples"``: the small class-balanced samples shipped inside this package,
  built by ``dataset_builders/build_samples.py``, so the demo runs with no Hub access.
"""

from __future__ import annotations

import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLES = "samples"


@dataclass(frozen=True)
class TaskSpec:
    hub_id: str
    input_column: str
    label_names: tuple[str, ...]


TASKS: dict[str, TaskSpec] = {
    "cifar10": TaskSpec(
        "uoft-cs/cifar10",
        "img",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
    "imdb": TaskSpec("stanfordnlp/imdb", "text", ("neg", "pos")),
}


def task_spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    return TASKS[task]


def _local_data_files(path: Path, splits: tuple[str, ...]) -> dict[str, list[str]]:
    """Map split -> parquet files for a folder (``train.parquet``, ``train-*.parquet``, ``train/*.parquet``)."""
    if path.is_file():
        if path.suffix != ".parquet":
            raise ValueError(f"source file {path} is not a .parquet file; pass a folder or parquet files")
        split = path.stem.split("-")[0]
        return {split if split in splits else "train": [str(path)]}
    files: dict[str, list[str]] = {}
    for split in splits:
        found = sorted(
            set(glob.glob(str(path / f"{split}.parquet")))
            | set(glob.glob(str(path / f"{split}-*.parquet")))
            | set(glob.glob(str(path / split / "*.parquet")))
            | set(glob.glob(str(path / "data" / f"{split}-*.parquet")))
        )
        if found:
            files[split] = found
    if not files:
        raise FileNotFoundError(
            f"no parquet files for splits {list(splits)} under {path}; expected e.g. "
            f"{path}/train.parquet and {path}/test.parquet"
        )
    return files


def load_source(task: str, source: str | os.PathLike | None = None, splits: tuple[str, ...] = ("train", "test")):
    """Load the clean source splits of ``task`` as a ``datasets.DatasetDict``.

    ``source`` is a Hub id, a local folder/parquet path, ``"samples"`` or None (the Hub id).
    The result always has the Hub copy's columns and ClassLabel names, whatever the origin.
    """
    import datasets

    spec = task_spec(task)
    source = spec.hub_id if source is None else str(source)
    if source == SAMPLES:
        path: Path | None = SAMPLES_DIR / task
        if not path.is_dir():
            raise FileNotFoundError(
                f"the shipped samples for {task!r} are missing at {path}; "
                "rebuild them with `python dataset_builders/build_samples.py`"
            )
    else:
        path = Path(source).expanduser()
        if not path.exists():
            path = None
    if path is not None:
        data_files = _local_data_files(path, splits)
        missing = [s for s in splits if s not in data_files]
        if missing:
            raise FileNotFoundError(f"source {source} has no parquet files for split(s) {missing}")
        ds = datasets.load_dataset("parquet", data_files=data_files)
    elif "/" in source and not source.startswith((".", "/")):
        ds = datasets.load_dataset(source)
    else:
        raise FileNotFoundError(f"source {source!r} is neither an existing path, 'samples', nor a Hub id (org/name)")
    ds = datasets.DatasetDict({s: ds[s] for s in splits})
    return _conform(ds, spec, source)


def _conform(ds, spec: TaskSpec, source: str):
    """Cast to the Hub copy's features so local and Hub sources are interchangeable."""
    import datasets

    for split, part in ds.items():
        for col in (spec.input_column, "label"):
            if col not in part.column_names:
                raise ValueError(
                    f"source {source} split {split!r} lacks column {col!r} (has {part.column_names}); "
                    f"a {spec.hub_id} copy needs columns {spec.input_column!r} and 'label'"
                )
    features = {"label": datasets.ClassLabel(names=list(spec.label_names))}
    features[spec.input_column] = datasets.Image() if spec.input_column == "img" else datasets.Value("string")
    out = {}
    for split, part in ds.items():
        part = part.select_columns([spec.input_column, "label"])
        out[split] = part.cast(datasets.Features({k: features[k] for k in part.column_names}))
    return datasets.DatasetDict(out)


PROGRESS_MIN_IMAGES = 10_000  # below this decoding takes about a second: no bar


def decode_images(column, progress: bool | None = None) -> np.ndarray:
    """Decode an ``img`` column (bytes dicts or PIL images) into uint8 (N, 3, 32, 32).

    Decoding ourselves from the stored bytes avoids datasets' per-row PIL round trip
    through Python objects and keeps channel order explicit. 50,000 PNGs take tens of seconds on one core, so a
    bar shows (``progress=None``: only for a large column, and only on a terminal, as tqdm decides).
    """
    from PIL import Image
    from tqdm.auto import tqdm

    total = len(column) if hasattr(column, "__len__") else None
    quiet = progress is False or (progress is None and (total or 0) < PROGRESS_MIN_IMAGES)
    rows = []
    for item in tqdm(column, total=total, desc="decoding images", unit="img", disable=True if quiet else (False if progress else None),
                     leave=False):
        if isinstance(item, dict):
            if item.get("bytes") is not None:
                img = Image.open(io.BytesIO(item["bytes"]))
            elif item.get("path"):
                img = Image.open(item["path"])
            else:
                raise ValueError("an img cell has neither bytes nor path")
        else:
            img = item
        arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if arr.shape != (32, 32, 3):
            raise ValueError(f"expected 32x32 RGB images, got an image of shape {arr.shape}")
        rows.append(arr)
    if not rows:
        return np.zeros((0, 3, 32, 32), dtype=np.uint8)
    return np.ascontiguousarray(np.stack(rows).transpose(0, 3, 1, 2))


def raw_image_column(ds):
    """The undecoded ``img`` cells (dicts with bytes) of a dataset."""
    import datasets

    return ds.cast_column("img", datasets.Image(decode=False))["img"]
