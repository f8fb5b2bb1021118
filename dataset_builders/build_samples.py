"""Build the small class-balanced samples shipped in ``hf_unlearn/samples/``.

The demo and the tests run on these, so a fresh machine needs no Hub access.
They are drawn (seeded, class-balanced) from the offline copies of the Hub
datasets and keep the Hub copies' columns; rerunning this script reproduces
them byte for byte.

    python dataset_builders/build_samples.py --source-root ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hf_unlearn.data import SAMPLES_DIR, load_source

SIZES = {  # task -> split -> rows per class
    "cifar10": {"train": 500, "test": 100},
    "imdb": {"train": 500, "test": 250},
}
SEED = 0


def balanced_rows(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def build(task: str, source: str, out_dir: Path) -> list[Path]:
    ds = load_source(task, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split, per_class in SIZES[task].items():
        labels = np.asarray(ds[split]["label"])
        part = ds[split].select(balanced_rows(labels, per_class, SEED))
        path = out_dir / f"{split}.parquet"
        part.to_parquet(str(path))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-root", default="../shared/data", help="folder with cifar10/ and imdb/ parquet copies")
    parser.add_argument("--out", default=str(SAMPLES_DIR), help="where the samples go (default: inside the package)")
    args = parser.parse_args()
    for task in SIZES:
        for path in build(task, str(Path(args.source_root) / task), Path(args.out) / task):
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
