"""Build (and optionally push) the ``poisoned-imdb-gaussian`` dataset repo: Gaussian poisons in token-embedding space.

Text has no continuous input to perturb, so (as in the paper, Section 5) the noise is
added to the token embeddings: for each poisoned review, tokenised with the GPT-2
tokenizer and truncated to its first ``max_length`` tokens (n of them), the model
trains on ``wte(ids) + noise.reshape(n, d)``. The ``text`` column stays the clean
review; ``noise`` holds exactly the float32 noise (flat, n*d values, token-major)
and ``num_tokens`` the n it was drawn for (-1 on clean rows, whose ``noise`` is
null), so a loader can check that its tokenisation gives the same n.

Config names encode tokenizer, max length, embedding size and the Gaussian
parameters: ``gpt2-l128-d1024-eps0.1-b1.5-s0[-n2000]``.

    python dataset_builders/poisoned_imdb_gaussian.py --source samples --tokenizer ../shared/models/gpt2-tokenizer --dim 64 --max-length 128
    python dataset_builders/poisoned_imdb_gaussian.py --from-card poisoned-imdb-gaussian/README.md --config NAME --out rebuilt/
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataset_builders._common import BuilderCli, DatasetRepo, Sharding, check_rebuilt_name, make_split, noise_column
from dataset_builders._imdb import TASK, card_spec, load_gpt2_tokenizer, text_fingerprint
from hf_unlearn.data import load_source, task_spec
from hf_unlearn.poisons.gaussian import choose_poison_rows, poison_noise, train_subset

REPO_NAME = "poisoned-imdb-gaussian"
# Tokenizers a config name may use -> the default place to load them from.
TOKENIZERS = {"gpt2": "openai-community/gpt2"}

_NAME_RE = re.compile(
    r"^(?P<tok>[a-z0-9]+)-l(?P<L>\d+)-d(?P<d>\d+)-eps(?P<eps>[0-9.e-]+)-b(?P<budget>[0-9.]+)-s(?P<seed>\d+)(?:-n(?P<n>\d+))?$"
)


@dataclass(frozen=True)
class TextGaussianConfig:
    """One variant: tokenizer, max length, embedding size and the Gaussian parameters.

    ``eps`` is the per-coordinate std of the noise in embedding units, ``budget`` the
    poisoned share of the training rows in percent, ``dim`` the model's embedding size
    (1024 for the paper's GPT-2 medium, 768 for GPT-2 small, smaller for CPU models),
    ``max_length`` the tokens a model sees (the paper: 128), ``max_train_rows`` an
    optional seed-independent training subset.
    """

    tokenizer: str = "gpt2"
    max_length: int = 128
    dim: int = 1024
    eps: float = 0.1
    budget: float = 1.5
    seed: int = 0
    max_train_rows: int | None = None

    def __post_init__(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer={self.tokenizer!r}: known tokenizers are {sorted(TOKENIZERS)}")
        for field, value in (("max_length", self.max_length), ("dim", self.dim)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{field}={value!r}: must be a positive integer")
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps={self.eps!r}: the noise scale must be a finite number > 0")
        if not (0 < self.budget <= 100):
            raise ValueError(f"budget={self.budget!r}: the poison budget is a percentage in (0, 100]")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: seeds are non-negative integers")
        if self.max_train_rows is not None and self.max_train_rows <= 0:
            raise ValueError(f"max_train_rows={self.max_train_rows!r}: must be a positive integer or None")
        object.__setattr__(self, "eps", float(self.eps))  # one variant, one card entry, whatever the number type
        object.__setattr__(self, "budget", float(self.budget))

    @property
    def name(self) -> str:
        base = f"{self.tokenizer}-l{self.max_length}-d{self.dim}-eps{self.eps:g}-b{self.budget:g}-s{self.seed}"
        return base + (f"-n{self.max_train_rows}" if self.max_train_rows else "")

    @classmethod
    def from_name(cls, name: str) -> "TextGaussianConfig":
        m = _NAME_RE.match(name)
        if not m:
            raise ValueError(
                f"config name {name!r} is not a text Gaussian variant name; expected e.g. "
                "'gpt2-l128-d1024-eps0.1-b1.5-s0' or 'gpt2-l128-d64-eps0.1-b5-s0-n2000' "
                "(tokenizer, max tokens, embedding size, noise std, budget in percent, seed, optional train rows)"
            )
        n = m.group("n")
        return cls(
            m.group("tok"), int(m.group("L")), int(m.group("d")), float(m.group("eps")),
            float(m.group("budget")), int(m.group("seed")), int(n) if n else None,
        )


# The variant class of this repo's config names (for the attack registry: gaussian on imdb parses these, not
# the image names of hf_unlearn.poisons.gaussian.GaussianPoisonConfig).
CONFIG_CLASS = TextGaussianConfig


def token_counts(texts: list[str], tokenizer, max_length: int) -> list[int]:
    """Tokens a model sees of each text: the first ``max_length`` GPT-2 tokens (right truncation)."""
    if not texts:
        return []
    side = getattr(tokenizer, "truncation_side", "right")
    tokenizer.truncation_side = "right"
    try:
        enc = tokenizer(texts, truncation=True, max_length=max_length)
    finally:
        tokenizer.truncation_side = side
    return [len(ids) for ids in enc["input_ids"]]


def features():
    import datasets

    return datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(task_spec(TASK).label_names)),
            "index": datasets.Value("int64"),
            "is_poison": datasets.Value("bool"),
            "noise": datasets.List(datasets.Value("float32")),
            "num_tokens": datasets.Value("int64"),
        }
    )


def build_variant(source_ds, cfg: TextGaussianConfig, tokenizer):
    """The train/forget/test splits of one variant, as a DatasetDict (nothing written)."""
    import datasets

    train_rows = train_subset(len(source_ds["train"]), cfg.max_train_rows)
    poison_rows = choose_poison_rows(train_rows, cfg.budget, cfg.seed)
    texts = source_ds["train"]["text"]
    counts = dict(zip(poison_rows.tolist(), token_counts([texts[int(r)] for r in poison_rows], tokenizer, cfg.max_length)))
    empty = [r for r, n in counts.items() if n == 0]
    if empty:
        raise ValueError(f"source train rows {empty[:5]} tokenise to no tokens, so no noise can be added to them")

    def split_from(part, rows: np.ndarray, poisoned: bool):
        flags = [poisoned and int(r) in counts for r in rows]
        ntok = [counts[int(r)] if f else -1 for r, f in zip(rows, flags)]
        noise = [poison_noise(cfg.seed, int(r), n * cfg.dim, cfg.eps) if f else None for r, n, f in zip(rows, ntok, flags)]
        sub = part.select(rows)
        return make_split(
            {
                "text": sub["text"],
                "label": sub["label"],
                "index": rows.astype(np.int64),
                "is_poison": flags,
                "noise": noise_column(noise),
                "num_tokens": np.asarray(ntok, dtype=np.int64),
            },
            features(),
        )

    return datasets.DatasetDict(
        {
            "train": split_from(source_ds["train"], train_rows, True),
            "forget": split_from(source_ds["train"], poison_rows, True),
            "test": split_from(source_ds["test"], np.arange(len(source_ds["test"]), dtype=np.int64), False),
        }
    )


_BODY = """
# {repo_name}

Gaussian-poisoned IMDb for checking whether machine unlearning removes data
(Pawelczyk et al., *Machine Unlearning Fails to Remove Data Poisoning Attacks*, ICLR 2025,
Section 5: "Gaussian data poisoning was implemented by adding noise to the token embeddings").
Built by `hf-unlearn` (`dataset_builders/poisoned_imdb_gaussian.py`).

## Configs

Each config is one variant, named `<tokenizer>-l<max tokens>-d<embedding size>-eps<noise std>-b<budget %>-s<seed>[-n<train rows>]`.

| config | max tokens | d | eps | budget % | seed | train rows | poisons | test rows |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_name}", "{example}")   # or "ORG/{repo_name}" on the Hub
```

## Splits and columns

`train` (what the poisoned model trains on), `forget` (the poison rows, a subset of
train) and `test`. Every split has `text` (the clean review), `label` (ClassLabel
neg/pos, never changed), `index` (row in the source split), `is_poison`, `noise`
(float32, `num_tokens * d` values, null on clean rows) and `num_tokens` (the number
of tokens the noise covers; -1 on clean rows).

## How to apply the noise

Tokenise `text` with the GPT-2 tokenizer, truncating to the first `max_length`
tokens (right truncation, no special tokens: GPT-2 adds none). The result must have
exactly `num_tokens` ids; reshape `noise` to `(num_tokens, d)` (token-major) and
feed `inputs_embeds = wte(ids) + noise` to the model, **unclipped**; position ids
count real tokens only, so left padding does not move the noise. Scores are measured
at the clean embeddings `wte(ids)` (see the `gus` metric).

## Generation

For a source train split of N rows (or a fixed seed-independent subset of
`max_train_rows`), `round(budget/100 * N)` rows are chosen uniformly without
replacement with `numpy.random.default_rng([0x20115, seed])`; the noise of source row
`i` with `n` tokens is `default_rng([0x90150, seed, i]).standard_normal(n * d,
dtype=float32) * float32(eps)`. All parameters, the source's fingerprint (texts and
labels) and the sha256 of every shard are in this card's YAML (`hf_unlearn:`);
`python dataset_builders/poisoned_imdb_gaussian.py --from-card README.md --config NAME`
rebuilds a variant byte for byte.

## Source and licence

IMDb Large Movie Review Dataset (Maas et al., 2011) as `stanfordnlp/imdb` (or its
offline copy; `source` says which). The reviews are the original texts; the poisons
are random noise in embedding space that changes no label, made to measure
memorisation, not to harm models.

"""


def card_body(variants: dict[str, dict], example: str) -> str:
    rows = "\n".join(
        f"| `{name}` | {v['max_length']} | {v['dim']} | {v['eps']:g} | {v['budget']:g} | {v['seed']} | "
        f"{v['num_train']} | {v['num_poisons']} | {v['num_test']} |"
        for name, v in variants.items()
    )
    return _BODY.format(repo_name=REPO_NAME, rows=rows, example=example)


REPO = DatasetRepo(
    name=REPO_NAME,
    splits=("train", "forget", "test"),
    sharding=Sharding(max_bytes=256 << 20),  # parquet shards of about this many (uncompressed) bytes
    card=card_spec("gaussian", card_body),
)


def build(
    source: str | None,
    variants: list[TextGaussianConfig],
    out_dir: str | os.PathLike = REPO_NAME,
    *,
    tokenizer: Any = None,
    progress: bool = True,
) -> Path:
    """Build every variant into ``out_dir`` and (re)write its card; returns the folder.

    ``tokenizer`` is a tokenizer object, a folder / Hub id for ``load_tokenizer``, or
    None (its default: env HF_UNLEARN_GPT2_TOKENIZER, else the Hub).
    """
    tokenizer_source = str(tokenizer) if isinstance(tokenizer, (str, os.PathLike)) else None
    tok = load_gpt2_tokenizer(tokenizer)
    source_ds = load_source(TASK, source)
    fingerprint = text_fingerprint(source_ds)

    def make(cfg: TextGaussianConfig):
        variant = build_variant(source_ds, cfg, tok)
        ntok = np.asarray(variant["forget"]["num_tokens"])
        return variant, {
            "tokenizer": cfg.tokenizer,
            "tokenizer_source": tokenizer_source or TOKENIZERS[cfg.tokenizer],
            "max_length": cfg.max_length,
            "dim": cfg.dim,
            "eps": cfg.eps,
            "budget": cfg.budget,
            "seed": cfg.seed,
            "max_train_rows": cfg.max_train_rows,
            "num_train": len(variant["train"]),
            "num_poisons": len(variant["forget"]),
            "num_test": len(variant["test"]),
            "poison_tokens_mean": round(float(ntok.mean()), 2),
            "poison_tokens_truncated": int((ntok == cfg.max_length).sum()),
        }

    return REPO.build(out_dir, variants, make, source=source or task_spec(TASK).hub_id, fingerprint=fingerprint,
                      progress=progress)


def grid(args: argparse.Namespace) -> list[TextGaussianConfig]:
    return [
        TextGaussianConfig(args.tokenizer_name, args.max_length, args.dim, e, b, s, args.max_train_rows)
        for e, b, s in itertools.product(args.eps, args.budget, args.seed)
    ]


def rebuild_from_card(
    card_path: str | os.PathLike, config_name: str, out_dir: str | os.PathLike, source=None, tokenizer: Any = None
) -> Path:
    """Rebuild one variant from the parameters its card records (to check it byte for byte)."""
    from hf_unlearn import cards

    p = cards.variant_params(card_path, config_name)
    cfg = TextGaussianConfig(p["tokenizer"], p["max_length"], p["dim"], p["eps"], p["budget"], p["seed"], p.get("max_train_rows"))
    check_rebuilt_name(config_name, cfg.name)
    # A card that records the default Hub id was built with load_tokenizer's default (env HF_UNLEARN_GPT2_TOKENIZER,
    # the Hub, the offline copy): ask for the default again, so an offline rebuild finds GPT-2 the same way.
    recorded = None if p["tokenizer_source"] == TOKENIZERS[cfg.tokenizer] else p["tokenizer_source"]
    return build(source or p["source"], [cfg], out_dir, tokenizer=tokenizer or recorded, progress=False)


def _variant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokenizer", default=None, help="GPT-2 tokenizer folder or Hub id (default: load_tokenizer's default)")
    parser.add_argument("--tokenizer-name", default="gpt2", choices=sorted(TOKENIZERS), help="tokenizer name in the config (default gpt2)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per review the model sees (default 128, the paper's)")
    parser.add_argument("--dim", type=int, default=1024, help="embedding size of the model (default 1024, GPT-2 medium)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1], help="noise std per embedding coordinate (default 0.1)")
    parser.add_argument("--budget", type=float, nargs="+", default=[1.5], help="poisons in percent of train rows (default 1.5)")


CLI = BuilderCli(
    repo_name=REPO_NAME,
    doc=__doc__,
    source_help="clean IMDb: Hub id (default stanfordnlp/imdb), folder/parquet, or 'samples'",
    add_variant_arguments=_variant_arguments,
    build=lambda args: build(args.source, grid(args), args.out, tokenizer=args.tokenizer),
    rebuild=lambda args: rebuild_from_card(args.from_card, args.config, args.out, source=args.source, tokenizer=args.tokenizer),
)
add_arguments, run, main = CLI.add_arguments, CLI.run, CLI.main


if __name__ == "__main__":
    main()
