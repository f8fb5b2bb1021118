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
from hf_unlearn.pipeline import build_dataset, dataset_repo, load_splits, score_to_record, train_model
from hf_unlearn.plots import roc_plot, score_histogram
from hf_unlearn.results import write_records
from hf_unlearn.stats import MIN_NULLS_ABOVE, Z95, is_unstable, summarize, wilson_interval
from hf_unlearn.train import RunOptions

METHOD_LABELS = {"none": "No unlearning", "retrain": "Retrain"}
REFERENCES = ("none", "retrain")


def default_methods() -> tuple[str, ...]:
    """The references first, then every registered unlearning method."""
    from hf_unlearn.unlearn.base import list_methods

    return REFERENCES + tuple(m for m in list_methods() if m not in REFERENCES)


def _method_fingerprint(run: str, method: str) -> str:
    """The run's fingerprint plus the method's resolved config (defaults + preset YAML), so a changed method
    default or preset never serves a stale cached result."""
    if method in REFERENCES:
        return run
    import dataclasses

    from hf_unlearn.unlearn import build_config

    return json.dumps([run, dataclasses.asdict(build_config(method, yaml_path="preset"))], sort_keys=True, default=str)


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


UNSTABLE_MARK = "†"


def _interval(value: float | None, lo: float | None, hi: float | None, mark: str = "") -> str:
    """'n/a' (FPR below 1/num_nulls), or the TPR with its 95% interval and an optional mark."""
    if value is None:
        return "n/a"
    if lo is None or hi is None:
        return f"{value:.2f}{mark}"
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]{mark}"


def _low_fpr_cells(metrics: dict[str, Any], summary: dict[str, Any] | None, a: str) -> tuple[str, str]:
    """(empirical, exact) cells for FPR ``a``: each TPR with its 95% interval; the empirical one marked
    UNSTABLE_MARK when a x num_nulls < stats.MIN_NULLS_ABOVE.

    Values come from the scores' summary when the demo has it, else from the record (older records
    lack the exact TPR and the finite-null interval: the exact cell is then '-').
    """
    n_poisons, n_nulls = int(metrics["num_poisons"]), int(metrics["num_nulls"])
    mark = UNSTABLE_MARK if is_unstable(float(a), n_nulls) else ""
    if summary is not None:
        emp, ci = summary[f"tpr_at_fpr_{a}"], summary[f"tpr_at_fpr_{a}_ci95"] or (None, None)
        exact, exact_ci = summary[f"tpr_at_fpr_{a}_exact"], summary[f"tpr_at_fpr_{a}_exact_ci95"]
    else:
        emp, ci = metrics.get(f"tpr_at_fpr_{a}"), (metrics.get(f"tpr_at_fpr_{a}_ci95_lo"), metrics.get(f"tpr_at_fpr_{a}_ci95_hi"))
        exact = metrics.get(f"tpr_at_fpr_{a}_exact")
        exact_ci = None if exact is None else wilson_interval(round(exact * n_poisons), n_poisons)
    exact_cell = "-" if exact is None else _interval(exact, *exact_ci)
    return _interval(emp, *ci, mark=mark), exact_cell


def format_table(records: list[dict[str, Any]], summaries: dict[str, dict[str, Any]] | None = None) -> str:
    """Markdown table of the headline numbers, one row per record, with 95% intervals.

    TPR@a is shown twice: at the empirical null threshold (interval widened for the finite null,
    UNSTABLE_MARK when a x num_nulls < 10) and at the exact N(0, 1) threshold Phi^-1(1 - a)
    (Wilson interval): docs/statistics.md. ``summaries`` maps a method to stats.summarize of its
    scores; without it the numbers come from the records.
    """
    summaries = summaries or {}
    if not all("gus" in r["metrics"] for r in records):
        return _metrics_table(records)
    head = ("| method | test acc | GUS ± s.e. | GUS 95% CI | TPR@1% empirical [95% CI] | TPR@1% exact [95% CI] "
            "| TPR@0.1% empirical [95% CI] | TPR@0.1% exact [95% CI] | AUC | compute | poisons / nulls |")
    lines = [head, "|" + " --- |" * 11]
    any_unstable = False
    for r in records:
        m = r["metrics"]
        lo, hi = m["gus"] - Z95 * m["gus_stderr"], m["gus"] + Z95 * m["gus_stderr"]
        cells = [c for a in ("0.01", "0.001") for c in _low_fpr_cells(m, summaries.get(r["method"]), a)]
        any_unstable |= any(c.endswith(UNSTABLE_MARK) for c in cells)
        lines.append(
            f"| {METHOD_LABELS.get(r['method'], r['method'])} | {m['test_accuracy']:.3f} | {m['gus']:.2f} ± {m['gus_stderr']:.2f} "
            f"| [{lo:.2f}, {hi:.2f}] | {' | '.join(cells)} "
            f"| {m['auc']:.3f} | {r['compute_used']:.3g} | {int(m['num_poisons'])} / {int(m['num_nulls'])} |"
        )
    lines.append("")
    lines.append(
        "Empirical: threshold from the null scores, interval widened for where that threshold could be. "
        "Exact: threshold Phi^-1(1 - a) of the N(0, 1) null, Wilson interval. n/a: FPR below 1/nulls."
    )
    if any_unstable:
        lines.append(
            f"{UNSTABLE_MARK} unstable: fewer than {MIN_NULLS_ABOVE} null scores expected above the threshold "
            "(FPR x nulls < 10); read the exact column."
        )
    return "\n".join(lines)


def _metrics_table(records: list[dict[str, Any]]) -> str:
    """Markdown table of every metric the records carry (attacks without Gaussian scores)."""
    keys = list(dict.fromkeys(k for r in records for k in r["metrics"]))
    lines = ["| method | " + " | ".join(keys) + " | compute |", "|" + " --- |" * (len(keys) + 2)]
    for r in records:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in (r["metrics"].get(k) for k in keys)]
        lines.append(f"| {METHOD_LABELS.get(r['method'], r['method'])} | {' | '.join(cells)} | {r['compute_used']:.3g} |")
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

    task, attack = cfg.task, cfg.attack
    folder = build_dataset(cfg.source, cfg.poison, out / dataset_repo(task, attack), task=task, attack=attack)
    dataset_ref = {"id": str(folder), "config": cfg.poison.name, "revision": None}
    splits = load_splits(folder, cfg.poison.name, task=task, attack=attack)
    print(
        f"variant {cfg.poison.name}: {len(splits['train'])} train rows, {len(splits['forget'])} poisons, "
        f"{len(splits['test'])} test rows"
    )

    methods = tuple(methods) if methods is not None else default_methods()
    fingerprint = json.dumps([to_dict(cfg), budget], sort_keys=True)
    records, curves, summaries, trained = [], {}, {}, {}
    for role in ("poisoned", "retrain"):
        if role == "poisoned" or "retrain" in methods:
            trained[role] = train_model(
                splits, dataset_ref, cfg.train, out / "models" / role, role=role,
                options=RunOptions(progress=progress, cpu=cpu), task=task,
            )
    for method in tqdm(methods, desc="unlearn + score", disable=not progress):
        cached = _cached(out, method, _method_fingerprint(fingerprint, method))
        if cached is None:
            if method in REFERENCES:
                role = "poisoned" if method == "none" else "retrain"
                record, scores = score_to_record(
                    trained[role].model, splits, dataset_ref=dataset_ref,
                    model_ref={"id": str(out / "models" / role), "revision": None}, method=method,
                    null_draws=cfg.scoring.null_draws, seed=cfg.train.seed, score_seed=cfg.scoring.seed,
                    compute_used=trained[role].training_cost, test_accuracy=trained[role].test_accuracy,
                    task=task, attack=attack,
                )
            else:
                from hf_unlearn.unlearn.runner import unlearn_checkpoint

                outcome = unlearn_checkpoint(
                    out / "models" / "poisoned", folder, cfg.poison.name, method, budget=budget, seed=cfg.train.seed,
                    overrides=cfg.method_config.get(method), output_dir=out / "models" / method, null_draws=cfg.scoring.null_draws,
                    score_seed=cfg.scoring.seed, model=copy.deepcopy(trained["poisoned"].model),
                    summary=trained["poisoned"].summary, splits=splits, device="cpu" if cpu else None,
                    task=task, attack=attack,
                )
                record, scores = outcome.record, outcome.scores
            # Attacks without per-poison scores (e.g. targeted) keep empty arrays: no curves, metrics only.
            poison, null = (scores.poison, scores.null.ravel()) if scores is not None else (np.empty(0), np.empty(0))
            cached = (record.to_dict(), poison, null)
            _save(out, method, _method_fingerprint(fingerprint, method), *cached)
        record, poison, null = cached
        records.append(record)
        if len(poison):
            curves[METHOD_LABELS.get(method, method)] = (poison, null)
            summaries[method] = summarize(poison, null)  # both TPRs with intervals, from the scores themselves

    paths = {"records": str(write_records(records, out / "results.jsonl"))}
    if curves:
        paths["roc"] = roc_plot(curves, out / "roc.png", title=f"{attack.capitalize()} poisons, {cfg.poison.name}")
        paths["histogram"] = score_histogram(
            {k: v for k, v in curves.items() if k in (METHOD_LABELS["none"], METHOD_LABELS["retrain"])} or curves,
            out / "scores_hist.png", title=f"Scores, {cfg.poison.name}",
        )
    table = format_table(records, summaries)
    (out / "summary.md").write_text(f"# hf-unlearn demo: {cfg.poison.name}\n\n{table}\n")
    paths["summary"] = str(out / "summary.md")
    seconds = time.perf_counter() - t0
    print("\n" + table + "\n")
    for name, path in paths.items():
        print(f"{name:>9}: {path}")
    print(f"done in {seconds / 60:.1f} min")
    return {"records": records, "paths": paths, "seconds": seconds}
