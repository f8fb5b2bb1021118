"""Sweep for a CPU regime whose model is not degenerate (issue 8, item 5; docs/fidelity.md).

Each cell builds a Gaussian variant of real CIFAR-10 (a training subset, the full
10,000-image test set), trains the poisoned model with the project's own
``pipeline.train_model`` and scores it with ``pipeline.score_to_record`` (the path
``hf-unlearn demo`` takes), then appends one JSON line: test accuracy, retain
loss and accuracy in eval mode, GUS with its standard error and z = GUS / s.e.,
TPR@1% / 0.1%, AUC, training wall seconds, process CPU seconds (``cpu_s``: on a
shared machine the honest cost; with one thread it is the wall time a quiet core
would take) and images per second. ``--retrain`` also
trains and scores the model without the poisons (the Retrain reference).

A cell lists what differs from the defaults (``DEFAULTS`` below), e.g.

    python scripts/sweep_fidelity.py --source ../shared/data/cifar10 \\
        --cells "n=10000,epochs=20,augment=flip" --out docs/calibration/fidelity.jsonl

    python scripts/sweep_fidelity.py --throughput      # images/s per width, to plan a sweep

Keys: n (training rows), eps, b (poison budget, percent), epochs, width, augment
(none / flip / flip-crop), pad (crop padding), ls (label smoothing), lr, wd, bs,
seed. Cells run one after another; ``--threads`` sets torch's thread count, so two
sweeps with ``--threads 1`` can share a 2-core machine. Variants are cached under
``--workdir`` (one build per (n, eps, b, seed)).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

DEFAULTS: dict[str, float | int | str] = {
    "n": 10000, "eps": 0.15, "b": 2.0, "epochs": 20, "width": 16, "augment": "flip", "pad": 4,
    "ls": 0.1, "lr": 0.2, "wd": 5e-4, "bs": 256, "seed": 0,
}


def parse_cell(spec: str) -> dict:
    """``"n=20000,augment=none"`` -> DEFAULTS with those keys replaced (types follow DEFAULTS)."""
    cell = dict(DEFAULTS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise ValueError(f"cell part {part!r} must look like key=value; keys: {sorted(DEFAULTS)}")
        k, v = part.split("=", 1)
        if k not in DEFAULTS:
            raise ValueError(f"unknown cell key {k!r}; keys: {sorted(DEFAULTS)}")
        kind = type(DEFAULTS[k])
        cell[k] = v if kind is str else kind(float(v)) if kind is int else float(v)
    return cell


@torch.no_grad()
def eval_loss(model: torch.nn.Module, split, rows: int = 5000, batch_size: int = 500) -> float:
    """Mean cross-entropy (no smoothing) of the model in eval mode on the first ``rows`` clean rows."""
    model.eval()
    n = min(rows, len(split))
    total = 0.0
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        total += F.cross_entropy(model(split.inputs(idx, noisy=False)), split.y[idx], reduction="sum").item()
    return total / max(1, n)


def run_cell(spec: str, source: str, workdir: Path, null_draws: int, roles: tuple[str, ...]) -> list[dict]:
    from hf_unlearn.pipeline import DATASET_REPO, build_dataset, load_splits, score_to_record, train_model
    from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
    from hf_unlearn.train import RunOptions, TrainConfig

    cell = parse_cell(spec)
    poison = GaussianPoisonConfig(cell["eps"], cell["b"], int(cell["seed"]), int(cell["n"]))
    folder = workdir / DATASET_REPO
    t0 = time.perf_counter()
    if not (folder / "data" / poison.name).exists():
        build_dataset(source, poison, folder)
    splits = load_splits(folder, poison.name)
    prep_s = time.perf_counter() - t0
    ref = {"id": str(folder), "config": poison.name, "revision": None}
    tc = TrainConfig(epochs=int(cell["epochs"]), batch_size=int(cell["bs"]), lr=cell["lr"], weight_decay=cell["wd"],
                     label_smoothing=cell["ls"], augment=str(cell["augment"]), crop_pad=int(cell["pad"]),
                     width=int(cell["width"]), seed=int(cell["seed"]))
    tag = "_".join(f"{k}{v}" for k, v in sorted(cell.items()))
    rows = []
    for role in roles:
        t1, c1 = time.perf_counter(), time.process_time()

        def log(epoch: int, info: dict) -> None:
            print(f"  {role} epoch {epoch + 1}/{tc.epochs} loss {info['loss']:.3f} "
                  f"wall {time.perf_counter() - t1:.0f}s cpu {time.process_time() - c1:.0f}s", flush=True)

        res = train_model(splits, ref, tc, workdir / "models" / tag / role, role=role,
                          options=RunOptions(cpu=True, progress=False, checkpointing=False), on_epoch_end=log)
        train_s, cpu_s = time.perf_counter() - t1, time.process_time() - c1
        record, _ = score_to_record(res.model, splits, dataset_ref=ref, model_ref={"id": tag, "revision": None},
                                    method="none" if role == "poisoned" else "retrain", null_draws=null_draws,
                                    seed=int(cell["seed"]), test_accuracy=res.test_accuracy,
                                    compute_used=res.training_cost)
        m = record.metrics
        retain = splits["train"].subset(~splits["train"].is_poison)
        seen = (len(splits["train"]) if role == "poisoned" else len(retain)) * int(cell["epochs"])
        row = {
            "cell": spec, "role": role, **cell, "poisons": m["num_poisons"], "nulls": m["num_nulls"],
            "test_acc": round(m["test_accuracy"], 4), "retain_acc": round(m["retain_accuracy"], 4),
            "forget_acc": round(m["forget_accuracy"], 4), "retain_loss": round(eval_loss(res.model, retain), 4),
            "final_train_loss": round(res.summary.get("final_train_loss", math.nan), 4),
            "gus": round(m["gus"], 3), "se": round(m["gus_stderr"], 3), "z": round(m["gus"] / m["gus_stderr"], 1),
            "tpr1": m["tpr_at_fpr_0.01"], "tpr01": m["tpr_at_fpr_0.001"], "auc": round(m["auc"], 3),
            "train_s": round(res.wall_seconds), "cpu_s": round(cpu_s), "img_per_s": round(seen / max(res.wall_seconds, 1e-9)),
            "cell_s": round(train_s + (prep_s if role == "poisoned" else 0)), "prep_s": round(prep_s),
            "threads": torch.get_num_threads(),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def throughput(widths: list[int], batches: list[int], steps: int = 3) -> list[dict]:
    """Training images/s (forward + backward + SGD step on random inputs) per (width, batch),
    and eval images/s: what plans the sweep (docs/calibration/throughput.jsonl)."""
    from hf_unlearn.models.resnet import ResNet18

    rows = []
    for width in widths:
        for bs in batches:
            model = ResNet18(width=width)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            x, y = torch.rand(bs, 3, 32, 32), torch.randint(0, 10, (bs,))
            for i in range(steps + 1):  # the first step warms up and is not timed
                if i == 1:
                    t0 = time.perf_counter()
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            train_rate = bs * steps / (time.perf_counter() - t0)
            model.eval()
            with torch.no_grad():
                model(x)
                t0 = time.perf_counter()
                model(x)
                eval_rate = bs / (time.perf_counter() - t0)
            row = {"width": width, "batch": bs, "threads": torch.get_num_threads(),
                   "train_img_s": round(train_rate, 1), "eval_img_s": round(eval_rate, 1)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=[""], help="cells, each key=value[,key=value...] (default: DEFAULTS)")
    p.add_argument("--source", default="uoft-cs/cifar10", help="CIFAR-10 source: Hub id or local parquet folder")
    p.add_argument("--workdir", default="runs/sweep_fidelity", help="variants and models (reused across cells)")
    p.add_argument("--out", default="docs/calibration/fidelity.jsonl", help="JSONL file the rows are appended to")
    p.add_argument("--null-draws", type=int, default=40)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--retrain", action="store_true", help="also train and score without the poisons")
    p.add_argument("--retrain-only", action="store_true", help="train and score only the model without the poisons")
    p.add_argument("--throughput", action="store_true",
                   help="only measure training images/s for widths 16/32/64 at batch 256/512 and exit")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.throughput:
        throughput([16, 32, 64], [256, 512])
        return
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for spec in a.cells:
        roles = ("retrain",) if a.retrain_only else ("poisoned", "retrain") if a.retrain else ("poisoned",)
        for row in run_cell(spec, a.source, Path(a.workdir), a.null_draws, roles):
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
