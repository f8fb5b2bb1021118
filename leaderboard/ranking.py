"""From stored submissions to the leaderboard table: aggregate seeds, compare with Retrain, rank.

Rows are one per (submission, task, attack, variant, method, budget): the
record's seeds are averaged and a 95% interval is attached (a t interval over
seeds; with one seed, a Wilson interval from ``num_poisons`` for TPR and
1.96 * ``gus_stderr`` for GUS; none for accuracy). Retrain on the same variant
is the reference: its seeds, pooled over every submission that reports it (the
verified ones only, if any are verified), give the gaps

* ``d_tpr1``          = TPR@FPR=1% - Retrain's (poison removal; 0 is ideal, > 0 means poison left),
* ``d_gus``           = GUS - Retrain's (the same in the units of the score),
* ``d_target_success``= target success - Retrain's (targeted attacks),
* ``d_test_accuracy`` = test accuracy - Retrain's (utility; < 0 means accuracy lost).

The **shortfall** adds what is missing on each side, both in probability units:
``max(0, d_removal) + max(0, -d_test_accuracy)`` (removal = TPR@1% for Gaussian
poisons, target success for targeted ones, nothing for indiscriminate ones).
0 means as good as Retrain on both; methods are ranked by it, lowest first,
within each (task, attack, variant, budget). Retrain and No-unlearning rows
are references and are not ranked.

Only the numbers in the records are used; nothing is recomputed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from hf_unlearn.results import METHODS, METRIC_RANGES
from hf_unlearn.stats import wilson_halfwidth

METHOD_LABELS = {
    "none": "No unlearning",
    "retrain": "Retrain",
    "gd": "GD",
    "ngd": "NGD",
    "ga": "GA",
    "euk": "EU-k",
    "cfk": "CF-k",
    "scrub": "SCRUB",
    "neggrad_plus": "NegGrad+",
    "ssd": "SSD",
}
REFERENCE_LABELS = {"retrain": "reference", "none": "reference"}
METRICS = tuple(METRIC_RANGES)
ALL = "all"

# Two-sided 95% t quantiles by degrees of freedom (scipy-free); 1.96 beyond 30.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    datatype: str  # "str" or "number" for gr.Dataframe
    default: bool  # shown unless the user changes the selection
    attacks: tuple[str, ...] = ("gaussian", "targeted", "indiscriminate")  # where it is shown by default


COLUMNS: tuple[Column, ...] = (
    Column("rank", "Rank", "number", True),
    Column("method_label", "Method", "str", True),
    Column("kind", "Row", "str", True),
    Column("submitter", "Submitter", "str", True),
    Column("status", "Verification", "str", True),
    Column("variant", "Variant", "str", True),
    Column("budget", "Budget", "number", True),
    Column("n_seeds", "Seeds", "number", True),
    Column("test_accuracy", "Test acc", "number", True),
    Column("test_accuracy_ci", "Test acc ±95%", "number", False),
    Column("d_test_accuracy", "Δ test acc vs Retrain", "number", True),
    Column("tpr1", "TPR@1%", "number", True, ("gaussian",)),
    Column("tpr1_ci", "TPR@1% ±95%", "number", True, ("gaussian",)),
    Column("d_tpr1", "Δ TPR@1% vs Retrain", "number", True, ("gaussian",)),
    Column("gus", "GUS", "number", True, ("gaussian",)),
    Column("gus_ci", "GUS ±95%", "number", False, ("gaussian",)),
    Column("d_gus", "Δ GUS vs Retrain", "number", False, ("gaussian",)),
    Column("tpr01", "TPR@0.1%", "number", False, ("gaussian",)),
    Column("auc", "AUC", "number", False, ("gaussian",)),
    Column("target_success", "Target success", "number", True, ("targeted",)),
    Column("d_target_success", "Δ target success vs Retrain", "number", True, ("targeted",)),
    Column("forget_accuracy", "Forget acc", "number", False),
    Column("retain_accuracy", "Retain acc", "number", False),
    Column("shortfall", "Shortfall vs Retrain", "number", True),
    Column("compute", "Compute (fwd-eq.)", "number", False),
    Column("model", "Model", "str", False),
    Column("link", "Submitter link", "str", False),
    Column("submission", "Submission", "str", False),
    Column("received_at", "Received", "str", False),
    Column("verify_note", "Verification detail", "str", False),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
COLUMN_BY_LABEL = {c.label: c for c in COLUMNS}
TEXT_KEYS = [c.key for c in COLUMNS if c.datatype == "str"]

# metric in the record -> short column name in the table
_METRIC_ALIASES = {"tpr_at_fpr_0.01": "tpr1", "tpr_at_fpr_0.001": "tpr01"}
_SHOWN_METRICS = ("test_accuracy", "retain_accuracy", "forget_accuracy", "gus", "gus_stderr", "tpr_at_fpr_0.01",
                  "tpr_at_fpr_0.001", "auc", "target_success", "num_poisons", "num_nulls")


def default_columns(attack: str | None) -> list[str]:
    """Labels of the columns shown by default for one attack."""
    return [c.label for c in COLUMNS if c.default and (attack in (None, ALL) or attack in c.attacks)]


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, f"{method} (new)")


def _t95(n: np.ndarray) -> np.ndarray:
    df = np.clip(n - 1, 1, None).astype(int)
    table = np.array(_T95)
    return np.where(df <= len(table), table[np.minimum(df, len(table)) - 1], 1.96)


def _record_status(checkpoint: bool, entry: dict[str, Any] | None) -> tuple[str, str]:
    if entry is not None:
        status = entry.get("status")
        if status in ("verified", "mismatch", "failed", "unsupported"):
            return status, _note(entry)
    return ("pending", "checkpoint named; verification not finished") if checkpoint else ("unverified", "")


def _note(entry: dict[str, Any]) -> str:
    if entry.get("error"):
        return str(entry["error"])[:200]
    parts = []
    for metric, diff in sorted((entry.get("diffs") or {}).items()):
        if isinstance(diff, dict) and not diff.get("ok", True):
            claimed, recomputed = diff.get("claimed"), diff.get("recomputed")
            parts.append(f"{metric}: claimed {_fmt(claimed)}, recomputed {_fmt(recomputed)}")
    return "; ".join(parts)[:300]


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.4g}"
    return "none" if value is None else str(value)[:20]


def records_frame(stored: Iterable[Any], verifications: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per record (one seed), with submitter, verification status and metrics as columns."""
    verifications = verifications or {}
    rows = []
    for s in stored:
        sub = s.submission
        entries = {}
        ver = verifications.get(s.id)
        if ver:
            entries = {e.get("record"): e for e in ver.get("records", []) if isinstance(e, dict)}
        checkpointed = {c["record"] for c in sub.checkpoints}
        for i, r in enumerate(sub.records):
            status, note = _record_status(i in checkpointed, entries.get(i))
            row = {
                "submission": s.id[:12],
                "submission_id": s.id,
                "submitter": sub.submitter.get("name") or "",
                "link": sub.submitter.get("link") or "",
                "received_at": s.received_at[:19],
                "task": r["task"],
                "attack": r["attack"],
                "variant": r["dataset"].get("config") or "(default)",
                "dataset": r["dataset"]["id"],
                "model": r["model"]["id"],
                "method": r["method"],
                "budget": np.nan if r.get("budget_fraction") is None else float(r["budget_fraction"]),
                "seed": r["seed"],
                "compute": float(r.get("compute_used", 0.0)),
                "status": status,
                "verify_note": note,
            }
            metrics = r["metrics"]
            for m in _SHOWN_METRICS:
                v = metrics.get(m)
                row[_METRIC_ALIASES.get(m, m)] = np.nan if v is None else float(v)
            rows.append(row)
    columns = ["submission", "submission_id", "submitter", "link", "received_at", "task", "attack", "variant",
               "dataset", "model", "method", "budget", "seed", "compute", "status", "verify_note"]
    columns += [_METRIC_ALIASES.get(m, m) for m in _SHOWN_METRICS]
    return pd.DataFrame(rows, columns=columns)


def _group_statuses(frame: pd.DataFrame) -> pd.Series:
    """Per group of seeds: "verified" if all are, "mismatch"/"failed" (with a count if only some),
    "partly verified (k/n seeds)", "pending", "unsupported" or "unverified"."""
    names = ("verified", "mismatch", "failed", "pending", "unsupported")
    counts = frame.assign(**{f"_{n}": frame["status"] == n for n in names}).groupby(
        GROUP_KEYS, dropna=False, sort=False
    )[[f"_{n}" for n in names]].sum()
    n = frame.groupby(GROUP_KEYS, dropna=False, sort=False)["status"].size()
    k = {name: counts[f"_{name}"] for name in names}
    def some(name: str, label: str) -> pd.Series:
        return label + " (" + k[name].astype(str) + "/" + n.astype(str) + " seeds)"
    result = np.select(
        [k["verified"] == n, k["mismatch"] == n, k["mismatch"] > 0, k["failed"] == n, k["failed"] > 0,
         k["verified"] > 0, k["pending"] > 0, k["unsupported"] > 0],
        ["verified", "mismatch", some("mismatch", "mismatch"), "failed", some("failed", "failed"),
         some("verified", "partly verified"), "pending", "unsupported"],
        default="unverified",
    )
    return pd.Series(result, index=n.index, name="status")


GROUP_KEYS = ["submission_id", "task", "attack", "variant", "method", "budget"]
_MEAN_COLUMNS = ["test_accuracy", "retain_accuracy", "forget_accuracy", "gus", "gus_stderr", "tpr1", "tpr01", "auc",
                 "target_success", "num_poisons", "num_nulls", "compute"]


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregate seeds, attach intervals, gaps to Retrain, shortfall and rank (see the module docstring)."""
    if frame.empty:
        return pd.DataFrame(columns=[c.key for c in COLUMNS] + ["task", "attack", "method", "is_reference",
                                                                "submission_id", "haystack"])
    grouped = frame.groupby(GROUP_KEYS, dropna=False, sort=False)
    out = grouped[_MEAN_COLUMNS].mean()
    std = grouped[["test_accuracy", "tpr1", "gus"]].std()
    first = grouped.agg(
        submission=("submission", "first"), submitter=("submitter", "first"), link=("link", "first"),
        received_at=("received_at", "first"), model=("model", "first"), n_models=("model", "nunique"),
        n_seeds=("seed", "count"),
        gus_stderr_first=("gus_stderr", "first"), num_poisons_first=("num_poisons", "first"),
    )
    status = _group_statuses(frame)
    noted = frame[frame["verify_note"] != ""]
    notes = noted.groupby(GROUP_KEYS, dropna=False, sort=False)["verify_note"].agg(
        lambda s: "; ".join(dict.fromkeys(s))[:300]
    ).rename("verify_note")
    out = out.join(first).join(status).join(notes)
    out["verify_note"] = out["verify_note"].fillna("")
    out = out.join(std.add_suffix("_std")).reset_index()

    n = out["n_seeds"].to_numpy(dtype=float)
    t = _t95(n)
    many = n > 1
    root_n = np.sqrt(n)
    out["test_accuracy_ci"] = np.where(many, t * out["test_accuracy_std"] / root_n, np.nan)
    out["tpr1_ci"] = np.where(
        many, t * out["tpr1_std"] / root_n, wilson_halfwidth(out["tpr1"].to_numpy(), out["num_poisons_first"].to_numpy())
    )
    out["gus_ci"] = np.where(many, t * out["gus_std"] / root_n, 1.96 * out["gus_stderr_first"])
    extra = out["n_models"] - 1
    out["model"] = np.where(extra > 0, out["model"] + " (+" + extra.astype(str) + " more)", out["model"])

    # Reference: Retrain on the same variant, pooled over seeds (verified ones only, if there are any).
    keys = ["task", "attack", "variant"]
    retrain = frame[frame["method"] == "retrain"]
    verified = retrain[retrain["status"] == "verified"]
    pooled = retrain.groupby(keys)[["test_accuracy", "tpr1", "gus", "target_success"]].mean()
    if not verified.empty:
        pooled_verified = verified.groupby(keys)[["test_accuracy", "tpr1", "gus", "target_success"]].mean()
        pooled.loc[pooled_verified.index] = pooled_verified
    ref = pooled.add_prefix("ref_").reset_index()
    out = out.merge(ref, on=keys, how="left")
    out["d_test_accuracy"] = out["test_accuracy"] - out["ref_test_accuracy"]
    out["d_tpr1"] = out["tpr1"] - out["ref_tpr1"]
    out["d_gus"] = out["gus"] - out["ref_gus"]
    out["d_target_success"] = out["target_success"] - out["ref_target_success"]

    utility = np.maximum(0.0, -out["d_test_accuracy"])
    removal = np.select(
        [out["attack"] == "gaussian", out["attack"] == "targeted"],
        [np.maximum(0.0, out["d_tpr1"]), np.maximum(0.0, out["d_target_success"])],
        default=0.0,
    )
    # np.maximum propagates NaN: a missing gap leaves the shortfall unknown rather than zero.
    out["shortfall"] = removal + utility
    out["is_reference"] = out["method"].isin(("retrain", "none"))
    out.loc[out["is_reference"], "shortfall"] = np.nan
    out["kind"] = [
        REFERENCE_LABELS.get(m) or ("method" if m in METHODS else "new method") for m in out["method"]
    ]
    out["method_label"] = [method_label(m) for m in out["method"]]
    ranked = out[~out["is_reference"]].copy()
    ranked["budget_key"] = ranked["budget"].fillna(-1.0)
    out["rank"] = np.nan
    out.loc[ranked.index, "rank"] = ranked.groupby(["task", "attack", "variant", "budget_key"])["shortfall"].rank(
        method="min"
    )
    out["haystack"] = (
        out["method"] + "\x1f" + out["method_label"] + "\x1f" + out["submitter"] + "\x1f" + out["model"] + "\x1f"
        + out["variant"] + "\x1f" + out["submission_id"] + "\x1f" + out["link"] + "\x1f" + out["status"]
    ).str.casefold()
    return out


@dataclass(frozen=True)
class Filters:
    task: str | None = None
    attack: str | None = None
    variant: str = ALL
    budget: str = ALL  # ALL or the budget as text, e.g. "0.1"
    verified_only: bool = False
    search: str = ""


def budget_text(value: float) -> str:
    return "reference" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"


def filter_rows(table: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """Rows matching the filters; reference rows of the matching variants are always kept."""
    if table.empty:
        return table
    mask = np.ones(len(table), dtype=bool)
    if f.task and f.task != ALL:
        mask &= (table["task"] == f.task).to_numpy()
    if f.attack and f.attack != ALL:
        mask &= (table["attack"] == f.attack).to_numpy()
    if f.variant and f.variant != ALL:
        mask &= (table["variant"] == f.variant).to_numpy()
    is_ref = table["is_reference"].to_numpy()
    rest = ~is_ref
    if f.budget and f.budget != ALL:
        rest &= (table["budget"].map(budget_text) == f.budget).to_numpy()
    if f.verified_only:
        rest &= (table["status"] == "verified").to_numpy()
    query = (f.search or "").strip().casefold()
    if query:
        rest &= table["haystack"].str.contains(query, regex=False).to_numpy()
    return table[mask & (is_ref | rest)]


SORT_CHOICES = {
    "Rank": "rank",
    "Shortfall vs Retrain": "shortfall",
    "TPR@1%": "tpr1",
    "Test acc": "test_accuracy",
    "GUS": "gus",
    "Target success": "target_success",
    "Method": "method_label",
    "Submitter": "submitter",
    "Received": "received_at",
}


def sort_rows(rows: pd.DataFrame, sort_by: str = "Rank", descending: bool = False) -> pd.DataFrame:
    """Retrain, then No-unlearning, then the methods by the chosen column (missing values last).

    "Rank" groups by variant: each variant's references, then its methods by budget and rank.
    """
    if rows.empty:
        return rows
    key = SORT_CHOICES.get(sort_by, "rank")
    by = ["_ref", key]
    if key == "rank":
        by = ["variant", "_ref", "_budget", "rank"]
    order = {"retrain": 0, "none": 1}
    ordered = rows.assign(_ref=rows["method"].map(order).fillna(2), _budget=rows["budget"].fillna(-1.0))
    ascending = [True] * len(by)
    ascending[-1] = not descending
    ordered = ordered.sort_values(by, ascending=ascending, na_position="last", kind="stable")
    return ordered.drop(columns=["_ref", "_budget"])


def display_frame(rows: pd.DataFrame, labels: Sequence[str], max_rows: int = 500) -> tuple[pd.DataFrame, list[str]]:
    """The shown table: chosen columns with their labels, numbers rounded, text as plain strings."""
    chosen = [COLUMN_BY_LABEL[lab] for lab in labels if lab in COLUMN_BY_LABEL] or [COLUMN_BY_LABEL["Method"]]
    shown = rows.head(max_rows)
    data = {}
    for col in chosen:
        if col.key not in shown.columns:
            data[col.label] = [""] * len(shown) if col.datatype == "str" else [np.nan] * len(shown)
            continue
        values = shown[col.key]
        if col.datatype == "number":
            values = values.astype(float).round(4)
        else:
            values = values.fillna("").astype(str)
        data[col.label] = values.to_numpy()
    return pd.DataFrame(data), [c.datatype for c in chosen]
