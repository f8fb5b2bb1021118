"""The benchmark: every method x seed x budget x variant of a preset, resumable, with a report.

    from hf_unlearn.benchmark import run_benchmark
    out = run_benchmark("cpu", "runs/benchmark", seeds=[0, 1, 2], budgets=[0.02, 0.04, 0.06, 0.08, 0.1])

For each variant the dataset folder is built and the poisoned model trained once
(both reused when already there). Then each cell (variant, method, seed, budget; the
references ``none`` and ``retrain`` do not depend on the budget and run once per seed)
unlearns, scores and appends its record to ``results.jsonl`` the moment it finishes,
so a killed run restarted with the same arguments skips the finished cells. At the
end it writes ``summary.md`` / ``summary.csv`` (mean +- std over seeds), one
Figure-2-style plot per variant and a markdown ``report.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hf_unlearn.config import PRESETS_DIR, PipelineConfig, apply_overrides, from_dict, load_preset
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig

METRICS = ("test_accuracy", "gus", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001")
LABELS = {"none": "No unlearning", "retrain": "Retrain", "gd": "GD", "ngd": "NGD", "ga": "GA", "euk": "EU-k",
          "cfk": "CF-k", "scrub": "SCRUB", "neggrad_plus": "NegGrad+", "ssd": "SSD"}


# ----------------------------------------------------------------------------- presets
@dataclass
class BenchmarkConfig:
    """A benchmark preset (``configs/benchmark_<name>.yaml``)."""

    pipeline: PipelineConfig = field(default_factory=PipelineConfig)  # source, poison, training recipe, scoring
    methods: list[str] = field(default_factory=list)  # empty = every registered method
    seeds: list[int] = field(default_factory=lambda: [0])  # unlearning seeds (the poisoned model is trained once)
    budgets: list[float] = field(default_factory=lambda: [0.1])  # fractions of the training cost (paper: 0.02-0.10)
    variants: list[GaussianPoisonConfig] = field(default_factory=list)  # empty = [pipeline.poison]
    method_config: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method overrides, e.g. {gd: {lr: 0.01}}

    def __post_init__(self) -> None:
        from hf_unlearn.unlearn import build_config, get_method

        for m in self.methods:
            get_method(m)  # unknown names fail here, listing the known ones
        for m, over in self.method_config.items():
            build_config(m, over)  # unknown keys fail here, listing the valid ones
        if not self.seeds or not self.budgets:
            raise ValueError(f"seeds={self.seeds!r}, budgets={self.budgets!r}: both need at least one value")
        for b in self.budgets:
            if not (isinstance(b, (int, float)) and 0 < b <= 10):
                raise ValueError(f"budget {b!r}: budgets are fractions of the training cost in (0, 10], e.g. 0.1")


_PRESET_KEYS = ("pipeline", "set", "methods", "seeds", "budgets", "variants", "method_config")


def load_benchmark_preset(name_or_path: str | os.PathLike) -> BenchmarkConfig:
    """``cpu`` -> ``configs/benchmark_cpu.yaml``, or a YAML path. Keys: pipeline (a pipeline preset
    name/path), set (its ``section.key=value`` overrides), methods, seeds, budgets, variants, method_config."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"benchmark_{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem.removeprefix("benchmark_") for p in PRESETS_DIR.glob("benchmark_*.yaml"))
        raise FileNotFoundError(f"no benchmark preset {str(name_or_path)!r}; known presets: {known} (or pass a YAML path)")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(data) - set(_PRESET_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {path.name}; valid keys: {list(_PRESET_KEYS)}")
    pipeline = apply_overrides(load_preset(data.get("pipeline", "demo")), list(data.get("set") or []))
    base = dataclasses.asdict(pipeline.poison)
    variants = [from_dict(GaussianPoisonConfig, {**base, **v}, f"{path.name}: variants") for v in data.get("variants") or []]
    return BenchmarkConfig(
        pipeline=pipeline,
        methods=list(data.get("methods") or []),
        seeds=[int(s) for s in data.get("seeds", [0])],
        budgets=[float(b) for b in data.get("budgets", [0.1])],
        variants=variants,
        method_config={k: dict(v or {}) for k, v in (data.get("method_config") or {}).items()},
    )


# ----------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    variant: str
    method: str
    seed: int
    budget: float | None  # None for the references

    def label(self) -> str:
        b = "" if self.budget is None else f" b={self.budget:g}"
        return f"{self.variant} {self.method}{b} s={self.seed}"


def _key(config: str, method: str, seed: int, budget: float | None, method_config: Mapping[str, Any]) -> tuple:
    return (config, method, int(seed), None if budget is None else round(float(budget), 6), json.dumps(method_config, sort_keys=True))


def plan_cells(variants: Iterable[str], methods: Iterable[str], seeds: Iterable[int], budgets: Iterable[float]) -> list[Cell]:
    from hf_unlearn.unlearn import get_method
    from hf_unlearn.unlearn.runner import REFERENCE_METHODS

    methods = list(methods)
    # Retrain (a full training) runs last within each seed, so the cheap results come first.
    methods = [m for m in methods if m != "retrain"] + [m for m in methods if m == "retrain"]
    cells = []
    for v in variants:
        for s in seeds:
            for m in methods:
                get_method(m)
                for b in [None] if m in REFERENCE_METHODS else budgets:
                    cells.append(Cell(v, m, int(s), b))
    return cells


@dataclass
class BenchmarkResult:
    records: list[dict[str, Any]]
    ran: list[Cell]  # cells computed in this call
    skipped: list[Cell]  # cells found finished in results.jsonl
    table: str
    paths: dict[str, str]


def run_benchmark(
    preset: str | os.PathLike | BenchmarkConfig = "cpu",
    output_dir: str | os.PathLike = "runs/benchmark",
    *,
    seeds: list[int] | None = None,
    budgets: list[float] | None = None,
    methods: list[str] | None = None,
    pipeline_overrides: list[str] | None = None,
    method_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    cpu: bool = False,
    channels_last: bool = False,
    on_cell: Callable[[Cell, dict[str, Any]], None] | None = None,
) -> BenchmarkResult:
    """Run (or resume) a benchmark preset; ``seeds``/``budgets``/``methods`` replace the preset's lists.

    ``on_cell(cell, record)`` is called after each finished cell's record is appended.
    ``channels_last`` (NHWC) applies to training and unlearning; off by default (see ``RunOptions``).
    """
    from hf_unlearn.pipeline import DATASET_REPO, build_dataset, load_splits, train_model
    from hf_unlearn.results import append_record, read_records
    from hf_unlearn.train import RunOptions, load_checkpoint
    from hf_unlearn.unlearn import build_config, list_methods
    from hf_unlearn.unlearn.runner import unlearn_checkpoint

    cfg = preset if isinstance(preset, BenchmarkConfig) else load_benchmark_preset(preset)
    if pipeline_overrides:
        cfg = dataclasses.replace(cfg, pipeline=apply_overrides(cfg.pipeline, list(pipeline_overrides)))
    cfg = dataclasses.replace(
        cfg,
        seeds=list(seeds) if seeds else cfg.seeds,
        budgets=[float(b) for b in budgets] if budgets else cfg.budgets,
        methods=list(methods) if methods else (cfg.methods or list_methods()),
        method_config={**cfg.method_config, **{k: dict(v) for k, v in (method_overrides or {}).items()}},
    )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    device = "cpu" if cpu else None
    variants = cfg.variants or [cfg.pipeline.poison]
    method_cfgs = {m: dataclasses.asdict(build_config(m, cfg.method_config.get(m), yaml_path="preset")) for m in cfg.methods}
    (out / "benchmark_config.json").write_text(json.dumps(
        {**dataclasses.asdict(cfg), "method_config": method_cfgs}, indent=2, default=str))

    existing = read_records(results_path) if results_path.exists() else []
    done = {_key(r.dataset["config"], r.method, r.seed, r.budget_fraction, r.method_config) for r in existing}
    cells = plan_cells([v.name for v in variants], cfg.methods, cfg.seeds, cfg.budgets)
    todo = [c for c in cells if _key(c.variant, c.method, c.seed, c.budget, method_cfgs[c.method]) not in done]
    skipped = [c for c in cells if c not in todo]
    print(f"benchmark: {len(cells)} cells, {len(skipped)} already in {results_path}, {len(todo)} to run")

    training_costs: dict[str, float] = {}
    ran: list[Cell] = []
    for variant in variants:
        folder = out / DATASET_REPO
        if not (folder / "data" / variant.name).exists():
            build_dataset(cfg.pipeline.source, variant, folder)
        dataset_ref = {"id": str(folder), "config": variant.name, "revision": None}
        model_dir = out / "models" / variant.name / "poisoned"
        mine = [c for c in todo if c.variant == variant.name]
        splits = load_splits(folder, variant.name)
        trained = train_model(splits, dataset_ref, cfg.pipeline.train, model_dir, role="poisoned",
                              options=RunOptions(progress=progress, cpu=cpu, channels_last=channels_last))
        training_costs[variant.name] = trained.training_cost
        if not mine:
            continue
        model, summary = load_checkpoint(str(model_dir))
        for cell in mine:
            t0 = time.perf_counter()
            outcome = unlearn_checkpoint(
                model_dir, folder, variant.name, cell.method, budget=cell.budget or 1.0, seed=cell.seed,
                overrides=cfg.method_config.get(cell.method), null_draws=cfg.pipeline.scoring.null_draws,
                score_seed=cfg.pipeline.scoring.seed, output_dir=out / "models" / variant.name / _cell_dir(cell),
                retrain_dir=out / "models" / variant.name / f"retrain-s{cell.seed}" if cell.method == "retrain" else None,
                device=device, progress=progress, model=model, summary=summary, splits=splits,
                channels_last=channels_last,
            )
            record = outcome.record.to_dict()
            append_record(record, results_path)  # finished cells survive a kill
            ran.append(cell)
            m = record["metrics"]
            print(f"[{len(skipped) + len(ran)}/{len(cells)}] {cell.label()}: test {m['test_accuracy']:.3f}, "
                  f"GUS {m['gus']:.2f}, TPR@1% {_num(m.get('tpr_at_fpr_0.01'))}, compute {record['compute_used']:.4g} "
                  f"({record['compute_used'] / trained.training_cost:.3f} of training), {time.perf_counter() - t0:.1f} s",
                  flush=True)
            if on_cell is not None:
                on_cell(cell, record)

    records = [r.to_dict() for r in read_records(results_path)]
    wanted = {_key(c.variant, c.method, c.seed, c.budget, method_cfgs[c.method]) for c in cells}
    records = [r for r in records if _key(r["dataset"]["config"], r["method"], r["seed"], r["budget_fraction"], r["method_config"]) in wanted]
    paths = write_report(records, out, training_costs=training_costs, title=f"hf-unlearn benchmark ({_preset_name(preset)})")
    return BenchmarkResult(records, ran, skipped, (out / "summary.md").read_text(), paths)


def _num(value: float | None) -> str:
    return "n/a (too few nulls)" if value is None else f"{value:.3f}"


def _cell_dir(cell: Cell) -> str:
    from hf_unlearn.unlearn.runner import cell_name

    return cell_name(cell.method, cell.budget, cell.seed)


def _preset_name(preset) -> str:
    return "custom" if isinstance(preset, BenchmarkConfig) else str(preset)


# ----------------------------------------------------------------------------- summary
def summarize(records: Iterable[Mapping[str, Any]], training_costs: Mapping[str, float] | None = None):
    """DataFrame: one row per (variant, method, budget) with mean and std over seeds of the headline numbers."""
    import numpy as np
    import pandas as pd

    rows = []
    for r in records:
        m = r["metrics"]
        cost = (training_costs or {}).get(r["dataset"]["config"])
        rows.append({
            "variant": r["dataset"]["config"], "method": r["method"], "budget": r["budget_fraction"], "seed": r["seed"],
            **{k: np.nan if m.get(k) is None else float(m[k]) for k in METRICS},
            "compute_used": float(r["compute_used"]),
            "compute_fraction": float(r["compute_used"]) / cost if cost else np.nan,
        })
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    df["budget"] = df["budget"].astype(object).where(df["budget"].notna(), "-")
    order = {m: i for i, m in enumerate(LABELS)}
    stats = df.groupby(["variant", "method", "budget"], sort=False).agg(
        n=("seed", "nunique"),
        **{f"{k}_{s}": (k, s) for k in (*METRICS, "compute_used", "compute_fraction") for s in ("mean", "std")},
    ).reset_index()
    stats["_order"] = stats["method"].map(lambda m: order.get(m, len(order)))
    stats = stats.sort_values(["variant", "_order", "budget"], key=lambda s: s.astype(str) if s.name == "budget" else s)
    return stats.drop(columns="_order").reset_index(drop=True)


def _pm(mean: float, std: float, digits: int = 3) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_summary(stats) -> str:
    """Markdown table: mean ± std over seeds (one seed: the mean alone)."""
    head = ("| variant | method | budget | seeds | test acc | GUS | TPR@1% | TPR@0.1% | compute (fwd-eq.) | compute / training |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [head]
    for _, r in stats.iterrows():
        lines.append(
            f"| {r['variant']} | {LABELS.get(r['method'], r['method'])} | {r['budget']} | {r['n']} "
            f"| {_pm(r['test_accuracy_mean'], r['test_accuracy_std'])} | {_pm(r['gus_mean'], r['gus_std'], 2)} "
            f"| {_pm(r['tpr_at_fpr_0.01_mean'], r['tpr_at_fpr_0.01_std'])} "
            f"| {_pm(r['tpr_at_fpr_0.001_mean'], r['tpr_at_fpr_0.001_std'])} "
            f"| {r['compute_used_mean']:.4g} | {_pm(r['compute_fraction_mean'], r['compute_fraction_std'])} |"
        )
    return "\n".join(lines)


def figure(stats, variant: str, path: str | os.PathLike, fpr: float = 0.01) -> str:
    """Figure 2 of the paper: per method, test accuracy and TPR@FPR=0.01 bars (± std over seeds), one panel per
    budget; No unlearning as solid lines, the FPR level as a dashed line (where perfect unlearning sits)."""
    from hf_unlearn.plots import _pyplot

    plt = _pyplot()
    sub = stats[stats["variant"] == variant]
    ref = sub[sub["method"] == "none"]
    budgets = [b for b in sub["budget"].unique() if b != "-"] or ["-"]
    fig, axes = plt.subplots(1, len(budgets), figsize=(max(5.0, 0.7 * len(sub["method"].unique()) + 2) * len(budgets), 3.8),
                             squeeze=False, sharey=True)
    for ax, budget in zip(axes[0], budgets):
        rows = sub[(sub["method"] != "none") & ((sub["budget"] == budget) | (sub["method"] == "retrain"))]
        x = range(len(rows))
        w = 0.38
        ax.bar([i - w / 2 for i in x], rows["test_accuracy_mean"], w, yerr=rows["test_accuracy_std"].fillna(0),
               color="tab:blue", capsize=3, label="test accuracy")
        ax.bar([i + w / 2 for i in x], rows["tpr_at_fpr_0.01_mean"], w, yerr=rows["tpr_at_fpr_0.01_std"].fillna(0),
               color="tab:orange", capsize=3, label="TPR @ FPR=0.01")
        if len(ref):
            ax.axhline(float(ref["test_accuracy_mean"].iloc[0]), color="tab:blue", lw=1.2, label="No unlearning: accuracy")
            ax.axhline(float(ref["tpr_at_fpr_0.01_mean"].iloc[0]), color="tab:orange", lw=1.5, label="No unlearning: TPR")
        ax.axhline(fpr, color="tab:orange", lw=1.2, ls="--", label=f"FPR = {fpr:g} (perfect unlearning)")
        ax.set_xticks(list(x), [LABELS.get(m, m) for m in rows["method"]], rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{variant}, budget {budget}" if budget != "-" else variant, fontsize=9)
    axes[0][0].set_ylabel("mean ± std over seeds")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)


def write_report(records: list[dict[str, Any]], output_dir: str | os.PathLike, *,
                 training_costs: Mapping[str, float] | None = None, title: str = "hf-unlearn benchmark") -> dict[str, str]:
    """summary.csv, summary.md, one figure per variant and report.md from the records."""
    import torch

    out = Path(output_dir)
    stats = summarize(records, training_costs)
    paths: dict[str, str] = {"records": str(out / "results.jsonl")}
    if stats.empty:
        (out / "summary.md").write_text("no records\n")
        return {**paths, "summary": str(out / "summary.md")}
    stats.to_csv(out / "summary.csv", index=False)
    table = format_summary(stats)
    (out / "summary.md").write_text(table + "\n")
    paths.update(summary=str(out / "summary.md"), csv=str(out / "summary.csv"))
    figures = []
    for variant in stats["variant"].unique():
        figures.append(figure(stats, variant, out / f"figure_{variant}.png"))
        paths[f"figure_{variant}"] = figures[-1]
    seeds = sorted({r["seed"] for r in records})
    versions = records[0].get("versions", {})
    report = [
        f"# {title}", "",
        f"{len(records)} records, seeds {seeds}. Mean ± sample std over seeds (one seed: the value alone).",
        "Compute is counted in forward-equivalents per example (forward 1, forward+backward 3); each method",
        "stops before the first step that would exceed `budget x training cost`. No unlearning and Retrain are",
        "references: not budgeted, Retrain's compute is one more full training. TPR@1% near 0.01 means the",
        "poisons are indistinguishable from fresh noise (perfect unlearning); GUS near 0 likewise.", "",
        table, "",
        *[f"![{Path(f).stem}]({Path(f).name})" for f in figures], "",
        "## Environment", "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        f"- accelerator: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (CPU)'}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}",
        f"- training cost per variant (forward-equivalents): {dict(training_costs or {})}", "",
    ]
    (out / "report.md").write_text("\n".join(report))
    paths["report"] = str(out / "report.md")
    return paths
