"""The poisoned-cifar10-targeted builder: a seeded rebuild is byte-identical, the folder loads with datasets and
with the pipeline, the poisons are clean-label and within eps, and forget/targets say what the card says.

One tiny variant (100 train rows of the samples, 8 poisons, 2 targets, the "tiny" recipe) built once, then
rebuilt from its card into a second folder.
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

from dataset_builders._common import sha256
from dataset_builders.poisoned_cifar10_targeted import (
    REPO_NAME,
    add_arguments,
    build,
    config_from_params,
    grid,
    rebuild_from_card,
)
from hf_unlearn.attacks.targeted import RECIPES, TargetedConfig

CFG = TargetedConfig(budget=8, num_targets=2, seed=0, max_train_rows=100, recipe="tiny")
SPLITS = ("train", "forget", "test", "targets")
COLUMNS = ["img", "label", "index", "is_poison", "adversarial_label"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    first = build("samples", [CFG], tmp_path_factory.mktemp("a") / REPO_NAME, progress=False)
    second = rebuild_from_card(first / "README.md", CFG.name, tmp_path_factory.mktemp("b") / REPO_NAME)
    return first, second


@pytest.fixture(scope="module")
def params(built):
    from hf_unlearn import cards

    return cards.variant_params(built[0], CFG.name)


@pytest.fixture(scope="module")
def loaded(built, tmp_path_factory):
    import datasets

    # a cache of its own: datasets keys a local folder's cache by the folder's name, so a shared cache could hand
    # back an earlier build of another poisoned-cifar10-targeted folder
    return datasets.load_dataset(str(built[0]), CFG.name, cache_dir=str(tmp_path_factory.mktemp("hf-cache")))


def _pixels(cell) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"), dtype=np.int64)


def test_rebuild_from_card_is_byte_identical(built, params):
    first, second = built
    shards = sorted(p.relative_to(first).as_posix() for p in first.rglob("*.parquet"))
    assert len(shards) == 4 and shards == sorted(p.relative_to(second).as_posix() for p in second.rglob("*.parquet"))
    for rel in shards:
        assert sha256(first / rel) == sha256(second / rel) == params["sha256"][rel]
    assert (first / "README.md").read_text() == (second / "README.md").read_text()  # the card too


def test_a_grid_shares_one_crafting_model_and_builds_what_a_lone_build_does(params, tmp_path):
    """Seeds 1 then 0 in one call train the crafting model once; seed 0's shards are the lone build's bytes
    (crafting must not change the shared model, or the second variant would differ)."""
    from unittest import mock

    import dataset_builders._cifar10 as shared

    with mock.patch.object(shared, "crafting_model", wraps=shared.crafting_model) as trained:
        folder = build("samples", [replace(CFG, seed=1), CFG], tmp_path / REPO_NAME, progress=False)
    assert trained.call_count == 1
    for rel, digest in params["sha256"].items():
        assert sha256(folder / rel) == digest, rel


def test_card_records_the_variant(params):
    assert (params["attack"], params["task"], params["source"]) == ("targeted", "cifar10", "samples")
    assert params["recipe_params"] == RECIPES["tiny"].to_dict()
    assert params["crafting_model"]["train_config"]["width"] == 4 and len(params["crafting_model"]["sha256"]) == 64
    assert params["num_poisons"] == 8 and len(params["poison_indices"]) == 8
    assert params["poison_label"] != 9 and params["target_class"] == "truck"
    assert 0 < params["max_abs_change"] <= 16
    crafting = params["crafting"]
    assert crafting["best_restart"] == int(np.argmin(crafting["restart_losses"])) and len(crafting["restart_losses"]) == 2
    assert "adversarial_label" in params["success"]
    assert config_from_params(params) == CFG


def test_load_dataset_gives_the_splits_and_columns(loaded, params):
    assert sorted(loaded) == sorted(SPLITS)
    for split in SPLITS:
        assert loaded[split].column_names == COLUMNS, split
    assert (len(loaded["train"]), len(loaded["forget"]), len(loaded["test"]), len(loaded["targets"])) == (100, 8, 1000, 2)


def test_forget_is_the_train_poisons_and_poisons_are_clean_label(loaded, params):
    from hf_unlearn.data import load_source, raw_image_column

    train = loaded["train"].cast_column("img", __import__("datasets").Image(decode=False))
    forget = loaded["forget"].cast_column("img", __import__("datasets").Image(decode=False))
    flags = np.asarray(train["is_poison"])
    assert flags.sum() == 8 and all(forget["is_poison"])
    assert [r for r, f in zip(train["index"], flags) if f] == list(forget["index"]) == params["poison_indices"]
    poison_rows = np.flatnonzero(flags)
    assert [train[int(i)]["img"]["bytes"] for i in poison_rows] == [c["bytes"] for c in forget["img"]]
    assert list(np.asarray(train["label"])[flags]) == list(forget["label"]) == [params["poison_label"]] * 8

    source = load_source("cifar10", "samples")["train"]
    index = np.asarray(train["index"])
    assert list(train["label"]) == list(np.asarray(source["label"])[index])  # labels unchanged: clean label
    src_cells = raw_image_column(source.select(index))
    cells = train["img"]
    for i in range(len(index)):
        if not flags[i]:
            assert cells[i]["bytes"] == src_cells[i]["bytes"]  # clean rows keep the source's bytes
    changes = [np.abs(_pixels(cells[i]) - _pixels(src_cells[i])).max() for i in poison_rows]
    assert max(changes) == params["max_abs_change"] <= CFG.eps and min(changes) > 0


def test_targets_carry_the_poison_class_and_others_do_not(loaded, params):
    targets = loaded["targets"]
    assert list(targets["adversarial_label"]) == [params["poison_label"]] * 2
    assert list(targets["index"]) == params["target_indices"] and list(targets["label"]) == [9, 9]
    assert not any(targets["is_poison"])
    for split in ("train", "forget", "test"):
        assert set(loaded[split]["adversarial_label"]) == {-1}, split


def test_pipeline_load_splits_reads_poisons_and_targets(built, params):
    import torch

    from hf_unlearn.attacks.targeted import ATTACK
    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.pipeline import load_splits

    splits = load_splits(built[0], CFG.name)
    assert sorted(splits) == sorted(SPLITS)
    train = splits["train"]
    assert train.is_poison.sum() == 8
    assert train.index[train.is_poison].tolist() == params["poison_indices"]
    assert splits["forget"].is_poison.all() and not splits["test"].is_poison.any()
    assert splits["targets"].adversarial_label.tolist() == [params["poison_label"]] * 2
    torch.manual_seed(0)
    out = ATTACK.evaluate(ResNet18(width=4), splits, task="cifar10", config=CFG.name, null_draws=None, seed=0)
    assert out["num_targets"] == 2 and out["target_success"] in (0.0, 0.5, 1.0)


def test_a_card_with_other_recipe_values_is_refused(params):
    edited = {**params, "recipe_params": {**params["recipe_params"], "steps": 999}}
    with pytest.raises(ValueError, match="check out the hf-unlearn version"):
        config_from_params(edited)


def test_cli_grid():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--target-class", "truck", "cat", "--eps", "8", "16", "--budget", "1.5", "--seed", "0",
                              "1", "--recipe", "cpu", "--max-train-rows", "5000"])
    cfgs = grid(args.target_class, args.eps, args.budget, args.num_targets, args.seed, args.max_train_rows, args.recipe)
    assert len(cfgs) == 8 and cfgs[0].name == "truck-eps8-b1.5-t1-s0-n5000-cpu"
    assert {c.target_class for c in cfgs} == {"truck", "cat"}
