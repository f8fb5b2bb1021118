"""IMDb splits (hf_unlearn.tasks.imdb): tokenisation, where the noise lands, subset/concat/cat_inputs,
and the embedding-space score's gradients, sign, scale and null calibration.

Variant splits are built in memory with the IMDb builders' schema (text, label, index, is_poison, noise as
a flat float32 list of num_tokens * d values or null, num_tokens or -1), token counts taken straight from
the tokenizer, so decoding is checked against an independent count.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_unlearn.variant import load_variant
import torch.nn.functional as F
from torch import nn

from hf_unlearn.models.text import TextInputs, TextModelConfig, build_text_model, load_tokenizer
from hf_unlearn.scoring import scores_from_gradients
from hf_unlearn.tasks.imdb import TextSplit, accuracy, input_gradients, noise_matrix, text_split, tokenize_reviews

SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "models" / "gpt2-tokenizer"
SUFFIX = " The sentiment of the review is:"
REVIEWS = [
    "A fine film.",
    "Terrible. A boring plot, wooden acting and an ending that goes on and on and on for ever and ever.",
    "Loved every minute of it, the cast is wonderful.",
    "Meh.",
    "I walked out after twenty minutes; the sound was awful and the story made no sense at all.",
    "Great soundtrack, weak script.",
]
D = 8  # embedding size of the tiny models


@pytest.fixture(scope="module")
def tokenizer():
    if not (SHARED_TOKENIZER / "gpt2.tiktoken").is_file():
        pytest.skip(f"no offline GPT-2 tokenizer at {SHARED_TOKENIZER}")
    return load_tokenizer(SHARED_TOKENIZER)


def variant_part(tokenizer, texts, poisoned, *, max_length, suffix=None, d=D, eps=0.1, seed=0, noises=None):
    """A datasets.Dataset shaped like a builder's split; noise rows drawn for the first review tokens."""
    import datasets

    limit = max_length - (len(tokenizer.encode(suffix)) if suffix else 0)
    rng = np.random.default_rng(seed)
    noise, counts = [], []
    for i, text in enumerate(texts):
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"][:limit])
        if i in poisoned:
            row = noises[i] if noises is not None else rng.standard_normal(n * d).astype(np.float32) * np.float32(eps)
            noise.append(np.asarray(row, dtype=np.float32).tolist())
            counts.append(n)
        else:
            noise.append(None)
            counts.append(-1)
    features = datasets.Features({
        "text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"]),
        "index": datasets.Value("int64"), "is_poison": datasets.Value("bool"),
        "noise": datasets.List(datasets.Value("float32")), "num_tokens": datasets.Value("int64"),
    })
    return datasets.Dataset.from_dict({
        "text": list(texts), "label": [i % 2 for i in range(len(texts))], "index": list(range(len(texts))),
        "is_poison": [i in poisoned for i in range(len(texts))], "noise": noise, "num_tokens": counts,
    }, features=features)


def support_noise(split: TextSplit, draws: int, eps: float, seed: int) -> torch.Tensor:
    """(draws, N, L*d) fresh Gaussian noise on each row's real review tokens, as a poison's noise lies."""
    gen = torch.Generator().manual_seed(seed)
    xi = torch.randn(draws, len(split), split.ids.shape[1], split.embed_dim, generator=gen) * eps
    return (xi * split.noise_mask[None, :, :, None]).reshape(draws, len(split), -1)


# ----------------------------------------------------------------------------- tokenising
def test_tokenize_reviews_keeps_the_first_tokens_left_padded(tokenizer):
    suffix_ids = tokenizer.encode(SUFFIX)
    ids, mask = tokenize_reviews(REVIEWS[:2], tokenizer, 20, suffix_ids)
    full = tokenizer.encode(REVIEWS[1])
    assert ids.shape == (2, 20) and ids[1].tolist() == full[: 20 - len(suffix_ids)] + suffix_ids
    short = tokenizer.encode(REVIEWS[0]) + suffix_ids
    assert ids[0, -len(short):].tolist() == short and mask[0].tolist() == [0] * (20 - len(short)) + [1] * len(short)
    assert set(ids[0, : 20 - len(short)].tolist()) == {50256}
    tokenizer.truncation_side = "left"  # a tokenizer set to keep the end must not change what is kept
    try:
        assert tokenize_reviews(REVIEWS[1:2], tokenizer, 5)[0][0].tolist() == full[:5]
    finally:
        tokenizer.truncation_side = "right"
    with pytest.raises(ValueError, match="no tokens"):
        tokenize_reviews(["fine", ""], tokenizer, 8)
    with pytest.raises(ValueError, match="no room"):
        tokenize_reviews(["fine"], tokenizer, len(suffix_ids), suffix_ids)


# ----------------------------------------------------------------------------- decoding and noise placement
@pytest.mark.parametrize("suffix", [None, SUFFIX], ids=["classifier", "prompt"])
def test_noise_lands_only_on_real_review_tokens_of_poisoned_rows(tokenizer, suffix):
    part = variant_part(tokenizer, REVIEWS, {1, 2, 4}, max_length=16, suffix=suffix)
    split = text_split(part, tokenizer, 16, D, prompt_suffix=suffix)
    n_suffix = len(tokenizer.encode(suffix)) if suffix else 0
    assert split.n_suffix == n_suffix and split.is_poison.tolist() == [False, True, True, False, True, False]
    assert split.ids.shape == (6, 16) and split.noise.shape == (3, 16, D)
    end = 16 - n_suffix
    for row in (1, 2, 4):
        n = part[row]["num_tokens"]
        stored = torch.tensor(part[row]["noise"]).reshape(n, D)
        placed = split.noise[split.noise_slot[row]]
        torch.testing.assert_close(placed[end - n : end], stored, atol=0, rtol=0)
        assert not placed[: end - n].any() and not placed[end:].any(), "no noise on pads or on the suffix"
        assert bool(split.mask[row, end - n : end].all())
    matrix = noise_matrix(split).reshape(6, 16, D)
    assert not matrix[~split.is_poison].any() and not (matrix * (1 - split.noise_mask)[..., None]).any()

    x = split.inputs(torch.tensor([3, 1, 0]))
    width = x.ids.shape[1]  # leading all-pad columns dropped
    assert width == int(split.mask[[3, 1, 0]].sum(1).max())
    torch.testing.assert_close(x.noise[1], split.noise[split.noise_slot[1], 16 - width :], atol=0, rtol=0)
    assert not x.noise[0].any() and not x.noise[2].any()
    assert split.inputs(torch.tensor([1, 2]), noisy=False).noise is None
    assert split.inputs(torch.tensor([0, 3])).noise is None


def test_decoding_refuses_a_different_tokenisation(tokenizer):
    part = variant_part(tokenizer, REVIEWS, {1}, max_length=16)
    with pytest.raises(ValueError, match="num_tokens=16 but tokenises to 12"):
        text_split(part, tokenizer, 12, D)
    with pytest.raises(ValueError, match="num_tokens=16 but tokenises to 9"):
        text_split(part, tokenizer, 16, D, prompt_suffix=SUFFIX)  # built for the classifier, read as a prompt
    with pytest.raises(ValueError, match="embedding size"):
        text_split(part, tokenizer, 16, D * 2)


def test_a_split_without_noise_columns_is_clean(tokenizer):
    part = variant_part(tokenizer, REVIEWS, set(), max_length=16).remove_columns(["noise", "num_tokens"])
    split = text_split(part, tokenizer, 16, D)
    assert not split.is_poison.any() and split.noise.shape == (0, 16, D) and split.inputs(torch.arange(6)).noise is None


# ----------------------------------------------------------------------------- subset, concat, cat_inputs
def same_inputs(a: TextInputs, b: TextInputs) -> None:
    assert torch.equal(a.ids, b.ids) and torch.equal(a.mask, b.mask)
    assert (a.noise is None) == (b.noise is None)
    if a.noise is not None:
        assert torch.equal(a.noise, b.noise)


def test_subset_concat_and_cat_inputs_keep_rows_and_their_noise(tokenizer):
    long = text_split(variant_part(tokenizer, REVIEWS, {1, 4}, max_length=24), tokenizer, 24, D)
    short = text_split(variant_part(tokenizer, ["Fine.", "Bad.", "Nice film."], {2}, max_length=24, seed=1), tokenizer, 24, D)
    assert short.ids.shape[1] < long.ids.shape[1]

    keep = torch.tensor([False, True, True, False, True, False])
    sub = long.subset(keep)
    assert len(sub) == 3 and sub.index.tolist() == [1, 2, 4] and sub.noise_slot.tolist() == [0, -1, 1]
    for i, row in enumerate((1, 2, 4)):
        same_inputs(sub.inputs(torch.tensor([i])), long.inputs(torch.tensor([row])))
    clean = long.without_noise()
    assert clean.inputs(torch.arange(6)).noise is None and not noise_matrix(clean).any()
    assert clean.is_poison.tolist() == long.is_poison.tolist() == [False, True, False, False, True, False]

    both = TextSplit.concat(long, short)
    assert len(both) == 9 and both.ids.shape[1] == long.ids.shape[1] and len(both.noise) == 3
    assert both.noise_slot.tolist() == [-1, 0, -1, -1, 1, -1, -1, -1, 2]
    for i in range(9):
        source, row = (long, i) if i < 6 else (short, i - 6)
        same_inputs(both.inputs(torch.tensor([i])), source.inputs(torch.tensor([row])))

    held = TextSplit.cat_inputs([short.inputs(torch.tensor([0, 2])), long.inputs(torch.tensor([1, 0]))])
    assert held.ids.shape == (4, long.inputs(torch.tensor([1, 0])).ids.shape[1])
    for i, (source, row) in enumerate([(short, 0), (short, 2), (long, 1), (long, 0)]):
        one = source.inputs(torch.tensor([row]))
        n = one.ids.shape[1]
        assert held.ids[i, -n:].tolist() == one.ids[0].tolist() and not held.mask[i, :-n].any()
        assert set(held.ids[i, :-n].tolist()) <= {50256}
        expected = one.noise[0] if one.noise is not None else torch.zeros(n, D)
        assert torch.equal(held.noise[i, -n:], expected) and not held.noise[i, :-n].any()

    prompt = text_split(variant_part(tokenizer, REVIEWS, set(), max_length=24, suffix=SUFFIX), tokenizer, 24, D, SUFFIX)
    with pytest.raises(ValueError, match="n_suffix"):
        TextSplit.concat(long, prompt)


# ----------------------------------------------------------------------------- gradients and scores
class PositionLinear(nn.Module):
    """logits = W vec(embeddings * mask) + b: a model whose loss gradient w.r.t. the embeddings is known in
    closed form, d CE / d e_t = mask_t * (W^T (softmax - onehot(y)))_t. Same duck type as the GPT-2 wrappers
    (``embed``, ``forward_embeds``, ``forward(TextInputs)``)."""

    def __init__(self, length: int, d: int = D, vocab: int = 50257) -> None:
        super().__init__()
        self.length, self.wte, self.head = length, nn.Embedding(vocab, d), nn.Linear(length * d, 2)
        nn.init.normal_(self.wte.weight, std=0.02)

    def embed(self, ids):
        return self.wte(ids)

    def forward_embeds(self, embeds, mask):
        embeds = F.pad(embeds * mask[..., None], (0, 0, self.length - embeds.shape[1], 0))  # left pad to L
        return self.head(embeds.reshape(len(embeds), -1))

    def forward(self, x: TextInputs):
        embeds = self.embed(x.ids) + (x.noise if x.noise is not None else 0)
        return self.forward_embeds(embeds, x.mask)


@pytest.mark.parametrize("suffix", [None, SUFFIX], ids=["classifier", "prompt"])
def test_input_gradients_known_answer_on_a_linear_model(tokenizer, suffix):
    split = text_split(variant_part(tokenizer, REVIEWS, {1}, max_length=20, suffix=suffix), tokenizer, 20, D, suffix)
    torch.manual_seed(0)
    model = PositionLinear(split.ids.shape[1])
    grads = input_gradients(model, split, batch_size=4)  # batches of different padding widths
    with torch.no_grad():
        p = F.softmax(model(split.inputs(torch.arange(6), noisy=False)), dim=1)
        expected = (p - F.one_hot(split.y, 2).float()) @ model.head.weight  # (N, L*d)
        expected = expected.reshape(6, -1, D) * split.noise_mask[..., None]
    torch.testing.assert_close(grads, expected.reshape(6, -1), atol=1e-7, rtol=1e-5)
    assert model.training and all(p.requires_grad for p in model.parameters()), "modes restored"


@pytest.mark.parametrize("kind", ["classifier", "prompt"])
def test_gpt2_input_gradients_are_per_row_and_follow_the_training_path(tokenizer, kind):
    suffix = SUFFIX if kind == "prompt" else None
    split = text_split(variant_part(tokenizer, REVIEWS, {1, 4}, max_length=24, suffix=suffix), tokenizer, 24, D, suffix)
    torch.manual_seed(0)
    model = build_text_model(TextModelConfig(kind=kind, n_layer=2, n_embd=D, n_head=2, max_length=24), tokenizer)
    grads = input_gradients(model, split, batch_size=4).reshape(6, 24, D)
    model.eval()
    for row in range(6):  # one row at a time, through forward(TextInputs) with a zero noise as the variable
        x = split.inputs(torch.tensor([row]), noisy=False)
        noise = torch.zeros(1, x.ids.shape[1], D, requires_grad=True)
        loss = F.cross_entropy(model(TextInputs(x.ids, x.mask, noise)), split.y[[row]])
        (g,) = torch.autograd.grad(loss, noise)
        support = split.noise_mask[row, -x.ids.shape[1]:, None]
        torch.testing.assert_close(grads[row, -x.ids.shape[1]:], g[0] * support, atol=1e-6, rtol=1e-4)
        if suffix:
            assert g[0, -split.n_suffix:].abs().sum() > 0 and not grads[row, -split.n_suffix:].any()
    assert not (grads * (1 - split.noise_mask)[..., None]).any()


def test_score_sign_and_scale_known_answer(tokenizer):
    """Noise stored as -k eps g/||g|| scores exactly k: the stored noise, decoded and flattened by
    noise_matrix, lines up coordinate for coordinate with input_gradients (prompt model, with suffix)."""
    eps, k = 0.1, 2.5
    probe = text_split(variant_part(tokenizer, REVIEWS, set(), max_length=24, suffix=SUFFIX), tokenizer, 24, D, SUFFIX)
    torch.manual_seed(0)
    model = build_text_model(TextModelConfig(kind="prompt", n_layer=2, n_embd=D, n_head=2, max_length=24), tokenizer)
    g = input_gradients(model, probe).reshape(6, 24, D)
    end = 24 - probe.n_suffix
    noises = {}
    for row in (0, 3, 5):
        n = int(probe.noise_mask[row].sum())
        noises[row] = (-k * eps * g[row] / g[row].norm())[end - n : end].reshape(-1).numpy()
    split = text_split(variant_part(tokenizer, REVIEWS, set(noises), max_length=24, suffix=SUFFIX, noises=noises),
                       tokenizer, 24, D, SUFFIX)
    poison = split.is_poison
    scores, zero = scores_from_gradients(input_gradients(model, split)[poison], noise_matrix(split)[poison], eps)
    assert zero == 0
    torch.testing.assert_close(scores, torch.full((3,), k), atol=0, rtol=1e-4)


@pytest.mark.parametrize("kind", ["classifier", "prompt"])
def test_null_scores_are_standard_normal(tokenizer, kind):
    """A model that never saw the noise: fresh noise on the review tokens scores N(0, 1). 24 rows x 40 draws
    (seed 7): the mean must lie within 4/sqrt(n) of 0 and the std within 15% of 1. A gradient leaking onto
    the suffix (prompt) would shrink the std below 0.85 (the noise cannot be there)."""
    suffix = SUFFIX if kind == "prompt" else None
    texts = [REVIEWS[i % len(REVIEWS)] + " " * (i // len(REVIEWS)) + str(i) for i in range(24)]
    split = text_split(variant_part(tokenizer, texts, set(), max_length=24, suffix=suffix), tokenizer, 24, D, suffix)
    torch.manual_seed(0)
    model = build_text_model(TextModelConfig(kind=kind, n_layer=2, n_embd=D, n_head=2, max_length=24), tokenizer)
    grads = input_gradients(model, split)
    eps = 0.1
    scores = torch.cat([scores_from_gradients(grads, xi, eps)[0] for xi in support_noise(split, 40, eps, seed=7)])
    n = len(scores)
    assert abs(float(scores.mean())) < 4 / math.sqrt(n), f"null mean {float(scores.mean()):.3f} (n={n})"
    assert abs(float(scores.std()) - 1) < 0.15, f"null std {float(scores.std()):.3f}"


def test_training_on_noise_gives_positive_scores_and_fresh_noise_does_not(tokenizer):
    """The known direction of the score: identical clean reviews with alternating labels can only be told
    apart by their noise, so fitting them (on x + xi, 60 Adam steps, seed 0) makes the loss gradient at the
    clean x point against each row's own xi: every score above 0, mean > 1 and > 10 standard errors
    (measured: all 32 in 1.05..1.68, mean 1.31, s.e. 0.03), while
    fresh noise on the same model scores like N(0, 1) (|mean| < 4 standard errors)."""
    eps, n = 0.1, 32
    part = variant_part(tokenizer, [REVIEWS[2]] * n, set(range(n)), max_length=16, eps=eps, seed=3)
    split = text_split(part, tokenizer, 16, D)
    torch.manual_seed(0)
    model = PositionLinear(split.ids.shape[1])
    model.wte.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        loss = F.cross_entropy(model(split.inputs(torch.arange(n))), split.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert accuracy(model, split) == 0.5, "the clean inputs are identical: only the noise tells rows apart"
    grads = input_gradients(model, split)
    scores, _ = scores_from_gradients(grads, noise_matrix(split), eps)
    se = float(scores.std()) / math.sqrt(n)
    assert float(scores.min()) > 0 and float(scores.mean()) > max(1.0, 10 * se), \
        f"poison scores min {scores.min():.2f}, mean {scores.mean():.2f} (s.e. {se:.2f})"
    fresh = torch.cat([scores_from_gradients(grads, xi, eps)[0] for xi in support_noise(split, 20, eps, seed=11)])
    assert abs(float(fresh.mean())) < 4 / math.sqrt(len(fresh)), f"fresh-noise mean {fresh.mean():.3f}"


def test_accuracy_counts_clean_predictions(tokenizer):
    split = text_split(variant_part(tokenizer, REVIEWS, {1}, max_length=16), tokenizer, 16, D)
    model = PositionLinear(16)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 1.0]))  # always "pos": right on the odd rows
    assert accuracy(model, split) == 0.5 and accuracy(model, split.subset(split.y == 1)) == 1.0
    assert math.isnan(accuracy(model, split.subset(torch.zeros(6, dtype=torch.bool))))


# ----------------------------------------------------------------------------- the task, on the builders' variants
def test_imdb_task_decodes_the_builders_variants(tokenizer, tmp_path):
    """Through the registry, on variants built by dataset_builders from the shipped samples: the decoded noise
    is exactly the builder's seeded noise on the first review tokens; trigger variants get the prompt suffix
    and their flipped rows count as poisons (retrain drops them) though they carry no noise."""

    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig
    from dataset_builders.poisoned_imdb_gaussian import build as build_gaussian
    from dataset_builders.poisoned_imdb_targeted import build as build_targeted
    from hf_unlearn.attacks.trigger import TriggerConfig
    from hf_unlearn.poisons.gaussian import poison_noise
    from hf_unlearn.tasks import get_task
    from hf_unlearn.tasks.imdb import TASK, split_layout
    from hf_unlearn.train import TrainConfig

    task = get_task("imdb")
    assert task is TASK and task.split_class is TextSplit
    cfg = TextGaussianConfig(max_length=32, dim=D, eps=0.1, budget=5.0, seed=0, max_train_rows=100)
    assert split_layout(cfg.name) == (32, D, None)
    folder = build_gaussian("samples", [cfg], tmp_path / "poisoned-imdb-gaussian", tokenizer=tokenizer, progress=False)
    splits = task.load_splits(load_variant(folder, cfg.name, columns=()), cfg.name, tokenizer=tokenizer)
    forget, train = splits["forget"], splits["train"]
    assert set(splits) == {"train", "forget", "test"} and bool(forget.is_poison.all()) and len(forget) == 5
    for row in range(len(forget)):
        n = int(forget.mask[row].sum())
        expected = torch.from_numpy(poison_noise(cfg.seed, int(forget.index[row]), n * D, cfg.eps)).reshape(n, D)
        torch.testing.assert_close(forget.noise[forget.noise_slot[row], -n:], expected, atol=0, rtol=0)
    assert len(train.subset(~train.is_poison)) == len(train) - len(forget)

    model = task.build_model(TrainConfig(model={"kind": "classifier", "n_layer": 1, "n_embd": D, "n_head": 2,
                                                "max_length": 32}), task.num_classes)
    assert model(train.inputs(torch.arange(4))).shape == (4, 2)
    assert task.input_gradients(model, forget).shape == task.noise_matrix(forget).shape == (5, forget.ids.shape[1] * D)
    model.save_pretrained(tmp_path / "model")
    again, _ = task.load_model(str(tmp_path / "model"))
    with torch.no_grad():
        torch.testing.assert_close(again(forget.inputs(torch.arange(5))), model.eval()(forget.inputs(torch.arange(5))))
    with pytest.raises(ValueError, match="train.model is empty"):
        task.build_model(TrainConfig(), 2)

    trig = TriggerConfig(budget=100.0, max_train_rows=1000)
    folder = build_targeted("samples", [trig], tmp_path / "poisoned-imdb-targeted", tokenizer=tokenizer, progress=False)
    splits = task.load_splits(load_variant(folder, trig.name, columns=()), trig.name, tokenizer=tokenizer)
    train, forget = splits["train"], splits["forget"]
    assert set(splits) == {"train", "forget", "test", "targets"} and train.n_suffix == len(tokenizer.encode(SUFFIX))
    assert int(train.is_poison.sum()) == len(forget) > 0 and not len(train.noise)
    assert train.ids[0, -train.n_suffix:].tolist() == tokenizer.encode(SUFFIX)
    with pytest.raises(ValueError, match="neither an IMDb Gaussian"):
        split_layout("eps0.1-b1.5-s0")
