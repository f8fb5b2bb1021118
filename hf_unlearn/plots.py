"""Figures: ROC curves on log axes and poison-vs-null score histograms.

A ROC on log-log axes is where low-FPR behaviour (the paper's headline) is
visible at all; the histogram shows the shift of the poison scores against the
N(0, 1) null that GUS summarises.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from hf_unlearn import stats


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, title: str = "") -> str:
    """``curves``: label -> (poison scores, null scores). Log-log ROC with the chance diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    floor = 1.0
    for label, (pos, neg) in curves.items():
        fpr, tpr, _ = stats.roc_curve(pos, neg)
        keep = fpr > 0
        floor = min(floor, 1.0 / len(neg))
        tpr1, _ = stats.tpr_at_fpr(pos, neg, 0.01)
        ax.step(fpr[keep], np.maximum(tpr[keep], 1e-4), where="post", label=f"{label} (TPR@1% = {'n/a' if tpr1 is None else f'{tpr1:.2f}'})")
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, "k--", lw=0.8, label="chance (TPR = FPR)")
    ax.axvline(0.01, color="grey", lw=0.6, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="false positive rate (null scores)", ylabel="true positive rate (poisons)",
           xlim=(floor, 1), ylim=(1e-3, 1.05), title=title or "Gaussian poisons: ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)


def score_histogram(
    groups: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, title: str = ""
) -> str:
    """One panel per model: poison scores against null scores and the N(0, 1) density."""
    plt = _pyplot()
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), sharey=True, squeeze=False)
    grid = np.linspace(-5, 5, 200)
    for ax, (label, (pos, neg)) in zip(axes[0], groups.items()):
        bins = np.linspace(min(-5, pos.min(), neg.min()), max(5, pos.max(), neg.max()), 41)
        ax.hist(neg, bins=bins, density=True, alpha=0.45, color="tab:blue", label=f"null ({len(neg)})")
        ax.hist(pos, bins=bins, density=True, alpha=0.55, color="tab:orange", label=f"poisons ({len(pos)})")
        ax.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), "k-", lw=0.8, label="N(0, 1)")
        s = stats.gus_summary(pos)
        ax.set(title=f"{label}\nGUS = {s['gus']:.2f} ± {s['gus_stderr']:.2f}", xlabel="score I_z")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)
