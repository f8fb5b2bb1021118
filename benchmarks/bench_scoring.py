"""Scoring throughput: the project's Gaussian scoring against two baselines, as ratios from one run.

(a) bare: one batched ``torch.autograd.grad`` w.r.t. the inputs with the parameters frozen,
    the unavoidable work (target: the project reaches >= 0.8x its throughput);
(b) naive: a per-example loop calling ``loss.backward()`` with the parameters trainable,
    then the scores, as straightforward code would do it (target: the project is >= 10x faster).

    python benchmarks/bench_scoring.py [--poisons 256] [--null-draws 20] [--width 16]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from _timing import environment, interleaved
from hf_unlearn.models.resnet import ResNet18
from hf_unlearn.poisons.gaussian import null_noise
from hf_unlearn.scoring import gaussian_scores
from hf_unlearn.variant import ImageSplit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--poisons", type=int, default=256)
    p.add_argument("--null-draws", type=int, default=20)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--naive-rows", type=int, default=32, help="rows the naive loop times (it is slow)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    torch.manual_seed(0)
    model = ResNet18(width=args.width).eval()
    n, eps = args.poisons, 0.1
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    noise = torch.randn(n, 3, 32, 32, generator=gen) * eps
    split = ImageSplit(x, y, torch.arange(n), noise, torch.arange(n))
    xf = x.float() / 255

    def project():
        return gaussian_scores(model, split, eps, null_draws=args.null_draws, seed=0)

    def bare():
        model.requires_grad_(False)
        xb = xf.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xb), y, reduction="sum"), xb)
        model.requires_grad_(True)
        return g

    def naive(rows: int = args.naive_rows):
        model.requires_grad_(True)
        out = []
        for i in range(rows):
            xi = xf[i : i + 1].clone().requires_grad_(True)
            model.zero_grad()
            F.cross_entropy(model(xi), y[i : i + 1]).backward()
            g = xi.grad.flatten()
            s = -(g @ noise[i].flatten()) / (eps * g.norm())
            nulls = [-(g @ v) / g.norm() for v in null_noise(0, i, args.null_draws, g.numel())]
            out.append((s, nulls))
        return out

    t = interleaved({"project": project, "bare": bare, "naive": naive}, repeats=args.repeats)
    per_row = {"project": t["project"] / n, "bare": t["bare"] / n, "naive": t["naive"] / args.naive_rows}
    print(f"scoring benchmark: {n} poisons x {args.null_draws} null draws, ResNet-18 width {args.width}; {environment()}")
    for k, v in per_row.items():
        print(f"  {k:>7}: {1 / v:8.1f} poisons/s")
    print(f"  project / bare throughput  = {per_row['bare'] / per_row['project']:.2f}x (target >= 0.8x)")
    print(f"  project / naive throughput = {per_row['naive'] / per_row['project']:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
