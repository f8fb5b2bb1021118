"""The demo benchmark: the paper's Gaussian-poison finding, end to end on the shipped samples.

Build a poisoned variant, train a poisoned model and a model retrained without
the poisons, score both (GUS with its interval, TPR at low FPR against fresh-noise
nulls), and write the records, a table, a log-log ROC and score histograms.
Finished steps are reused when the command is run again with the same settings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hf_unlearn.config import PipelineConfig, to_dict
from hf_unlearn.pipeline import DATASET_REPO, build_dataset, load_splits, score_to_record, train_model
from hf_unlearn.plots import roc_plot, score_histogram
from hf_unlearn.results import write_records
from hf_unlearn.train import RunOptions

METHOD_LABELS = {"none": "No unlearning", "retrain": "Retrain"}


def _rate(value: float | None) -> str:
    """A TPR, or 'n/a' when its FPR is below 1/num_nulls and cannot be resolved."""
    return "n/a" if value is None else f"{value:.3f}"


def format_table(records: list[dict[str, Any]]) -> str:
    """Markdown table of the headline numbers, one row per record."""
    head = "| method | test acc | GUS ± s.e. | GUS 95% CI | TPR@1% | TPR@0.1% | AUC | compute | nulls |"
    lines = [head, "|" + " --- |" * 9]
    for r in records:
        m = r["metrics"]
        lo, hi = m["gus"] - 1.96 * m["gus_stderr"], m["gus"] + 1.96 * m["gus_stderr"]
        lines.append(
            f"| {METHOD_LABELS.get(r['method'], r['method'])} | {m['test_accuracy']:.3f} | {m['gus']:.2f} ± {m['gus_stderr']:.2f} "
            f"| [{lo:.2f}, {hi:.2f}] | {_rate(m.get('tpr_at_fpr_0.01'))} | {_rate(m.get('tpr_at_fpr_0.001'))} "
            f"| {m['auc']:.3f} | {r['compute_used']:.3g} | {int(m['num_nulls'])} |"
        )
    return "\n".join(lines)


def run_demo(cfg: PipelineConfig, output_dir: str = "demo_output", *, progress: bool = True, cpu: bool = False) -> dict[str, Any]:
    """Run the demo; returns {"records": [...], "paths": {...}, "seconds": float}."""
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

    records, curves = [], {}
    for method, role in (("none", "poisoned"), ("retrain", "retrain")):
        model_dir = out / "models" / role
        result = train_model(
            splits, dataset_ref, cfg.train, model_dir, role=role, options=RunOptions(progress=progress, cpu=cpu)
        )
        record, scores = score_to_record(
            result.model,
            splits,
            dataset_ref=dataset_ref,
            model_ref={"id": str(model_dir), "revision": None},
            method=method,
            null_draws=cfg.scoring.null_draws,
            seed=cfg.train.seed,
            score_seed=cfg.scoring.seed,
            compute_used=result.training_cost,
            test_accuracy=result.test_accuracy,
        )
        records.append(record.to_dict())
        curves[METHOD_LABELS[method]] = (scores.poison, scores.null.ravel())

    paths = {
        "records": str(write_records(records, out / "results.jsonl")),
        "roc": roc_plot(curves, out / "roc.png", title=f"Gaussian poisons, {cfg.poison.name}"),
        "histogram": score_histogram(curves, out / "scores_hist.png", title=f"Scores, {cfg.poison.name}"),
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
