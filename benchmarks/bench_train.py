"""Training-loop overhead: ``hf_unlearn.train.train`` against a bare PyTorch loop, same model and data.

Both arms train the same ResNet-18 for the same epochs with SGD on the same
in-memory tensors; the project's arm also runs Accelerate, the compute meter,
noise injection and per-epoch ``save_state`` (the bare loop does none of that).
Target: the project within 10% of the bare loop's time.

    python benchmarks/bench_train.py [--rows 512] [--epochs 2] [--width 16]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
import torch.nn.functional as F

from _timing import environment, interleaved
from hf_unlearn.models.resnet import ResNet18
from hf_unlearn.train import RunOptions, TrainConfig, train
from hf_unlearn.variant import ImageSplit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    gen = torch.Generator().manual_seed(0)
    n = args.rows
    x = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    poisons = n // 20
    slots = torch.full((n,), -1)
    slots[:poisons] = torch.arange(poisons)
    split = ImageSplit(x, y, torch.arange(n), torch.randn(poisons, 3, 32, 32, generator=gen) * 0.1, slots)
    cfg = TrainConfig(epochs=args.epochs, width=args.width, batch_size=128)

    def project():
        with tempfile.TemporaryDirectory() as tmp:
            train(split, None, cfg, RunOptions(output_dir=tmp, cpu=True, progress=False))

    def bare():
        torch.manual_seed(0)
        model = ResNet18(width=args.width)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
        xf = split.inputs(torch.arange(n))
        for _ in range(args.epochs):
            perm = torch.randperm(n)
            for i in range(0, n, cfg.batch_size):
                rows = perm[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(xf[rows]), y[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()

    t = interleaved({"project": project, "bare": bare}, repeats=args.repeats)
    print(f"training benchmark: {n} rows x {args.epochs} epochs, ResNet-18 width {args.width}; {environment()}")
    for k, v in t.items():
        print(f"  {k:>7}: {v:6.2f} s ({n * args.epochs / v:.0f} images/s)")
    print(f"  project / bare time = {t['project'] / t['bare']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
