"""The poisoned-cifar10-indiscriminate builder on the shipped samples with the tiny recipe: layout, card, rebuild.

One variant (64 clean rows, budget 5% -> 3 appended poisons) is built once for the module; the rebuild test builds
it a second time from its card and compares every shard's sha256.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from huggingface_hub import DatasetCard

from dataset_builders._cifar10 import source_bytes
from dataset_builders._common import sha256
from dataset_builders.poisoned_cifar10_indiscriminate import REPO_NAME, build, rebuild_from_card
from hf_unlearn.attacks.indiscriminate import RECIPES, IndiscriminateConfig, choose_init_rows
from hf_unlearn.data import decode_images, load_source, raw_image_column
from hf_unlearn.poisons.gaussian import train_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread


CFG = IndiscriminateConfig(budget=5, seed=0, max_train_rows=64, recipe="tiny")
N_CLEAN, N_POISONS = 64, 3


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = build("samples", [CFG], tmp_path_factory.mktemp("gc") / REPO_NAME, progress=False)
    card = DatasetCard.load(folder / "README.md")
    return folder, card.data.to_dict()["hf_unlearn"]["variants"][CFG.name], card


@pytest.fixture(scope="module")
def source():
    return load_source("cifar10", "samples")


def test_train_is_clean_rows_then_appended_poisons_and_forget_is_exactly_them(built, source, tmp_path):
    import datasets

    folder, params, _ = built
    # a fresh cache: datasets keys a local folder's cache by its name and config, not its content
    ds = datasets.load_dataset(str(folder), CFG.name, cache_dir=str(tmp_path / "cache"))
    train, forget, test = ds["train"], ds["forget"], ds["test"]
    assert len(train) == N_CLEAN + N_POISONS and len(forget) == N_POISONS and len(test) == len(source["test"])
    index = np.asarray(train["index"])
    assert (index[N_CLEAN:] == -1).all() and (index[:N_CLEAN] >= 0).all(), "poisons are appended with index -1"
    assert train["is_poison"] == [False] * N_CLEAN + [True] * N_POISONS
    clean_bytes = [c["bytes"] for c in raw_image_column(train)]
    assert clean_bytes[:N_CLEAN] == source_bytes(source["train"], index[:N_CLEAN]), "clean rows keep the source bytes"
    assert train["label"][:N_CLEAN] == [source["train"][int(i)]["label"] for i in index[:N_CLEAN]]
    forget_bytes = [c["bytes"] for c in raw_image_column(forget)]
    assert forget_bytes == clean_bytes[N_CLEAN:], "forget holds the appended rows byte for byte"
    assert forget["label"] == train["label"][N_CLEAN:] and forget["index"] == [-1] * N_POISONS
    assert forget["is_poison"] == [True] * N_POISONS and not any(test["is_poison"])
    assert test["index"] == list(range(len(source["test"])))
    # poisons start from the seeded clean rows with their labels kept, and have moved away from them
    subset = train_subset(len(source["train"]), CFG.max_train_rows)
    init = subset[choose_init_rows(len(subset), N_POISONS, CFG.seed)].tolist()
    assert forget["label"] == [source["train"][r]["label"] for r in init]
    poisons = decode_images(raw_image_column(forget))
    starts = decode_images(raw_image_column(source["train"].select(init)))
    assert poisons.dtype == np.uint8 and poisons.shape == (N_POISONS, 3, 32, 32)
    assert (poisons != starts).any(), "crafting changed the pixels"


def test_card_records_recipe_model_target_and_the_perturbation_rule(built):
    _, params, card = built
    assert params["recipe"] == "tiny" and params["recipe_params"] == asdict(RECIPES["tiny"])
    assert (params["num_clean"], params["num_poisons"], params["num_train"]) == (N_CLEAN, N_POISONS, N_CLEAN + N_POISONS)
    assert params["crafting_model"]["train_config"]["width"] == 4 and len(params["crafting_model"]["sha256"]) == 64
    assert abs(params["target_l2_distance"] - RECIPES["tiny"].gradpc_radius) < 1e-5, "GradPC saturates its ball"
    for key in ("target_test_accuracy", "target_train_accuracy", "clean_model_test_accuracy"):
        assert 0.0 <= params[key] <= 1.0
    assert params["canceling_loss_final"] <= params["canceling_loss_initial"]
    assert params["canceling_loss_quantised"] > 0
    assert "unbounded" in params["perturbation"] and "8 bit" in params["perturbation"]
    assert "Perturbation bound: none" in card.text and "quantised to 8 bit" in card.text
    assert card.data.to_dict()["hf_unlearn"]["attack"] == "indiscriminate"


def test_seeded_rebuild_from_card_is_byte_identical(built, tmp_path):
    folder, params, _ = built
    again = rebuild_from_card(folder / "README.md", CFG.name, tmp_path / REPO_NAME)
    redone = DatasetCard.load(again / "README.md").data.to_dict()["hf_unlearn"]["variants"][CFG.name]
    assert redone["sha256"] == params["sha256"], "a seeded rebuild must give the same shards"
    for rel, digest in params["sha256"].items():
        assert sha256(again / rel) == digest == sha256(folder / rel)
    assert redone["crafting_model"]["sha256"] == params["crafting_model"]["sha256"]


def test_rebuild_refuses_a_card_whose_recipe_differs(built, tmp_path):
    folder, _, _ = built
    text = (folder / "README.md").read_text().replace("gc_epochs: 2", "gc_epochs: 7")
    (tmp_path / "README.md").write_text(text)
    with pytest.raises(ValueError, match="recipe 'tiny'"):
        rebuild_from_card(tmp_path / "README.md", CFG.name, tmp_path / "out")


def test_pipeline_splits_mark_exactly_the_appended_rows(built):
    from hf_unlearn.attacks import variant_identity
    from hf_unlearn.pipeline import load_splits

    folder, _, _ = built
    assert variant_identity(folder, CFG.name) == ("cifar10", "indiscriminate")
    splits = load_splits(folder, CFG.name)
    train = splits["train"]
    assert train.is_poison.tolist() == [False] * N_CLEAN + [True] * N_POISONS
    assert splits["forget"].is_poison.all() and not splits["test"].is_poison.any()
    assert (train.x[N_CLEAN:] == splits["forget"].x).all(), "forget decodes to the appended rows' pixels"
    retain = train.subset(~train.is_poison)
    assert len(retain) == N_CLEAN and (retain.index >= 0).all()
