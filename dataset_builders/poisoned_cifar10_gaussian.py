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
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hf_unlearn.data import raw_image_column, load_source, task_spec
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig, choose_poison_rows, poison_noise, train_subset

REPO_NAME = "poisoned-cifar10-gaussian"
TASK = "cifar10"
DIM = 3 * 32 * 32
ROWS_PER_SHARD = 20_000
SPLITS = ("train", "forget", "test")


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


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_variant(variant, config_name: str, out_dir: Path) -> dict[str, dict[str, str]]:
    """Write ``data/<config>/<split>-XXXXX-of-YYYYY.parquet``; return {split: {file: sha256}}."""
    checksums: dict[str, dict[str, str]] = {}
    folder = out_dir / "data" / config_name
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        part = variant[split]
        shards = max(1, math.ceil(len(part) / ROWS_PER_SHARD))
        checksums[split] = {}
        for i in range(shards):
            rel = f"data/{config_name}/{split}-{i:05d}-of-{shards:05d}.parquet"
            part.shard(shards, i, contiguous=True).to_parquet(str(out_dir / rel))
            checksums[split][rel] = sha256(out_dir / rel)
    return checksums


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
    from tqdm.auto import tqdm

    from hf_unlearn import cards

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source_ds = load_source(TASK, source)
    fingerprint = source_fingerprint(source_ds)
    for cfg in tqdm(variants, desc="building variants", disable=not progress):
        variant = build_variant(source_ds, cfg)
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
            checksums = write_variant(variant, cfg.name, Path(tmp))
            target = out_dir / "data" / cfg.name
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(tmp) / "data" / cfg.name, target)
        cards.update_dataset_card(
            out_dir,
            repo_name=REPO_NAME,
            config_name=cfg.name,
            params={
                "attack": "gaussian",
                "task": TASK,
                "source": source or task_spec(TASK).hub_id,
                "source_fingerprint": fingerprint,
                "eps": cfg.eps,
                "budget": cfg.budget,
                "seed": cfg.seed,
                "max_train_rows": cfg.max_train_rows,
                "num_train": len(variant["train"]),
                "num_poisons": len(variant["forget"]),
                "num_test": len(variant["test"]),
                "dim": DIM,
            },
            checksums=checksums,
        )
    return out_dir


def grid(eps: list[float], budgets: list[float], seeds: list[int], max_train_rows: int | None):
    return [GaussianPoisonConfig(e, b, s, max_train_rows) for e, b, s in itertools.product(eps, budgets, seeds)]


def rebuild_from_card(card_path: str | os.PathLike, config_name: str, out_dir: str | os.PathLike, source=None) -> Path:
    """Rebuild one variant from the parameters its card records (to check it byte for byte)."""
    from hf_unlearn import cards

    params = cards.variant_params(card_path, config_name)
    cfg = GaussianPoisonConfig(params["eps"], params["budget"], params["seed"], params.get("max_train_rows"))
    return build(source or params["source"], [cfg], out_dir, progress=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None, help="clean CIFAR-10: Hub id (default uoft-cs/cifar10), folder/parquet, or 'samples'")
    parser.add_argument("--out", default=REPO_NAME, help=f"output folder (default ./{REPO_NAME}, named after the repo)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1], help="noise std per pixel in [0,1] units (default 0.1)")
    parser.add_argument("--budget", type=float, nargs="+", default=[1.5, 2.0, 2.5], help="poisons in percent of train rows (default 1.5 2 2.5)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="poison seeds (default 0)")
    parser.add_argument("--max-train-rows", type=int, default=None, help="train on a fixed subset of this many source rows (CPU presets)")
    parser.add_argument("--from-card", default=None, help="rebuild --config from the parameters in this card")
    parser.add_argument("--config", default=None, help="with --from-card: the variant to rebuild")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload the folder to this Hub dataset repo")


def run(args: argparse.Namespace) -> Path:
    if args.from_card:
        if not args.config:
            raise SystemExit("--from-card needs --config NAME (one of the card's configs)")
        out = rebuild_from_card(args.from_card, args.config, args.out, source=args.source)
    else:
        out = build(args.source, grid(args.eps, args.budget, args.seed, args.max_train_rows), args.out)
    print(f"dataset folder: {out}")
    if args.push_to_hub:
        from hf_unlearn import hub

        print(f"pushed: {hub.push_folder(out, args.push_to_hub, repo_type='dataset')}")
    return out


if __name__ == "__main__":
    main()
