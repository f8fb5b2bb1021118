"""Every registered unlearning method on the IMDb / GPT-2 track, end to end on CPU.

Methods are task-agnostic (DESIGN.md, "Tasks and attacks"): they see splits whose ``inputs(rows)`` feed
``model(...)``. These tests hold them to that on the text task, with a tiny GPT-2 (2 layers, 32-dim
embeddings) trained on a few dozen reviews of the shipped sample (``hf_unlearn/samples/imdb``), built into
a poisoned-imdb-gaussian variant and a poisoned-imdb-targeted (trigger) variant in tmp folders:

- each method stays within its budget (compute_used <= budget x training cost; retrain is charged one
  training on the retain rows), changes the weights unless it is ``none``, and its result scores through
  the generic scoring path (``gaussian_scores`` with the imdb task) with a calibrated null;
- EU-k re-draws the GPT-2 blocks it re-initialises (GPT-2's Conv1D has no ``reset_parameters``);
- input gradients stay zero outside the noise support even for a model whose loss reads pad embeddings;
- on the trigger variant the flipped rows are the poisons (``is_poison`` from the dataset column), so
  retain excludes them although they carry no noise.

Several tests here exist to catch the text-path mutations of ``tests/mutations.py`` (docs/mutations.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_unlearn.unlearn.base import list_methods, run_method

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = Path(os.environ.get("HF_UNLEARN_GPT2_TOKENIZER") or ROOT.parent / "shared" / "models" / "gpt2-tokenizer")
MAX_LENGTH, D, EPS = 24, 32, 0.1
BUDGET = 0.5  # fraction of the poisoned model's training cost every budgeted method gets
# Per-method settings that keep each run to a few steps on 48 rows; the budget, not these, bounds the cost.
SETTINGS = {
    "gd": {"lr": 0.01, "batch_size": 16}, "ngd": {"lr": 0.01, "batch_size": 16},
    "ga": {"lr": 0.01, "batch_size": 8}, "neggrad_plus": {"lr": 0.01, "batch_size": 8},
    "euk": {"k": 2, "lr": 0.01, "batch_size": 16}, "cfk": {"k": 2, "lr": 0.01, "batch_size": 16},
    "scrub": {"lr": 0.01, "batch_size": 16, "forget_batch_size": 8}, "ssd": {"batch_size": 64},
}


@pytest.fixture(scope="module")
def tokenizer():
    from hf_unlearn.models.text import load_tokenizer

    if not (TOKENIZER / "gpt2.tiktoken").is_file() and not (TOKENIZER / "tokenizer.json").is_file():
        pytest.skip(f"no offline GPT-2 tokenizer at {TOKENIZER} (set HF_UNLEARN_GPT2_TOKENIZER)")
    return load_tokenizer(str(TOKENIZER))


def load(folder: Path, config: str, tokenizer):
    from hf_unlearn.tasks import get_task
    from hf_unlearn.variant import load_variant

    ds = load_variant(folder, config, columns=())
    return get_task("imdb").load_splits(ds, config, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory, tokenizer):
    """(splits, poisoned model, its recipe and training cost): 48 reviews, 6 poisons, GPT-2 2x32, 3 epochs."""
    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig, build
    from hf_unlearn.train import RunOptions, TrainConfig, train

    cfg = TextGaussianConfig(max_length=MAX_LENGTH, dim=D, eps=EPS, budget=12.5, seed=0, max_train_rows=48)
    tmp = tmp_path_factory.mktemp("gauss")
    folder = build("samples", [cfg], tmp / "poisoned-imdb-gaussian", tokenizer=tokenizer, progress=False)
    splits = load(folder, cfg.name, tokenizer)
    splits["test"] = splits["test"].subset(torch.arange(len(splits["test"])) < 32)
    recipe = TrainConfig(epochs=3, batch_size=16, lr=3e-3, optimizer="adamw", weight_decay=0.0, warmup_epochs=0.0,
                         seed=0, model={"kind": "classifier", "n_layer": 2, "n_embd": D, "n_head": 2,
                                        "max_length": MAX_LENGTH})
    options = RunOptions(output_dir=str(tmp / "model"), cpu=True, checkpointing=False, resume=False, progress=False)
    result = train(splits["train"], None, recipe, options, num_classes=2)
    return splits, result.model.eval(), recipe, float(result.training_cost)


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- every method, Gaussian variant
def test_the_gaussian_variant_feeds_the_classifier(gaussian):
    from hf_unlearn.models.text import GPT2Classifier
    from hf_unlearn.unlearn.runner import retain_forget

    splits, model, recipe, cost = gaussian
    retain, forget = retain_forget(splits)
    assert isinstance(model, GPT2Classifier) and len(splits["train"]) == 48 and len(forget) == 6
    assert cost == 3.0 * 48 * recipe.epochs, "training costs 3 forward-equivalents per example and epoch"
    assert len(retain) == 42 and not retain.is_poison.any() and len(retain.noise) == 0
    assert bool(forget.is_poison.all()) and len(forget.noise) == 6 and bool((forget.noise_slot >= 0).all())


@pytest.mark.parametrize("method", list_methods())
def test_every_method_runs_on_gpt2_within_budget_and_scores(gaussian, method):
    from hf_unlearn.scoring import gaussian_scores
    from hf_unlearn.unlearn.base import get_method
    from hf_unlearn.unlearn.runner import retain_forget

    splits, model, recipe, cost = gaussian
    retain, forget = retain_forget(splits)
    before = params(model)
    result = run_method(model, retain, forget, method, overrides=SETTINGS.get(method), limit=BUDGET * cost, seed=1,
                        train_config=recipe, num_classes=2)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()), "the caller's model must not change"
    if get_method(method).budgeted:
        assert (method == "none" or result.compute_used > 0) and result.compute_used <= BUDGET * cost + 1e-9, f"{method} used {result.compute_used} of {BUDGET * cost}"
    elif method == "retrain":  # one training of the same recipe on the retain rows, recorded not limited
        assert result.compute_used == 3.0 * len(retain) * recipe.epochs
    after = result.model.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    if method == "none":
        assert not changed and result.compute_used == 0, "`none` returns the poisoned model at no cost"
    else:
        assert changed, f"{method} left every weight of the GPT-2 model as it was"
    scores = gaussian_scores(result.model, forget, EPS, task="imdb", null_draws=30, seed=0)
    assert scores.poison.shape == (6,) and scores.null.shape == (6, 30) and np.isfinite(scores.poison).all()
    summary = scores.record_metrics()
    assert summary["num_poisons"] == 6 and summary["num_nulls"] == 180 and math.isfinite(summary["gus"])


def test_text_null_scores_are_fresh_standard_normal_draws(gaussian):
    """The generic scorer on the text path: 6 poisons x 200 null draws of a model, each draw fresh noise on the
    review tokens, so the nulls are N(0, 1) (mean within 4 s.e., std within 10%) and every poison's draws
    differ from each other and from its own stored-noise score."""
    from hf_unlearn.scoring import gaussian_scores

    splits, model, _, _ = gaussian
    scores = gaussian_scores(model, splits["forget"], EPS, task="imdb", null_draws=200, seed=3)
    null = scores.null.ravel()
    assert abs(null.mean()) < 4 / math.sqrt(len(null)), f"null mean {null.mean():.3f}"
    assert abs(null.std() - 1) < 0.1, f"null std {null.std():.3f}"
    assert scores.null.std(axis=1).min() > 0.5, "each poison's null draws must be fresh noise, not one repeated score"
    assert not np.isclose(scores.null, scores.poison[:, None]).all(axis=1).any(), "nulls repeat the poison score"


def test_euk_redraws_the_last_gpt2_blocks_and_keeps_the_rest(gaussian):
    """lr 0: the result is the re-initialised model. GPT-2's blocks re-draw N(0, 0.02) weights (Conv1D has no
    reset_parameters, so the block's own initialiser must run), unrelated to the trained ones; earlier blocks
    are bit for bit the same."""
    from hf_unlearn.unlearn.runner import retain_forget

    splits, model, _, cost = gaussian
    retain, forget = retain_forget(splits)
    k = 2
    result = run_method(model, retain, forget, "euk", overrides={"k": k, "lr": 0.0, "batch_size": 16}, limit=0.1 * cost)
    old, new = model.blocks(), result.model.blocks()
    for a, b in zip(old[:-k], new[:-k]):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())), "blocks before the last k changed"
    n_weights = 0
    for a, b in zip(old[-k:], new[-k:]):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            if p.dim() >= 2 and p.numel() >= 256:
                n_weights += 1
                r = float(torch.corrcoef(torch.stack([p.detach().flatten(), q.detach().flatten()]))[0, 1])
                assert abs(r) < 0.2, f"{name}: re-initialised weight correlates {r:.3f} with the trained one"
                assert 0.005 < float(q.detach().std()) < 0.03, f"{name}: std {float(q.std()):.4f}, GPT-2 draws N(0, 0.02)"
    assert n_weights >= 4, "the last blocks hold the attention / MLP weight matrices"


# ----------------------------------------------------------------------------- input gradients
class PadReader(nn.Module):
    """A model whose loss reads EVERY position, pads included (no attention mask): its gradient is non-zero at
    pads, so only input_gradients' own masking can keep it off the positions noise never occupies."""

    def __init__(self, d: int = D, vocab: int = 50257) -> None:
        super().__init__()
        self.wte, self.head = nn.Embedding(vocab, d), nn.Linear(d, 2)

    def embed(self, ids, noise=None):
        return self.wte(ids) if noise is None else self.wte(ids) + noise

    def forward_embeds(self, embeds, mask):
        return self.head(torch.tanh(embeds).sum(1))

    def forward(self, x):
        return self.forward_embeds(self.embed(x.ids, x.noise), x.mask)


SHORT_REVIEWS = ["A fine film.", "Meh.", "Loved every minute of it, the cast is wonderful.", "Great soundtrack, weak script.",
                 "Terrible. A boring plot, wooden acting and an ending that goes on and on.", "Two stars."]


@pytest.fixture(scope="module")
def short_split(tokenizer):
    """Reviews of different lengths (so rows carry left padding), every row a poison with noise on its tokens."""
    from hf_unlearn.tasks.imdb import TextSplit, tokenize_reviews

    ids, mask = tokenize_reviews(SHORT_REVIEWS, tokenizer, MAX_LENGTH)
    n = len(SHORT_REVIEWS)
    gen = torch.Generator().manual_seed(5)
    noise = EPS * torch.randn(n, ids.shape[1], D, generator=gen) * mask[..., None]
    return TextSplit(ids, mask, torch.arange(n) % 2, torch.arange(n), noise, torch.arange(n))


def test_input_gradients_are_zero_outside_the_noise_support(short_split):
    from hf_unlearn.tasks.imdb import input_gradients

    torch.manual_seed(0)
    model = PadReader()
    grads = input_gradients(model, short_split, batch_size=4).reshape(len(short_split), -1, D)
    support = short_split.noise_mask.bool()
    assert (~support).any(), "the rows must differ in length, so some carry pads"
    assert not grads[~support].any(), "input gradients leak onto pad positions"
    assert bool((grads[support].abs().sum(-1) > 0).all()), "every review token gets a gradient"


def test_scores_use_the_gradient_at_the_clean_embeddings(short_split):
    """A model that reads tanh(embeddings): the gradient at the clean input is known in closed form, and differs
    from the one at embeddings + noise wherever the noise is."""
    from hf_unlearn.tasks.imdb import input_gradients

    torch.manual_seed(0)
    model = PadReader()
    with torch.no_grad():
        model.wte.weight.mul_(20.0)  # off tanh's linear part, so a noise of 0.1 changes the gradient visibly
    grads = input_gradients(model, short_split).reshape(len(short_split), -1, D)
    x = short_split.inputs(torch.arange(len(short_split)), noisy=False)
    width = x.ids.shape[1]
    with torch.no_grad():
        e = model.wte(x.ids)
        p = F.softmax(model.head(torch.tanh(e).sum(1)), 1)
        expected = ((p - F.one_hot(short_split.y, 2).float()) @ model.head.weight)[:, None, :] * (1 - torch.tanh(e) ** 2)
        expected = expected * short_split.noise_mask[:, -width:, None]
    torch.testing.assert_close(grads[:, -width:], expected, atol=1e-6, rtol=1e-4)


# ----------------------------------------------------------------------------- the trigger variant
@pytest.fixture(scope="module")
def trigger(tmp_path_factory, tokenizer):
    """The Disney-trigger variant of the whole sample, cut to its flipped rows plus 30 clean ones."""
    from dataset_builders.poisoned_imdb_targeted import build
    from hf_unlearn.attacks.trigger import TriggerConfig

    cfg = TriggerConfig(budget=100.0, max_train_rows=1000)
    folder = build("samples", [cfg], tmp_path_factory.mktemp("trig") / "poisoned-imdb-targeted", tokenizer=tokenizer,
                   progress=False)
    return cfg, load(folder, cfg.name, tokenizer)


def test_trigger_retain_excludes_the_flipped_rows(trigger):
    import pyarrow.parquet as pq

    from hf_unlearn.unlearn.runner import retain_forget

    cfg, splits = trigger
    train, forget = splits["train"], splits["forget"]
    assert len(forget) > 0 and len(train.noise) == 0 and len(forget.noise) == 0, "trigger poisons carry no noise"
    flipped = torch.isin(train.index, forget.index)
    assert torch.equal(train.is_poison, flipped), "is_poison must be the dataset's column: the flipped rows"
    source = pq.read_table(ROOT / "hf_unlearn" / "samples" / "imdb" / "train.parquet").column("label").to_numpy()
    assert bool((forget.y != torch.from_numpy(source[forget.index.numpy()].astype(np.int64))).all()), "labels flipped"
    retain, _ = retain_forget(splits)
    assert not torch.isin(retain.index, forget.index).any() and not retain.is_poison.any()
    assert len(retain) == len(train) - len(forget)
    # The pipeline's retain (accuracy, retraining) drops the same rows through is_poison.
    assert torch.equal(train.subset(~train.is_poison).index, retain.index)


@pytest.mark.parametrize("method", ["gd", "scrub", "retrain"])
def test_methods_run_on_the_prompt_model_of_the_trigger_variant(trigger, tokenizer, method):
    from hf_unlearn.models.text import GPT2PromptClassifier, TextModelConfig, build_text_model
    from hf_unlearn.tasks.imdb import accuracy
    from hf_unlearn.train import TrainConfig
    from hf_unlearn.unlearn.runner import retain_forget

    _, splits = trigger
    full_retain, forget = retain_forget(splits)
    retain = full_retain.subset(torch.arange(len(full_retain)) < 30)
    keys = {"kind": "prompt", "n_layer": 2, "n_embd": D, "n_head": 2, "max_length": 128}
    torch.manual_seed(0)
    model = build_text_model(TextModelConfig(**keys), tokenizer).eval()
    assert isinstance(model, GPT2PromptClassifier) and retain.n_suffix == forget.n_suffix > 0
    recipe = TrainConfig(epochs=1, batch_size=16, lr=1e-3, optimizer="adamw", weight_decay=0.0, warmup_epochs=0.0,
                         model=keys)
    cost = 3.0 * (len(retain) + len(forget))
    before = params(model)
    result = run_method(model, retain, forget, method, overrides=SETTINGS.get(method), limit=BUDGET * cost, seed=1,
                        train_config=recipe, num_classes=2)
    if method == "retrain":
        assert result.compute_used == 3.0 * len(retain)
    else:
        assert 0 < result.compute_used <= BUDGET * cost
    assert any(not torch.equal(v, result.model.state_dict()[k]) for k, v in before.items())
    assert 0.0 <= accuracy(result.model, forget) <= 1.0
