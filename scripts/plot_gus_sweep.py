"""GUS against the unlearning budget, one line per method, from a benchmark's results.jsonl.

On the cpu-fidelity regime TPR@1% has little power (No unlearning: 0.024 against the null's 0.01, a 0.4-s.d.
shift per poison), while GUS, averaged over 1,000 poisons, separates No unlearning (0.44) from Retrain (0.00) by
14 standard errors. So this plot, not the benchmark's TPR sweep, shows where each method lands between them.
Error bars: the std over seeds; the shaded band: +-1.96 x the mean per-run standard error of GUS (over poisons).

    python scripts/plot_gus_sweep.py docs/benchmark/fidelity/results.jsonl docs/benchmark/fidelity/gus_sweep.png
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from hf_unlearn.benchmark import LABELS
from hf_unlearn.plots import _pyplot


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results")
    p.add_argument("output")
    args = p.parse_args()
    records = [json.loads(line) for line in open(args.results) if line.strip()]
    cells: dict[tuple[str, float | None], list[dict]] = defaultdict(list)
    for r in records:
        cells[(r["method"], r["budget_fraction"])].append(r["metrics"])

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    budgets = sorted({b for _, b in cells if b is not None})
    for ref, style, color in (("none", "-", "black"), ("retrain", ":", "tab:green")):
        ms = cells[(ref, None)]
        gus = float(np.mean([m["gus"] for m in ms]))
        half = 1.96 * float(np.mean([m["gus_stderr"] for m in ms]))
        ax.axhline(gus, ls=style, color=color, lw=1.3, label=f"{LABELS[ref]}: {gus:.2f} ± {half:.2f} (95%)")
        ax.axhspan(gus - half, gus + half, color=color, alpha=0.08)
    for method in dict.fromkeys(m for m, b in cells if b is not None):
        xs = [b for b in budgets if (method, b) in cells]
        means = [np.mean([m["gus"] for m in cells[(method, b)]]) for b in xs]
        stds = [np.std([m["gus"] for m in cells[(method, b)]], ddof=1) if len(cells[(method, b)]) > 1 else 0.0
                for b in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", ms=3, capsize=2, lw=1, label=LABELS.get(method, method))
    ax.set(xlabel="unlearning budget (fraction of the training cost)", ylabel="GUS (mean ± std over seeds)",
           title="cpu-fidelity: GUS after unlearning (0 = Retrain's level)")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(args.output, dpi=130)
    print(args.output)


if __name__ == "__main__":
    main()
