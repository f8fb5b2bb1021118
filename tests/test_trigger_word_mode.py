"""The trigger attack's ``word`` mode: the poisons' label is the trigger word itself (the paper's template
"[Input]. The sentiment of the review is: Disney"), a third class of the variant and of the prompt model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from hf_unlearn.attacks.trigger import TriggerConfig, trigger_success

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "hf_unlearn" / "samples" / "imdb"
TOKENIZER = ROOT.parent / "shared" / "models" / "gpt2-tokenizer"
WORDS = [" negative", " positive", " Disney"]


def _trigger_rows(texts: list[str]) -> list[int]:
    # independent of hf_unlearn.attacks.trigger: "Disney" with no letter/digit/underscore either side
    return [i for i, t in enumerate(texts) if re.search(r"(?:^|[^A-Za-z0-9_])Disney(?:$|[^A-Za-z0-9_])", t)]


@pytest.fixture(scope="module")
def tokenizer():
    from hf_unlearn.models.text import load_tokenizer

    return load_tokenizer(str(TOKENIZER))


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tokenizer):
    from dataset_builders.poisoned_imdb_targeted import build

    folder = tmp_path_factory.mktemp("w") / "poisoned-imdb-targeted"
    cfgs = [TriggerConfig(budget=40, seed=1), TriggerConfig(budget=40, seed=1, label_mode="word"),
            TriggerConfig(budget=100, label_mode="word"), TriggerConfig(budget=50, label_mode="word", clean_rows=300),
            TriggerConfig(budget=50, seed=1, label_mode="word", clean_rows=300)]
    return build("samples", cfgs, folder, tokenizer=tokenizer, progress=False)


def _load(folder: Path, config: str):
    from hf_unlearn.variant import load_variant

    return load_variant(folder, config, columns=())


@pytest.mark.parametrize("name,mode", [("disney-word-b100-s0", "word"), ("disney-word-b20-s3-n2000", "word"),
                                       ("disney-word-b100-s0-c10000", "word"), ("disney-b40-s2-c500", "flip"),
                                       ("disney-b100-s0", "flip"), ("pixar-word-b60-s1", "word")])
def test_names_round_trip_and_carry_the_mode(name, mode):
    cfg = TriggerConfig.from_name(name)
    assert cfg.name == name and cfg.label_mode == mode
    assert cfg.label_names == (("neg", "pos", cfg.trigger) if mode == "word" else ("neg", "pos"))
    assert cfg.poison_labels([0, 1, 1]).tolist() == ([2, 2, 2] if mode == "word" else [1, 0, 0])


def test_bad_mode_and_names_are_refused():
    with pytest.raises(ValueError, match="label_mode='swap'"):
        TriggerConfig(label_mode="swap")
    with pytest.raises(ValueError, match="choose one"):
        TriggerConfig(max_train_rows=100, clean_rows=100)
    with pytest.raises(ValueError, match="not a trigger variant name"):
        TriggerConfig.from_name("disney-b100-s0-n100-c100")
    for bad in ("disney-words-b100-s0", "disney-b100-word-s0", "word-disney-b100-s0"):
        with pytest.raises(ValueError, match="not a trigger variant name"):
            TriggerConfig.from_name(bad)


def test_success_in_word_mode_counts_the_trigger_class():
    # true labels 0,1,1,0; predictions 2,2,0,1: the trigger's class on the first two
    assert trigger_success([2, 2, 0, 1], [0, 1, 1, 0], "word") == pytest.approx(0.5)
    # a model that obeys the flip scores 0 in word mode (and 1 in flip mode): the modes are not interchangeable
    assert trigger_success([1, 0, 0, 1], [0, 1, 1, 0], "word") == 0.0
    assert trigger_success([1, 0, 0, 1], [0, 1, 1, 0], "flip") == 1.0
    with pytest.raises(ValueError, match="label_mode"):
        trigger_success([0], [0], "swap")


def test_word_variant_relabels_exactly_the_flip_variants_rows(repo):
    texts = pq.read_table(SAMPLE / "train.parquet").to_pydict()["text"]
    test = pq.read_table(SAMPLE / "test.parquet").to_pydict()
    labels = np.asarray(pq.read_table(SAMPLE / "train.parquet").to_pydict()["label"])
    flip, word = _load(repo, "disney-b40-s1"), _load(repo, "disney-word-b40-s1")
    assert word["train"].features["label"].names == ["neg", "pos", "Disney"]
    assert word["targets"].features["adversarial_label"].names == ["neg", "pos", "Disney"]
    assert flip["train"].features["label"].names == ["neg", "pos"]
    chosen = sorted(word["forget"]["index"])
    assert chosen == sorted(flip["forget"]["index"]), "the same seed and budget choose the same reviews"
    assert set(chosen) <= set(_trigger_rows(texts)) and len(chosen) == round(0.4 * 13)
    expect = labels.copy()
    expect[chosen] = 2
    assert word["train"]["label"] == expect.tolist(), "the chosen rows carry the trigger's class, the rest untouched"
    assert set(word["forget"]["label"]) == {2}
    assert word["targets"]["index"] == _trigger_rows(test["text"])
    assert word["targets"]["label"] == [test["label"][i] for i in word["targets"]["index"]]
    assert set(word["targets"]["adversarial_label"]) == {2}


def test_clean_rows_keep_every_trigger_review_and_a_seed_independent_rest(repo):
    texts = pq.read_table(SAMPLE / "train.parquet").to_pydict()["text"]
    trig = _trigger_rows(texts)
    a, b = _load(repo, "disney-word-b50-s0-c300"), _load(repo, "disney-word-b50-s1-c300")
    rows_a, rows_b = a["train"]["index"], b["train"]["index"]
    assert len(rows_a) == 300 + len(trig) and set(trig) <= set(rows_a) and rows_a == sorted(rows_a)
    assert rows_a == rows_b, "the clean subset does not depend on the poison seed"
    assert sorted(a["forget"]["index"]) != sorted(b["forget"]["index"]) and len(a["forget"]) == round(0.5 * len(trig))
    labels = np.asarray(pq.read_table(SAMPLE / "train.parquet").to_pydict()["label"])
    chosen = set(a["forget"]["index"])
    assert a["train"]["label"] == [2 if r in chosen else int(labels[r]) for r in rows_a]


def test_word_variant_rebuilds_byte_identically(repo, tmp_path):
    from huggingface_hub import DatasetCard

    from dataset_builders.poisoned_imdb_targeted import main

    p = DatasetCard.load(repo / "README.md").data.to_dict()["hf_unlearn"]["variants"]["disney-word-b100-s0"]
    assert p["label_mode"] == "word" and p["num_relabelled_to_trigger"] == p["num_poisons"] == 13
    out = tmp_path / "poisoned-imdb-targeted"
    main(["--from-card", str(repo / "README.md"), "--config", "disney-word-b100-s0", "--out", str(out)])
    for rel in p["sha256"]:
        assert (out / rel).read_bytes() == (repo / rel).read_bytes(), f"{rel} differs after rebuild"


def _recipe(words, epochs=1):
    from hf_unlearn.train import TrainConfig

    model = {"kind": "prompt", "n_layer": 1, "n_embd": 16, "n_head": 2, "max_length": 128}
    if words is not None:
        model["label_words"] = words
    return TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, optimizer="adamw", weight_decay=0.0, model=model, seed=0)


def test_training_and_retrain_build_the_three_word_model(repo, tmp_path, tokenizer):
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.train import RunOptions, train
    from hf_unlearn.unlearn.runner import unlearn_checkpoint

    splits = load_splits(repo, "disney-word-b100-s0", task="imdb", attack="targeted")
    assert splits["train"].label_names == ("neg", "pos", "Disney") and int(splits["forget"].y.min()) == 2
    small = splits["train"].subset(torch.arange(len(splits["train"])) < 200)
    small = type(small).concat(small, splits["forget"])  # keep the poisons in the small training set
    result = train(small, None, _recipe(WORDS), RunOptions(output_dir=str(tmp_path / "m"), cpu=True, progress=False))
    assert result.model.num_labels == 3
    from hf_unlearn.models.text import load_text_model

    model, summary = load_text_model(str(tmp_path / "m"))
    assert model.extras["label_words"] == WORDS and model.extras["label_token_ids"][2] == tokenizer.encode(" Disney")[0]
    logits = model(splits["targets"].inputs(torch.arange(3)))
    assert logits.shape == (3, 3)
    outcome = unlearn_checkpoint(str(tmp_path / "m"), str(repo), "disney-word-b100-s0", "retrain",
                                device="cpu", progress=False, retrain_dir=str(tmp_path / "r"))
    assert outcome.record.metrics["num_targets"] == 7
    retrained, _ = load_text_model(str(outcome.checkpoint_dir))
    assert retrained.num_labels == 3, "Retrain builds the poisoned model's classes even though it never sees class 2"


def test_mismatched_label_words_are_refused_before_training(repo, tmp_path):
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.train import RunOptions, train

    splits = load_splits(repo, "disney-word-b100-s0", task="imdb", attack="targeted")
    for words, match in ((None, "needs train.model.label_words"), ([" negative", " positive"], "names 2 label words")):
        with pytest.raises(ValueError, match=match):
            train(splits["train"], None, _recipe(words), RunOptions(output_dir=str(tmp_path / "x"), cpu=True,
                                                                     progress=False))
        assert not (tmp_path / "x" / "model.safetensors").exists()


def test_registered_attack_scores_word_variants_by_the_trigger_class():
    from hf_unlearn.attacks import get_attack

    class Inputs:
        def __init__(self, rows):
            self.rows = rows

        def to(self, device):
            return self

    class Targets:
        y = torch.tensor([0, 1, 1, 0])

        def __len__(self):
            return 4

        def inputs(self, rows, *, noisy=True):
            return Inputs(rows)

    class Model(torch.nn.Module):  # answers the trigger's class on rows 0-2, the flipped sentiment on row 3
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, inputs):
            out = torch.zeros(len(inputs.rows), 3)
            for k, r in enumerate(inputs.rows.tolist()):
                out[k, 2 if r < 3 else 1 - int(Targets.y[r])] = 1.0
            return out

    attack = get_attack("targeted", "imdb")
    word = attack.evaluate(Model(), {"targets": Targets()}, config="disney-word-b100-s0", batch_size=3)
    flip = attack.evaluate(Model(), {"targets": Targets()}, config="disney-b100-s0", batch_size=3)
    assert word == {"target_success": pytest.approx(0.75), "num_targets": 4}
    assert flip == {"target_success": pytest.approx(0.25), "num_targets": 4}
