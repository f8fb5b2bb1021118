"""The Hub-layout glue every dataset builder shares, so a builder holds only its variant's rows and prose.

A repo (``poisoned-<task>-<attack>``) is a folder of parquet shards, ``data/<config>/<split>-XXXXX-of-YYYYY.parquet``,
plus a card whose YAML ``configs:`` lists every variant (``hf_unlearn.cards.update_dataset_card``). Here:

- :func:`sha256` and :func:`write_variant`: shards cut by rows or by bytes, each with its checksum for the card;
- :func:`install_variant`: written to a temporary folder and moved into place, so an interrupted build keeps the
  variants and the card it had;
- :class:`DatasetRepo`: one repo's name, splits, shard size and card spec, and the build loop over variants;
- :class:`BuilderCli`: the command line every builder has (build a grid, ``--from-card`` rebuild,
  ``--push-to-hub``), with the builder adding only its variant flags; :func:`check_rebuilt_name` guards a
  rebuild against a hand-edited card;
- :func:`noise_column` and :func:`make_split`: arrow columns built without a Python float per value.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from hf_unlearn.cards import DatasetCardSpec, sha256_file, update_dataset_card

Checksums = dict[str, dict[str, str]]  # {split: {relative shard path: sha256}}


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (the card's shard checksums; the loader recomputes them with the same function)."""
    return sha256_file(path)


@dataclass(frozen=True)
class Sharding:
    """How many parquet shards a split gets: at most ``max_rows`` rows or about ``max_bytes`` arrow bytes each.

    Images are a few kB a row, so rows are a fine unit; text rows with embedding noise range from bytes to
    megabytes, so IMDb cuts by size. The shard count is part of a variant's bytes: changing it changes the files.
    """

    max_rows: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if (self.max_rows is None) == (self.max_bytes is None):
            raise ValueError(f"Sharding(max_rows={self.max_rows}, max_bytes={self.max_bytes}): give exactly one")

    def count(self, part) -> int:
        size, limit = (len(part), self.max_rows) if self.max_rows is not None else (part.data.nbytes, self.max_bytes)
        return max(1, math.ceil(size / limit))


def write_variant(variant, config_name: str, out_dir: Path, splits: Iterable[str], sharding: Sharding) -> Checksums:
    """Write ``data/<config>/<split>-XXXXX-of-YYYYY.parquet`` under ``out_dir``; return {split: {file: sha256}}."""
    checksums: Checksums = {}
    (out_dir / "data" / config_name).mkdir(parents=True, exist_ok=True)
    for split in splits:
        part = variant[split]
        shards = sharding.count(part)
        checksums[split] = {}
        for i in range(shards):
            rel = f"data/{config_name}/{split}-{i:05d}-of-{shards:05d}.parquet"
            part.shard(shards, i, contiguous=True).to_parquet(str(out_dir / rel))
            checksums[split][rel] = sha256(out_dir / rel)
    return checksums


def install_variant(variant, config_name: str, out_dir: Path, splits: Iterable[str], sharding: Sharding) -> Checksums:
    """Write a variant to a temporary folder inside ``out_dir`` and move it into place (replacing an older one).

    The temporary folder sits in ``out_dir`` so the final move is a rename on one file system.
    """
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        checksums = write_variant(variant, config_name, Path(tmp), splits, sharding)
        target = out_dir / "data" / config_name
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / "data" / config_name, target)
    return checksums


@dataclass(frozen=True)
class DatasetRepo:
    """One ``poisoned-<task>-<attack>`` repo: its name, splits, shard size and what its card says."""

    name: str
    splits: tuple[str, ...]
    sharding: Sharding
    card: DatasetCardSpec

    def add_variant(self, out_dir: str | os.PathLike, config_name: str, variant, params: dict[str, Any]) -> Path:
        """Install one variant's shards and merge it into the card (parameters + the shards' sha256)."""
        out_dir = Path(out_dir)
        checksums = install_variant(variant, config_name, out_dir, self.splits, self.sharding)
        return update_dataset_card(
            out_dir, repo_name=self.name, config_name=config_name, params=params, checksums=checksums, spec=self.card
        )

    def build(self, out_dir: str | os.PathLike, configs: list, make: Callable[[Any], tuple[Any, dict[str, Any]]],
              *, source: str, fingerprint: str, progress: bool = True) -> Path:
        """Build every config into ``out_dir``; ``make(cfg)`` returns (DatasetDict, the variant's own parameters).

        Every card entry starts with what all repos record, the track and the data it came from (``attack``,
        ``task``, ``source``, ``source_fingerprint``), then ``make``'s parameters. Variants are installed one by
        one, so an interrupted build leaves earlier variants and the card intact, and a rerun resumes: a variant
        the folder already holds, built from the same source data and with shards that match its card, is kept
        rather than crafted again (an hour of gradient matching is not redone; delete its ``data/<config>``
        folder to rebuild it).
        """
        from tqdm.auto import tqdm

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        head = {"attack": self.card.attack, "task": self.card.task, "source": source, "source_fingerprint": fingerprint}
        for cfg in tqdm(configs, desc="building variants", disable=not progress):
            if _already_built(out_dir, cfg.name, fingerprint):
                if progress:
                    tqdm.write(f"{cfg.name}: already built in {out_dir} (shards match the card), kept")
                continue
            variant, params = make(cfg)
            self.add_variant(out_dir, cfg.name, variant, {**head, **params})
        return out_dir


def _already_built(out_dir: Path, config_name: str, fingerprint: str) -> bool:
    """The folder's card lists this config, from this source data, and its shards match the recorded sha256."""
    from hf_unlearn import cards

    try:
        params = cards.variant_params(out_dir, config_name)
    except (FileNotFoundError, KeyError, ValueError):
        return False
    if params.get("source_fingerprint") != fingerprint:
        return False
    try:
        return cards.verify_local_variant(out_dir, config_name) > 0
    except cards.VariantModifiedError:
        return False


@dataclass(frozen=True)
class BuilderCli:
    """The command line every builder shares: build a grid of variants, or rebuild one ``--from-card``, then push.

    ``add_variant_arguments`` adds the builder's own flags (``--seed`` and ``--max-train-rows`` are everyone's);
    ``build(args)`` and ``rebuild(args)`` return the
    folder. A builder module exposes ``add_arguments``, ``run`` and ``main`` from its instance, which is what
    ``hf-unlearn build`` (``hf_unlearn.cli``) calls.
    """

    repo_name: str
    doc: str
    source_help: str
    add_variant_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace], Path]
    rebuild: Callable[[argparse.Namespace], Path]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--source", default=None, help=self.source_help)
        parser.add_argument("--out", default=self.repo_name, help=f"output folder (default ./{self.repo_name}, named after the repo)")
        self.add_variant_arguments(parser)
        # every repo's variants have a seed and may use a fixed, seed-independent subset of the source's train rows
        parser.add_argument("--seed", type=int, nargs="+", default=[0], help="seeds of the variants' random choices (default 0)")
        parser.add_argument("--max-train-rows", type=int, default=None,
                            help="build on a fixed subset of this many source train rows, the same for every seed (CPU presets)")
        parser.add_argument("--from-card", default=None, help="rebuild --config from the parameters in this card")
        parser.add_argument("--config", default=None, help="with --from-card: the variant to rebuild")
        parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload the folder to this Hub dataset repo")

    def run(self, args: argparse.Namespace) -> Path:
        if args.from_card:
            if not args.config:
                raise SystemExit("--from-card needs --config NAME (one of the card's configs)")
            out = self.rebuild(args)
        else:
            out = self.build(args)
        print(f"dataset folder: {out}")
        if args.push_to_hub:
            from hf_unlearn import hub

            print(f"pushed: {hub.push_folder(out, args.push_to_hub, repo_type='dataset')}")
        return out

    def main(self, argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(description=self.doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(parser)
        self.run(parser.parse_args(argv))


def check_rebuilt_name(config_name: str, rebuilt: str) -> None:
    """A card's parameters must name the config they sit under; otherwise the card was edited by hand."""
    if rebuilt != config_name:
        raise ValueError(f"card parameters of {config_name!r} describe {rebuilt!r}; the card was edited by hand")


# --------------------------------------------------------------------------- arrow columns


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
