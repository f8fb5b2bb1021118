"""Scoring throughput: the project's Gaussian scoring against three baselines, as ratios from one run.

(a) bare: batched ``torch.autograd.grad`` w.r.t. the inputs with the parameters frozen, on the same device and
    batch size, the unavoidable work of the gradients (target: the project reaches >= 0.8x its throughput);
(b) bare+nulls: (a) plus the poison scores and the same seeded null draws in a plain one-thread loop, i.e. all
    the work the project does. On a GPU the null draws run on the CPU by design (``scoring.null_scores``: a GPU
    run reproduces a CPU run), so (a) alone is not the same work there and (b) is the fair reference;
(c) naive: a per-example loop calling ``loss.backward()`` with the parameters trainable, then the scores, as
    straightforward code would do it (target: the project is >= 10x faster; a 2-core CPU cannot show it, since
    a batch there costs about as much per row as one example).

    python benchmarks/bench_scoring.py [--poisons 256] [--null-draws 20] [--width 16] [--device cuda] [--json out.jsonl]

On a GPU, the paper's setting: ``--device cuda --poisons 750 --null-draws 20 --width 64``. Every run prints one
JSON line (and appends it to ``--json``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from _timing import environment, interleaved, sync
from hf_unlearn.models.resnet import ResNet18
from hf_unlearn.poisons.gaussian import null_noise
from hf_unlearn.scoring import gaussian_scores
from hf_unlearn.variant import ImageSplit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--poisons", type=int, default=256)
    p.add_argument("--null-draws", type=int, default=20)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256, help="rows per gradient batch (the project's default)")
    p.add_argument("--naive-rows", type=int, default=32, help="rows the naive loop times (it is slow)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, metavar="PATH", help="also append the result line to this JSONL file")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible; use --device cpu")

    torch.manual_seed(0)
    model = ResNet18(width=args.width).eval().to(device)
    n, eps, draws = args.poisons, 0.1, args.null_draws
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    noise = torch.randn(n, 3, 32, 32, generator=gen) * eps
    split = ImageSplit(x, y, torch.arange(n), noise, torch.arange(n))
    xf, yd = (x.float() / 255).to(device), y.to(device)
    flat_noise = noise.reshape(n, -1)

    def project():
        return gaussian_scores(model, split, eps, null_draws=draws, seed=0, batch_size=args.batch_size)

    def bare_gradients() -> torch.Tensor:
        model.requires_grad_(False)
        out = []
        for i in range(0, n, args.batch_size):
            xb = xf[i : i + args.batch_size].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xb), yd[i : i + args.batch_size], reduction="sum"), xb)
            out.append(g.reshape(len(xb), -1))
        model.requires_grad_(True)
        g = torch.cat(out).cpu()  # the scores are computed on the host, as the project's are
        sync(args.device)
        return g

    def bare_nulls():
        g = bare_gradients()
        norms = g.norm(dim=1)
        scores = -(g * flat_noise).sum(1) / (eps * norms)
        unit = g / norms[:, None]
        nulls = torch.stack([-(null_noise(0, i, draws, g.shape[1]) @ unit[i]) for i in range(n)])
        return scores, nulls

    def naive(rows: int = args.naive_rows):
        model.requires_grad_(True)
        out = []
        for i in range(rows):
            xi = xf[i : i + 1].clone().requires_grad_(True)
            model.zero_grad()
            F.cross_entropy(model(xi), yd[i : i + 1]).backward()
            g = xi.grad.flatten().cpu()
            s = -(g @ flat_noise[i]) / (eps * g.norm())
            nulls = [-(g @ v) / g.norm() for v in null_noise(0, i, draws, g.numel())]
            out.append((float(s), [float(v) for v in nulls]))
        return out

    arms = {"project": project, "bare": bare_gradients, "bare+nulls": bare_nulls, "naive": naive}
    t = interleaved(arms, repeats=args.repeats)
    rate = {k: (args.naive_rows if k == "naive" else n) / v for k, v in t.items()}
    print(f"scoring benchmark: {n} poisons x {draws} null draws, ResNet-18 width {args.width}, batch "
          f"{args.batch_size}, {args.device}; {environment()}")
    for k, v in rate.items():
        print(f"  {k:>10}: {v:8.1f} poisons/s")
    ratios = {k: rate["project"] / rate[k] for k in ("bare", "bare+nulls", "naive")}
    print(f"  project / bare throughput       = {ratios['bare']:.2f}x (target >= 0.8x)")
    print(f"  project / bare+nulls throughput = {ratios['bare+nulls']:.2f}x (target >= 0.8x; the same work)")
    print(f"  project / naive throughput      = {ratios['naive']:.1f}x (target >= 10x)")
    line = {"benchmark": "scoring", "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "poisons": n, "null_draws": draws, "width": args.width, "batch_size": args.batch_size,
            "naive_rows": args.naive_rows, "seconds": t, "poisons_per_s": rate,
            "project_over": {k: float(np.round(v, 4)) for k, v in ratios.items()}, "environment": environment()}
    print(json.dumps(line))
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
