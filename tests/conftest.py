"""Shared fixtures: tiny variants built from the shipped samples, in tmp folders (no network)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No crafting-model cache across tests (dataset_builders/_cifar10.py): a rebuild test must really retrain, and a
# developer's ~/.cache must neither help nor hide anything. tests/test_crafting_cache.py turns it on where it tests it.
os.environ["HF_UNLEARN_CRAFTING_CACHE"] = "off"

# tests/mutations.py is a script (it runs pytest on broken copies of the package), not a test module.
collect_ignore = ["mutations.py"]


@pytest.fixture(scope="session")
def tiny_variant(tmp_path_factory):
    """A 200-row variant with 10 poisons (eps 0.1), built once per session from the samples."""
    from dataset_builders.poisoned_cifar10_gaussian import build
    from hf_unlearn.poisons.gaussian import GaussianPoisonConfig

    cfg = GaussianPoisonConfig(eps=0.1, budget=5.0, seed=3, max_train_rows=200)
    folder = build("samples", [cfg], tmp_path_factory.mktemp("ds") / "poisoned-cifar10-gaussian", progress=False)
    return folder, cfg


@pytest.fixture(scope="session")
def tiny_splits(tiny_variant):
    from hf_unlearn.pipeline import load_splits

    folder, cfg = tiny_variant
    return load_splits(folder, cfg.name)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny models (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``).

    On a shared 2-core machine two OpenMP threads per process spin-wait on each other: tiny convolutions were ~10x
    slower and double-backward crafting steps 30x slower (150 s instead of 4 s) than with one thread.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def datasets_cache(tmp_path, monkeypatch):
    """A private datasets cache, so a stale entry (or an earlier verification) from another test or run can neither
    help nor hide a bug in how a variant is loaded."""
    import datasets

    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache
