"""Gradient canceling against a *convex* victim: does near-perfect canceling pull training to the target? (issue 10)

The ResNet probes (``scripts/probe_canceling.py``) found that the poisons cannot cancel enough of the clean
gradient at a GradPC target. This probe removes both excuses that a deep victim leaves open (too little capacity,
a non-convex landscape that training may not follow): the victim is L2-regularised softmax regression on
CIFAR-10 pixels, trained towards its unique optimum with full-batch L-BFGS, and the canceling objective includes the
weight-decay term, so that an exact cancellation makes the target *the* optimum of the poisoned training loss.
Each run reports how far the canceling loss falls, where the victim trained on clean + poisons lands (its distance
to the target and to the clean model) and its test accuracy against the clean model's, with a paired interval.

For a mu-strongly convex loss (mu = the weight decay) a point whose gradient has norm g lies within g / mu of the
optimum: a residual well below ``mu * radius`` guarantees the victim lands within the radius of the target. The
output's ``residual_bound`` is that g / mu; ``victim_gradient_norm / mu`` likewise bounds the victim's own
optimisation error.

    python scripts/probe_convex_canceling.py --source ../shared/data/cifar10 --max-train-rows 20000 \
        --radius 0.05 --budget 10 --weight-decay 0.01 --gc-epochs 1000 --out probe.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class SoftmaxRegression(nn.Module):
    """A linear classifier on normalised pixels: convex in its parameters, so training has one optimum."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        from hf_unlearn.models.resnet import CIFAR10_MEAN, CIFAR10_STD

        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1), persistent=False)
        self.linear = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(((x - self.mean) / self.std).flatten(1))


def fit(x: torch.Tensor, y: torch.Tensor, weight_decay: float, iters: int,
        init_seed: int | None = None) -> tuple[SoftmaxRegression, float]:
    """The regularised optimum (L-BFGS, strong Wolfe) from zero, or from a seeded random start; returns the model
    and its final gradient norm g, which places it within g / weight_decay of the optimum."""
    model = SoftmaxRegression()
    gen = None if init_seed is None else torch.Generator().manual_seed(init_seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.zeros_like(p) if gen is None else 0.01 * torch.randn(p.shape, generator=gen))
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=iters, history_size=20, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y) + 0.5 * weight_decay * sum(p.pow(2).sum() for p in model.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))
    return model.eval(), norm


def regularised_clean_gradient(target: nn.Module, x: torch.Tensor, y: torch.Tensor, weight_decay: float,
                               n_total: int, chunk_size: int = 2000) -> list[torch.Tensor]:
    """The clean mean gradient with the victim's weight decay folded in, for ``craft(..., clean_grad=...)``.

    Why: the victim minimises mean loss over all ``n_total`` rows plus ``0.5 * wd * ||theta||^2``; canceling
    computes ``(n_c * g + sum_i g_i) / n_total``, so adding ``wd * theta * n_total / n_c`` to ``g`` makes that
    the victim's full gradient, whose zero is the victim's unique optimum.
    """
    from hf_unlearn.attacks.indiscriminate import clean_gradient

    params = [p for p in target.parameters() if p.requires_grad]  # the ones clean_gradient returns, in order
    return [g + weight_decay * p.detach() * n_total / len(x)
            for g, p in zip(clean_gradient(target, x, y, chunk_size), params)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="clean CIFAR-10 (folder/parquet)")
    parser.add_argument("--max-train-rows", type=int, default=20000)
    parser.add_argument("--radius", type=float, nargs="+", default=[0.05])
    parser.add_argument("--budget", type=float, nargs="+", default=[10.0], help="poisons, %% of the clean rows")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--gc-epochs", type=int, default=1000)
    parser.add_argument("--lbfgs-iters", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from dataset_builders._cifar10 import decoded_test, decoded_train
    from hf_unlearn.attacks.indiscriminate import (choose_init_rows, craft, get_recipe, gradpc, mean_loss_accuracy,
                                                   parameter_distance, quantise)
    from hf_unlearn.data import load_source
    from hf_unlearn.poisons.gaussian import num_poisons
    from hf_unlearn.stats import paired_accuracy_difference

    source = load_source("cifar10", args.source)
    _, x, y = decoded_train(source, args.max_train_rows)
    tx, ty = decoded_test(source)
    x, y, tx, ty = (torch.from_numpy(a) for a in (x, y, tx, ty))
    xf, txf = x.float() / 255, tx.float() / 255
    start = time.perf_counter()
    clean, clean_grad_norm = fit(xf, y, args.weight_decay, args.lbfgs_iters)
    print(f"clean optimum: gradient norm {clean_grad_norm:.2e}, {time.perf_counter() - start:.0f} s", flush=True)
    with torch.no_grad():
        clean_correct = (clean(txf).argmax(1) == ty).numpy()
    results = []
    for radius in args.radius:
        recipe = replace(get_recipe("cpu"), gradpc_radius=radius, gc_epochs=args.gc_epochs, chunk_size=2000)
        target = gradpc(clean, x, y, radius, recipe.gradpc_steps, recipe.gradpc_lr, args.seed, progress=False)
        _, target_acc = mean_loss_accuracy(target, tx, ty)
        for budget in args.budget:
            start = time.perf_counter()
            rows = torch.from_numpy(choose_init_rows(len(x), num_poisons(len(x), budget), args.seed))
            n_total = len(x) + len(rows)
            grad = regularised_clean_gradient(target, x, y, args.weight_decay, n_total, recipe.chunk_size)
            poisons, info = craft(target, x, y, x[rows], y[rows], recipe, args.seed, progress=True, clean_grad=grad)
            stored = quantise(poisons).float() / 255
            victim, victim_grad_norm = fit(torch.cat([xf, stored]), torch.cat([y, y[rows]]), args.weight_decay,
                                           args.lbfgs_iters)
            with torch.no_grad():
                victim_correct = (victim(txf).argmax(1) == ty).numpy()
            diff, low, high = paired_accuracy_difference(victim_correct, clean_correct)
            residual = math.sqrt(2 * info["final_loss_quantised"])
            row = {"radius": radius, "budget": budget, "num_poisons": len(rows), "weight_decay": args.weight_decay,
                   "gc_epochs": args.gc_epochs, "clean_test_acc": float(clean_correct.mean()),
                   "target_test_acc": target_acc, "victim_test_acc": float(victim_correct.mean()),
                   "drop": -diff, "drop_ci95": [-high, -low],
                   "canceling_loss_start": info["initial_loss"], "canceling_loss_end": info["final_loss_quantised"],
                   "residual_gradient_norm": residual, "residual_bound": residual / args.weight_decay,
                   "victim_to_target": parameter_distance(victim, target),
                   "victim_to_clean": parameter_distance(victim, clean), "victim_gradient_norm": victim_grad_norm,
                   "seconds": round(time.perf_counter() - start, 1)}
            print(json.dumps(row), flush=True)
            results.append(row)
    Path(args.out).write_text(json.dumps({"args": vars(args), "clean_gradient_norm": clean_grad_norm,
                                          "results": results}, indent=2))


if __name__ == "__main__":
    main()
