"""Probe the gradient-canceling attack's regime before paying for a build and a victim (issue 10).

For each GradPC radius, move a clean checkpoint to its target, report the target's accuracy and the clean
gradient's norm there (what the poisons must cancel), then run gradient canceling for a few epochs and report
how far the canceling loss falls. A target whose loss barely moves cannot become a stationary point of the
poisoned training loss, so a victim trained on those poisons will not be pulled towards it.

    python scripts/probe_canceling.py --checkpoint CLEAN_MODEL --source ../shared/data/cifar10 \
        --max-train-rows 20000 --radius 0.1 0.25 0.5 --gc-epochs 150 --label-smoothing 0.1 --out probe.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="clean ResNet-18 folder (hf-unlearn train --retrain)")
    parser.add_argument("--source", required=True, help="clean CIFAR-10 (folder/parquet)")
    parser.add_argument("--max-train-rows", type=int, default=20000)
    parser.add_argument("--radius", type=float, nargs="+", default=[0.5])
    parser.add_argument("--budget", type=float, default=1.5)
    parser.add_argument("--recipe", default="cpu", help="base recipe (GradPC steps, chunk size)")
    parser.add_argument("--gc-epochs", type=int, default=150)
    parser.add_argument("--gc-lr", type=float, default=0.1)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--labels", choices=("keep", "oppose"), default="keep",
                        help="poison labels: the initial images' own (the builders' choice) or, per poison, the class "
                             "whose gradient opposes the clean gradient most (attacks.indiscriminate.opposing_labels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from dataset_builders._cifar10 import decoded_test, decoded_train
    from hf_unlearn.attacks.indiscriminate import (choose_init_rows, clean_gradient, craft, get_recipe, gradpc,
                                                   mean_loss_accuracy, opposing_labels, parameter_distance)
    from hf_unlearn.data import load_source
    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.poisons.gaussian import num_poisons

    source = load_source("cifar10", args.source)
    rows, x, y = decoded_train(source, args.max_train_rows)
    tx, ty = decoded_test(source)
    xt, yt, txt, tyt = (torch.from_numpy(a) for a in (x, y, tx, ty))
    clean = ResNet18.from_pretrained(args.checkpoint).eval()
    init = choose_init_rows(len(rows), num_poisons(len(rows), args.budget), args.seed)
    base = get_recipe(args.recipe)
    results = []
    for radius in args.radius:
        recipe = replace(base, gradpc_radius=radius, gc_epochs=args.gc_epochs, gc_lr=args.gc_lr)
        start = time.perf_counter()
        target = gradpc(clean, xt, yt, radius, recipe.gradpc_steps, recipe.gradpc_lr, args.seed, progress=True,
                        batch_size=recipe.gradpc_batch_size, label_smoothing=args.label_smoothing)
        train_loss, train_acc = mean_loss_accuracy(target, xt, yt)
        _, test_acc = mean_loss_accuracy(target, txt, tyt)
        labels, grad = yt[init], None
        if args.labels == "oppose":
            grad = clean_gradient(target, xt, yt, recipe.chunk_size, label_smoothing=args.label_smoothing)
            labels = opposing_labels(target, grad, xt[init], recipe.chunk_size, args.label_smoothing)
        _, info = craft(target, xt, yt, xt[init], labels, recipe, args.seed, progress=True,
                        label_smoothing=args.label_smoothing, clean_grad=grad)
        history = info.pop("loss_history")
        row = {"radius": radius, "distance": parameter_distance(clean, target), "target_train_loss": train_loss,
               "target_train_acc": train_acc, "target_test_acc": test_acc, **info,
               "labels": args.labels, "labels_changed": float((labels != yt[init]).float().mean()),
               "cancelled": 1 - math.sqrt(2 * info["final_loss_quantised"]) / (info["clean_grad_norm"] * len(xt)
                                                                                 / (len(xt) + len(init))),
               "loss_every_10": history[::10], "relative_drop": 1 - info["final_loss"] / info["initial_loss"],
               "seconds": time.perf_counter() - start, "recipe": asdict(recipe)}
        results.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("loss_every_10", "recipe")}), flush=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    _, clean_acc = mean_loss_accuracy(clean, txt, tyt)
    Path(args.out).write_text(json.dumps({"args": vars(args), "clean_test_acc": clean_acc, "results": results},
                                         indent=1))
    print(f"clean test acc {clean_acc:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
