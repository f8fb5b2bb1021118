"""Gaussian poisons (the paper's Section 4.3): i.i.d. noise added to a seeded subset of inputs.

Everything here is a pure function of (seed, source row index), so a variant can
be rebuilt bit for bit from its card and a scorer can regenerate null noise
without storing it. Noise is never clipped or quantised: the model trains on
exactly ``x + xi`` and the stored ``noise`` column is exactly ``xi`` (float32).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

# Distinct first words of the seed sequence keep the streams apart: poison noise,
# null noise and the training-subset choice never share random numbers.
_POISON_STREAM = 0x90150
_NULL_STREAM = 0x4E011
_ROWS_STREAM = 0x20115
_SUBSET_STREAM = 0x5B5E7

_NAME_RE = re.compile(r"^eps(?P<eps>[0-9.e-]+)-b(?P<budget>[0-9.]+)-s(?P<seed>\d+)(?:-n(?P<n>\d+))?$")


@dataclass(frozen=True)
class GaussianPoisonConfig:
    """One variant: noise scale, poison budget, seed, and optionally a training subset.

    ``eps`` is the per-coordinate standard deviation in pixel units ([0, 1] images),
    ``budget`` the poisoned share of the training rows in percent (the paper uses
    1.5, 2 and 2.5), ``max_train_rows`` an optional seed-independent subset of the
    source's train split for CPU-sized runs.
    """

    eps: float = 0.1
    budget: float = 1.5
    seed: int = 0
    max_train_rows: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps={self.eps!r}: the noise scale must be a finite number > 0")
        if not (0 < self.budget <= 100):
            raise ValueError(f"budget={self.budget!r}: the poison budget is a percentage in (0, 100]")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: seeds are non-negative integers")
        if self.max_train_rows is not None and self.max_train_rows <= 0:
            raise ValueError(f"max_train_rows={self.max_train_rows!r}: must be a positive integer or None")

    @property
    def name(self) -> str:
        base = f"eps{self.eps:g}-b{self.budget:g}-s{self.seed}"
        return base + (f"-n{self.max_train_rows}" if self.max_train_rows else "")

    @classmethod
    def from_name(cls, name: str) -> "GaussianPoisonConfig":
        m = _NAME_RE.match(name)
        if not m:
            raise ValueError(
                f"config name {name!r} is not a Gaussian variant name; expected e.g. 'eps0.1-b1.5-s0' "
                "or 'eps0.15-b5-s0-n1000' (noise scale, budget in percent, seed, optional train rows)"
            )
        n = m.group("n")
        return cls(float(m.group("eps")), float(m.group("budget")), int(m.group("seed")), int(n) if n else None)


def num_poisons(num_rows: int, budget: float) -> int:
    """n = round(budget * N), at least one poison."""
    return max(1, int(round(budget / 100.0 * num_rows)))


def train_subset(num_rows: int, max_rows: int | None) -> np.ndarray:
    """The source rows a variant trains on: all of them, or a fixed seed-independent subset.

    Independent of the poison seed so that variants differing only in seed share
    the same clean data and their models are comparable.
    """
    if max_rows is None or max_rows >= num_rows:
        return np.arange(num_rows, dtype=np.int64)
    rng = np.random.default_rng([_SUBSET_STREAM, max_rows])
    return np.sort(rng.choice(num_rows, size=max_rows, replace=False)).astype(np.int64)


def choose_poison_rows(candidates: np.ndarray, budget: float, seed: int) -> np.ndarray:
    """Uniformly choose round(budget% * N) of ``candidates`` without replacement (sorted)."""
    n = num_poisons(len(candidates), budget)
    rng = np.random.default_rng([_ROWS_STREAM, seed])
    return np.sort(rng.choice(np.asarray(candidates, dtype=np.int64), size=n, replace=False))


def poison_noise(seed: int, index: int, dim: int, eps: float) -> np.ndarray:
    """xi ~ N(0, eps^2 I_d) for source row ``index``: float32, reproducible from (seed, index)."""
    rng = np.random.default_rng([_POISON_STREAM, seed, int(index)])
    return rng.standard_normal(dim, dtype=np.float32) * np.float32(eps)


def null_noise(seed: int, index: int, draws: int, dim: int):
    """Fresh standard-normal noise (draws, dim), a float32 torch tensor, for the null scores of row ``index``.

    Unit scale: the score divides by eps, so a unit draw gives the same null score.
    Drawn with torch's CPU generator (about 3x numpy's speed here, and scoring draws
    P x draws x d numbers), seeded from a SeedSequence of (stream, seed, index) so the
    null streams never overlap the stored poison noise.
    """
    import torch

    key = int(np.random.SeedSequence([_NULL_STREAM, seed, int(index)]).generate_state(1, np.uint64)[0] >> 1)
    return torch.randn((draws, dim), generator=torch.Generator().manual_seed(key))
