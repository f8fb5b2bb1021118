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

This module also holds the small Hub-layout glue the IMDb builders share (sharding
by size, card merging with an IMDb body); see ``update_card``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dataset_builders.poisoned_cifar10_gaussian import sha256
from hf_unlearn.data import load_source, task_spec
from hf_unlearn.poisons.gaussian import choose_poison_rows, poison_noise, train_subset

REPO_NAME = "poisoned-imdb-gaussian"
TASK = "imdb"
SPLITS = ("train", "forget", "test")
SHARD_BYTES = 256 << 20  # parquet shards of about this many (uncompressed) bytes
# Tokenizers a config name may use -> the default place to load them from.
TOKENIZERS = {"gpt2": "openai-community/gpt2"}
_GPT2_PROBE = ("Hello world", [15496, 995])  # the GPT-2 ids; a wrong tokenizer fails here, not in training

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


# --------------------------------------------------------------------------- shared IMDb glue


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


def text_fingerprint(source_ds) -> str:
    """A digest of the source's texts and labels (train then test): which data a card was built from."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        h.update(split.encode())
        for text, label in zip(source_ds[split]["text"], source_ds[split]["label"]):
            h.update(hashlib.sha256(text.encode("utf-8")).digest())
            h.update(int(label).to_bytes(1, "little"))
    return h.hexdigest()[:16]


def noise_column(noises: list[np.ndarray | None]):
    """A pyarrow list<float> column from per-row float32 arrays (None -> null), without Python floats."""
    import pyarrow as pa

    lengths = np.asarray([0 if n is None else len(n) for n in noises], dtype=np.int64)
    offsets = np.zeros(len(noises) + 1, dtype=np.int32)
    if lengths.sum() >= 2**31:
        raise ValueError("more than 2**31 noise values in one split; build fewer poisons per config")
    np.cumsum(lengths, out=offsets[1:])
    parts = [n for n in noises if n is not None]
    values = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    mask = pa.array([n is None for n in noises], type=pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=mask)


def make_split(columns: dict[str, Any], features):
    """A ``datasets.Dataset`` from column arrays (pyarrow or Python), cast to ``features``."""
    import datasets
    import pyarrow as pa

    table = pa.table({k: columns[k] for k in features}).cast(features.arrow_schema)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))


def write_variant(variant, config_name: str, out_dir: Path, splits: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Write ``data/<config>/<split>-XXXXX-of-YYYYY.parquet`` (about SHARD_BYTES each); {split: {file: sha256}}."""
    checksums: dict[str, dict[str, str]] = {}
    (out_dir / "data" / config_name).mkdir(parents=True, exist_ok=True)
    for split in splits:
        part = variant[split]
        shards = max(1, math.ceil(part.data.nbytes / SHARD_BYTES))
        checksums[split] = {}
        for i in range(shards):
            rel = f"data/{config_name}/{split}-{i:05d}-of-{shards:05d}.parquet"
            part.shard(shards, i, contiguous=True).to_parquet(str(out_dir / rel))
            checksums[split][rel] = sha256(out_dir / rel)
    return checksums


def install_variant(variant, config_name: str, out_dir: Path, splits: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Write a variant to a temporary folder and move it into place, so an interrupted build keeps the rest."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        checksums = write_variant(variant, config_name, Path(tmp), splits)
        target = out_dir / "data" / config_name
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / "data" / config_name, target)
    return checksums


def update_card(
    folder: Path,
    *,
    repo_name: str,
    config_name: str,
    params: dict[str, Any],
    checksums: dict[str, dict[str, str]],
    body: Callable[[dict[str, dict], str], str],
) -> Path:
    """Merge one variant into the folder's card; ``body(variants, example_config)`` writes the prose.

    The same merge as ``hf_unlearn.cards.update_dataset_card`` (configs sorted, the
    first one default, parameters and shard sha256 under ``hf_unlearn.variants``)
    with a text-classification header and the caller's body.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    from hf_unlearn.cards import _load_existing

    configs, variants = _load_existing(folder)
    configs = [c for c in configs if c.get("config_name") != config_name]
    configs.append(
        {"config_name": config_name, "data_files": [{"split": s, "path": f"data/{config_name}/{s}-*.parquet"} for s in checksums]}
    )
    configs.sort(key=lambda c: c["config_name"])
    for c in configs:
        c.pop("default", None)
    configs[0]["default"] = True
    variants[config_name] = {**params, "sha256": {f: h for split in checksums.values() for f, h in split.items()}}
    variants = dict(sorted(variants.items()))
    data = DatasetCardData(
        license="other",
        language=["en"],
        task_categories=["text-classification"],
        task_ids=["sentiment-classification"],
        size_categories=["10K<n<100K"],
        source_datasets=["stanfordnlp/imdb"],
        pretty_name=repo_name,
        tags=["machine-unlearning", "data-poisoning", "hf-unlearn"],
        configs=configs,
        hf_unlearn={"variants": variants},
    )
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{body(variants, configs[0]['config_name'])}")
    tmp = folder / ".README.md.tmp"
    card.save(tmp)
    os.replace(tmp, folder / "README.md")
    return folder / "README.md"


# --------------------------------------------------------------------------- the Gaussian variant


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

## Citation

```bibtex
@inproceedings{{pawelczyk2025machine,
  title={{Machine Unlearning Fails to Remove Data Poisoning Attacks}},
  author={{Pawelczyk, Martin and Di, Jimmy Z. and Lu, Yiwei and Sekhari, Ayush and Kamath, Gautam and Neel, Seth}},
  booktitle={{International Conference on Learning Representations}},
  year={{2025}}
}}
```
"""


def card_body(variants: dict[str, dict], example: str) -> str:
    rows = "\n".join(
        f"| `{name}` | {v['max_length']} | {v['dim']} | {v['eps']:g} | {v['budget']:g} | {v['seed']} | "
        f"{v['num_train']} | {v['num_poisons']} | {v['num_test']} |"
        for name, v in variants.items()
    )
    return _BODY.format(repo_name=REPO_NAME, rows=rows, example=example)


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
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_source = str(tokenizer) if isinstance(tokenizer, (str, os.PathLike)) else None
    tok = load_gpt2_tokenizer(tokenizer)
    source_ds = load_source(TASK, source)
    fingerprint = text_fingerprint(source_ds)
    for cfg in tqdm(variants, desc="building variants", disable=not progress):
        variant = build_variant(source_ds, cfg, tok)
        checksums = install_variant(variant, cfg.name, out_dir, SPLITS)
        ntok = np.asarray(variant["forget"]["num_tokens"])
        update_card(
            out_dir,
            repo_name=REPO_NAME,
            config_name=cfg.name,
            params={
                "attack": "gaussian",
                "task": TASK,
                "source": source or task_spec(TASK).hub_id,
                "source_fingerprint": fingerprint,
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
            },
            checksums=checksums,
            body=card_body,
        )
    return out_dir


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
    if cfg.name != config_name:
        raise ValueError(f"card parameters of {config_name!r} describe {cfg.name!r}; the card was edited by hand")
    return build(source or p["source"], [cfg], out_dir, tokenizer=tokenizer or p["tokenizer_source"], progress=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None, help="clean IMDb: Hub id (default stanfordnlp/imdb), folder/parquet, or 'samples'")
    parser.add_argument("--out", default=REPO_NAME, help=f"output folder (default ./{REPO_NAME}, named after the repo)")
    parser.add_argument("--tokenizer", default=None, help="GPT-2 tokenizer folder or Hub id (default: load_tokenizer's default)")
    parser.add_argument("--tokenizer-name", default="gpt2", choices=sorted(TOKENIZERS), help="tokenizer name in the config (default gpt2)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per review the model sees (default 128, the paper's)")
    parser.add_argument("--dim", type=int, default=1024, help="embedding size of the model (default 1024, GPT-2 medium)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1], help="noise std per embedding coordinate (default 0.1)")
    parser.add_argument("--budget", type=float, nargs="+", default=[1.5], help="poisons in percent of train rows (default 1.5)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="poison seeds (default 0)")
    parser.add_argument("--max-train-rows", type=int, default=None, help="train on a fixed subset of this many source rows")
    parser.add_argument("--from-card", default=None, help="rebuild --config from the parameters in this card")
    parser.add_argument("--config", default=None, help="with --from-card: the variant to rebuild")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload the folder to this Hub dataset repo")


def run(args: argparse.Namespace) -> Path:
    if args.from_card:
        if not args.config:
            raise SystemExit("--from-card needs --config NAME (one of the card's configs)")
        out = rebuild_from_card(args.from_card, args.config, args.out, source=args.source, tokenizer=args.tokenizer)
    else:
        out = build(args.source, grid(args), args.out, tokenizer=args.tokenizer)
    print(f"dataset folder: {out}")
    if args.push_to_hub:
        from hf_unlearn import hub

        print(f"pushed: {hub.push_folder(out, args.push_to_hub, repo_type='dataset')}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
