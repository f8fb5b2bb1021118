"""The text benchmarks (benchmarks/text_scoring.py, text_training.py) run end to end at the smallest settings:
each prints and returns its ratio, and its two arms provably compute the same thing (the check is sensitive)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_TOKENIZER = ROOT.parent / "shared" / "models" / "gpt2-tokenizer"
TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def offline_tokenizer_one_thread(monkeypatch):
    """The scripts build GPT-2 with the offline tokenizer; one thread, restored after (the scripts' --threads)."""
    if not os.environ.get("HF_UNLEARN_GPT2_TOKENIZER"):
        if not (SHARED_TOKENIZER / "gpt2.tiktoken").is_file():
            pytest.skip(f"no offline GPT-2 tokenizer at {SHARED_TOKENIZER}")
        monkeypatch.setenv("HF_UNLEARN_GPT2_TOKENIZER", str(SHARED_TOKENIZER))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_text_scoring_prints_its_ratio_and_both_arms_give_the_same_gradients(capsys):
    import text_scoring

    from hf_unlearn.tasks.imdb import input_gradients

    out = text_scoring.run(["--reviews", "6", "--tokens", "8", "--batch-size", "4", "--repeats", "1", "--threads", "1"])
    printed = capsys.readouterr().out
    assert f"project / bare throughput = {out['ratio']:.2f}x" in printed
    assert math.isfinite(out["ratio"]) and out["ratio"] > 0
    assert out["max_abs_diff"] <= TOLERANCE

    # The same comparison, made here, is not vacuous: the gradients are non-zero on real tokens, zero on pads,
    # and the check flags bare gradients taken with other labels.
    model = text_scoring.build_model(2, 64, 2, 8, "cpu")
    split = text_scoring.synthetic_split(6, 8, 64)
    grads = input_gradients(model, split, 4)
    per_token = grads.reshape(6, 8, 64).abs().sum(2)
    assert bool((per_token[split.mask == 1] > 0).all()) and bool((per_token[split.mask == 0] == 0).all())
    batches = text_scoring.bare_batches(split, 4, "cpu")
    assert text_scoring.max_difference(grads, text_scoring.bare_gradients(model, batches), split) <= TOLERANCE
    flipped = [(ids, mask, 1 - y) for ids, mask, y in batches]
    assert text_scoring.max_difference(grads, text_scoring.bare_gradients(model, flipped), split) > 100 * TOLERANCE


def test_text_training_prints_its_ratio_and_both_arms_train_the_same_model(capsys):
    import text_training

    out = text_training.run(["--rows", "8", "--tokens", "8", "--epochs", "2", "--batch-size", "4", "--repeats", "1",
                             "--threads", "1", "--no-checkpointing"])
    printed = capsys.readouterr().out
    assert f"project / bare time = {out['ratio']:.3f}" in printed
    assert math.isfinite(out["ratio"]) and out["ratio"] > 0
    # Same batches, dropout draws and AdamW updates: the per-epoch losses and final weights agree.
    assert len(out["project_losses"]) == 2 and out["loss_diff"] <= TOLERANCE and out["weight_diff"] <= TOLERANCE

    # ... and the comparison would see a different run: another seed gives other weights.
    split = text_training.synthetic_split(8, 8, 64)
    from hf_unlearn.train import TrainConfig

    base = dict(epochs=1, batch_size=4, lr=1e-3, weight_decay=0.01, warmup_epochs=0.5, optimizer="adamw",
                model={"kind": "classifier", "n_layer": 2, "n_embd": 64, "n_head": 2, "max_length": 8})
    a = text_training.bare_train(split, TrainConfig(**base, seed=0), "cpu").state_dict()
    b = text_training.bare_train(split, TrainConfig(**base, seed=1), "cpu").state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 100 * TOLERANCE
