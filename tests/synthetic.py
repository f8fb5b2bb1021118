"""Synthetic image splits for unlearning tests (not a test module: pytest does not collect it).

Random pixels and labels from a seeded generator, optionally with Gaussian noise on every row (a forget set), so
tests of the methods' mechanics need no dataset on disk; the 2-process test's worker imports it too.
"""

from __future__ import annotations

import torch

from hf_unlearn.variant import ImageSplit


def make_split(n: int, *, poisoned: bool, seed: int, hw: int = 16) -> ImageSplit:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, hw, hw), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    noise = 0.1 * torch.randn(n if poisoned else 0, 3, hw, hw, generator=g)
    slot = torch.arange(n) if poisoned else torch.full((n,), -1)
    return ImageSplit(x, y, torch.arange(n) + (10_000 if poisoned else 0), noise, slot)
