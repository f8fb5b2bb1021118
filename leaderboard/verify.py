"""Re-score a submitted checkpoint on the public dataset variant and compare with the claim.

A submission may name, per record, the unlearned checkpoint the record was
scored on (a Hub model id, or a local folder where the store allows it).
``verify_submission`` loads it (safetensors only, through
``hf_unlearn.scoring.score_checkpoint``; nothing is unpickled and no remote code
runs), recomputes the record's metrics on the public variant with the same
number of null draws, and compares metric by metric within ``TOLERANCES``:

* accuracies are a deterministic function of weights and data: 1e-6;
* GUS and its standard error do not depend on the null draws: 1e-4
  (float summation order differs between machines);
* TPR@FPR moves in steps of 1/num_poisons when one poison crosses the
  threshold: one step;
* AUC: 1e-3; counts (num_poisons, num_nulls): exact.

Each record ends ``verified`` (every recomputed metric that was claimed is
within tolerance), ``mismatch`` (the differences are stored and shown),
``failed`` (the checkpoint could not be scored; the reason is stored) or
``unsupported`` (no scorer for that attack yet).
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from leaderboard.store import LocalStore, StoredSubmission

ScoreFn = Callable[..., dict]

TOLERANCES: dict[str, float | str] = {
    "test_accuracy": 1e-6,
    "forget_accuracy": 1e-6,
    "retain_accuracy": 1e-6,
    "gus": 1e-4,
    "gus_stderr": 1e-4,
    "tpr_at_fpr_0.01": "1/num_poisons",
    "tpr_at_fpr_0.001": "1/num_poisons",
    "auc": 1e-3,
    "num_poisons": 0.0,
    "num_nulls": 0.0,
}
SUPPORTED_ATTACKS = ("gaussian",)
DEFAULT_NULL_DRAWS = 40  # hf_unlearn.config.ScoringConfig's default, used when a record has no counts
DEFAULT_SCORING_SEED = 0  # hf_unlearn.config.ScoringConfig's default null-noise seed


def default_score_fn(checkpoint: str, dataset: str, config: str, **kwargs: Any) -> dict:
    """``hf_unlearn.scoring.score_checkpoint``, imported only when a verification runs (it imports torch)."""
    from hf_unlearn.scoring import score_checkpoint

    return score_checkpoint(checkpoint, dataset, config, **kwargs)


def tolerance(metric: str, claimed_metrics: Mapping[str, Any]) -> float:
    tol = TOLERANCES.get(metric, 1e-6)
    if tol == "1/num_poisons":
        n = claimed_metrics.get("num_poisons")
        return 1.0 / n if isinstance(n, (int, float)) and n >= 1 else 1e-6
    return float(tol)


def compare(claimed: Mapping[str, Any], recomputed: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per metric: claimed, recomputed, claimed - recomputed, tolerance, ok. Only metrics both sides know."""
    out = {}
    for metric in sorted(set(claimed) & set(recomputed) & set(TOLERANCES)):
        c, r = claimed[metric], recomputed[metric]
        tol = tolerance(metric, claimed)
        if c is None or r is None:
            ok, diff = c is None and r is None, None
        else:
            diff = float(c) - float(r)
            ok = math.isfinite(diff) and abs(diff) <= tol + 1e-12
        out[metric] = {
            "claimed": c,
            "recomputed": None if r is None else float(r),
            "diff": diff,
            "tolerance": tol,
            "ok": bool(ok),
        }
    return out


def _null_draws(metrics: Mapping[str, Any]) -> int:
    poisons, nulls = metrics.get("num_poisons"), metrics.get("num_nulls")
    if poisons and nulls and nulls % poisons == 0:
        return int(nulls // poisons)
    return DEFAULT_NULL_DRAWS


def verify_submission(
    stored: StoredSubmission,
    *,
    score_fn: ScoreFn | None = None,
    public_datasets: Mapping[str, str] | None = None,
    allow_local_checkpoints: bool = True,
    scoring_seed: int = DEFAULT_SCORING_SEED,
    batch_size: int = 256,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify every record of ``stored`` that names a checkpoint; return the verification document.

    ``public_datasets`` maps ``"task/attack"`` to the public dataset (Hub id or
    folder) to score on; without it the record's own ``dataset.id`` is used
    (right for a local leaderboard whose records point at local variants).
    """
    score_fn = score_fn or default_score_fn
    results = []
    for ref in stored.submission.checkpoints:
        index = ref["record"]
        record = stored.submission.records[index]
        entry: dict[str, Any] = {"record": index, "checkpoint": ref["id"], "revision": ref.get("revision")}
        key = f"{record['task']}/{record['attack']}"
        dataset = record["dataset"]["id"] if public_datasets is None else public_datasets.get(key)
        entry.update({"dataset": dataset, "config": record["dataset"].get("config")})
        if record["attack"] not in SUPPORTED_ATTACKS or dataset is None:
            entry.update(status="unsupported", error=f"no public variant or scorer for {key} yet")
            results.append(entry)
            continue
        if not allow_local_checkpoints and ref["id"].startswith(("/", ".")):
            entry.update(status="failed", error="local checkpoint paths are not accepted here; name a Hub model id")
            results.append(entry)
            continue
        try:
            recomputed = score_fn(
                ref["id"],
                dataset,
                record["dataset"]["config"],
                null_draws=_null_draws(record["metrics"]),
                seed=int(record.get("scoring", {}).get("seed", scoring_seed)),
                batch_size=batch_size,
                revision=ref.get("revision"),
            )
        except Exception as exc:  # an untrusted checkpoint may fail in any way; record why, never crash the Space
            entry.update(status="failed", error=f"could not score the checkpoint: {type(exc).__name__}: {exc}"[:500])
            results.append(entry)
            continue
        diffs = compare(record["metrics"], recomputed)
        entry["diffs"] = diffs
        if not diffs:
            entry.update(status="failed", error="the scorer returned none of the claimed metrics")
        else:
            entry["status"] = "verified" if all(d["ok"] for d in diffs.values()) else "mismatch"
        results.append(entry)
    statuses = [e["status"] for e in results]
    if not statuses:
        overall = "unsupported"
    elif all(s == "verified" for s in statuses):
        overall = "verified"
    elif "mismatch" in statuses:
        overall = "mismatch"
    elif "failed" in statuses:
        overall = "failed"
    else:
        overall = "unsupported"
    return {
        "submission": stored.id,
        "status": overall,
        "checked_at": (now or datetime.now(timezone.utc)).isoformat(timespec="microseconds"),
        "scoring_seed": scoring_seed,
        "records": results,
    }


def verify_and_store(store: LocalStore, submission_id: str, **kwargs: Any) -> dict[str, Any]:
    """Verify a stored submission and add the verification document to the store."""
    stored = store.get(submission_id)
    if stored is None:
        raise KeyError(f"no submission {submission_id!r} in {store}")
    kwargs.setdefault("allow_local_checkpoints", store.allow_local_checkpoints)
    verification = verify_submission(stored, **kwargs)
    store.add_verification(verification)
    return verification


def public_datasets_from_env(value: str | None = None) -> dict[str, str] | None:
    """``LEADERBOARD_DATASETS="cifar10/gaussian=ORG/poisoned-cifar10-gaussian,..."`` -> mapping, or None if unset."""
    value = os.environ.get("LEADERBOARD_DATASETS") if value is None else value
    if not value:
        return None
    out = {}
    for item in value.split(","):
        key, sep, repo = item.strip().partition("=")
        if not sep or key.count("/") != 1 or not repo:
            raise ValueError(f"LEADERBOARD_DATASETS item {item!r}: expected task/attack=REPO_OR_FOLDER")
        out[key] = repo
    return out
