"""The targeted attack's unlearning table: did a method remove the poisons' effect, or only the poison class?

Witches' Brew poisons are clean-label images of one class (the adversarial one), so the forget set is 300 images
of that class. A method that ascends on the forget set (GA, NegGrad+) or dampens what it relies on (SSD) can
stop the target being predicted as the adversarial class by suppressing the whole class: `target_success` then
falls to 0 although nothing poison-specific was removed. This script reads a benchmark folder's records and
checkpoints and adds, per unlearned model, whether the target is predicted as its *true* class again and the
test accuracy on the adversarial class's own test images (Retrain's is the reference), so the two cases differ.

    python scripts/targeted_unlearning_table.py --benchmark /work/bench/crafted2 \
        --out docs/attacks/targeted_unlearning
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

NAMES = {"none": "No unlearning", "retrain": "Retrain", "gd": "GD", "ngd": "NGD", "ga": "GA", "euk": "EU-k",
         "cfk": "CF-k", "scrub": "SCRUB", "neggrad_plus": "NegGrad+", "ssd": "SSD"}


def model_row(model, splits) -> dict:
    """What one checkpoint does on the variant: target predictions and accuracy on the adversarial class."""
    from hf_unlearn.attacks import predict

    targets, test = splits["targets"], splits["test"]
    adversarial = targets.adversarial_label.numpy()
    pred = predict(model, targets)
    test_pred, truth = predict(model, test), test.y.numpy()
    adv_class = truth == int(adversarial[0])
    return {
        "target_success": float(np.mean(pred == adversarial)),
        "target_true_class": float(np.mean(pred == targets.y.numpy())),
        "adversarial_class_accuracy": float(np.mean(test_pred[adv_class] == truth[adv_class])),
        "test_accuracy": float(np.mean(test_pred == truth)),
    }


def aggregate(rows: list[dict]) -> list[dict]:
    """One line per (method, budget): seeds, means and standard deviations, in the methods' order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["budget"])].append(r)
    order = list(NAMES)
    out = []
    for (method, budget), rs in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1] or 0)):
        line = {"method": method, "budget": budget, "n": len(rs)}
        for key in ("test_accuracy", "target_success", "target_true_class", "adversarial_class_accuracy"):
            values = np.array([r[key] for r in rs], dtype=float)
            line[key] = float(values.mean())
            line[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        line["hits"] = int(round(sum(r["target_success"] * r.get("num_targets", 1) for r in rs)))
        line["true_class_hits"] = int(round(sum(r["target_true_class"] * r.get("num_targets", 1) for r in rs)))
        line["targets"] = int(sum(r.get("num_targets", 1) for r in rs))
        out.append(line)
    return out


def markdown(lines: list[dict]) -> str:
    retrain = next((x for x in lines if x["method"] == "retrain"), None)
    out = ["| method | budget | seeds | test acc | target -> adversarial | target -> true class | adversarial-class "
           "test acc |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for x in lines:
        budget = "-" if x["budget"] is None else f"{x['budget']:.0%}"
        out.append(f"| {NAMES.get(x['method'], x['method'])} | {budget} | {x['n']} | {x['test_accuracy']:.3f} ± "
                   f"{x['test_accuracy_std']:.3f} | {x['hits']}/{x['targets']} | {x['true_class_hits']}/{x['targets']} | "
                   f"{x['adversarial_class_accuracy']:.3f} ± {x['adversarial_class_accuracy_std']:.3f} |")
    if retrain is not None:
        out += ["", f"Retrain's adversarial-class test accuracy is {retrain['adversarial_class_accuracy']:.3f}: a "
                "method far below it removed the class, not (only) the poisons."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", type=Path, required=True, help="benchmark output folder (results.jsonl)")
    parser.add_argument("--out", type=Path, help="write targeted_unlearning.md and .json here")
    args = parser.parse_args(argv)

    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.train import load_checkpoint

    records = [json.loads(line) for line in (args.benchmark / "results.jsonl").read_text().splitlines() if line]
    records = [r for r in records if r.get("attack") == "targeted" and not r.get("tuning")]
    splits_by_variant: dict[str, dict] = {}
    rows = []
    for r in records:
        ref = r["dataset"]
        if ref["config"] not in splits_by_variant:
            splits_by_variant[ref["config"]] = load_splits(Path(ref["id"]), ref["config"], needed=("test",))
        model = load_checkpoint(r["model"]["id"])[0]
        row = model_row(model, splits_by_variant[ref["config"]])
        if abs(row["test_accuracy"] - r["metrics"]["test_accuracy"]) > 1e-6:
            raise SystemExit(f"{r['model']['id']}: test accuracy {row['test_accuracy']} differs from its record's "
                             f"{r['metrics']['test_accuracy']}: not the checkpoint the record scored")
        rows.append({"method": r["method"], "budget": r["budget_fraction"], "seed": r["seed"],
                     "num_targets": r["metrics"].get("num_targets", 1), **row})
    lines = aggregate(rows)
    text = markdown(lines)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "targeted_unlearning.md").write_text(text)
        (args.out / "targeted_unlearning.json").write_text(json.dumps({"models": rows, "table": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
