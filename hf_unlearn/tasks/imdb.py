"""IMDb splits as tensors: left-padded GPT-2 token ids, labels, and Gaussian noise on token embeddings.

The text counterpart of ``hf_unlearn.variant.ImageSplit`` (the same duck-typed surface: ``y``, ``index``,
``noise_slot``, ``subset``, ``without_noise``, ``inputs``, ``concat``, ``cat_inputs``). Reviews are
tokenised once, keeping the FIRST tokens, and left-padded so that every row's last real token sits at the
last position, where the models read their logits (``hf_unlearn.models.text``).

Where the noise lives (DESIGN.md, "Input space"): a poisoned row's noise ``xi`` (num_tokens, d) is added to
the token embeddings ``wte(ids)`` of its REAL REVIEW tokens, token j of the noise on review token j. Pad
positions never carry noise, and for the prompt model neither does the appended suffix
(" The sentiment of the review is:"): the suffix is part of the model's question, not of the training
row. Input gradients are therefore zeroed outside the same support (pads and suffix), so a score
``-<g, xi> / (eps ||g||)`` and its null draws see exactly the coordinates the noise could occupy, and a
model that never saw ``xi`` scores N(0, 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hf_unlearn.models.text import GPT2_EOS_ID, TextInputs

__all__ = [
    "TextInputs", "TextSplit", "tokenize_reviews", "text_split", "input_gradients", "noise_matrix", "accuracy",
    "split_layout", "ImdbTask", "TASK",
]


def _left_pad(x: torch.Tensor, length: int, value: float | int) -> torch.Tensor:
    """Pad dim 1 of ``x`` on the left to ``length`` with ``value`` (rows keep their last positions)."""
    missing = length - x.shape[1]
    if missing < 0:
        raise ValueError(f"cannot left-pad {x.shape[1]} positions to {length}")
    if missing == 0:
        return x
    pad = torch.full((x.shape[0], missing, *x.shape[2:]), value, dtype=x.dtype, device=x.device)
    return torch.cat([pad, x], dim=1)


def _cat_inputs(parts: list[TextInputs]) -> TextInputs:
    if not parts:
        raise ValueError("cat_inputs needs at least one TextInputs")
    length = max(p.ids.shape[1] for p in parts)
    ids = torch.cat([_left_pad(p.ids, length, p.pad_id) for p in parts])
    mask = torch.cat([_left_pad(p.mask, length, 0) for p in parts])
    if all(p.noise is None for p in parts):
        return TextInputs(ids, mask, None, parts[0].pad_id)
    dims = {p.noise.shape[2] for p in parts if p.noise is not None}
    if len(dims) != 1:
        raise ValueError(f"noise of different embedding sizes {sorted(dims)} cannot be concatenated")
    d = dims.pop()
    noise = [
        _left_pad(p.noise, length, 0.0) if p.noise is not None
        else torch.zeros(len(p), length, d, dtype=torch.float32, device=p.ids.device)
        for p in parts
    ]
    return TextInputs(ids, mask, torch.cat(noise), parts[0].pad_id)


@dataclass
class TextSplit:
    """One split as tensors: token ids, mask, labels, source indices, and noise for the poisoned rows.

    ``noise[k]`` (L, d) is aligned with the split's positions: zero at pads and at the ``n_suffix`` suffix
    positions (prompt model), the stored noise on the review tokens of the row whose ``noise_slot`` is k.
    """

    ids: torch.Tensor  # int64 (N, L), left-padded with pad_id
    mask: torch.Tensor  # int64 (N, L), 1 = real token (review + suffix)
    y: torch.Tensor  # int64 (N,)
    index: torch.Tensor  # int64 (N,), row in the source split (-1 appended rows)
    noise: torch.Tensor  # float32 (P, L, d), P = number of noisy rows
    noise_slot: torch.Tensor  # int64 (N,), row of ``noise`` or -1
    n_suffix: int = 0  # prompt-suffix tokens at the end of every row (never noised)
    pad_id: int = GPT2_EOS_ID
    # bool (N,): the variant's is_poison column, or None = the rows with noise. The trigger attack's
    # poisons (flipped labels) carry no noise, and retrain must still drop them.
    poisoned: torch.Tensor | None = None
    # The variant's class names (its ``label`` ClassLabel), or None = the task's two. The trigger attack's
    # ``word`` mode adds the trigger word as a third class, and the model must be built with it.
    label_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_poison(self) -> torch.Tensor:
        return self.poisoned if self.poisoned is not None else self.noise_slot >= 0

    @property
    def embed_dim(self) -> int:
        return int(self.noise.shape[2])

    @property
    def noise_mask(self) -> torch.Tensor:
        """(N, L) 1 where noise may live: real review tokens (not pads, not the suffix)."""
        out = self.mask.clone()
        if self.n_suffix:
            out[:, -self.n_suffix :] = 0
        return out

    def inputs(self, rows: torch.Tensor, *, noisy: bool = True) -> TextInputs:
        """``TextInputs`` for ``rows``: ids and mask (leading all-pad columns dropped, which by the models'
        padding invariance changes nothing but the cost), plus each poisoned row's noise if ``noisy``."""
        mask = self.mask[rows]
        real = mask.any(0).nonzero()
        start = int(real[0]) if len(real) else mask.shape[1] - 1
        ids, mask = self.ids[rows, start:], mask[:, start:]
        noise = None
        if noisy and len(self.noise):
            slots = self.noise_slot[rows]
            hit = slots >= 0
            if bool(hit.any()):
                noise = torch.zeros(len(ids), ids.shape[1], self.embed_dim, dtype=torch.float32)
                noise[hit] = self.noise[slots[hit], start:]
        return TextInputs(ids, mask, noise, self.pad_id)

    def subset(self, keep: torch.Tensor) -> "TextSplit":
        """Rows where ``keep`` is True (a bool mask), noise table re-indexed."""
        slots = self.noise_slot[keep]
        used = slots >= 0
        new_slots = torch.full_like(slots, -1)
        new_slots[used] = torch.arange(int(used.sum()))
        return TextSplit(self.ids[keep], self.mask[keep], self.y[keep], self.index[keep], self.noise[slots[used]],
                         new_slots, self.n_suffix, self.pad_id, None if self.poisoned is None else self.poisoned[keep],
                         self.label_names)

    def without_noise(self) -> "TextSplit":
        """The same rows with no noise (an is_poison column, if any, is kept: the rows are still the poisons)."""
        return TextSplit(self.ids, self.mask, self.y, self.index, self.noise[:0], torch.full_like(self.noise_slot, -1),
                         self.n_suffix, self.pad_id, self.poisoned, self.label_names)

    @classmethod
    def concat(cls, a: "TextSplit", b: "TextSplit") -> "TextSplit":
        """Rows of ``a`` then ``b`` (left-padded to the longer length), noise tables stacked."""
        if a.n_suffix != b.n_suffix or a.pad_id != b.pad_id or a.embed_dim != b.embed_dim:
            raise ValueError(f"cannot concatenate splits tokenised differently: n_suffix {a.n_suffix}/{b.n_suffix}, "
                             f"pad_id {a.pad_id}/{b.pad_id}, embed_dim {a.embed_dim}/{b.embed_dim}")
        if a.label_names is not None and b.label_names is not None and a.label_names != b.label_names:
            raise ValueError(f"cannot concatenate splits with different classes: {a.label_names} / {b.label_names}")
        length = max(a.ids.shape[1], b.ids.shape[1])
        b_slots = torch.where(b.noise_slot >= 0, b.noise_slot + len(a.noise), b.noise_slot)
        poisoned = None if a.poisoned is None and b.poisoned is None else torch.cat([a.is_poison, b.is_poison])
        return cls(
            torch.cat([_left_pad(a.ids, length, a.pad_id), _left_pad(b.ids, length, b.pad_id)]),
            torch.cat([_left_pad(a.mask, length, 0), _left_pad(b.mask, length, 0)]),
            torch.cat([a.y, b.y]), torch.cat([a.index, b.index]),
            torch.cat([_left_pad(a.noise, length, 0.0), _left_pad(b.noise, length, 0.0)]),
            torch.cat([a.noise_slot, b_slots]), a.n_suffix, a.pad_id, poisoned, a.label_names or b.label_names,
        )

    @staticmethod
    def cat_inputs(parts: list[TextInputs]) -> TextInputs:
        """One batch from several (e.g. held retain and forget batches), left-padded to a common length."""
        return _cat_inputs(list(parts))


# ---------------------------------------------------------------------------------------------------------
# Tokenising and decoding a variant split
# ---------------------------------------------------------------------------------------------------------


def tokenize_reviews(texts: list[str], tokenizer, max_length: int, suffix_ids: list[int] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), each (N, L) int64, LEFT-padded with the tokenizer's pad id, L = the longest row.

    Each row is the review's FIRST ``max_length - len(suffix_ids)`` tokens (no special tokens), then the
    suffix ids (prompt model). Truncation is done here, not by the tokenizer, so a tokenizer configured
    to truncate on the left cannot silently keep the wrong end. A review with no tokens and no suffix is an
    error: the model would read its logits off a pad.
    """
    suffix = [int(i) for i in (suffix_ids or [])]
    limit = max_length - len(suffix)
    if limit < 1:
        raise ValueError(f"max_length={max_length} leaves no room for the review after {len(suffix)} suffix tokens")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; use hf_unlearn.models.text.load_tokenizer() (pad = eos)")
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    rows = [list(r[:limit]) + suffix for r in encoded]
    empty = [i for i, r in enumerate(rows) if not r]
    if empty:
        raise ValueError(f"rows {empty[:5]} have no tokens (empty text?); drop them before tokenising")
    length = max((len(r) for r in rows), default=1)
    ids = torch.full((len(rows), length), int(tokenizer.pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, length - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, length - len(r) :] = 1
    return ids, mask


def text_split(hf_split, tokenizer, max_length: int, embed_dim: int, prompt_suffix: str | None = None) -> TextSplit:
    """Decode one split of an IMDb variant (columns text, label, index, is_poison[, noise, num_tokens]).

    ``noise`` is a flat float32 list of ``num_tokens * embed_dim`` values (null on clean rows), drawn for the
    row's ``num_tokens`` real REVIEW tokens under this tokenisation (``max_length``, and for the prompt model
    the suffix's length); a row whose tokenised review length differs from ``num_tokens`` was built for
    another tokenisation and is refused. Splits without a ``noise`` column (the trigger attack) are clean.
    """
    if getattr(hf_split, "_indices", None) is not None:  # a .select()ed view: materialise the rows
        hf_split = hf_split.flatten_indices()
    table = hf_split.data.table if hasattr(hf_split, "data") else hf_split
    for column in ("text", "label", "index"):
        if column not in table.column_names:
            raise ValueError(f"the split lacks column {column!r} (has {table.column_names}); is it an IMDb variant?")
    suffix_ids = tokenizer.encode(prompt_suffix, add_special_tokens=False) if prompt_suffix else []
    ids, mask = tokenize_reviews(table.column("text").to_pylist(), tokenizer, max_length, suffix_ids)
    n_rows, length = ids.shape
    y = torch.from_numpy(np.asarray(table.column("label").to_numpy(), dtype=np.int64).copy())
    index = torch.from_numpy(np.asarray(table.column("index").to_numpy(), dtype=np.int64).copy())
    slots = torch.full((n_rows,), -1, dtype=torch.long)
    poisoned = None
    if "is_poison" in table.column_names:
        poisoned = torch.from_numpy(np.asarray(table.column("is_poison").to_numpy(zero_copy_only=False), dtype=bool).copy())
    names = _label_names(hf_split)
    if len(y) and names is not None and int(y.max()) >= len(names):
        raise ValueError(f"labels up to {int(y.max())} but the label column has {len(names)} classes {list(names)}")
    if "noise" not in table.column_names:
        return TextSplit(ids, mask, y, index, torch.zeros(0, length, embed_dim), slots, len(suffix_ids),
                         int(tokenizer.pad_token_id), poisoned, names)

    noise_col = table.column("noise").combine_chunks()
    valid = np.asarray(noise_col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if valid.any() and "num_tokens" not in table.column_names:
        raise ValueError("the split has noise but no num_tokens column; rebuild the variant with the IMDb builder")
    flat = np.asarray(noise_col.filter(noise_col.is_valid()).flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    if not np.all(np.isfinite(flat)):
        raise ValueError("the noise column holds NaN or infinite values; rebuild the variant")
    noisy_rows = np.flatnonzero(valid)
    if poisoned is not None and not bool(poisoned[torch.from_numpy(noisy_rows)].all()):
        raise ValueError("rows with noise are not marked is_poison; the variant is inconsistent, rebuild it")
    counts = np.asarray(table.column("num_tokens").to_numpy(zero_copy_only=False), dtype=np.float64)[noisy_rows] \
        if len(noisy_rows) else np.zeros(0)
    if np.isnan(counts).any():
        raise ValueError("num_tokens is null on a noisy row; rebuild the variant")
    counts = counts.astype(np.int64)
    review_len = (mask.sum(1) - len(suffix_ids)).numpy()
    wrong = noisy_rows[counts != review_len[noisy_rows]]
    if len(wrong):
        i = int(wrong[0])
        raise ValueError(
            f"{len(wrong)} noisy rows were drawn for a different tokenisation: row {i} has num_tokens="
            f"{int(counts[noisy_rows == i][0])} but tokenises to {int(review_len[i])} review tokens here "
            f"(max_length={max_length}, suffix of {len(suffix_ids)} tokens); load it with the max_length and "
            "model kind the variant was built for"
        )
    if len(flat) != int(counts.sum()) * embed_dim:
        raise ValueError(f"the noise column holds {len(flat)} values, expected sum(num_tokens) x embed_dim = "
                         f"{int(counts.sum())} x {embed_dim}; was the variant built for another embedding size?")
    values = torch.from_numpy(flat if flat.flags.writeable else flat.copy())  # arrow buffers are read-only
    noise = torch.zeros(len(noisy_rows), length, embed_dim, dtype=torch.float32)
    end = length - len(suffix_ids)
    offset = 0
    for k, n in enumerate(counts.tolist()):
        noise[k, end - n : end] = values[offset : offset + n * embed_dim].reshape(n, embed_dim)
        offset += n * embed_dim
    slots[torch.from_numpy(noisy_rows)] = torch.arange(len(noisy_rows))
    return TextSplit(ids, mask, y, index, noise, slots, len(suffix_ids), int(tokenizer.pad_token_id), poisoned, names)


def _label_names(hf_split) -> tuple[str, ...] | None:
    """The ClassLabel names of a ``datasets`` split's ``label`` column (None for a bare table)."""
    names = getattr((getattr(hf_split, "features", None) or {}).get("label"), "names", None)
    return tuple(names) if names else None


# ---------------------------------------------------------------------------------------------------------
# Gradients, noise and accuracy (what scoring and the attacks consume)
# ---------------------------------------------------------------------------------------------------------


def input_gradients(model: torch.nn.Module, split: TextSplit, batch_size: int = 64) -> torch.Tensor:
    """d loss_i / d (clean token embeddings of row i), flattened to (N, L*d), float32 on the CPU.

    Taken at the clean embeddings ``wte(ids)`` with the true label, model in eval mode with its parameters
    frozen (only the input gradient is computed). Zero outside the noise support: pad positions and, for
    the prompt model, the suffix; this matches ``noise_matrix`` so that scores and null scores are
    calibrated. The loss is summed over a batch, and rows do not interact, so each row's gradient is that
    of its own loss.
    """
    from hf_unlearn.scoring import frozen

    device = next(model.parameters()).device
    length, d = split.ids.shape[1], split.embed_dim
    out = torch.zeros(len(split), length, d, dtype=torch.float32)
    support = split.noise_mask
    with frozen(model):
        for start in range(0, len(split), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(split)))
            x = split.inputs(rows, noisy=False).to(device)
            embeds = model.embed(x.ids).detach().requires_grad_(True)
            if embeds.shape[2] != d:
                raise ValueError(f"the model's embeddings have {embeds.shape[2]} dims but the split's noise {d}")
            loss = F.cross_entropy(model.forward_embeds(embeds, x.mask), split.y[rows].to(device), reduction="sum")
            (g,) = torch.autograd.grad(loss, embeds)
            width = g.shape[1]
            out[rows, length - width :] = g.float().cpu() * support[rows, length - width :, None]
    return out.reshape(len(split), length * d)


def noise_matrix(split: TextSplit) -> torch.Tensor:
    """(N, L*d): each row's stored noise in ``input_gradients``'s flattening, zeros on clean rows."""
    out = torch.zeros(len(split), split.ids.shape[1], split.embed_dim, dtype=torch.float32)
    hit = split.noise_slot >= 0
    out[hit] = split.noise[split.noise_slot[hit]]
    return out.reshape(len(split), -1)


def accuracy(model: torch.nn.Module, split: TextSplit, batch_size: int = 256) -> float:
    """Top-1 accuracy on clean inputs, model in eval mode: the trainer's one accuracy loop, at a batch
    size that suits 128-token reviews."""
    from hf_unlearn.train import accuracy as split_accuracy

    return split_accuracy(model, split, batch_size)


# ---------------------------------------------------------------------------------------------------------
# The task (registered lazily by hf_unlearn.tasks: ``get_task("imdb")`` imports this module and reads TASK)
# ---------------------------------------------------------------------------------------------------------

# A Gaussian variant's config name carries its tokenisation: <tokenizer>-l<max_length>-d<embedding size>-...
# (dataset_builders/poisoned_imdb_gaussian.py); its splits feed the classifier (no prompt suffix).
_GAUSSIAN_NAME = re.compile(r"^(?P<tok>[a-z0-9]+)-l(?P<L>\d+)-d(?P<d>\d+)-eps")
# The trigger attack's variants (``disney-b100-s0``) carry none: they feed the prompt model at the paper's
# 128 tokens (review + suffix), and hold no noise.
TRIGGER_MAX_LENGTH = 128


def split_layout(config_name: str) -> tuple[int, int, str | None]:
    """(max_length, embed_dim, prompt_suffix) a variant's splits are tokenised with, from its config name."""
    m = _GAUSSIAN_NAME.match(config_name)
    if m:
        return int(m.group("L")), int(m.group("d")), None
    from hf_unlearn.attacks.trigger import PROMPT_SUFFIX, TriggerConfig

    try:
        TriggerConfig.from_name(config_name)
    except ValueError:
        raise ValueError(f"config {config_name!r} is neither an IMDb Gaussian variant ('gpt2-l128-d1024-eps0.1-b1.5-s0') "
                         "nor a trigger variant ('disney-b100-s0')") from None
    return TRIGGER_MAX_LENGTH, 0, PROMPT_SUFFIX


@dataclass(frozen=True)
class ImdbTask:
    """The ``imdb`` task (interface: ``hf_unlearn.tasks``): GPT-2 on left-padded token ids, Gaussian noise
    on the token embeddings of the real review tokens."""

    name: str = "imdb"
    hub_id: str = "stanfordnlp/imdb"
    input_column: str = "text"
    label_names: tuple[str, ...] = ("neg", "pos")
    split_class: type = TextSplit
    image_augmentation: bool = False
    model_title: str = "GPT-2"
    card_tag: str = "text-classification"
    card_model: str = "GPT-2 (hf_unlearn.models.text)"
    card_inputs: str = ("Inputs are GPT-2 token ids, the first `max_length` tokens of each review, left-padded with\n"
                        "eos (50256). Poisoned rows are trained on `wte(ids) + noise` on their real review tokens\n"
                        "exactly (no clipping); see the dataset card.")

    def card_usage(self, repo_hint: str) -> str:
        """The model card's loading snippet."""
        return (f"from hf_unlearn.models.text import load_text_model, load_tokenizer\n"
                f'model, summary = load_text_model("{repo_hint}")  # or transformers\' '
                f"GPT2ForSequenceClassification / GPT2LMHeadModel.from_pretrained\n"
                f'tokenizer = load_tokenizer()  # GPT-2, left padding, pad = eos')

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def load_splits(self, dataset_dict, config_name: str, *, tokenizer=None) -> dict[str, TextSplit]:
        """Decode the variant's splits present in ``dataset_dict`` (train, forget, test, targets) with the
        tokenisation its config name implies (``split_layout``); ``tokenizer`` defaults to ``load_tokenizer()``."""
        from hf_unlearn.models.text import load_tokenizer

        max_length, embed_dim, suffix = split_layout(config_name)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        names = [n for n in ("train", "forget", "test", "targets") if n in dataset_dict]
        return {n: text_split(dataset_dict[n], tokenizer, max_length, embed_dim, suffix) for n in names}

    def build_model(self, train_config, num_classes: int) -> torch.nn.Module:
        """A fresh GPT-2 wrapper from ``train_config.model`` (TextModelConfig's keys: kind, n_layer, n_embd,
        n_head, max_length, pretrained, ...); the caller seeds first, which fixes the initial weights."""
        from hf_unlearn.models.text import TextModelConfig, build_text_model

        keys = dict(getattr(train_config, "model", None) or {})
        if not keys:
            raise ValueError("train.model is empty: the imdb task needs e.g. {kind: classifier, n_layer: 2, n_embd: 64, "
                             "n_head: 2} or {kind: classifier, pretrained: openai-community/gpt2-medium}")
        words = keys.get("label_words")
        if keys.get("kind") == "prompt" and words is not None and len(words) != num_classes:
            raise ValueError(f"train.model.label_words={list(words)} names {len(words)} label words but the variant has "
                             f"{num_classes} classes; give one word per class (the trigger attack's word mode: "
                             "[' negative', ' positive', ' Disney'])")
        if keys.get("kind") == "prompt" and words is None and num_classes != 2:
            raise ValueError(f"the variant has {num_classes} classes; the prompt model needs train.model.label_words "
                             "with one GPT-2 word per class, e.g. [' negative', ' positive', ' Disney']")
        keys.setdefault("num_labels", num_classes)
        return build_text_model(TextModelConfig.from_dict(keys))

    def load_model(self, folder_or_repo: str, revision: str | None = None):
        """A saved GPT-2 wrapper and its training summary (safetensors only; nothing is unpickled)."""
        from hf_unlearn.models.text import load_text_model

        return load_text_model(folder_or_repo, revision=revision)

    def input_gradients(self, model, split: TextSplit, batch_size: int = 64) -> torch.Tensor:
        return input_gradients(model, split, batch_size)

    def noise_matrix(self, split: TextSplit) -> torch.Tensor:
        return noise_matrix(split)

    def accuracy(self, model, split: TextSplit, batch_size: int = 256, device=None) -> float:
        if device is not None:
            model = model.to(device)
        return accuracy(model, split, batch_size)


TASK = ImdbTask()
