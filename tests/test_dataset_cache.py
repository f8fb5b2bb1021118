"""load_variant never serves an earlier build's cache: datasets (5.2) keys a local folder's cache by its name,
config and card patterns only, so a rebuilt folder with the same name and config came back with the old rows."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_unlearn.poisons.gaussian import GaussianPoisonConfig

ROOT = Path(__file__).resolve().parents[1]
CFG = GaussianPoisonConfig(eps=0.1, budget=5.0, seed=0, max_train_rows=100)


@pytest.fixture(scope="module")
def other_source(tmp_path_factory) -> Path:
    """The CIFAR-10 sample with its train rows reversed: the same config name then holds other images and labels."""
    folder = tmp_path_factory.mktemp("source")
    sample = ROOT / "hf_unlearn" / "samples" / "cifar10"
    train = pq.read_table(sample / "train.parquet")
    pq.write_table(train.take(pa.array(range(train.num_rows - 1, -1, -1))), folder / "train.parquet")
    pq.write_table(pq.read_table(sample / "test.parquet"), folder / "test.parquet")
    return folder


def _on_disk(folder: Path, split: str) -> list[int]:
    """The labels a split's shards hold, read with pyarrow (no datasets cache involved)."""
    files = sorted((folder / "data" / CFG.name).glob(f"{split}-*.parquet"))
    return pq.read_table(files, columns=["label"])["label"].to_pylist()


def test_same_name_and_config_with_other_content_loads_the_new_rows(tmp_path, datasets_cache, other_source):
    from dataset_builders.poisoned_cifar10_gaussian import build
    from hf_unlearn.variant import load_variant

    a = build("samples", [CFG], tmp_path / "x" / "poisoned-cifar10-gaussian", progress=False)
    first = load_variant(a, CFG.name)
    assert first["train"]["label"] == _on_disk(a, "train")

    b = build(str(other_source), [CFG], tmp_path / "y" / "poisoned-cifar10-gaussian", progress=False)
    assert _on_disk(b, "train") != _on_disk(a, "train"), "the test needs two builds that differ"
    second = load_variant(b, CFG.name)
    assert second["train"]["label"] == _on_disk(b, "train"), "load_variant served the earlier folder's cached rows"
    assert second["forget"]["index"] == pq.read_table(sorted((b / "data" / CFG.name).glob("forget-*")))["index"].to_pylist()

    # the same folder rebuilt in place with other content is just as new
    build(str(other_source), [CFG], a, progress=False)
    assert load_variant(a, CFG.name)["train"]["label"] == _on_disk(b, "train")


def test_repeated_loads_of_one_folder_reuse_the_cache(tmp_path, datasets_cache):
    from dataset_builders.poisoned_cifar10_gaussian import build
    from hf_unlearn.variant import load_variant

    folder = build("samples", [CFG], tmp_path / "poisoned-cifar10-gaussian", progress=False)
    first = load_variant(folder, CFG.name)
    arrow = Path(first["train"].cache_files[0]["filename"])
    written = arrow.stat().st_mtime_ns
    start = time.perf_counter()
    again = load_variant(folder, CFG.name)
    took = time.perf_counter() - start
    assert [Path(f["filename"]) for f in again["train"].cache_files] == [arrow], "a second load made a new cache"
    assert arrow.stat().st_mtime_ns == written, "a second load rewrote the cached arrow file"
    assert arrow.is_relative_to(datasets_cache), "the cache lives under datasets' cache root"
    assert took < 5.0, f"a cached load took {took:.1f} s"
