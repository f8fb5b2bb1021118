"""From stored submissions to the leaderboard table: aggregate seeds, compare with Retrain, rank.

Rows are one per (submission, task, attack, variant, method, budget): the
record's seeds are averaged and a 95% interval is attached: with one seed, a
Wilson interval from ``num_poisons`` for TPR (from ``num_targets`` for target
success, when the record gives it) and 1.96 * ``gus_stderr`` for GUS, none for
accuracy; with several, a t interval over the seeds, for TPR, target success
and GUS combined (root sum of squares) with that one-seed interval, since all
seeds score the same poisons (and copies of one result cannot shrink it). A record whose checkpoint
the verifier re-scored (``verified``) shows the *recomputed* numbers.

The references come only from the maintainers' trusted file
(``leaderboard.references``): one row per (task, attack, variant, method) for
No unlearning and Retrain, pooled over their seeds. Retrain's pooled means give
the gaps

* ``d_tpr1``          = TPR@FPR=1% - Retrain's (poison removal; 0 is ideal, > 0 means poison left),
* ``d_gus``           = GUS - Retrain's (the same in the units of the score),
* ``d_target_success``= target success - Retrain's (targeted attacks),
* ``d_test_accuracy`` = test accuracy - Retrain's (utility; < 0 means accuracy lost).

The **shortfall** adds what is missing on each side, both in probability units:
``max(0, d_removal) + max(0, -d_test_accuracy)`` (removal = TPR@1% for Gaussian
poisons, target success for targeted ones, nothing for indiscriminate ones).
0 means as good as Retrain on both. Its interval (``shortfall_lo``,
``shortfall_hi``) comes from the row's intervals of removal and accuracy.
The **rank**, within each (task, attack, variant, budget), is 1 + the number of
rows whose whole interval lies below this row's: rows whose intervals overlap
share a rank ("1, 1, 3"); within a shared rank verified rows are listed first.
Not ranked (``rank_note`` says why): references, rows whose verification
found a ``mismatch`` or ``failed``, rows on a variant that is not public (with
a catalog), and rows without a Retrain reference.

Only the numbers in the records and the verifier's recomputed numbers are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from hf_unlearn.results import METHODS, METRIC_RANGES
from hf_unlearn.stats import wilson_halfwidth
from leaderboard import names

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


# metric in the record -> short column name in the table
_METRIC_ALIASES = {"tpr_at_fpr_0.01": "tpr1", "tpr_at_fpr_0.001": "tpr01"}
_SHOWN_METRICS = ("test_accuracy", "retain_accuracy", "forget_accuracy", "gus", "gus_stderr", "tpr_at_fpr_0.01",
                  "tpr_at_fpr_0.001", "auc", "target_success", "num_poisons", "num_nulls", "num_targets")


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


RECORD_COLUMNS = ["submission", "submission_id", "submitter", "account", "link", "received_at", "task", "attack", "variant",
                  "dataset", "model", "method", "budget", "seed", "compute", "status", "verify_note", "checkpoint",
                  "numbers"] + [_METRIC_ALIASES.get(m, m) for m in _SHOWN_METRICS]


def record_row(record: dict[str, Any], recomputed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record's own columns (task ... metrics); ``recomputed`` metrics replace the claimed ones."""
    row = {
        "task": record["task"],
        "attack": record["attack"],
        "variant": record["dataset"].get("config") or "(default)",
        "dataset": record["dataset"]["id"],
        "model": record["model"]["id"],
        "method": record["method"],
        "budget": np.nan if record.get("budget_fraction") is None else float(record["budget_fraction"]),
        "seed": record["seed"],
        "compute": float(record.get("compute_used", 0.0)),
        "numbers": "claimed",
    }
    metrics = dict(record["metrics"])
    if recomputed:
        metrics.update({k: v for k, v in recomputed.items() if k in _SHOWN_METRICS})
        row["numbers"] = "recomputed"
    for m in _SHOWN_METRICS:
        v = metrics.get(m)
        row[_METRIC_ALIASES.get(m, m)] = np.nan if v is None else float(v)
    return row


def records_frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def recomputed_metrics(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the verifier recomputed for one record: ``entry["recomputed"]``, else the ``diffs``' recomputed values."""
    if not entry:
        return None
    recomputed = entry.get("recomputed")
    if isinstance(recomputed, dict):
        return recomputed
    diffs = entry.get("diffs")
    if isinstance(diffs, dict):
        return {m: d.get("recomputed") for m, d in diffs.items() if isinstance(d, dict)}
    return None


def records_frame(stored: Iterable[Any], verifications: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per record (one seed), with submitter, verification status and metrics as columns.

    ``verifications`` must hold only authentic results (``LocalStore.verifications``
    checks them). A verified record shows, and ranks on, the verifier's recomputed
    numbers; ``checkpoint`` is the checkpoint that was scored (id@revision).
    """
    verifications = verifications or {}
    rows = []
    for s in stored:
        sub = s.submission
        entries = {}
        ver = verifications.get(s.id)
        if ver:
            entries = {e.get("record"): e for e in ver.get("records", []) if isinstance(e, dict)}
        checkpointed = {c["record"]: c for c in sub.checkpoints}
        for i, r in enumerate(sub.records):
            if r["method"] in REFERENCE_LABELS:  # a legacy store: references come only from the trusted file
                continue
            entry = entries.get(i)
            status, note = _record_status(i in checkpointed, entry)
            ref = entry if entry and entry.get("checkpoint") else checkpointed.get(i)
            checkpoint = ""
            if ref:
                checkpoint = str(ref.get("checkpoint") or ref.get("id") or "")
                if ref.get("revision"):
                    checkpoint += f"@{ref['revision']}"
            row = record_row(r, recomputed_metrics(entry) if status == "verified" else None)
            row.update({
                "submission": s.id[:12],
                "submission_id": s.id,
                "submitter": names.submitter_label(sub.submitter),
                "account": names.hub_account(sub.submitter),
                "link": sub.submitter.get("link") or "",
                "received_at": s.received_at[:19],
                "status": status,
                "verify_note": note,
                "checkpoint": checkpoint,
            })
            rows.append(row)
    return records_frame_from_rows(rows)


def _group_statuses(frame: pd.DataFrame) -> pd.Series:
    """Per group of seeds: "verified" if all are, "mismatch"/"failed" (with a count if only some),
    "partly verified (k/n seeds)", "pending", "unsupported" or "unverified"."""
    names = ("verified", "mismatch", "failed", "pending", "unsupported", "reference")
    counts = frame.assign(**{f"_{n}": frame["status"] == n for n in names}).groupby(
        GROUP_KEYS, dropna=False, sort=False
    )[[f"_{n}" for n in names]].sum()
    n = frame.groupby(GROUP_KEYS, dropna=False, sort=False)["status"].size()
    k = {name: counts[f"_{name}"] for name in names}
    def some(name: str, label: str) -> pd.Series:
        return label + " (" + k[name].astype(str) + "/" + n.astype(str) + " seeds)"
    result = np.select(
        [k["reference"] == n, k["verified"] == n, k["mismatch"] == n, k["mismatch"] > 0, k["failed"] == n, k["failed"] > 0,
         k["verified"] > 0, k["pending"] > 0, k["unsupported"] > 0],
        ["reference", "verified", "mismatch", some("mismatch", "mismatch"), "failed", some("failed", "failed"),
         some("verified", "partly verified"), "pending", "unsupported"],
        default="unverified",
    )
    return pd.Series(result, index=n.index, name="status")


GROUP_KEYS = ["submission_id", "task", "attack", "variant", "method", "budget"]
_MEAN_COLUMNS = ["test_accuracy", "retain_accuracy", "forget_accuracy", "gus", "gus_stderr", "tpr1", "tpr01", "auc",
                 "target_success", "num_poisons", "num_nulls", "num_targets", "compute"]


def _shortfall_bounds(d_removal: pd.Series, removal_ci: pd.Series, d_acc: pd.Series, acc_ci: pd.Series
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Interval of ``max(0, d_removal) + max(0, -d_acc)`` from the intervals of its two parts (monotone in each)."""
    rc = np.nan_to_num(removal_ci.to_numpy(dtype=float), nan=0.0)
    ac = np.nan_to_num(acc_ci.to_numpy(dtype=float), nan=0.0)
    dr, da = d_removal.to_numpy(dtype=float), d_acc.to_numpy(dtype=float)
    lo = np.maximum(0.0, dr - rc) + np.maximum(0.0, -da - ac)
    hi = np.maximum(0.0, dr + rc) + np.maximum(0.0, -da + ac)
    return lo, hi


def overlap_rank(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Competition rank where overlapping intervals tie: 1 + the number of rows entirely better (hi < my lo).

    Rows whose intervals overlap the best one all get 1; a row clearly worse
    than two rows gets 3 ("1, 1, 3").
    """
    his = np.sort(hi)
    return 1.0 + np.searchsorted(his, lo, side="left")


def summarize(frame: pd.DataFrame, references: Any = None, catalog: Any = None) -> pd.DataFrame:
    """Aggregate seeds, attach intervals, gaps to Retrain, shortfall and rank (see the module docstring).

    ``references`` (a ``leaderboard.references.References``) gives the only
    reference rows; without it nothing has a gap or a rank. With a ``catalog``,
    rows on variants that are not public are shown but not ranked.
    """
    frame = frame[~frame["method"].isin(list(REFERENCE_LABELS))] if not frame.empty else frame
    if references is not None:
        ref_frame = references.frame()
        if not ref_frame.empty:
            frame = ref_frame if frame.empty else pd.concat([frame, ref_frame], ignore_index=True)
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_KEYS)
    frame = frame.assign(_recomputed=(frame["numbers"] == "recomputed").astype(int))
    grouped = frame.groupby(GROUP_KEYS, dropna=False, sort=False)
    out = grouped[_MEAN_COLUMNS].mean()
    std = grouped[["test_accuracy", "tpr1", "gus", "target_success"]].std()
    first = grouped.agg(
        submission=("submission", "first"), submitter=("submitter", "first"), account=("account", "first"),
        link=("link", "first"),
        received_at=("received_at", "first"), model=("model", "first"), n_models=("model", "nunique"),
        n_seeds=("seed", "count"), checkpoint=("checkpoint", "first"), n_checkpoints=("checkpoint", "nunique"),
        n_recomputed=("_recomputed", "sum"),
    )
    status = _group_statuses(frame)
    bad = frame.assign(_bad=frame["status"].isin(["mismatch", "failed"])).groupby(
        GROUP_KEYS, dropna=False, sort=False)["_bad"].sum().rename("n_refuted")
    noted = frame[frame["verify_note"] != ""]
    notes = noted.groupby(GROUP_KEYS, dropna=False, sort=False)["verify_note"].agg(
        lambda s: "; ".join(dict.fromkeys(s))[:300]
    ).rename("verify_note")
    out = out.join(first).join(status).join(bad).join(notes)
    out["verify_note"] = out["verify_note"].fillna("")
    out = out.join(std.add_suffix("_std")).reset_index()

    n = out["n_seeds"].to_numpy(dtype=float)
    k = out["n_recomputed"].to_numpy(dtype=float)
    out["numbers"] = np.where(k == n, "recomputed", np.where(k == 0, "claimed", "mixed"))
    t = _t95(n)
    many = n > 1
    root_n = np.sqrt(n)
    out["test_accuracy_ci"] = np.where(many, t * out["test_accuracy_std"] / root_n, np.nan)
    # Several seeds score the same poisons, so the poisons' own sampling error (one seed's Wilson half-width,
    # one seed's 1.96 * gus_stderr) does not shrink with the seeds: it is added to the t interval (root sum of
    # squares). Copies of one result under other seed numbers therefore cannot make an interval of zero.
    wilson = wilson_halfwidth(out["tpr1"].to_numpy(), out["num_poisons"].to_numpy())
    seed_spread = (t * out["tpr1_std"] / root_n).to_numpy(dtype=float)
    out["tpr1_ci"] = np.where(many, np.sqrt(seed_spread**2 + np.nan_to_num(wilson) ** 2), wilson)
    gus_floor = (1.96 * out["gus_stderr"]).to_numpy(dtype=float)
    gus_spread = (t * out["gus_std"] / root_n).to_numpy(dtype=float)
    out["gus_ci"] = np.where(many, np.sqrt(gus_spread**2 + np.nan_to_num(gus_floor) ** 2), gus_floor)
    # Target success is a share of the num_targets rows of the targets split: the same Wilson floor as a TPR.
    wilson_t = wilson_halfwidth(out["target_success"].to_numpy(), out["num_targets"].to_numpy())
    spread_t = (t * out["target_success_std"] / root_n).to_numpy(dtype=float)
    out["target_success_ci"] = np.where(many, np.sqrt(spread_t**2 + np.nan_to_num(wilson_t) ** 2), wilson_t)
    extra = out["n_models"] - 1
    out["model"] = np.where(extra > 0, out["model"] + " (+" + extra.astype(str) + " more)", out["model"])
    extra = out["n_checkpoints"] - 1
    out["checkpoint"] = np.where(extra > 0, out["checkpoint"] + " (+" + extra.astype(str) + " more)",
                                 out["checkpoint"])

    # Reference: the maintainers' Retrain on the same variant, pooled over its seeds.
    keys = ["task", "attack", "variant"]
    retrain = frame[(frame["method"] == "retrain") & (frame["status"] == "reference")]
    pooled = retrain.groupby(keys)[["test_accuracy", "tpr1", "gus", "target_success"]].mean()
    ref = pooled.add_prefix("ref_").reset_index()
    if ref.empty:
        for col in ("ref_test_accuracy", "ref_tpr1", "ref_gus", "ref_target_success"):
            out[col] = np.nan
    else:
        out = out.merge(ref, on=keys, how="left")
    out["d_test_accuracy"] = out["test_accuracy"] - out["ref_test_accuracy"]
    out["d_tpr1"] = out["tpr1"] - out["ref_tpr1"]
    out["d_gus"] = out["gus"] - out["ref_gus"]
    out["d_target_success"] = out["target_success"] - out["ref_target_success"]

    utility = np.maximum(0.0, -out["d_test_accuracy"])
    is_gaussian, is_targeted = out["attack"] == "gaussian", out["attack"] == "targeted"
    d_removal = pd.Series(np.select([is_gaussian, is_targeted], [out["d_tpr1"], out["d_target_success"]], default=0.0))
    removal_ci = pd.Series(np.select([is_gaussian, is_targeted], [out["tpr1_ci"], out["target_success_ci"]],
                                     default=0.0))
    # np.maximum propagates NaN: a missing gap leaves the shortfall unknown rather than zero.
    out["shortfall"] = np.maximum(0.0, d_removal) + utility
    out["shortfall_lo"], out["shortfall_hi"] = _shortfall_bounds(
        d_removal, removal_ci, out["d_test_accuracy"], out["test_accuracy_ci"])
    out["is_reference"] = out["method"].isin(list(REFERENCE_LABELS))
    out.loc[out["is_reference"], ["shortfall", "shortfall_lo", "shortfall_hi"]] = np.nan
    out["kind"] = [
        REFERENCE_LABELS.get(m) or ("method" if m in METHODS else "new method") for m in out["method"]
    ]
    out["method_label"] = [method_label(m) for m in out["method"]]

    # Who ranks: not a reference, not refuted by verification, on a public variant, with a known shortfall.
    note = np.full(len(out), "", dtype=object)
    public = np.ones(len(out), dtype=bool)
    if catalog is not None:
        public = np.array([(t_, a_, v_) in catalog for t_, a_, v_ in zip(out["task"], out["attack"], out["variant"])],
                          dtype=bool)
    refuted = out["n_refuted"].to_numpy() > 0
    unknown = out["shortfall"].isna().to_numpy()
    note = np.where(unknown, "not ranked: no reference (Retrain) for this variant", note)
    note = np.where(~public, "not ranked: not a public variant", note)
    note = np.where(refuted, "not ranked: verification refuted the claim (mismatch or failed)", note)
    note = np.where(out["is_reference"].to_numpy(), "reference", note)
    out["rank_note"] = note
    eligible = ~out["is_reference"].to_numpy() & public & ~refuted & ~unknown
    out["rank"] = np.nan
    # Ranks per budget as shown (4 decimals; submissions are refused otherwise): a budget of 0.0500001 in a
    # planted or older file joins the 0.05 group instead of making a group of its own that prints as 0.05.
    ranked = out[eligible].assign(budget_key=out["budget"].round(4).fillna(-1.0))
    for _, idx in ranked.groupby(["task", "attack", "variant", "budget_key"]).groups.items():
        lo = out.loc[idx, "shortfall_lo"].to_numpy(dtype=float)
        hi = out.loc[idx, "shortfall_hi"].to_numpy(dtype=float)
        out.loc[idx, "rank"] = overlap_rank(lo, hi)
    out["haystack"] = (
        out["method"] + "\x1f" + out["method_label"] + "\x1f" + out["submitter"] + "\x1f" + out["model"] + "\x1f"
        + out["variant"] + "\x1f" + out["submission_id"] + "\x1f" + out["link"] + "\x1f" + out["status"] + "\x1f"
        + out["checkpoint"]
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


# The sort choices the board offers (``display.SORT_CHOICES`` is this order) -> the column sorted on.
SORT_KEYS = {
    "Rank": "rank",
    "Shortfall": "shortfall",
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
    key = SORT_KEYS.get(sort_by, "rank")
    by = ["_ref", key]
    ascending = [True, not descending]
    if key == "rank":
        # within a shared rank, verified rows first, then by shortfall
        by = ["variant", "_ref", "_budget", "rank", "_unverified", "shortfall"]
        ascending = [True, True, True, not descending, True, not descending]
    order = {"retrain": 0, "none": 1}
    ordered = rows.assign(_ref=rows["method"].map(order).fillna(2), _budget=rows["budget"].fillna(-1.0),
                          _unverified=(rows["status"] != "verified").astype(int))
    ordered = ordered.sort_values(by, ascending=ascending, na_position="last", kind="stable")
    return ordered.drop(columns=["_ref", "_budget", "_unverified"])


# --- the table as data (CLI view, Space) --------------------------------------------------------

# The keys ``ranked_table`` returns, in order: what the board shows, plus ids for scripts.
TABLE_KEYS = ["rank", "rank_note", "method", "method_label", "kind", "submitter", "account", "status", "task", "attack", "variant",
              "budget", "n_seeds", "test_accuracy", "test_accuracy_ci", "d_test_accuracy", "tpr1", "tpr1_ci",
              "d_tpr1", "gus", "gus_ci", "d_gus", "tpr01", "auc", "target_success", "target_success_ci",
              "d_target_success", "shortfall", "shortfall_lo", "shortfall_hi", "numbers", "checkpoint", "model",
              "compute", "link", "submission_id", "received_at", "verify_note"]


# Every column ``summarize`` returns (an empty table has them too, so filters and the display need no special case).
SUMMARY_KEYS = list(dict.fromkeys(TABLE_KEYS + ["forget_accuracy", "retain_accuracy", "submission", "is_reference",
                                                "haystack"]))


def build_table(store: Any, *, references: Any = None, catalog: Any = None) -> pd.DataFrame:
    """The summarised table of a store: its submissions with their authentic verifications, the trusted
    references, ranked (``summarize``). The Space's Board and the CLI view both call this."""
    stored = store.submissions()
    if catalog is None:  # the store's public variants (LocalStore reads LEADERBOARD_DATASETS) when none is given
        catalog = getattr(store, "catalog", None)
    return summarize(records_frame(stored, store.verifications()), references=references, catalog=catalog)


def ranked_table(
    store_or_path: Any,
    *,
    task: str | None = None,
    attack: str | None = None,
    variant: str | None = None,
    budget: str | float | None = None,
    verified_only: bool = False,
    search: str = "",
    references: Any = None,
    catalog: Any = None,
) -> pd.DataFrame:
    """The rows the board shows for these filters, in its order, with ``TABLE_KEYS`` as columns.

    ``store_or_path`` is a store or a path / ``hf://datasets/ORG/NAME`` (opened
    read-only). ``references`` defaults to ``LEADERBOARD_REFERENCES`` and
    ``catalog`` to ``LEADERBOARD_DATASETS``; without references nothing ranks.
    ``budget`` is a number or its text ("0.05").
    """
    from leaderboard.catalog import Catalog
    from leaderboard.references import References

    store = store_or_path
    if catalog is None:
        catalog = getattr(store, "catalog", None) if hasattr(store, "submissions") else Catalog.from_env()
    if not hasattr(store, "submissions"):
        from leaderboard.store import LocalStore, open_store

        text = str(store_or_path)
        if text.startswith(("hf://", "datasets/")):
            store = open_store(text, catalog=catalog)
        else:
            from pathlib import Path

            if not Path(text).is_dir():
                raise FileNotFoundError(f"no leaderboard store folder at {text}")
            store = LocalStore(text, catalog=catalog)
    if references is None:
        references = References.from_env(catalog=catalog)
    table = build_table(store, references=references, catalog=catalog)
    if isinstance(budget, (int, float)):
        budget = budget_text(float(budget))
    rows = sort_rows(filter_rows(table, Filters(
        task=task, attack=attack, variant=variant or ALL, budget=budget or ALL, verified_only=verified_only,
        search=search,
    )))
    return rows.reindex(columns=TABLE_KEYS).reset_index(drop=True)
