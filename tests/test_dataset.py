"""Sources, Gaussian poisons and the Hub-layout dataset folder: round trips and byte-identical rebuilds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hf_unlearn.data import load_source
from hf_unlearn.poisons.gaussian import (
    GaussianPoisonConfig,
    choose_poison_rows,
    num_poisons,
    poison_noise,
    train_subset,
)


def test_samples_have_hub_columns_and_labels():
    ds = load_source("cifar10", "samples")
    assert ds["train"].column_names == ["img", "label"]
    assert ds["train"].features["label"].names[9] == "truck"
    assert len(ds["train"]) == 5000 and len(ds["test"]) == 1000
    counts = np.bincount(ds["train"]["label"], minlength=10)
    assert (counts == 500).all(), "the shipped sample is class-balanced"
    imdb = load_source("imdb", "samples")
    assert imdb["train"].features["label"].names == ["neg", "pos"]


def test_source_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        load_source("mnist", "samples")
    with pytest.raises(FileNotFoundError, match="no parquet files"):
        load_source("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match="neither an existing path"):
        load_source("cifar10", "not-a-path")


def test_poison_choice_and_noise_are_seeded_and_exact():
    rows = train_subset(5000, 1000)
    assert len(rows) == 1000 and np.array_equal(rows, train_subset(5000, 1000))
    chosen = choose_poison_rows(rows, 1.5, seed=0)
    assert len(chosen) == num_poisons(1000, 1.5) == 15
    assert set(chosen) <= set(rows) and len(set(chosen)) == 15
    assert np.array_equal(chosen, choose_poison_rows(rows, 1.5, seed=0))
    assert not np.array_equal(chosen, choose_poison_rows(rows, 1.5, seed=1))
    a = poison_noise(0, 17, 3072, 0.1)
    assert a.dtype == np.float32 and np.array_equal(a, poison_noise(0, 17, 3072, 0.1))
    assert abs(a.std() - 0.1) < 0.005 and not np.array_equal(a, poison_noise(0, 18, 3072, 0.1))


@pytest.mark.parametrize("name", ["eps0.1-b1.5-s0", "eps0.15-b5-s2-n1000", "eps1e-05-b2.5-s10"])
def test_config_names_round_trip(name):
    assert GaussianPoisonConfig.from_name(name).name == name


@pytest.mark.parametrize("bad", ["eps0.1-b1.5", "gaussian", "eps-1-b1-s0"])
def test_bad_config_names_are_rejected(bad):
    with pytest.raises(ValueError):
        GaussianPoisonConfig.from_name(bad)


def test_variant_round_trip(tiny_variant):
    from datasets import load_dataset

    folder, cfg = tiny_variant
    ds = load_dataset(str(folder), cfg.name)
    assert set(ds) == {"train", "forget", "test"}
    for split in ds.values():
        assert split.column_names == ["img", "label", "index", "is_poison", "noise"]
    train, forget = ds["train"], ds["forget"]
    assert len(train) == 200 and len(forget) == 10 and sum(train["is_poison"]) == 10
    assert set(forget["index"]) <= set(train["index"]), "forget is a subset of train"
    for row in forget:
        expect = poison_noise(cfg.seed, row["index"], 3072, cfg.eps)
        assert np.array_equal(np.asarray(row["noise"], dtype=np.float32), expect), "stored noise is exactly xi"
    assert all(n is None for n, p in zip(train["noise"], train["is_poison"]) if not p)
    # images are the source's clean bytes: same pixels as the source row
    source = load_source("cifar10", "samples")["train"]
    i = forget[0]["index"]
    assert np.array_equal(np.asarray(forget[0]["img"]), np.asarray(source[i]["img"]))


def test_model_sees_exactly_x_plus_noise_unclipped(tiny_splits):
    import torch

    forget = tiny_splits["forget"]
    rows = torch.arange(len(forget))
    clean = forget.inputs(rows, noisy=False)
    noisy = forget.inputs(rows)
    assert torch.equal(noisy - clean, forget.noise[forget.noise_slot]) or torch.allclose(
        noisy - clean, forget.noise[forget.noise_slot], atol=1e-6
    )
    assert noisy.min() < 0 or noisy.max() > 1, "no clipping to [0, 1]"


def test_card_lists_every_config_and_rebuild_is_byte_identical(tmp_path):
    from huggingface_hub import DatasetCard

    from dataset_builders.poisoned_cifar10_gaussian import build, rebuild_from_card

    variants = [GaussianPoisonConfig(0.1, b, 0, 300) for b in (1.5, 2.0)]
    first = build("samples", variants, tmp_path / "a", progress=False)
    card = DatasetCard.load(first / "README.md")
    names = [c["config_name"] for c in card.data.to_dict()["configs"]]
    assert names == ["eps0.1-b1.5-s0-n300", "eps0.1-b2-s0-n300"]
    params = card.data.to_dict()["hf_unlearn"]["variants"]["eps0.1-b2-s0-n300"]
    assert params["num_poisons"] == 6 and params["eps"] == 0.1

    second = rebuild_from_card(first / "README.md", "eps0.1-b2-s0-n300", tmp_path / "b")
    files = sorted(p.relative_to(first) for p in (first / "data" / "eps0.1-b2-s0-n300").rglob("*.parquet"))
    assert len(files) == 3
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), f"{rel} differs after rebuild"
    # the card's checksums are the files' checksums
    from dataset_builders._common import sha256

    for rel, digest in params["sha256"].items():
        assert sha256(first / rel) == digest


def test_unknown_config_and_missing_folder(tiny_variant, tmp_path):
    from hf_unlearn.variant import load_variant

    folder, _ = tiny_variant
    with pytest.raises(ValueError, match="eps9-b1-s0"):
        load_variant(folder, "eps9-b1-s0")
    with pytest.raises(Exception):
        load_variant(tmp_path / "missing", "eps0.1-b1.5-s0")


def test_rebuild_from_card_rejects_unknown_config(tiny_variant):
    from dataset_builders.poisoned_cifar10_gaussian import rebuild_from_card

    folder, _ = tiny_variant
    with pytest.raises(ValueError, match="lists"):
        rebuild_from_card(Path(folder) / "README.md", "eps1-b1-s1", "unused")
