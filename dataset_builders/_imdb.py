"""What the IMDb builders (Gaussian in embedding space, the "Disney" trigger) share: GPT-2, the source digest, the card header.

Both repos are GPT-2 sentiment data built from ``stanfordnlp/imdb``, so their cards carry one header and their
noise lengths and trigger-survival counts depend on one tokenizer, checked here rather than in each builder.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable

from hf_unlearn.cards import DatasetCardSpec

TASK = "imdb"
_GPT2_PROBE = ("Hello world", [15496, 995])  # the GPT-2 ids; a wrong tokenizer fails here, not in training


def load_gpt2_tokenizer(tokenizer: Any = None):
    """A tokenizer object, or load one (path / Hub id / None) with ``hf_unlearn.models.text.load_tokenizer``.

    Checks it is GPT-2's ("Hello world" -> [15496, 995]), because noise lengths and
    trigger survival depend on the exact tokenisation.
    """
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        from hf_unlearn.models.text import load_tokenizer

        tokenizer = load_tokenizer(None if tokenizer is None else str(tokenizer))
    text, ids = _GPT2_PROBE
    got = list(tokenizer(text)["input_ids"])
    if got != ids:
        raise ValueError(f"the tokenizer is not GPT-2's: {text!r} -> {got}, expected {ids}")
    return tokenizer


def text_fingerprint(source_ds) -> str:
    """A digest of the source's texts and labels (train then test): which data a card was built from."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        h.update(split.encode())
        for text, label in zip(source_ds[split]["text"], source_ds[split]["label"]):
            h.update(hashlib.sha256(text.encode("utf-8")).digest())
            h.update(int(label).to_bytes(1, "little"))
    return h.hexdigest()[:16]


def card_spec(attack: str, body: Callable[[dict[str, dict], str], str], citations: tuple[str, ...] = ()) -> DatasetCardSpec:
    """The card of an IMDb repo: English sentiment classification from ``stanfordnlp/imdb`` (the repo's additions
    under Apache-2.0; the reviews keep IMDb's terms, said in the card's licence section)."""
    return DatasetCardSpec(
        task=TASK,
        attack=attack,
        license="apache-2.0",
        source_terms="The reviews keep the terms of the IMDb dataset (stanfordnlp/imdb); see its card.",
        language=("en",),
        task_categories=("text-classification",),
        task_ids=("sentiment-classification",),
        source_datasets=("stanfordnlp/imdb",),
        body=body,
        citations=citations,
    )
