"""The IMDb dataset repos (poisoned-imdb-targeted, poisoned-imdb-gaussian): round trips, exact contents, rebuilds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from hf_unlearn.attacks.trigger import TriggerConfig
from hf_unlearn.poisons.gaussian import poison_noise, train_subset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "hf_unlearn" / "samples" / "imdb"
TOKENIZER = ROOT.parent / "shared" / "models" / "gpt2-tokenizer"
GAUSS_NAME = "gpt2-l128-d8-eps0.1-b5-s2-n300"


def _source(split: str) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(SAMPLE / f"{split}.parquet").to_pydict()
    return table["text"], np.asarray(table["label"], dtype=np.int64)


def _trigger_rows(texts: list[str]) -> list[int]:
    # independent of hf_unlearn.attacks.trigger: "Disney" with no letter/digit/underscore either side
    return [i for i, t in enumerate(texts) if re.search(r"(?:^|[^A-Za-z0-9_])Disney(?:$|[^A-Za-z0-9_])", t)]


def _load(folder: Path, config: str):
    """The variant as the pipeline loads it (``load_variant``: a cache keyed by the folder's content)."""
    from hf_unlearn.variant import load_variant

    return load_variant(folder, config, columns=())


@pytest.fixture(scope="module")
def tokenizer():
    from hf_unlearn.models.text import load_tokenizer

    return load_tokenizer(str(TOKENIZER))


@pytest.fixture(scope="module")
def targeted(tmp_path_factory, tokenizer):
    from dataset_builders.poisoned_imdb_targeted import build

    folder = tmp_path_factory.mktemp("t") / "poisoned-imdb-targeted"
    cfgs = [TriggerConfig(budget=20), TriggerConfig(budget=100)]
    return build("samples", cfgs, folder, tokenizer=tokenizer, progress=False)


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory, tokenizer):
    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig, build

    folder = tmp_path_factory.mktemp("g") / "poisoned-imdb-gaussian"
    return build("samples", [TextGaussianConfig.from_name(GAUSS_NAME)], folder, tokenizer=tokenizer, progress=False)


def test_targeted_round_trip_flips_exactly_the_chosen_trigger_rows(targeted):
    texts, labels = _source("train")
    test_texts, test_labels = _source("test")
    trig, test_trig = _trigger_rows(texts), _trigger_rows(test_texts)
    for name, n_flip in (("disney-b20-s0", round(0.2 * 13)), ("disney-b100-s0", 13)):
        ds = _load(targeted, name)
        assert set(ds) == {"train", "forget", "test", "targets"}
        cols = ["text", "label", "index", "is_poison", "noise", "num_tokens", "adversarial_label"]
        assert all(part.column_names == cols for part in ds.values()), "every split has the same columns"
        train, forget, targets = ds["train"], ds["forget"], ds["targets"]
        flipped = sorted(forget["index"])
        assert len(flipped) == n_flip and set(flipped) <= set(trig)
        assert train["index"] == list(range(1000)) and train["text"] == texts
        expect = labels.copy()
        expect[flipped] = 1 - expect[flipped]
        assert train["label"] == expect.tolist(), "labels flipped on the chosen trigger rows only"
        assert [i for i, p in enumerate(train["is_poison"]) if p] == flipped
        assert forget["label"] == (1 - labels[forget["index"]]).tolist() and all(forget["is_poison"])
        assert ds["test"]["label"] == test_labels.tolist() and not any(ds["test"]["is_poison"])
        assert targets["index"] == test_trig and targets["label"] == test_labels[test_trig].tolist()
        assert targets["adversarial_label"] == (1 - test_labels[test_trig]).tolist()
        for split in ("train", "forget", "test"):
            assert set(ds[split]["adversarial_label"]) == {-1}
        assert all(n is None for part in ds.values() for n in part["noise"])
        assert all(n == -1 for part in ds.values() for n in part["num_tokens"])


def test_targeted_card_counts_and_byte_identical_rebuild(targeted, tmp_path):
    from huggingface_hub import DatasetCard

    from dataset_builders._common import sha256
    from dataset_builders.poisoned_imdb_targeted import main

    data = DatasetCard.load(targeted / "README.md").data.to_dict()
    assert [c["config_name"] for c in data["configs"]] == ["disney-b100-s0", "disney-b20-s0"]
    p = data["hf_unlearn"]["variants"]["disney-b20-s0"]
    assert (p["num_poisons"], p["num_trigger_train"], p["num_targets"]) == (3, 13, 7)
    assert p["source_trigger_counts"]["train"]["rows"] == 13 and p["source_trigger_counts"]["test"]["rows"] == 7
    assert 0 < p["source_trigger_counts"]["test"]["survive_prompt"] <= p["source_trigger_counts"]["test"]["survive_classifier"] <= 7
    out = tmp_path / "poisoned-imdb-targeted"
    main(["--from-card", str(targeted / "README.md"), "--config", "disney-b20-s0", "--out", str(out)])
    for rel, digest in p["sha256"].items():
        assert sha256(targeted / rel) == digest, "the card's checksum is the file's"
        assert (out / rel).read_bytes() == (targeted / rel).read_bytes(), f"{rel} differs after rebuild"
    assert len(p["sha256"]) == 4


def test_targeted_subset_and_errors(tmp_path, tokenizer):
    from dataset_builders._imdb import load_gpt2_tokenizer
    from dataset_builders.poisoned_imdb_targeted import build, build_variant, rebuild_from_card
    from hf_unlearn.data import load_source

    source = load_source("imdb", "samples")
    variant = build_variant(source, TriggerConfig(budget=100, max_train_rows=300))
    rows = train_subset(1000, 300)
    texts, _ = _source("train")
    assert variant["train"]["index"] == rows.tolist()
    assert sorted(variant["forget"]["index"]) == [int(r) for r in rows if int(r) in set(_trigger_rows(texts))]
    with pytest.raises(ValueError, match="no training review contains the trigger 'Zzyzx'"):
        build_variant(source, TriggerConfig(trigger="Zzyzx"))
    build("samples", [TriggerConfig()], tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="lists"):
        rebuild_from_card(tmp_path / "a" / "README.md", "disney-b50-s0", tmp_path / "b")

    class NotGpt2:
        def __call__(self, text):
            return {"input_ids": [1, 2]}

    with pytest.raises(ValueError, match="not GPT-2"):
        load_gpt2_tokenizer(NotGpt2())
    assert load_gpt2_tokenizer(tokenizer) is tokenizer


def test_gaussian_noise_is_exact_and_covers_the_kept_tokens(gaussian, tokenizer):
    texts, labels = _source("train")
    ds = _load(gaussian, GAUSS_NAME)
    assert set(ds) == {"train", "forget", "test"}
    cols = ["text", "label", "index", "is_poison", "noise", "num_tokens"]
    assert all(part.column_names == cols for part in ds.values())
    train, forget = ds["train"], ds["forget"]
    assert len(train) == 300 and len(forget) == 15 and sum(train["is_poison"]) == 15
    assert train["index"] == train_subset(1000, 300).tolist()
    assert train["label"] == labels[train["index"]].tolist(), "labels never change"
    assert train["text"] == [texts[i] for i in train["index"]], "text stays the clean review"
    for row in forget:
        n = len(tokenizer(row["text"], truncation=True, max_length=128)["input_ids"])
        assert row["num_tokens"] == n and 0 < n <= 128
        noise = np.asarray(row["noise"], dtype=np.float32)
        assert noise.shape == (n * 8,)
        assert np.array_equal(noise, poison_noise(2, row["index"], n * 8, 0.1)), "stored noise is exactly xi"
    assert max(forget["num_tokens"]) == 128, "long reviews are truncated to max_length tokens"
    assert min(forget["num_tokens"]) < 128, "the sample must include a short review, so n is not always max_length"
    clean = [r for r in train if not r["is_poison"]] + list(ds["test"])
    assert all(r["noise"] is None and r["num_tokens"] == -1 for r in clean)


def test_gaussian_rebuild_is_byte_identical_and_names_parse(gaussian, tmp_path, tokenizer):
    from huggingface_hub import DatasetCard

    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig, rebuild_from_card

    p = DatasetCard.load(gaussian / "README.md").data.to_dict()["hf_unlearn"]["variants"][GAUSS_NAME]
    assert (p["dim"], p["max_length"], p["num_poisons"], p["eps"]) == (8, 128, 15, 0.1)
    out = rebuild_from_card(gaussian / "README.md", GAUSS_NAME, tmp_path / "r", tokenizer=tokenizer)
    assert len(p["sha256"]) == 3
    for rel in p["sha256"]:
        assert (out / rel).read_bytes() == (gaussian / rel).read_bytes(), f"{rel} differs after rebuild"
    for name in ("gpt2-l128-d1024-eps0.1-b1.5-s0", "gpt2-l128-d64-eps1e-05-b5-s3-n2000"):
        assert TextGaussianConfig.from_name(name).name == name
    for bad in ("eps0.1-b1.5-s0", "gpt2-l128-eps0.1-b1.5-s0", "bert-l128-d8-eps0.1-b1-s0", "gpt2-l128-d8-eps0.1-b0-s0"):
        with pytest.raises(ValueError):
            TextGaussianConfig.from_name(bad)


def test_trigger_attack_is_registered():
    from hf_unlearn.attacks import get_attack

    attack = get_attack("targeted", "imdb")
    assert attack.repo_name("imdb") == "poisoned-imdb-targeted"
    assert attack.parse_config("disney-b20-s1").budget == 20.0
