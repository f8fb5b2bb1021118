"""Build (and optionally push) the ``poisoned-cifar10-gaussian`` dataset repo.

Each variant (noise scale, budget, seed, optional training subset) becomes one
config of a Hub-layout folder: parquet shards under ``data/<config>/`` and a
``README.md`` card whose YAML ``configs:`` maps every variant to its files, so

    load_dataset("poisoned-cifar10-gaussian", "eps0.1-b1.5-s0")        # local folder
    load_dataset("ORG/poisoned-cifar10-gaussian", "eps0.1-b1.5-s0")    # the Hub

work the same. Images stay the source's clean encoded bytes; the ``noise`` column
holds exactly the float32 noise the training transform adds. The card records
every parameter and the sha256 of every shard, and ``--from-card`` rebuilds a
variant from them byte for byte.

    python dataset_builders/poisoned_cifar10_gaussian.py --source samples --eps 0.1 --budget 1.5 2 2.5 --seed 0
    python dataset_builders/poisoned_cifar10_gaussian.py --from-card poisoned-cifar10-gaussian/README.md --config eps0.1-b1.5-s0 --out rebuilt/
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
from pathlib import Path

import numpy as np

from dataset_builders._cifar10 import SOURCE_HELP
from dataset_builders._common import BuilderCli, DatasetRepo, Sharding
from hf_unlearn.cards import DatasetCardSpec
from hf_unlearn.data import raw_image_column, load_source, task_spec
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig, choose_poison_rows, poison_noise, train_subset

REPO_NAME = "poisoned-cifar10-gaussian"
TASK = "cifar10"
DIM = 3 * 32 * 32


def features():
    import datasets

    return datasets.Features(
        {
            "img": datasets.Image(),
            "label": datasets.ClassLabel(names=list(task_spec(TASK).label_names)),
            "index": datasets.Value("int64"),
            "is_poison": datasets.Value("bool"),
            "noise": datasets.List(datasets.Value("float32"), length=DIM),
        }
    )


def build_variant(source_ds, cfg: GaussianPoisonConfig):
    """The train/forget/test splits of one variant, as a DatasetDict (nothing written)."""
    import datasets

    train_rows = train_subset(len(source_ds["train"]), cfg.max_train_rows)
    poison_rows = choose_poison_rows(train_rows, cfg.budget, cfg.seed)
    poison_set = set(poison_rows.tolist())

    def split_from(part, rows: np.ndarray, poisoned: bool):
        cells = raw_image_column(part.select(rows))
        labels = part.select(rows)["label"]
        flags = [poisoned and int(r) in poison_set for r in rows]
        noise = [poison_noise(cfg.seed, int(r), DIM, cfg.eps) if f else None for r, f in zip(rows, flags)]
        return datasets.Dataset.from_dict(
            {
                "img": [{"bytes": c["bytes"], "path": None} for c in cells],
                "label": list(labels),
                "index": rows.astype(np.int64),
                "is_poison": flags,
                "noise": noise,
            },
            features=features(),
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

Gaussian-poisoned CIFAR-10 for checking whether machine unlearning removes data
(Pawelczyk et al., *Machine Unlearning Fails to Remove Data Poisoning Attacks*, ICLR 2025).
Built by `hf-unlearn` (`dataset_builders/poisoned_cifar10_gaussian.py`).

## Configs

Each config is one poisoning variant, named `eps<noise std>-b<budget %>-s<seed>[-n<train rows>]`.

| config | eps | budget % | seed | train rows | poisons | test rows |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_name}", "{example}")   # or "ORG/{repo_name}" on the Hub
```

## Splits and columns

`train` (what the poisoned model trains on), `forget` (the poison rows, a subset of
train) and `test`. Every split has `img` (the clean source image, original encoded
bytes), `label` (ClassLabel), `index` (row in the source split), `is_poison` and
`noise` (3,072 float32 values in (C, H, W) order, null for clean rows).

## How to apply the noise

The model must see exactly `x + noise`, with `x` the image as float32 pixels in
[0, 1] (uint8 / 255) in (C, H, W) order, reshaped from the flat `noise`:
**no clipping, no quantisation**. Scores of a model are measured at the clean
`x` (see the `gus` metric).

## Generation

For a source train split of N rows (or a fixed seed-independent subset of
`max_train_rows` of them), `round(budget/100 * N)` rows are chosen uniformly without
replacement with `numpy.random.default_rng([0x20115, seed])`; the noise of source row
`i` is `default_rng([0x90150, seed, i]).standard_normal(3072, dtype=float32) * float32(eps)`.
Labels do not change. All parameters, the source's fingerprint and the sha256 of every
shard are in this card's YAML (`hf_unlearn:`); `python dataset_builders/poisoned_cifar10_gaussian.py
--from-card README.md --config NAME` rebuilds a variant byte for byte.

## Source and licence

CIFAR-10 (Krizhevsky 2009) as `uoft-cs/cifar10`; local builds may use the offline
JPEG copy, whose pixels differ slightly from the Hub copy (the `source` parameter says
which was used). The poisons are random noise that does not change the labels and is
invisible at small eps; they exist to measure memorisation, not to harm models.

"""


def card_body(variants: dict[str, dict], example: str) -> str:
    """The card's prose: one table row per variant, then how to load, apply and rebuild."""
    rows = "\n".join(
        f"| `{name}` | {v['eps']:g} | {v['budget']:g} | {v['seed']} | {v['num_train']} | {v['num_poisons']} | {v['num_test']} |"
        for name, v in variants.items()
    )
    return _BODY.format(repo_name=REPO_NAME, rows=rows, example=example)


REPO = DatasetRepo(
    name=REPO_NAME,
    splits=("train", "forget", "test"),
    sharding=Sharding(max_rows=20_000),
    card=DatasetCardSpec(
        task=TASK, attack="gaussian", license="apache-2.0", task_categories=("image-classification",), body=card_body
    ),
)


def source_fingerprint(source_ds) -> str:
    """A digest of the source's split sizes and label sequences: it names *which* data a card was built from."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        labels = np.asarray(source_ds[split]["label"], dtype=np.int64)
        h.update(split.encode())
        h.update(labels.tobytes())
    return h.hexdigest()[:16]


def build(
    source: str | None,
    variants: list[GaussianPoisonConfig],
    out_dir: str | os.PathLike = REPO_NAME,
    *,
    progress: bool = True,
) -> Path:
    """Build every variant into ``out_dir`` and (re)write its card; returns the folder.

    Each variant is written to a temporary folder first and moved into place, so an
    interrupted build leaves earlier variants and the card intact.
    """
    source_ds = load_source(TASK, source)
    fingerprint = source_fingerprint(source_ds)

    def make(cfg: GaussianPoisonConfig):
        variant = build_variant(source_ds, cfg)
        return variant, {
            "eps": cfg.eps,
            "budget": cfg.budget,
            "seed": cfg.seed,
            "max_train_rows": cfg.max_train_rows,
            "num_train": len(variant["train"]),
            "num_poisons": len(variant["forget"]),
            "num_test": len(variant["test"]),
            "dim": DIM,
        }

    return REPO.build(out_dir, variants, make, source=source or task_spec(TASK).hub_id, fingerprint=fingerprint,
                      progress=progress)


def grid(eps: list[float], budgets: list[float], seeds: list[int], max_train_rows: int | None):
    return [GaussianPoisonConfig(e, b, s, max_train_rows) for e, b, s in itertools.product(eps, budgets, seeds)]


def rebuild_from_card(card_path: str | os.PathLike, config_name: str, out_dir: str | os.PathLike, source=None) -> Path:
    """Rebuild one variant from the parameters its card records (to check it byte for byte)."""
    from hf_unlearn import cards

    params = cards.variant_params(card_path, config_name)
    cfg = GaussianPoisonConfig(params["eps"], params["budget"], params["seed"], params.get("max_train_rows"))
    return build(source or params["source"], [cfg], out_dir, progress=False)


def _variant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1], help="noise std per pixel in [0,1] units (default 0.1)")
    parser.add_argument("--budget", type=float, nargs="+", default=[1.5, 2.0, 2.5], help="poisons in percent of train rows (default 1.5 2 2.5)")


CLI = BuilderCli(
    repo_name=REPO_NAME,
    doc=__doc__,
    source_help=SOURCE_HELP,
    add_variant_arguments=_variant_arguments,
    build=lambda args: build(args.source, grid(args.eps, args.budget, args.seed, args.max_train_rows), args.out),
    rebuild=lambda args: rebuild_from_card(args.from_card, args.config, args.out, source=args.source),
)
add_arguments, run, main = CLI.add_arguments, CLI.run, CLI.main


if __name__ == "__main__":
    main()
