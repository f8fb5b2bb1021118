"""The summary ``scripts/gpu_check.sh`` prints: one row per model, the measured training speed, the benchmarks.

Reads what the script wrote under OUT (gpu_check.jsonl: one result record per model; timings.tsv: seconds per
step; bench.jsonl: the benchmarks' lines; poisoned/training_summary.json: the training's own wall clock) and
turns the measured seconds per epoch into the EPOCHS that would fill ``--target-minutes`` of a rerun, so the
first GPU run replaces the script's estimated default with a measurement.

    python scripts/gpu_check_summary.py runs/gpu_check --epochs 30
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

NAMES = {"none": "poisoned", "retrain": "retrain"}


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_timings(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    pairs = (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name: float(secs) for name, secs in pairs}


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def epochs_to_fit(timings: dict[str, float], seconds_per_epoch: float, epochs: int, target_s: float) -> int:
    """EPOCHS for a rerun of about ``target_s`` seconds: the steps that scale with the epochs (both trainings and the
    unlearning runs, whose budget is a fraction of a training) scale linearly, the rest stays."""
    scaled = sum(v for k, v in timings.items() if k.startswith(("train-", "unlearn-")))
    fixed = sum(timings.values()) - scaled
    if epochs < 1 or scaled <= 0:  # trainings skipped (models kept from an earlier run): the epoch time alone
        return max(1, int(target_s / 2.3 / seconds_per_epoch)) if seconds_per_epoch > 0 else epochs
    return max(1, int(epochs * (target_s - fixed) / scaled))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--epochs", type=int, required=True, help="EPOCHS the models were trained for")
    p.add_argument("--target-minutes", type=float, default=8.0)
    args = p.parse_args()
    records = read_jsonl(args.out / "gpu_check.jsonl")
    timings = read_timings(args.out / "timings.tsv")
    if not records:
        raise SystemExit(f"{args.out / 'gpu_check.jsonl'}: no result records; did the script finish?")

    print(f"\ngpu_check summary ({args.out}): {args.epochs} epochs, the paper preset otherwise (the paper: 100)")
    print(f"{'model':<10} {'test acc':>8} {'GUS':>8} {'TPR@1%':>8} {'AUC':>7} "
          f"{'compute':>10} {'stopped_by':>12} {'s':>7}")
    for r in records:
        name = NAMES.get(r["method"], r["method"])
        m = r["metrics"]
        secs = timings.get(f"unlearn-{name}", timings.get(f"score-{name}"))
        print(f"{name:<10} {fmt(m.get('test_accuracy'))!s:>8} {fmt(m.get('gus'))!s:>8} "
              f"{fmt(m.get('tpr_at_fpr_0.01'))!s:>8} {fmt(m.get('auc'))!s:>7} {r['compute_used']:>10.4g} "
              f"{str(r.get('stopped_by') or '-'):>12} {fmt(secs, '.1f'):>7}")

    summary_path = args.out / "poisoned" / "training_summary.json"
    if summary_path.is_file():
        s = json.loads(summary_path.read_text(encoding="utf-8"))
        epochs = int(s["train_config"]["epochs"])
        per_epoch = float(s["wall_seconds"]) / max(1, epochs)
        print(f"training (poisoned): {s['num_train']} rows x {epochs} epochs in {s['wall_seconds']:.1f} s = "
              f"{per_epoch:.2f} s/epoch ({s['num_train'] / per_epoch:.0f} images/s); test accuracy "
              f"{fmt(s.get('test_accuracy'))}")
        if timings:
            total = sum(timings.values())
            fit = epochs_to_fit(timings, per_epoch, args.epochs, args.target_minutes * 60)
            print(f"whole check: {total:.0f} s; EPOCHS={fit} would take about {args.target_minutes:g} min "
                  "(measured here; the paper's 100 epochs: "
                  f"~{per_epoch * 100 / 60:.1f} min per model)")
    for b in read_jsonl(args.out / "bench.jsonl"):
        if b["benchmark"] == "train":
            rate = b["images_per_s"]
            print(f"bench train ({b['device_name']}, width {b['width']}, batch {b['batch_size']}, "
                  f"{b['mixed_precision']}): project {rate['project']:.0f} images/s, bare {rate['bare']:.0f}: "
                  f"{b['project_over_bare_throughput']:.2f}x (target >= 0.9x)")
        elif b["benchmark"] == "scoring":
            rate, over = b["poisons_per_s"], b["project_over"]
            print(f"bench scoring ({b['device_name']}, width {b['width']}): project {rate['project']:.0f} poisons/s; "
                  f"vs bare {over['bare']:.2f}x, vs bare+nulls {over['bare+nulls']:.2f}x (>= 0.8x), "
                  f"vs naive {over['naive']:.1f}x (>= 10x)")


if __name__ == "__main__":
    main()
