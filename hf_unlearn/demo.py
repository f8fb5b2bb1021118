"""The demo benchmark: the paper's Gaussian-poison finding, end to end on the shipped samples.

Build a poisoned variant, train a poisoned model and a model retrained without
the poisons, score both (GUS with its interval, TPR at low FPR against fresh-noise
nulls), and write the records, a table, a log-log ROC and score histograms.
Finished steps are reused when the command is run again with the same settings.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hf_unlearn.config import PipelineConfig, to_dict
from hf_unlearn.pipeline import DATASET_REPO, build_dataset, load_splits, score_to_record, train_model
from hf_unlearn.plots import roc_plot, score_histogram
from hf_unlearn.results import write_records
from hf_unlearn.stats import Z95, wilson_interval
from hf_unlearn.train import RunOptions

METHOD_LABELS = {"none": "No unlearning", "retrain": "Retrain"}
REFERENCES = ("none", "retrain")


def default_methods() -> tuple[str, ...]:
    """The references first, then every registered unlearning method."""
    from hf_unlearn.unlearn.base import list_methods

    return REFERENCES + tuple(m for m in list_methods() if m not in REFERENCES)


def _cached(out: Path, method: str, fingerprint: str):
    """A finished method's (record, poison scores, null scores) from an earlier run, if its inputs match."""
    rec_path, npz_path = out / "records" / f"{method}.json", out / "records" / f"{method}.npz"
    if not (rec_path.exists() and npz_path.exists()):
        return None
    saved = json.loads(rec_path.read_text())
    if saved.get("fingerprint") != fingerprint:
        return None
    with np.load(npz_path, allow_pickle=False) as z:
        return saved["record"], z["poison"], z["null"]


def _save(out: Path, method: str, fingerprint: str, record: dict, poison, null) -> None:
    (out / "records").mkdir(parents=True, exist_ok=True)
    np.savez(out / "records" / f"{method}.npz", poison=poison, null=null)
    (out / "records" / f"{method}.json").write_text(json.dumps({"fingerprint": fingerprint, "record": record}))


def _rate(value: float | None) -> str:
    """A TPR, or 'n/a' when its FPR is below 1/num_nulls and cannot be resolved."""
    return "n/a" if value is None else f"{value:.3f}"


def _rate_ci(value: float | None, n: int) -> str:
    """'n/a', or the TPR with its Wilson 95% interval over the n poisons."""
    if value is None:
        return "n/a"
    lo, hi = wilson_interval(round(value * n), n)
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"


def format_table(records: list[dict[str, Any]]) -> str:
    """Markdown table of the headline numbers, one row per record, with 95% intervals."""
    head = ("| method | test acc | GUS ± s.e. | GUS 95% CI | TPR@1% [95% CI] | TPR@0.1% | AUC | compute "
            "| poisons / nulls |")
    lines = [head, "|" + " --- |" * 9]
    for r in records:
        m = r["metrics"]
        lo, hi = m["gus"] - Z95 * m["gus_stderr"], m["gus"] + Z95 * m["gus_stderr"]
        n = int(m["num_poisons"])
        lines.append(
            f"| {METHOD_LABELS.get(r['method'], r['method'])} | {m['test_accuracy']:.3f} | {m['gus']:.2f} ± {m['gus_stderr']:.2f} "
            f"| [{lo:.2f}, {hi:.2f}] | {_rate_ci(m.get('tpr_at_fpr_0.01'), n)} | {_rate(m.get('tpr_at_fpr_0.001'))} "
            f"| {m['auc']:.3f} | {r['compute_used']:.3g} | {n} / {int(m['num_nulls'])} |"
        )
    return "\n".join(lines)


def run_demo(
    cfg: PipelineConfig,
    output_dir: str = "demo_output",
    *,
    progress: bool = True,
    cpu: bool = False,
    methods: tuple[str, ...] | None = None,
    budget: float = 0.1,
) -> dict[str, Any]:
    """Run the demo; returns {"records": [...], "paths": {...}, "seconds": float}.

    ``methods`` defaults to the references plus every registered unlearning method, each
    run once (seed ``cfg.train.seed``) under ``budget`` x the poisoned model's training cost.
    """
    t0 = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))

    folder = build_dataset(cfg.source, cfg.poison, out / DATASET_REPO)
    dataset_ref = {"id": str(folder), "config": cfg.poison.name, "revision": None}
    splits = load_splits(folder, cfg.poison.name)
    print(
        f"variant {cfg.poison.name}: {len(splits['train'])} train rows, {len(splits['forget'])} poisons, "
        f"{len(splits['test'])} test rows"
    )

    methods = tuple(methods) if methods is not None else default_methods()
    fingerprint = json.dumps([to_dict(cfg), budget], sort_keys=True)
    records, curves, trained = [], {}, {}
    for role in ("poisoned", "retrain"):
        if role == "poisoned" or "retrain" in methods:
            trained[role] = train_model(
                splits, dataset_ref, cfg.train, out / "models" / role, role=role,
                options=RunOptions(progress=progress, cpu=cpu),
            )
    for method in tqdm(methods, desc="unlearn + score", disable=not progress):
        cached = _cached(out, method, fingerprint)
        if cached is None:
            if method in REFERENCES:
                role = "poisoned" if method == "none" else "retrain"
                record, scores = score_to_record(
                    trained[role].model, splits, dataset_ref=dataset_ref,
                    model_ref={"id": str(out / "models" / role), "revision": None}, method=method,
                    null_draws=cfg.scoring.null_draws, seed=cfg.train.seed, score_seed=cfg.scoring.seed,
                    compute_used=trained[role].training_cost, test_accuracy=trained[role].test_accuracy,
                )
            else:
                from hf_unlearn.unlearn.runner import unlearn_checkpoint

                outcome = unlearn_checkpoint(
                    out / "models" / "poisoned", folder, cfg.poison.name, method, budget=budget, seed=cfg.train.seed,
                    output_dir=out / "models" / method, null_draws=cfg.scoring.null_draws,
                    score_seed=cfg.scoring.seed, model=copy.deepcopy(trained["poisoned"].model),
                    summary=trained["poisoned"].summary, splits=splits, device="cpu" if cpu else None,
                )
                record, scores = outcome.record, outcome.scores
            cached = (record.to_dict(), scores.poison, scores.null.ravel())
            _save(out, method, fingerprint, *cached)
        record, poison, null = cached
        records.append(record)
        curves[METHOD_LABELS.get(method, method)] = (poison, null)

    paths = {
        "records": str(write_records(records, out / "results.jsonl")),
        "roc": roc_plot(curves, out / "roc.png", title=f"Gaussian poisons, {cfg.poison.name}"),
        "histogram": score_histogram(
            {k: v for k, v in curves.items() if k in (METHOD_LABELS["none"], METHOD_LABELS["retrain"])} or curves,
            out / "scores_hist.png", title=f"Scores, {cfg.poison.name}",
        ),
    }
    table = format_table(records)
    (out / "summary.md").write_text(f"# hf-unlearn demo: {cfg.poison.name}\n\n{table}\n")
    paths["summary"] = str(out / "summary.md")
    seconds = time.perf_counter() - t0
    print("\n" + table + "\n")
    for name, path in paths.items():
        print(f"{name:>9}: {path}")
    print(f"done in {seconds / 60:.1f} min")
    return {"records": records, "paths": paths, "seconds": seconds}
