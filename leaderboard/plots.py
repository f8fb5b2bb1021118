"""The Space's two plots, drawn with matplotlib from the rows the table shows.

* ``tradeoff_figure``: test accuracy against poison removal (TPR@FPR=1% for
  Gaussian poisons, target success for targeted ones), one point per table
  row with its 95% interval on both axes; Retrain and No-unlearning marked.
* ``figure2_bars``: the paper's Figure 2 layout: per method, a blue bar for
  test accuracy and an orange bar for the removal metric (averaged over the
  rows shown, with 95% intervals), a solid orange line at No-unlearning's
  value and a dashed one at the ideal (the FPR itself).

Only method names (``[a-z0-9_]`` or the fixed labels) are drawn as text, so
no submitter-controlled string reaches the figure.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

BLUE, ORANGE = "#1f77b4", "#ff7f0e"
MAX_METHODS = 20


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def removal_metric(attack: str | None) -> tuple[str | None, str, float | None]:
    """(column, axis label, ideal value) of the poison-removal metric for an attack."""
    if attack == "targeted":
        return "target_success", "target success (lower is better)", None
    if attack == "indiscriminate":
        return None, "", None
    return "tpr1", "TPR @ FPR=1% (lower is better; 0.01 = chance)", 0.01


def _empty(plt, message: str):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


_CI_COLUMNS = {"tpr1": "tpr1_ci", "target_success": "target_success_ci"}  # removal metric -> its 95% half-width


def tradeoff_figure(rows: pd.DataFrame, attack: str | None):
    plt = _pyplot()
    column, label, ideal = removal_metric(attack)
    if rows.empty or column is None or rows[column].isna().all():
        return _empty(plt, "no rows with a removal metric in this selection")
    fig, ax = plt.subplots(figsize=(7, 4.6))
    ci_col = _CI_COLUMNS.get(column)
    methods = list(dict.fromkeys(rows["method_label"]))[:MAX_METHODS]
    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (2, 3)]  # orange marks chance
    for i, name in enumerate(methods):
        part = rows[rows["method_label"] == name]
        is_ref = bool(part["is_reference"].iloc[0])
        marker = "*" if name == "Retrain" else "X" if name == "No unlearning" else "o"
        ax.errorbar(
            part[column], part["test_accuracy"],
            xerr=None if ci_col is None else part[ci_col].fillna(0).to_numpy(),
            yerr=part["test_accuracy_ci"].fillna(0).to_numpy(),
            fmt=marker, ms=12 if is_ref else 6, color="black" if is_ref else palette[i % len(palette)],
            ecolor="0.6", elinewidth=1, capsize=2, label=name,
        )
    if ideal is not None:
        ax.axvline(ideal, color=ORANGE, ls="--", lw=1, label=f"chance (FPR={ideal:g})")
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy")
    ax.set_title("Utility against poison removal (each point: one table row, 95% intervals)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    return fig


def _pooled(part: pd.DataFrame, column: str, ci_column: str | None) -> tuple[float, float]:
    values = part[column].dropna()
    if values.empty:
        return math.nan, 0.0
    if len(values) > 1:
        return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(len(values)))
    ci = part[ci_column].iloc[0] if ci_column and ci_column in part else math.nan
    return float(values.iloc[0]), 0.0 if pd.isna(ci) else float(ci)


def figure2_bars(rows: pd.DataFrame, attack: str | None):
    plt = _pyplot()
    column, label, ideal = removal_metric(attack)
    if rows.empty:
        return _empty(plt, "no rows in this selection")
    order = list(dict.fromkeys(["Retrain", "No unlearning"] + list(rows["method_label"])))
    methods = [m for m in order if m in set(rows["method_label"])][:MAX_METHODS]
    acc, acc_ci, rem, rem_ci = [], [], [], []
    for name in methods:
        part = rows[rows["method_label"] == name]
        a, a_ci = _pooled(part, "test_accuracy", "test_accuracy_ci")
        acc.append(a)
        acc_ci.append(a_ci)
        if column is not None:
            r, r_ci = _pooled(part, column, _CI_COLUMNS.get(column))
            rem.append(r)
            rem_ci.append(r_ci)
    x = np.arange(len(methods))
    width = 0.38 if column is not None else 0.6
    fig, ax = plt.subplots(figsize=(max(7, 0.7 * len(methods) + 2), 4.6))
    ax.bar(x - (width / 2 if column else 0), acc, width, yerr=acc_ci, color=BLUE, capsize=2, label="test accuracy")
    if column is not None:
        ax.bar(x + width / 2, rem, width, yerr=rem_ci, color=ORANGE, capsize=2, label=label.split(" (")[0])
        none_rows = rows[rows["method"] == "none"][column].dropna()
        if not none_rows.empty:
            ax.axhline(float(none_rows.mean()), color=ORANGE, lw=1.5, label="No unlearning")
        if ideal is not None:
            ax.axhline(ideal, color=ORANGE, ls="--", lw=1.2, label=f"ideal (FPR={ideal:g})")
    ax.set_xticks(x, methods, rotation=30, ha="right")
    ax.set_ylim(0, 1.22)  # room for the legend above the bars
    ax.set_title("Test accuracy and poison removal per method (rows shown, 95% intervals)")
    ax.legend(fontsize=7, loc="upper center", ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
