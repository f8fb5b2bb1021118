"""The targeted attack's unlearning table: did a method remove the poisons' effect, or only the poison class?

Witches' Brew poisons are clean-label images of one class (the adversarial one), so the forget set is 300 images
of that class. A method that ascends on the forget set (GA, NegGrad+) or dampens what it relies on (SSD) can
stop the target being predicted as the adversarial class by suppressing the whole class: `target_success` then
falls to 0 although nothing poison-specific was removed. This script reads a benchmark folder's records and
checkpoints and adds, per unlearned model, whether the target is predicted as its *true* class again and the
test accuracy on the adversarial class's own test images (Retrain's is the reference), so the two cases differ.

The first table is per (method, budget) over every record of ``--variant`` (one target, several unlearning
seeds). The second is Figure 2's view: the success *rate across targets*, one record per target (the lowest
seed every target has), with a Wilson 95% interval, because one target only ever gives 0/n or n/n.

    python scripts/targeted_unlearning_table.py --benchmark /work/bench/crafted2 \
        --variant truck-eps16-b1.5-t1-s0-n20000-cpu --out docs/attacks/targeted_unlearning
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


def _method_budget_order(item: tuple) -> tuple:
    """Sort key of ``((method, budget), ...)`` items: the methods' order in NAMES, then the budget (None first)."""
    (method, budget), _ = item
    return list(NAMES).index(method), budget or 0


def _hits(records: list[dict], key: str = "target_success") -> tuple[int, int]:
    """(targets hit, targets) over records, each a rate ``key`` over its ``num_targets`` targets (1 if absent)."""
    hits = int(round(sum(r[key] * r.get("num_targets", 1) for r in records)))
    return hits, int(sum(r.get("num_targets", 1) for r in records))


def aggregate(rows: list[dict]) -> list[dict]:
    """One line per (method, budget): seeds, means and standard deviations, in the methods' order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["budget"])].append(r)
    out = []
    for (method, budget), rs in sorted(groups.items(), key=_method_budget_order):
        line = {"method": method, "budget": budget, "n": len(rs)}
        for key in ("test_accuracy", "target_success", "target_true_class", "adversarial_class_accuracy"):
            values = np.array([r[key] for r in rs], dtype=float)
            line[key] = float(values.mean())
            line[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        line["hits"], line["targets"] = _hits(rs)
        line["true_class_hits"], _ = _hits(rs, "target_true_class")
        out.append(line)
    return out


def across_targets(rows: list[dict], min_targets: int = 2) -> list[dict]:
    """One line per (method, budget) with at least ``min_targets`` targets: hits over distinct targets, one
    record per target.

    Each target contributes the record of the lowest unlearning seed that *every* target has for that
    (method, budget), so a target with three seeds does not count three times against one with one: the
    interval is over targets, which is what varies between poisonings.
    """
    from hf_unlearn.stats import wilson_interval

    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        groups[(r["method"], r["budget"])][r["variant"]][r["seed"]] = r
    out = []
    for (method, budget), by_variant in sorted(groups.items(), key=_method_budget_order):
        common = set.intersection(*(set(seeds) for seeds in by_variant.values()))
        if not common or len(by_variant) < min_targets:
            continue
        seed = min(common)
        picked = [by_variant[v][seed] for v in sorted(by_variant)]
        hits, n = _hits(picked)
        low, high = wilson_interval(hits, n)
        out.append({"method": method, "budget": budget, "seed": seed, "targets": n, "hits": hits, "rate": hits / n,
                    "ci_low": low, "ci_high": high,
                    "test_accuracy": float(np.mean([r["test_accuracy"] for r in picked])),
                    "adversarial_class_accuracy": float(np.mean([r["adversarial_class_accuracy"] for r in picked]))})
    return out


def _table(columns: list[str], lines: list[dict], cells) -> list[str]:
    """A markdown table whose rows start with the method's name and budget; ``cells(line)`` gives the rest."""
    out = ["| method | budget | " + " | ".join(columns) + " |", "| --- | --- |" + " --- |" * len(columns)]
    for x in lines:
        budget = "-" if x["budget"] is None else f"{x['budget']:.0%}"
        out.append(f"| {NAMES.get(x['method'], x['method'])} | {budget} | " + " | ".join(cells(x)) + " |")
    return out


def across_targets_markdown(lines: list[dict]) -> str:
    out = _table(["targets", "poisoned (target -> adversarial)", "rate [95% CI]", "test acc",
                  "adversarial-class test acc"], lines,
                 lambda x: [str(x["targets"]), f"{x['hits']}/{x['targets']}",
                            f"{x['rate']:.2f} [{x['ci_low']:.2f}, {x['ci_high']:.2f}]", f"{x['test_accuracy']:.3f}",
                            f"{x['adversarial_class_accuracy']:.3f}"])
    return "\n".join(out) + "\n"


def plot_across_targets(lines: list[dict], path: Path) -> None:
    """Figure 2's bars: success rate per method at each budget, Wilson intervals, No unlearning as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({x["budget"] for x in lines if x["budget"] is not None})
    methods = [m for m in NAMES if any(x["method"] == m and x["budget"] is not None for x in lines)]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods)), 3.6))
    width = 0.8 / max(1, len(budgets))
    for j, b in enumerate(budgets):
        xs, ys, lo, hi = [], [], [], []
        for i, m in enumerate(methods):
            x = next((x for x in lines if x["method"] == m and x["budget"] == b), None)
            if x is not None:
                xs.append(i + (j - (len(budgets) - 1) / 2) * width)
                ys.append(x["rate"])
                lo.append(x["rate"] - x["ci_low"])
                hi.append(x["ci_high"] - x["rate"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=f"budget {b:.0%}")
    none = next((x for x in lines if x["method"] == "none"), None)
    if none is not None:
        ax.axhline(none["rate"], color="k", ls="--", lw=1, label=f"No unlearning ({none['hits']}/{none['targets']})")
    ax.set_xticks(range(len(methods)), [NAMES[m] for m in methods])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("targets still poisoned")
    ax.set_title("Targeted poisons after unlearning, across hit targets (Wilson 95%)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def markdown(lines: list[dict]) -> str:
    retrain = next((x for x in lines if x["method"] == "retrain"), None)
    out = _table(["seeds", "test acc", "target -> adversarial", "target -> true class", "adversarial-class test acc"],
                 lines, lambda x: [str(x["n"]), f"{x['test_accuracy']:.3f} ± {x['test_accuracy_std']:.3f}",
                                   f"{x['hits']}/{x['targets']}", f"{x['true_class_hits']}/{x['targets']}",
                                   f"{x['adversarial_class_accuracy']:.3f} ± {x['adversarial_class_accuracy_std']:.3f}"])
    if retrain is not None:
        out += ["", f"Retrain's adversarial-class test accuracy is {retrain['adversarial_class_accuracy']:.3f}: a "
                "method far below it removed the class, not (only) the poisons."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", type=Path, required=True, help="benchmark output folder (results.jsonl)")
    parser.add_argument("--variant", action="append", default=None,
                        help="the first table's target variant(s) (default: every variant in the records)")
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
        rows.append({"variant": ref["config"], "method": r["method"], "budget": r["budget_fraction"], "seed": r["seed"],
                     "num_targets": r["metrics"].get("num_targets", 1), **row})
    chosen = [r for r in rows if args.variant is None or r["variant"] in args.variant]
    if not chosen:
        raise SystemExit(f"no targeted records of variant(s) {args.variant} in {args.benchmark / 'results.jsonl'}")
    lines = aggregate(chosen)
    rates = across_targets(rows)
    text = (markdown(lines) + "\n## Across targets (one record per target)\n\n" + across_targets_markdown(rates))
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "targeted_unlearning.md").write_text(text)
        (args.out / "targeted_unlearning.json").write_text(
            json.dumps({"models": rows, "table": lines, "across_targets": rates}, indent=1) + "\n")
        if rates:  # one target only: no rate across targets to draw
            plot_across_targets(rates, args.out / "across_targets.png")


if __name__ == "__main__":
    main()
