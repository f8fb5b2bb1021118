"""The IMDb tables of docs/imdb.md from two benchmark folders' results.jsonl (one per attack).

Per method over its seeds: mean ± sample std of test accuracy and the attack's metric, and the 95%
intervals a reader needs to tell a method from the references: for Gaussian poisons the union of the
per-seed GUS intervals (±1.96 s.e. over the poisons) and TPR@1% with its per-seed Wilson/empirical
bounds; for the trigger the Wilson interval of the success over the targets, per seed, as a union.
It also plots the methods with those intervals (one panel per attack).

    python scripts/imdb_tables.py --gaussian runs/imdb-gaussian --targeted runs/imdb-targeted --out docs/imdb
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hf_unlearn.benchmark import LABELS
from hf_unlearn.stats import Z95, wilson_interval

ORDER = ["none", "retrain", "gd", "ngd", "ga", "euk", "cfk", "scrub", "neggrad_plus", "ssd"]


def read(folder: Path) -> dict[str, list[dict]]:
    """Records by method; each gets ``cost_fraction``: compute over the poisoned model's training cost."""
    costs = {p.parent.parent.name: json.loads(p.read_text())["training_cost"]
             for p in folder.glob("models/*/poisoned/training_summary.json")}
    out: dict[str, list[dict]] = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            r["cost_fraction"] = r["compute_used"] / costs[r["dataset"]["config"]]
            out.setdefault(r["method"], []).append(r)
    return out


def ms(values: list[float], digits: int) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def setting(records: list[dict]) -> str:
    t = records[0].get("tuning") or {}
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in (t.get("setting") or {}).items()) or "-"


def gaussian_rows(by: dict[str, list[dict]]) -> tuple[list[str], list[tuple]]:
    lines = ["| method | setting | seeds | test acc | GUS | GUS 95% CI (union over seeds) | z (mean GUS / s.e.) "
             "| TPR@1% | compute / training |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    points = []
    for m in [m for m in ORDER if m in by]:
        rs = by[m]
        g = [r["metrics"]["gus"] for r in rs]
        se = [r["metrics"]["gus_stderr"] for r in rs]
        lo = min(a - Z95 * b for a, b in zip(g, se))
        hi = max(a + Z95 * b for a, b in zip(g, se))
        cost = [r["cost_fraction"] for r in rs]
        z = float(np.mean(g) / np.mean(se))
        lines.append(f"| {LABELS[m]} | {setting(rs)} | {len(rs)} | {ms([r['metrics']['test_accuracy'] for r in rs], 3)} | "
                     f"{ms(g, 2)} | [{lo:.2f}, {hi:.2f}] | {z:.1f} | "
                     f"{ms([r['metrics']['tpr_at_fpr_0.01'] for r in rs], 3)} | {ms(cost, 3) if m != 'none' else '0'} |")
        points.append((LABELS[m], float(np.mean(g)), lo, hi, float(np.mean([r["metrics"]["test_accuracy"] for r in rs]))))
    return lines, points


def targeted_rows(by: dict[str, list[dict]]) -> tuple[list[str], list[tuple]]:
    lines = ["| method | setting | seeds | test acc | poisons answered as poisoned (forget acc) | target success "
             "| success 95% CI (Wilson, union over seeds) | compute / training |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    points = []
    for m in [m for m in ORDER if m in by]:
        rs = by[m]
        s = [r["metrics"]["target_success"] for r in rs]
        n = int(rs[0]["metrics"]["num_targets"])
        cis = [wilson_interval(int(round(v * n)), n) for v in s]
        lo, hi = min(c[0] for c in cis), max(c[1] for c in cis)
        cost = [r["cost_fraction"] for r in rs]
        lines.append(f"| {LABELS[m]} | {setting(rs)} | {len(rs)} | {ms([r['metrics']['test_accuracy'] for r in rs], 3)} | "
                     f"{ms([r['metrics']['forget_accuracy'] for r in rs], 3)} | {ms(s, 3)} | [{lo:.3f}, {hi:.3f}] | "
                     f"{ms(cost, 3) if m != 'none' else '0'} |")
        points.append((LABELS[m], float(np.mean(s)), lo, hi, float(np.mean([r["metrics"]["test_accuracy"] for r in rs]))))
    return lines, points


def plot(panels: list[tuple[str, str, list[tuple]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, ylabel, pts) in zip(axes[0], panels):
        for i, (name, y, lo, hi, acc) in enumerate(pts):
            color = "tab:red" if name == "No unlearning" else "tab:green" if name == "Retrain" else "tab:blue"
            ax.errorbar(i, y, yerr=[[y - lo], [hi - y]], fmt="o", color=color, capsize=4)
            ax.annotate(f"{acc:.2f}", (i, hi), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(pts)), [p[0] for p in pts], rotation=40, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
    fig.suptitle("IMDb at CPU scale: mean over 3 seeds, 95% intervals; numbers above = test accuracy", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussian", type=Path)
    ap.add_argument("--targeted", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/imdb"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    panels, text = [], []
    if args.gaussian:
        lines, pts = gaussian_rows(read(args.gaussian))
        text += ["**Gaussian**", "", *lines, ""]
        panels.append(("Gaussian poisons (GUS; null = 0)", "GUS", pts))
    if args.targeted:
        lines, pts = targeted_rows(read(args.targeted))
        text += ["**Trigger**", "", *lines, ""]
        panels.append(("Trigger (share of trigger test reviews answered ' Disney')", "target success", pts))
    (args.out / "benchmark_tables.md").write_text("\n".join(text))
    plot(panels, args.out / "benchmark.png")
    print("\n".join(text))


if __name__ == "__main__":
    main()
