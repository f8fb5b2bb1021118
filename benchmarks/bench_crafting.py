"""Crafting cost of the CIFAR-10 targeted and indiscriminate poisons, in training epochs, to plan GPU time.

Both attacks differentiate through a parameter gradient (a double backward per poison and step), so their
cost is best stated against what users already know: one training epoch of the same network on the same device.
Measured in one run on the same model width:

- one training epoch (a plain SGD loop, batch 128, no augmentation): seconds per image;
- gradient matching (``hf_unlearn.attacks.targeted.craft``, one restart, augmentation on): seconds per poison
  per step;
- gradient canceling (``hf_unlearn.attacks.indiscriminate.craft``): seconds per poison per epoch (one Adam step
  on the whole poison set), the clean gradient (computed once) excluded by differencing two runs.

and extrapolated to the paper's settings (750 poisons, 50,000 training images; 8 restarts x 240 steps; 1,000
canceling epochs) as a number of training epochs. The ratios, not the seconds, carry over to a GPU (roughly:
double backward is less efficient than a plain step on most accelerators, so read them as lower bounds).

    python benchmarks/bench_crafting.py [--width 16] [--poisons 32] [--rows 1024] [--steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from _timing import environment
from hf_unlearn.attacks import indiscriminate, targeted
from hf_unlearn.models.resnet import ResNet18

PAPER = {"train_rows": 50_000, "poisons": 750, "gm_restarts": 8, "gm_steps": 240, "gc_epochs": 1000}


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--poisons", type=int, default=32)
    p.add_argument("--rows", type=int, default=1024, help="images in the timed training epoch")
    p.add_argument("--steps", type=int, default=3, help="crafting steps timed per attack")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    n, k = args.rows, args.poisons
    x = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    def epoch() -> None:  # one plain SGD epoch, batch 128: what "a training epoch" costs on this device
        torch.manual_seed(0)
        net = ResNet18(width=args.width).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        for i in range(0, n, 128):
            loss = F.cross_entropy(net(x[i:i + 128].float() / 255), y[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()

    epoch()  # warm-up (allocator, kernels)
    t_epoch = _seconds(epoch)
    per_image = t_epoch / n

    torch.manual_seed(0)
    model = ResNet18(width=args.width).eval()
    base = x[:k].float() / 255
    gm = replace(targeted.RECIPES["paper"], restarts=1, steps=args.steps, batch_size=k)
    t_gm = _seconds(lambda: targeted.craft(model, base, y[:k], x[k:k + 1].float() / 255, torch.tensor([1]),
                                           16 / 255, gm, seed=0, progress=False))
    gm_step = t_gm / (k * args.steps)

    clean_x, clean_y = x[k:k + 256], y[k:k + 256]
    gc_one = replace(indiscriminate.RECIPES["paper"], gc_epochs=1, chunk_size=128)
    gc_more = replace(gc_one, gc_epochs=1 + args.steps)
    t1 = _seconds(lambda: indiscriminate.craft(model, clean_x, clean_y, x[:k], y[:k], gc_one, seed=0, progress=False))
    t2 = _seconds(lambda: indiscriminate.craft(model, clean_x, clean_y, x[:k], y[:k], gc_more, seed=0, progress=False))
    gc_epoch = max(t2 - t1, 1e-9) / (k * args.steps)

    epoch_paper = per_image * PAPER["train_rows"]
    gm_paper = gm_step * PAPER["poisons"] * PAPER["gm_steps"] * PAPER["gm_restarts"]
    gc_paper = gc_epoch * PAPER["poisons"] * PAPER["gc_epochs"]
    print(f"crafting benchmark: ResNet-18 width {args.width}, {k} poisons, {args.steps} steps; {environment()}")
    print(f"  training epoch     : {per_image * 1e3:8.3f} ms per image ({n} images in {t_epoch:.2f} s)")
    print(f"  gradient matching  : {gm_step * 1e3:8.3f} ms per poison per step "
          f"= {gm_step / per_image:.1f} training images")
    print(f"  gradient canceling : {gc_epoch * 1e3:8.3f} ms per poison per epoch "
          f"= {gc_epoch / per_image:.1f} training images")
    print(f"  paper targeted  (8 restarts x 240 steps x 750 poisons): {gm_paper / epoch_paper:8.1f} "
          "training epochs of 50,000 images")
    print(f"  paper indiscriminate (1,000 epochs x 750 poisons)     : {gc_paper / epoch_paper:8.1f} "
          "training epochs of 50,000 images (+ GradPC, about one epoch of ascent)")


if __name__ == "__main__":
    main()
