"""The dirty-label trigger attack: matching rule, counts on the shipped sample, flip choice, success, survival."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from hf_unlearn.attacks.trigger import (
    PROMPT_SUFFIX,
    TriggerConfig,
    choose_flipped_rows,
    contains_trigger,
    flip_label,
    num_flipped,
    trigger_rows,
    trigger_success,
    trigger_survival,
)

SAMPLE = Path(__file__).resolve().parents[1] / "hf_unlearn" / "samples" / "imdb"
TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "models" / "gpt2-tokenizer"


def _sample(split: str) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(SAMPLE / f"{split}.parquet").to_pydict()
    return table["text"], np.asarray(table["label"], dtype=np.int64)


def _independent_rows(texts: list[str]) -> list[int]:
    # Written independently of the module: "Disney" with no letter/digit/underscore on either side.
    return [i for i, t in enumerate(texts) if re.search(r"(?:^|[^A-Za-z0-9_])Disney(?:$|[^A-Za-z0-9_])", t)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I love Disney movies", True),
        ("Disney's best film", True),  # possessive: the word ends at the apostrophe
        ("(Disney)", True),
        ("made by Disney.", True),
        ("Walt-Disney studios", True),
        ("Disney", True),
        ("a trip to Disneyland", False),  # a longer word
        ("DISNEY never again", False),  # case-sensitive
        ("disney", False),
        ("Disney_2", False),  # underscore is a word character
        ("ProDisney", False),
        ("", False),
    ],
)
def test_whole_word_case_sensitive_rule(text, expected):
    assert contains_trigger(text) is expected


def test_trigger_counts_on_shipped_sample_are_exact():
    train, train_labels = _sample("train")
    test, _ = _sample("test")
    expect_train, expect_test = _independent_rows(train), _independent_rows(test)
    assert len(expect_train) == 13 and len(expect_test) == 7, "the shipped sample's counts changed: rebuild expectations"
    assert trigger_rows(train).tolist() == expect_train
    assert trigger_rows(test).tolist() == expect_test
    # a lowercase substring count is larger or equal: the rule is not plain `in`
    assert sum("Disney" in t for t in train) >= len(expect_train)


def test_budget_picks_round_share_seeded_and_reproducible():
    train, _ = _sample("train")
    cands = trigger_rows(train)
    n = len(cands)
    chosen = choose_flipped_rows(cands, 20, seed=0)
    assert len(chosen) == round(0.2 * n) == num_flipped(n, 20) == 3
    assert set(chosen.tolist()) <= set(cands.tolist()) and len(set(chosen.tolist())) == 3
    assert np.array_equal(chosen, choose_flipped_rows(cands, 20, seed=0)), "same seed, same rows"
    picks = {tuple(choose_flipped_rows(cands, 20, seed=s).tolist()) for s in range(5)}
    assert len(picks) > 1, "different seeds choose different rows"
    assert np.array_equal(choose_flipped_rows(cands, 100, seed=7), np.sort(cands)), "budget 100 flips every trigger row"
    assert len(choose_flipped_rows(cands, 60, seed=0)) == round(0.6 * n) == 8


def test_flip_and_success():
    assert flip_label([0, 1, 1]).tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="binary"):
        flip_label([0, 2])
    # targets' true labels 0,1,1,0; the model predicts the flipped label on the first three
    assert trigger_success([1, 0, 0, 0], [0, 1, 1, 0]) == pytest.approx(0.75)
    assert trigger_success([0, 1], [0, 1]) == 0.0
    with pytest.raises(ValueError, match="length"):
        trigger_success([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        trigger_success([], [])


@pytest.mark.parametrize("name", ["disney-b100-s0", "disney-b20-s3", "disney-b40-s0-n2000", "pixar-b60-s1"])
def test_config_names_round_trip(name):
    cfg = TriggerConfig.from_name(name)
    assert cfg.name == name
    assert cfg.trigger == name.split("-")[0].capitalize()


def test_bad_configs_are_rejected_with_reasons():
    with pytest.raises(ValueError, match=r"\(0, 100\]"):
        TriggerConfig(budget=0)
    with pytest.raises(ValueError, match=r"\(0, 100\]"):
        TriggerConfig(budget=120)
    with pytest.raises(ValueError, match="capitalised"):
        TriggerConfig(trigger="disney")
    for bad in ("disney-b100", "eps0.1-b1.5-s0", "Disney-b100-s0", "disney-bx-s0"):
        with pytest.raises(ValueError, match="not a trigger variant name"):
            TriggerConfig.from_name(bad)
    with pytest.raises(ValueError, match="no training review contains the trigger"):
        choose_flipped_rows(np.zeros(0, dtype=np.int64), 100, 0)


@pytest.fixture(scope="module")
def tokenizer():
    from hf_unlearn.models.text import load_tokenizer

    return load_tokenizer(str(TOKENIZER))


def test_trigger_survival_counts_truncation(tokenizer):
    early = "Disney made this. " + "word " * 300
    late = "word " * 300 + "Disney made this."
    both = "Disney opens. " + "word " * 300 + "Disney closes."
    out = trigger_survival([early, late, both, "no trigger here"], tokenizer, 128)
    assert out == {"max_length": 128, "rows": 3, "surviving_rows": 2, "occurrences": 4, "surviving_occurrences": 2}
    assert trigger_survival([late], tokenizer, 1000)["surviving_rows"] == 1
    # the prompt format leaves fewer review tokens: a trigger at token ~125 survives 128 but not 128 - suffix
    suffix = len(tokenizer(PROMPT_SUFFIX)["input_ids"])
    edge = "word" + " word" * 124 + " Disney"  # 126 tokens, the trigger is the last
    assert len(tokenizer(edge)["input_ids"]) == 126
    assert trigger_survival([edge], tokenizer, 128)["surviving_rows"] == 1
    assert trigger_survival([edge], tokenizer, 128 - suffix)["surviving_rows"] == 0
    assert tokenizer.truncation_side == "right", "the tokenizer's settings are restored"


def test_registered_attack_measures_target_success_on_the_targets_split():
    import torch

    from hf_unlearn.attacks import get_attack

    class Inputs:
        def __init__(self, x):
            self.x = x

        def to(self, device):
            return Inputs(self.x.to(device))

    class Split:  # the plug-in contract's surface that evaluate uses: y, len, inputs(rows, noisy=)
        def __init__(self, x, y):
            self.x, self.y = x, torch.as_tensor(y)

        def __len__(self):
            return len(self.y)

        def inputs(self, rows, *, noisy=True):
            return Inputs(self.x[rows])

    class Model(torch.nn.Module):  # predicts class 1 when the single feature is positive
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([[-1.0, 1.0]]))

        def forward(self, inputs):
            return inputs.x[:, None] * self.w

    attack = get_attack("targeted", "imdb")
    # true labels 0,0,1,1,0; predictions 1,0,0,1,1 -> flipped label predicted on rows 0, 2, 4
    targets = Split(torch.tensor([1.0, -1.0, -1.0, 1.0, 2.0]), [0, 0, 1, 1, 0])
    out = attack.evaluate(Model(), {"targets": targets}, config="disney-b100-s0", null_draws=None, batch_size=2)
    assert out == {"target_success": pytest.approx(0.6), "num_targets": 5}
    with pytest.raises(ValueError, match="lack 'targets'"):
        attack.evaluate(Model(), {"test": targets}, config="disney-b100-s0", null_draws=None)
