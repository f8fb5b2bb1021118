"""The benchmark: every method x seed x budget x variant of a preset, resumable, with a report.

    from hf_unlearn.benchmark import run_benchmark
    out = run_benchmark("cpu", "runs/benchmark", seeds=[0, 1, 2], budgets=[0.02, 0.04, 0.06, 0.08, 0.1])

For each variant the dataset folder is built and the poisoned model trained once
(both reused when already there). Then each cell (variant, method, seed, budget; the
references ``none`` and ``retrain`` do not depend on the budget and run once per seed)
unlearns, scores and appends its record to ``results.jsonl`` the moment it finishes,
so a killed run restarted with the same arguments skips the finished cells. At the
end it writes ``summary.md`` / ``summary.csv`` (mean +- std over seeds), one
Figure-2-style plot per variant (and a Figure-8-style budget sweep when there are
several budgets) and a markdown ``report.md``.

Tuning (``tune=True``, the paper's protocol, declared before the results): each
method's ``grid:`` (``configs/methods/<method>.yaml``) runs once per (variant, method,
tuning budget) on the tuning seed, every grid cell is recorded in ``tuning.jsonl``, and
one setting is selected by :func:`select_setting` from data the method may see: a
seeded validation slice held out of the retain set (``validation_fraction``, never
given to any method while tuning is on) and the forget set's GUS. The sweep then runs
at the selected setting. Tuning compute is reported apart from the budget.

Spreading the cells (``hf_unlearn.shards``): every process computes the same plan and runs
the share :func:`shard_cells` gives it, so nothing coordinates them but files and locks.

    accelerate launch --multi_gpu --num_processes 8 -m hf_unlearn.cli benchmark --preset paper  # a GPU each
    hf-unlearn benchmark --preset paper --shard $SLURM_ARRAY_TASK_ID/16  # sbatch --array=0-15
    hf-unlearn benchmark --preset paper --stage merge                    # any time: merge, report

Each shard appends to its own ``results.shard-K-of-N.jsonl``; the last shard to finish (or
``stage="merge"``) merges them into one validated ``results.jsonl`` and writes the report.
With tuning, the grid cells are shared out too (a shard also runs grid cells whose owner has
not started, so a throttled array never deadlocks) and every shard selects from the complete
grid. Two-stage usage, so that no sweep job waits on grid cells: ``--stage tune`` as one job
array, then the same command without it as a second array that depends on the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hf_unlearn.config import PRESETS_DIR, PipelineConfig, apply_overrides, from_dict, load_preset
from hf_unlearn.fileio import write_text_atomic

if TYPE_CHECKING:
    from hf_unlearn.shards import Shard

# The selection rule's tolerance: a setting qualifies if its validation-slice accuracy is at
# most this far below the poisoned model's (2 points, fixed before any result).
TUNING_ACCURACY_TOLERANCE = 0.02
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
    variants: list[Any] = field(default_factory=list)  # the attack's variant configs; empty = [pipeline.poison]
    method_config: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method overrides, e.g. {gd: {lr: 0.01}}
    tune: bool = False  # run each method's grid and select a setting (module docstring)
    tune_at_budget: float | None = None  # tune once at this budget and use the selection for every budget; None: per budget
    tune_seed: int | None = None  # the seed the grid runs on; None: the first of ``seeds``
    validation_fraction: float = 0.05  # retain rows held out of unlearning for the selection (only when tuning)
    # Per-method tuning grids replacing configs/methods/<method>.yaml's ``grid:`` for this preset: a task
    # whose models train differently (GPT-2 with AdamW, weights of scale 0.02) needs other ranges than
    # ResNet-18 with SGD; a method not named here keeps its YAML grid.
    grids: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from hf_unlearn.unlearn import build_config, get_method
        from hf_unlearn.unlearn.base import expand_grid

        for m in self.methods:
            get_method(m)  # unknown names fail here, listing the known ones
        for m, grid in self.grids.items():
            get_method(m)
            expand_grid(m, grid, preset=self.method_config.get(m), where=f"grids.{m}")  # bad keys/types fail before any run
        for m, over in self.method_config.items():
            build_config(m, over)  # unknown keys fail here, listing the valid ones
        if not self.seeds or not self.budgets:
            raise ValueError(f"seeds={self.seeds!r}, budgets={self.budgets!r}: both need at least one value")
        for b in self.budgets:
            if not (isinstance(b, (int, float)) and 0 < b <= 10):
                raise ValueError(f"budget {b!r}: budgets are fractions of the training cost in (0, 10], e.g. 0.1")
        if self.tune_at_budget is not None and not 0 < self.tune_at_budget <= 10:
            raise ValueError(f"tune_at_budget={self.tune_at_budget!r}: a fraction of the training cost in (0, 10], e.g. 0.1")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction!r}: a fraction in (0, 1), e.g. 0.05")


_PRESET_KEYS = ("pipeline", "set", "methods", "seeds", "budgets", "variants", "method_config", "method_config_from",
                "tune", "tune_at_budget", "tune_seed", "validation_fraction", "grids")


def _preset_path(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"benchmark_{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem.removeprefix("benchmark_") for p in PRESETS_DIR.glob("benchmark_*.yaml"))
        raise FileNotFoundError(f"no benchmark preset {str(name_or_path)!r}; known presets: {known} (or pass a YAML path)")
    return path


def _check_preset_keys(data: Mapping[str, Any], path: Path) -> None:
    unknown = sorted(set(data) - set(_PRESET_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {path.name}; valid keys: {list(_PRESET_KEYS)}")


def _method_config(data: Mapping[str, Any], path: Path, seen: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    """The preset's per-method settings, on top of those of the preset ``method_config_from`` names.

    Why: presets that run the same methods on different variants must share one setting per method (the crafted
    CIFAR-10 presets all use the cpu-fidelity selection); naming the source keeps the settings in one file instead
    of copies a reader has to compare. A preset's own ``method_config`` overrides the inherited one key by key.
    A relative YAML path is read from the referencing preset's folder, as a preset's author would expect.
    """
    own = {k: dict(v or {}) for k, v in (data.get("method_config") or {}).items()}
    source = data.get("method_config_from")
    if source is None:
        return own
    where = f"{path.name}: method_config_from {source!r}"
    src = Path(str(source))
    if src.suffix:  # a YAML path; a bare name is a packaged preset
        src = path.parent / src  # an absolute src stays itself
    try:
        src_path = _preset_path(src)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{where}: {err}") from None
    if src_path.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, src_path.resolve()))
        raise ValueError(f"{where} forms a cycle ({chain}); point it at a preset that sets method_config itself")
    src_data = yaml.safe_load(src_path.read_text()) or {}
    try:
        _check_preset_keys(src_data, src_path)
        from hf_unlearn.unlearn import build_config

        for method, over in (src_data.get("method_config") or {}).items():
            build_config(method, dict(over or {}))  # a bad inherited setting names the file it is in
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    inherited = _method_config(src_data, src_path, (*seen, src_path.resolve()))
    return {m: {**inherited.get(m, {}), **own.get(m, {})} for m in {**inherited, **own}}


def load_benchmark_preset(name_or_path: str | os.PathLike) -> BenchmarkConfig:
    """``cpu`` -> ``configs/benchmark_cpu.yaml``, or a YAML path. Keys: pipeline (a pipeline preset
    name/path), set (its ``section.key=value`` overrides), methods, seeds, budgets, variants, method_config,
    method_config_from (another preset whose method_config this one starts from), tune, tune_at_budget,
    tune_seed, validation_fraction, grids (per-method tuning grids for this preset)."""
    path = _preset_path(name_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    _check_preset_keys(data, path)
    pipeline = apply_overrides(load_preset(data.get("pipeline", "demo")), list(data.get("set") or []))
    base = dataclasses.asdict(pipeline.poison)
    variants = [from_dict(type(pipeline.poison), {**base, **v}, f"{path.name}: variants") for v in data.get("variants") or []]
    return BenchmarkConfig(
        pipeline=pipeline,
        methods=list(data.get("methods") or []),
        seeds=[int(s) for s in data.get("seeds", [0])],
        budgets=[float(b) for b in data.get("budgets", [0.1])],
        variants=variants,
        method_config=_method_config(data, path, (path.resolve(),)),
        tune=bool(data.get("tune", False)),
        tune_at_budget=None if data.get("tune_at_budget") is None else float(data["tune_at_budget"]),
        tune_seed=None if data.get("tune_seed") is None else int(data["tune_seed"]),
        validation_fraction=float(data.get("validation_fraction", 0.05)),
        grids={k: dict(v or {}) for k, v in (data.get("grids") or {}).items()},
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


def _key(config: str, method: str, seed: int, budget: float | None, method_config: Mapping[str, Any],
         tuned: bool = False) -> tuple:
    return (config, method, int(seed), None if budget is None else round(float(budget), 6),
            json.dumps(method_config, sort_keys=True), bool(tuned))


def _record_key(r: Mapping[str, Any]) -> tuple:
    return _key(r["dataset"]["config"], r["method"], r["seed"], r["budget_fraction"], r["method_config"], bool(r.get("tuning")))


# ----------------------------------------------------------------------------- tuning
def select_setting(cells: list[Mapping[str, float]], original_accuracy: float,
                   tolerance: float = TUNING_ACCURACY_TOLERANCE) -> int:
    """The index of the selected grid cell; each cell has ``validation_accuracy`` and ``gus`` (or,
    for attacks without a Gaussian score, ``evidence``: see ``poison_evidence``).

    The rule (fixed before any result, docs/unlearning.md "Tuning"): among cells whose
    validation-slice accuracy is at least ``original_accuracy - tolerance``, the one with
    the least poison evidence (|GUS|: the null is 0, and a large negative GUS is as detectable
    as a large positive one), ties broken by the higher validation accuracy, then grid order;
    if no cell qualifies, the one with the highest validation accuracy (then grid order).
    Only data a method may see enter: the retain slice it was denied and the forget set.
    """
    if not cells:
        raise ValueError("select_setting needs at least one grid cell")
    ok = [i for i, c in enumerate(cells) if c["validation_accuracy"] >= original_accuracy - tolerance - 1e-12]
    if ok:
        return min(ok, key=lambda i: (_evidence(cells[i]), -cells[i]["validation_accuracy"], i))
    return min(range(len(cells)), key=lambda i: (-cells[i]["validation_accuracy"], i))


def poison_evidence(metrics: Mapping[str, Any]) -> float:
    """What tuning minimises, from data a method may see: |GUS| on the forget set for Gaussian poisons;
    otherwise the accuracy on the forget set with the labels it was trained on (for the trigger attack
    the flipped labels: how much of the poisoning the model still reproduces). The trigger's own
    success is measured on test reviews, which tuning must not look at."""
    if metrics.get("gus") is not None:
        return abs(float(metrics["gus"]))
    if metrics.get("forget_accuracy") is not None:
        return float(metrics["forget_accuracy"])
    raise ValueError(f"no poison evidence in metrics {sorted(metrics)}: need 'gus' or 'forget_accuracy'")


def _evidence(cell: Mapping[str, Any]) -> float:
    return float(cell["evidence"]) if "evidence" in cell else abs(float(cell["gus"]))


def grid_name(method: str, grid: list[dict[str, Any]]) -> str:
    """``"ga: lr in [1e-05, 0.0001, 0.001] (3 cells)"``: the grid as recorded in every tuning record."""
    keys = list(grid[0]) if grid else []
    parts = [f"{k} in {list(dict.fromkeys(c[k] for c in grid))}" for k in keys]
    return f"{method}: {' x '.join(parts) or 'preset'} ({len(grid)} cells)"


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
    skipped: list[Cell]  # cells found finished (in results.jsonl or any shard's file)
    table: str
    paths: dict[str, str]
    shard: str = "0/1"  # which shard this call ran (K/N)
    missing: list[Cell] = field(default_factory=list)  # planned cells with no record yet (other shards', or busy)
    busy: list[Cell] = field(default_factory=list)  # this shard's cells another process was computing
    merged: bool = False  # results.jsonl and the report were (re)written from every shard's records


STAGES = ("all", "prepare", "tune", "merge")
# How often a shard looks again for tuning grid cells another process is computing (seconds).
TUNING_POLL_SECONDS = 2.0
# A cell's estimated cost for spreading cells over shards, in training costs: its budget (Retrain: one
# training, No unlearning: nothing) plus scoring, which every cell pays.
_SCORING_COST = 0.05


def cell_cost(cell: Cell) -> float:
    """The estimate :func:`shard_cells` balances: budget (Retrain 1, No unlearning 0) plus scoring."""
    return _SCORING_COST + {"none": 0.0, "retrain": 1.0}.get(cell.method, cell.budget or 0.0)


def shard_cells(cells: list[Cell], count: int) -> list[int]:
    """The shard (0-based) of each planned cell: a deterministic function of the plan, so every shard
    started with the same arguments agrees without talking to the others (``hf_unlearn.shards.assign``)."""
    from hf_unlearn.shards import assign

    return assign([cell_cost(c) for c in cells], count)


def _resolve_config(preset, *, seeds, budgets, methods, pipeline_overrides, method_overrides, tune, tune_at_budget,
                    tune_seed) -> BenchmarkConfig:
    from hf_unlearn.unlearn import list_methods

    cfg = preset if isinstance(preset, BenchmarkConfig) else load_benchmark_preset(preset)
    if pipeline_overrides:
        cfg = dataclasses.replace(cfg, pipeline=apply_overrides(cfg.pipeline, list(pipeline_overrides)))
    return dataclasses.replace(
        cfg,
        seeds=list(seeds) if seeds else cfg.seeds,
        budgets=[float(b) for b in budgets] if budgets else cfg.budgets,
        methods=list(methods) if methods else (cfg.methods or list_methods()),
        method_config={**cfg.method_config, **{k: {**cfg.method_config.get(k, {}), **v}
                                                for k, v in (method_overrides or {}).items()}},
        tune=cfg.tune if tune is None else bool(tune),
        tune_at_budget=cfg.tune_at_budget if tune_at_budget is None else float(tune_at_budget),
        tune_seed=cfg.tune_seed if tune_seed is None else int(tune_seed),
    )


class _ShardFiles:
    """What one shard reads and writes in the output folder (``hf_unlearn.shards`` says why each file)."""

    def __init__(self, out: Path, shard) -> None:
        self.out, self.shard = out, shard
        self.results = shard.file(out, "results")
        self.tuning = shard.file(out, "tuning_cells")

    def repair(self) -> None:
        """Cut a torn last line (a kill during a write) off this shard's own files; only their writer may."""
        from hf_unlearn.shards import file_lock, read_lines

        with file_lock(self.out, "merge") if self.shard.count == 1 else contextlib.nullcontext():
            read_lines(self.results, repair=True)
        read_lines(self.tuning, repair=True)

    def done(self) -> set[tuple]:
        """Keys of every finished cell: results.jsonl and every shard's file, whatever N they were run with."""
        return set(self.records())

    def records(self) -> dict[tuple, tuple[dict[str, Any], str]]:
        from hf_unlearn.shards import shard_files, union

        return union(shard_files(self.out, "results"), _record_key, validate=_validate, describe=_describe)

    def tuning_rows(self) -> dict[tuple, dict[str, Any]]:
        from hf_unlearn.shards import shard_files, union

        rows = union(shard_files(self.out, "tuning_cells"), lambda row: _record_key(row["record"]),
                     validate=_validate_row, describe=lambda row: _describe(row["record"]))
        return {k: row for k, (row, _) in rows.items()}

    def append_result(self, record: Mapping[str, Any]) -> None:
        from hf_unlearn.results import validate_record
        from hf_unlearn.shards import append_line, file_lock

        validate_record(dict(record), allow_new_method=True)
        # results.jsonl is also what a merge rewrites: a single-process run appends to it under the merge lock.
        with file_lock(self.out, "merge") if self.shard.count == 1 else contextlib.nullcontext():
            append_line(self.results, record)

    def append_tuning(self, row: Mapping[str, Any]) -> None:
        from hf_unlearn.shards import append_line

        _validate_row(dict(row))
        append_line(self.tuning, row)


def _validate(data: dict[str, Any]) -> None:
    from hf_unlearn.results import validate_record

    validate_record(data, allow_new_method=True)


def _validate_row(row: dict[str, Any]) -> None:
    """A tuning grid cell: ``{"validation_accuracy": number, "record": a valid record}``."""
    acc = row.get("validation_accuracy")
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1 or "record" not in row:
        raise ValueError(f"tuning cell {sorted(row)}: expected {{'validation_accuracy': a number in [0, 1], "
                         "'record': a result record}")
    _validate(row["record"])


def _describe(record: Mapping[str, Any]) -> str:
    """``"eps0.1-b1.5-s0 gd b=0.1 s=0"`` (plus the setting for an unselected tuning grid cell), for errors."""
    b = record.get("budget_fraction")
    text = f"{record['dataset'].get('config')} {record['method']}{'' if b is None else f' b={b:g}'} s={record['seed']}"
    tuning = record.get("tuning") or {}
    return text + (f" (tuning grid cell {json.dumps(tuning.get('setting'))})" if tuning.get("selected") is False else "")


def merge_results(output_dir: str | os.PathLike, cells: Iterable[Cell] = ()) -> list[dict[str, Any]]:
    """Rewrite ``results.jsonl`` as the union of itself and every ``results.shard-K-of-N.jsonl``; return it.

    Every record is validated (``hf_unlearn.results``); the same cell twice is dropped when the copies are
    identical apart from ``created_at`` and refused otherwise (``hf_unlearn.shards.MergeConflict`` names the
    cell and both lines). Records of the planned ``cells`` come first, in plan order, then any others
    (earlier grids) in the order first seen. The file is replaced atomically; shard files are kept, so
    merging again is harmless. Torn last lines (a shard killed mid-write, or still writing) are left out.
    """
    from hf_unlearn.results import write_records

    out = Path(output_dir)
    by_key = _ShardFiles(out, _single()).records()
    rank = {(c.variant, c.method, c.seed, None if c.budget is None else round(float(c.budget), 6)): i
            for i, c in enumerate(cells)}
    first_seen = {k: i for i, k in enumerate(by_key)}
    keys = sorted(by_key, key=lambda k: (rank.get(k[:4], len(rank)), first_seen[k]))
    records = [by_key[k][0] for k in keys]
    write_records(records, out / "results.jsonl")
    return records


def _single():
    from hf_unlearn.shards import Shard

    return Shard()


def run_benchmark(
    preset: str | os.PathLike | BenchmarkConfig = "cpu",
    output_dir: str | os.PathLike = "runs/benchmark",
    *,
    seeds: list[int] | None = None,
    budgets: list[float] | None = None,
    methods: list[str] | None = None,
    pipeline_overrides: list[str] | None = None,
    method_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    tune: bool | None = None,
    tune_at_budget: float | None = None,
    tune_seed: int | None = None,
    progress: bool = True,
    cpu: bool = False,
    channels_last: bool | None = None,
    mixed_precision: str = "no",
    on_cell: Callable[[Cell, dict[str, Any]], None] | None = None,
    shard: str | Shard | None = None,
    stage: str = "all",
) -> BenchmarkResult:
    """Run (or resume) a benchmark preset; ``seeds``/``budgets``/``methods`` replace the preset's lists.

    ``tune`` (default: the preset's) runs each method's grid first and the sweep at the
    selected setting; ``tune_at_budget``/``tune_seed`` tune once at that budget/seed and use
    the selection for every budget and seed (module docstring). ``on_cell(cell, record)`` is
    called after each finished sweep cell's record is appended. ``channels_last`` (NHWC)
    applies to training and unlearning; None: on for CUDA only (see ``RunOptions``). ``mixed_precision``
    ("no", "bf16", "fp16") applies to both too; the first layer, the noise and the scores stay float32.

    Spreading the grid (``hf_unlearn.shards``): ``shard="K/N"`` (0-based) runs only the cells
    :func:`shard_cells` gives shard K, appending to ``results.shard-K-of-N.jsonl``; under
    ``accelerate launch --num_processes W`` each process is shard ``rank/W`` on its own device
    (with ``shard`` too: ``K*W + rank`` of ``N*W``). Whichever shard finishes last finds every
    cell done and merges all shard files into ``results.jsonl`` (:func:`merge_results`) and writes
    the report. ``stage``: ``"all"``; ``"prepare"`` (build the variants and train the poisoned
    models, then stop); ``"tune"`` (also run the tuning grids, then stop); ``"merge"`` (run
    nothing: merge what the shards wrote, write the report, list the missing cells). With tuning,
    every shard runs its share of the grid cells and the unstarted ones of others (each cell under
    a lock, once), waits for the cells other processes are computing, and selects from the whole
    grid, so every shard sweeps at the same setting. On a cluster, ``stage="tune"`` as one job
    array and then the sweep (``stage="all"``) as a second, dependent one keeps sweep jobs from
    waiting on grid cells.
    """
    from hf_unlearn.pipeline import build_dataset, dataset_repo, load_splits, train_model
    from hf_unlearn.shards import LOCK_DIR, detach_from_launcher, file_lock, key_name, resolve_shard
    from hf_unlearn.train import RunOptions, load_checkpoint
    from hf_unlearn.unlearn import build_config
    from hf_unlearn.unlearn.runner import REFERENCE_METHODS, unlearn_checkpoint

    if stage not in STAGES:
        raise ValueError(f"stage={stage!r}: expected one of {list(STAGES)}")
    shard = resolve_shard(shard)
    launched_device = detach_from_launcher(shard)  # before anything builds an Accelerator
    cfg = _resolve_config(preset, seeds=seeds, budgets=budgets, methods=methods, pipeline_overrides=pipeline_overrides,
                          method_overrides=method_overrides, tune=tune, tune_at_budget=tune_at_budget, tune_seed=tune_seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = _ShardFiles(out, shard)
    device = "cpu" if cpu else launched_device
    variants = cfg.variants or [cfg.pipeline.poison]
    method_cfgs = {m: dataclasses.asdict(build_config(m, cfg.method_config.get(m), yaml_path="preset")) for m in cfg.methods}
    grids = {m: _grid(m, cfg) for m in cfg.methods if m not in REFERENCE_METHODS} if cfg.tune else {}
    write_text_atomic(out / "benchmark_config.json", json.dumps(
        {**dataclasses.asdict(cfg), "method_config": method_cfgs, "grids": grids,
         "tuning_rule": select_setting.__doc__ if cfg.tune else None}, indent=2, default=str))

    if stage != "merge":
        files.repair()
    done = files.done()
    cells = plan_cells([v.name for v in variants], cfg.methods, cfg.seeds, cfg.budgets)
    owner = dict(zip(cells, shard_cells(cells, shard.count)))
    mine = [c for c in cells if owner[c] == shard.index]
    tag = "" if shard.count == 1 else f"shard {shard.label}: "
    print(f"{tag}benchmark: {len(cells)} cells{' after tuning' if cfg.tune else ''}"
          f"{f', {len(mine)} of them this shard' if shard.count > 1 else ''}, results in {files.results}")

    training_costs: dict[str, float] = {}
    all_selections: dict[str, dict[tuple[str, float], dict[str, Any]]] = {}
    ran: list[Cell] = []
    skipped: list[Cell] = []
    busy: list[Cell] = []
    wanted: set[tuple] = set()
    task, attack = cfg.pipeline.task, cfg.pipeline.attack
    start = shard.index % len(variants)  # shards begin with different variants: their models train in parallel
    for vi, variant in [(i % len(variants), variants[i % len(variants)]) for i in range(start, start + len(variants))]:
        folder = out / dataset_repo(task, attack)
        model_dir = out / "models" / variant.name / "poisoned"
        if stage == "merge":  # build and train nothing: a variant without its model has no records to merge
            if not (model_dir / "training_summary.json").exists():
                continue
            splits = load_splits(folder, variant.name, task=task, attack=attack)
        else:  # the shared prerequisites, once: the first shard here builds and trains, the others wait and reuse
            with file_lock(out, f"prepare-{variant.name}"):
                built = out / LOCK_DIR / f"dataset-{variant.name}.built"  # the build finished, card included
                if not ((folder / "data" / variant.name).exists() and built.exists()):
                    build_dataset(cfg.pipeline.source, variant, folder, task=task, attack=attack)
                    built.touch()
                splits = load_splits(folder, variant.name, task=task, attack=attack)
                train_model(splits, {"id": str(folder), "config": variant.name, "revision": None}, cfg.pipeline.train,
                            model_dir, role="poisoned", task=task,
                            options=RunOptions(progress=progress, cpu=cpu, channels_last=channels_last,
                                               mixed_precision=mixed_precision))
        model, summary = load_checkpoint(str(model_dir))
        training_costs[variant.name] = float(summary["training_cost"])
        if stage == "prepare":
            continue
        common = dict(null_draws=cfg.pipeline.scoring.null_draws, score_seed=cfg.pipeline.scoring.seed, device=device,
                      progress=progress, model=model, summary=summary, splits=splits, channels_last=channels_last,
                      mixed_precision=mixed_precision, task=task, attack=attack)
        selections = (_tune_variant(cfg, grids, variant.name, folder, model_dir, out, common, files=files, rotate=vi,
                                    wait=stage != "merge") if cfg.tune else {})
        all_selections[variant.name] = selections
        if stage == "tune":
            continue

        for cell in (c for c in cells if c.variant == variant.name):
            tuned = cell.method not in REFERENCE_METHODS and cfg.tune
            choice = selections.get((cell.method, cfg.tune_at_budget or cell.budget)) if tuned else None
            if tuned and choice is None:
                continue  # its grid is not complete (merge stage): the cell's setting is not known yet
            overrides = {**cfg.method_config.get(cell.method, {}), **(choice["setting"] if choice else {})}
            mcfg = dataclasses.asdict(build_config(cell.method, overrides, yaml_path="preset"))
            key = _key(cell.variant, cell.method, cell.seed, cell.budget, mcfg, tuned)
            wanted.add(key)
            if owner[cell] != shard.index and stage != "merge":
                continue  # another shard's
            if key in done:
                skipped.append(cell)
                continue
            if stage == "merge":
                continue
            with file_lock(out, key_name(key), blocking=False) as mine_now:
                if not mine_now:  # another process (an overlapping run) is computing it
                    busy.append(cell)
                    continue
                done = files.done()  # it may have finished elsewhere since we last looked
                if key in done:
                    skipped.append(cell)
                    continue
                t0 = time.perf_counter()
                tuning = ({"grid": choice["grid"], "setting": choice["setting"], "selected": True,
                           "tuning_compute": choice["tuning_compute"]} if choice else None)
                if choice and cell.seed == choice["seed"] and cell.budget == choice["budget"]:
                    record = {**choice["record"], "tuning": tuning}  # this very run was the selected grid cell
                else:
                    outcome = unlearn_checkpoint(
                        model_dir, folder, variant.name, cell.method, budget=cell.budget or 1.0, seed=cell.seed,
                        overrides=overrides, output_dir=out / "models" / variant.name / _cell_dir(cell),
                        retrain_dir=out / "models" / variant.name / f"retrain-s{cell.seed}" if cell.method == "retrain" else None,
                        validation_fraction=cfg.validation_fraction if tuned else 0.0, tuning=tuning, **common,
                    )
                    record = outcome.record.to_dict()
                files.append_result(record)  # finished cells survive a kill
            done.add(key)
            ran.append(cell)
            m = record["metrics"]
            count = len(mine) if shard.count > 1 else len(cells)
            print(f"{tag}[{len(skipped) + len(ran)}/{count}] {cell.label()}: test {m['test_accuracy']:.3f}, "
                  f"{_headline(m)}, compute {record['compute_used']:.4g} "
                  f"({record['compute_used'] / training_costs[variant.name]:.3f} of training, stopped by "
                  f"{record.get('stopped_by')}), {time.perf_counter() - t0:.1f} s", flush=True)
            if on_cell is not None:
                on_cell(cell, record)

    if stage in ("prepare", "tune"):
        print(f"{tag}benchmark: stage {stage!r} finished")
        return BenchmarkResult([], ran, skipped, "", {}, shard=shard.label)
    # Whether a cell is done is known only once its (tuned) setting is: say it at the end, for resumed runs.
    where = files.results if shard.count == 1 else out / "results*.jsonl"
    print(f"{tag}benchmark: {len(cells)} cells, {len(skipped)} already in {where}, {len(ran)} run now")
    done = files.done()
    missing = _missing(cfg, cells, all_selections, done, method_cfgs)
    if missing and shard.count > 1 and stage != "merge":
        print(f"{tag}this shard's cells are finished; {len(missing)} of {len(cells)} cells belong to shards still "
              "running: the last one to finish merges every shard's records into results.jsonl (or run the "
              "benchmark with --stage merge)", flush=True)
        records = [r for k, (r, _) in files.records().items() if k in wanted]
        return BenchmarkResult(records, ran, skipped, "", {}, shard=shard.label, missing=missing, busy=busy)
    if missing:
        shown = ", ".join(f"{c.label()} (shard {owner[c]}/{shard.count})" for c in missing[:10])
        print(f"{tag}benchmark: {len(missing)} cell(s) have no record yet: {shown}{' ...' if len(missing) > 10 else ''}")
    with file_lock(out, "merge"):  # one merge at a time: it rewrites results.jsonl, tuning.* and the report
        merged = merge_results(out, cells)
        for name, selections in all_selections.items():
            if selections:
                _write_tuning(out, name, selections)
        for variant in variants:  # training costs of variants this call did not open (merge stage)
            summary_path = out / "models" / variant.name / "poisoned" / "training_summary.json"
            if variant.name not in training_costs and summary_path.exists():
                training_costs[variant.name] = float(json.loads(summary_path.read_text())["training_cost"])
        records = [r for r in merged if _record_key(r) in wanted]
        paths = write_report(records, out, training_costs=training_costs,
                             title=f"hf-unlearn benchmark ({_preset_name(preset)})")
        if cfg.tune and (out / "tuning.md").exists():
            paths["tuning"] = str(out / "tuning.md")
        table = (out / "summary.md").read_text()
    return BenchmarkResult(records, ran, skipped, table, paths, shard=shard.label, missing=missing, busy=busy,
                           merged=True)


def _missing(cfg: BenchmarkConfig, cells: list[Cell], selections: Mapping[str, Mapping], done: set[tuple],
             method_cfgs: Mapping[str, Mapping[str, Any]]) -> list[Cell]:
    """Planned cells without a record (a tuned cell whose grid is incomplete counts as missing)."""
    from hf_unlearn.unlearn import build_config
    from hf_unlearn.unlearn.runner import REFERENCE_METHODS

    missing = []
    for cell in cells:
        tuned = cell.method not in REFERENCE_METHODS and cfg.tune
        choice = selections.get(cell.variant, {}).get((cell.method, cfg.tune_at_budget or cell.budget)) if tuned else None
        if tuned and choice is None:
            missing.append(cell)
            continue
        mcfg = (dataclasses.asdict(build_config(cell.method, {**cfg.method_config.get(cell.method, {}), **choice["setting"]},
                                                yaml_path="preset")) if choice else method_cfgs[cell.method])
        if _key(cell.variant, cell.method, cell.seed, cell.budget, mcfg, tuned) not in done:
            missing.append(cell)
    return missing


def _grid(method: str, cfg: BenchmarkConfig) -> list[dict[str, Any]]:
    """The preset's grid for ``method`` if it names one, else the method YAML's."""
    from hf_unlearn.unlearn.base import expand_grid, load_method_grid

    if method in cfg.grids:
        return expand_grid(method, cfg.grids[method], preset=cfg.method_config.get(method), where=f"grids.{method}")
    return load_method_grid(method)


def _tune_variant(cfg: BenchmarkConfig, grids: Mapping[str, list[dict[str, Any]]], variant: str, folder: Path,
                  model_dir: Path, out: Path, common: Mapping[str, Any], *, files: _ShardFiles, rotate: int = 0,
                  wait: bool = True) -> dict[tuple[str, float], dict[str, Any]]:
    """Run (or resume) the grid cells of one variant on the tuning seed; return the selection per
    (method, tuning budget). Finished cells are appended (with their validation accuracy) to this
    shard's ``tuning_cells[.shard-K-of-N].jsonl``; the selection reads every shard's, so a killed run
    resumes and every shard re-derives the same selection.

    Shards run their share of the grid first (:func:`hf_unlearn.shards.assign`), then any cell nobody
    has started, each under its lock, so each grid cell runs once; then they wait (``wait``) for the
    cells others are computing. A (method, budget) whose grid is incomplete has no selection (only
    when not waiting: the merge stage). A single process writes ``tuning.jsonl``/``tuning.md`` here;
    shards leave that to the merge.
    """
    from hf_unlearn.shards import assign, file_lock, key_name
    from hf_unlearn.train import accuracy
    from hf_unlearn.unlearn import build_config
    from hf_unlearn.unlearn.runner import retain_forget, unlearn_checkpoint, validation_slice

    shard = files.shard
    seed = cfg.seeds[0] if cfg.tune_seed is None else cfg.tune_seed
    budgets = [cfg.tune_at_budget] if cfg.tune_at_budget is not None else list(cfg.budgets)
    grid_cells = []  # (method, budget, grid index, setting, overrides, key), in grid order
    for method, grid in grids.items():
        for budget in budgets:
            for i, setting in enumerate(grid):
                overrides = {**cfg.method_config.get(method, {}), **setting}
                mcfg = dataclasses.asdict(build_config(method, overrides, yaml_path="preset"))
                grid_cells.append((method, budget, i, setting, overrides, _key(variant, method, seed, budget, mcfg, True)))
    owners = [(k + rotate) % shard.count for k in assign([0.05 + c[1] for c in grid_cells], shard.count)]
    order = ([c for c, k in zip(grid_cells, owners) if k == shard.index]
             + [c for c, k in zip(grid_cells, owners) if k != shard.index])
    _, validation = validation_slice(retain_forget(common["splits"])[0], cfg.validation_fraction)
    original = float(accuracy(common["model"], validation))
    by_key = files.tuning_rows()
    waiting_said = False
    while wait and (pending := [c for c in order if c[5] not in by_key]):
        progressed = False
        for method, budget, i, setting, overrides, key in pending:
            with file_lock(out, key_name(key), blocking=False) as got:
                if not got:
                    continue  # another shard is computing it
                by_key = files.tuning_rows()
                if key in by_key:  # finished elsewhere since we looked
                    progressed = True
                    continue
                t0 = time.perf_counter()
                outcome = unlearn_checkpoint(
                    model_dir, folder, variant, method, budget=budget, seed=seed, overrides=overrides,
                    output_dir=out / "models" / variant / "tuning" / f"{method}-b{budget:g}-s{seed}-cell{i}",
                    validation_fraction=cfg.validation_fraction,
                    tuning={"grid": grid_name(method, grids[method]), "setting": setting, "selected": False,
                            "tuning_compute": 0.0}, **common,
                )
                row = {"validation_accuracy": outcome.validation_accuracy, "record": outcome.record.to_dict()}
                files.append_tuning(row)
                by_key[key] = row
                progressed = True
            m = row["record"]["metrics"]
            print(f"tuning {variant} {method} b={budget:g} s={seed} {setting}: validation accuracy "
                  f"{row['validation_accuracy']:.3f} (original {original:.3f}), {_headline(m)}, "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        if not progressed:  # every cell left is being computed by another process
            if not waiting_said:
                print(f"shard {shard.label}: waiting for {len(pending)} tuning cell(s) of {variant} that other "
                      "processes are computing", flush=True)
                waiting_said = True
            time.sleep(TUNING_POLL_SECONDS)
            by_key = files.tuning_rows()
    selections: dict[tuple[str, float], dict[str, Any]] = {}
    for method, grid in grids.items():
        name = grid_name(method, grid)
        for budget in budgets:
            keys = [c[5] for c in grid_cells if c[0] == method and c[1] == budget]
            if any(k not in by_key for k in keys):
                continue  # incomplete grid (merge stage): no selection yet
            rows = [by_key[k] for k in keys]
            pick = select_setting([{"validation_accuracy": r["validation_accuracy"],
                                    "evidence": poison_evidence(r["record"]["metrics"])} for r in rows], original)
            total = float(sum(r["record"]["compute_used"] for r in rows))
            for i, r in enumerate(rows):
                r["record"]["tuning"] = {"grid": name, "setting": grid[i], "selected": i == pick, "tuning_compute": total}
            selections[(method, budget)] = {
                "grid": name, "setting": grid[pick], "tuning_compute": total, "seed": seed, "budget": budget,
                "record": rows[pick]["record"], "rows": rows, "original_accuracy": original,
            }
    if shard.count == 1 and wait and selections:
        with file_lock(out, "merge"):
            _write_tuning(out, variant, selections)
    return selections


def _write_tuning(out: Path, variant: str, selections: Mapping[tuple[str, float], Mapping[str, Any]]) -> None:
    """``tuning.jsonl`` (every grid cell's record, the selected ones marked) and ``tuning.md`` (one table)."""
    from hf_unlearn.results import write_records

    path = out / "tuning.jsonl"
    keep = [r.to_dict() for r in _read(path) if r.dataset["config"] != variant] if path.exists() else []
    mine = [row["record"] for sel in selections.values() for row in sel["rows"]]
    write_records(keep + mine, path)
    lines = [f"# Tuning ({variant})", "",
             f"Selection rule ({TUNING_ACCURACY_TOLERANCE * 100:g} points): `hf_unlearn.benchmark.select_setting`. "
             "Validation accuracy is on the retain slice held out of unlearning; the poisoned model's is "
             f"{next(iter(selections.values()))['original_accuracy']:.3f}." if selections else "", "",
             "| method | budget | setting | validation acc | poison evidence (abs GUS; else forget acc) | compute | selected |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for (method, budget), sel in selections.items():
        for row in sel["rows"]:
            rec = row["record"]
            lines.append(f"| {LABELS.get(method, method)} | {budget:g} | {json.dumps(rec['tuning']['setting'])} "
                         f"| {row['validation_accuracy']:.3f} | {poison_evidence(rec['metrics']):.3f} | {rec['compute_used']:.4g} "
                         f"| {'**yes**' if rec['tuning']['selected'] else ''} |")
        lines.append(f"| {LABELS.get(method, method)} | {budget:g} | tuning compute (all cells) | | | "
                     f"{sel['tuning_compute']:.4g} | |")
    (out / "tuning.md").write_text("\n".join(lines) + "\n")


def _read(path: Path):
    from hf_unlearn.results import read_records

    return read_records(path)


def _num(value: float | None) -> str:
    return "n/a (too few nulls)" if value is None else f"{value:.3f}"


def _headline(m: Mapping[str, Any]) -> str:
    """The attack's headline numbers for a progress line (GUS and TPR, or whatever the attack measured)."""
    if "gus" in m:
        return f"GUS {m['gus']:.2f}, TPR@1% {_num(m.get('tpr_at_fpr_0.01'))}"
    other = {k: v for k, v in m.items() if k not in ("test_accuracy", "retain_accuracy", "forget_accuracy")}
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in other.items())


def _cell_dir(cell: Cell) -> str:
    from hf_unlearn.unlearn.runner import cell_name

    return cell_name(cell.method, cell.budget, cell.seed)


def _preset_name(preset) -> str:
    return "custom" if isinstance(preset, BenchmarkConfig) else str(preset)


# ----------------------------------------------------------------------------- summary
# What the summary shows is chosen by the metrics the records carry, not by an attack name: a record
# with ``gus`` is summarised as Gaussian poisons are (GUS, TPR@FPR), one with ``target_success`` as a
# targeted attack is (target success and its gap to Retrain's); anything else falls back to its own
# numeric metrics. Test accuracy and compute are always shown.
@dataclass(frozen=True)
class Column:
    """One summary column: ``metric``, a key of the records' metrics, or (``derived``) one ``summarize`` adds."""

    metric: str
    title: str
    digits: int = 3
    signed: bool = False  # print "+0.012" (a gap), not "0.012"
    derived: bool = False  # computed from the summary (the gap to Retrain), not read from the records


@dataclass(frozen=True)
class SummaryView:
    """How records carrying metric ``requires`` are tabulated, plotted next to test accuracy and explained.

    ``headline`` is the poison-removal metric of Figure 2 (lower is better); ``chance`` is where perfect
    unlearning puts it when that is a known constant (TPR@FPR=a: a), else None, and then Retrain's value
    is the goal (``gap_to_retrain`` adds the difference to it as a column). ``note`` is the report's
    sentence on how to read the headline.
    """

    requires: str
    columns: tuple[Column, ...]
    headline: str
    headline_title: str  # axis / legend wording, e.g. "TPR @ FPR=0.01"
    headline_short: str  # the "No unlearning: ..." legend entry
    chance: float | None = None
    gap_to_retrain: bool = False
    note: tuple[str, ...] = ()


GAP_SUFFIX = "_gap_to_retrain"
VIEWS: tuple[SummaryView, ...] = (
    SummaryView(
        requires="gus",
        columns=(Column("gus", "GUS", 2), Column("tpr_at_fpr_0.01", "TPR@1%"), Column("tpr_at_fpr_0.001", "TPR@0.1%")),
        headline="tpr_at_fpr_0.01", headline_title="TPR @ FPR=0.01", headline_short="TPR", chance=0.01,
        note=("TPR@1% near 0.01 means the",
              "poisons are indistinguishable from fresh noise (perfect unlearning); GUS near 0 likewise."),
    ),
    SummaryView(
        requires="target_success",
        columns=(Column("target_success", "target success"),
                 Column("target_success" + GAP_SUFFIX, "Δ target success vs Retrain", signed=True, derived=True)),
        headline="target_success", headline_title="target success", headline_short="target success",
        gap_to_retrain=True,
        note=("Target success is the share of the",
              "targets split predicted as the attacker's label; perfect unlearning reaches Retrain's value, so the",
              "Δ column (mean minus Retrain's mean, same variant) should be near 0."),
    ),
    # Last: records with a poison count but neither score above, i.e. an indiscriminate attack, whose effect
    # is the test accuracy itself (higher is better); perfect unlearning recovers Retrain's.
    SummaryView(
        requires="num_poisons",
        columns=(Column("test_accuracy" + GAP_SUFFIX, "Δ test acc vs Retrain", signed=True, derived=True),),
        headline="test_accuracy", headline_title="test accuracy", headline_short="accuracy",
        gap_to_retrain=True,
        note=("The attack lowers test accuracy; perfect unlearning recovers",
              "Retrain's, so the Δ column (mean minus Retrain's mean, same variant) should be near 0 (negative: the",
              "poisons still cost accuracy)."),
    ),
)
# Metrics never tabulated by the fallback view: the split accuracies and counts are context, not results.
_CONTEXT_METRICS = ("test_accuracy", "retain_accuracy", "forget_accuracy", "validation_accuracy")


def _fallback_view(metrics: Iterable[str]) -> SummaryView:
    """A view for records no entry of VIEWS describes: every numeric result metric, the first as headline."""
    names = [m for m in metrics if m not in _CONTEXT_METRICS and not m.startswith("num_")]
    if not names:
        return SummaryView(requires="", columns=(), headline="", headline_title="", headline_short="")
    return SummaryView(requires="", columns=tuple(Column(m, m) for m in names), headline=names[0],
                       headline_title=names[0], headline_short=names[0])


def record_view(metrics: Mapping[str, Any]) -> SummaryView:
    """The view of one record's ``metrics`` (the first of VIEWS whose metric it carries, else the fallback)."""
    for view in VIEWS:
        if metrics.get(view.requires) is not None:
            return view
    return _fallback_view(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool))


def _stats_view(rows) -> SummaryView:
    """The view of a summary's rows (one variant): from which metric columns hold numbers."""
    def present(metric: str) -> bool:
        return f"{metric}_mean" in rows and bool(rows[f"{metric}_mean"].notna().any())

    for view in VIEWS:
        # a view of derived columns only (indiscriminate: the accuracy gap) is told by its derived column
        derived_only = bool(view.columns) and all(c.derived for c in view.columns)
        if present(view.requires) or (derived_only and present(view.columns[0].metric)):
            return view
    known = {"test_accuracy", "compute_used", "compute_fraction"} | {c.metric for v in VIEWS for c in v.columns}
    return _fallback_view(c[: -len("_mean")] for c in rows.columns
                          if c.endswith("_mean") and c[: -len("_mean")] not in known and present(c[: -len("_mean")]))


def summarize(records: Iterable[Mapping[str, Any]], training_costs: Mapping[str, float] | None = None):
    """DataFrame: one row per (variant, method, budget) with mean and std over seeds of each record's view's
    metrics (test accuracy first, then e.g. GUS and TPRs, or target success), compute, and for views with
    ``gap_to_retrain`` the headline's gap to Retrain (difference of the means, std NaN)."""
    import numpy as np
    import pandas as pd

    records = list(records)
    metrics: list[str] = ["test_accuracy"]
    gap_views: list[SummaryView] = []
    for r in records:
        view = record_view(r["metrics"])
        metrics += [c.metric for c in view.columns if not c.derived and c.metric not in metrics]
        if view.gap_to_retrain and view not in gap_views:
            gap_views.append(view)
    rows = []
    for r in records:
        m = r["metrics"]
        cost = (training_costs or {}).get(r["dataset"]["config"])
        rows.append({
            "variant": r["dataset"]["config"], "method": r["method"], "budget": r["budget_fraction"], "seed": r["seed"],
            **{k: np.nan if m.get(k) is None else float(m[k]) for k in metrics},
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
        **{f"{k}_{s}": (k, s) for k in (*metrics, "compute_used", "compute_fraction") for s in ("mean", "std")},
    ).reset_index()
    for view in gap_views:
        retrain = stats[stats["method"] == "retrain"].groupby("variant")[f"{view.headline}_mean"].mean()
        stats[f"{view.headline}{GAP_SUFFIX}_mean"] = stats[f"{view.headline}_mean"] - stats["variant"].map(retrain)
        stats[f"{view.headline}{GAP_SUFFIX}_std"] = np.nan
    stats["_order"] = stats["method"].map(lambda m: order.get(m, len(order)))
    stats = stats.sort_values(["variant", "_order", "budget"], key=lambda s: s.astype(str) if s.name == "budget" else s)
    return stats.drop(columns="_order").reset_index(drop=True)


def _pm(mean: float, std: float, digits: int = 3, signed: bool = False) -> str:
    if math.isnan(mean):
        return "n/a"
    head = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return head if math.isnan(std) else f"{head} ± {std:.{digits}f}"


def format_summary(stats) -> str:
    """Markdown table: mean ± std over seeds (one seed: the mean alone). Columns follow the rows' view
    (``SummaryView``): test accuracy, the view's columns, compute; variants of different views get one
    table each, in order of first appearance."""
    if stats.empty:
        return "no records"
    tables: dict[SummaryView, list[str]] = {}
    for variant in stats["variant"].unique():
        sub = stats[stats["variant"] == variant]
        view = _stats_view(sub)
        lines = tables.setdefault(view, [_header(view)])
        for _, r in sub.iterrows():
            cells = [_pm(r[f"{c.metric}_mean"], r[f"{c.metric}_std"], c.digits, c.signed) for c in view.columns]
            lines.append(
                f"| {r['variant']} | {LABELS.get(r['method'], r['method'])} | {r['budget']} | {r['n']} "
                f"| {_pm(r['test_accuracy_mean'], r['test_accuracy_std'])} | {' | '.join(cells)}{' ' if cells else ''}"
                f"| {r['compute_used_mean']:.4g} | {_pm(r['compute_fraction_mean'], r['compute_fraction_std'])} |"
            )
    return "\n\n".join("\n".join(lines) for lines in tables.values())


def _header(view: SummaryView) -> str:
    titles = ["variant", "method", "budget", "seeds", "test acc", *(c.title for c in view.columns),
              "compute (fwd-eq.)", "compute / training"]
    return f"| {' | '.join(titles)} |\n|{' --- |' * len(titles)}"


def _reference(rows, method: str, metric: str) -> float | None:
    ref = rows[rows["method"] == method]
    return float(ref[f"{metric}_mean"].iloc[0]) if len(ref) and not math.isnan(ref[f"{metric}_mean"].iloc[0]) else None


def _goal_line(ax, view: SummaryView, rows, fpr: float, color: str) -> None:
    """Where perfect unlearning puts the headline: the chance level (Gaussian: the FPR), else Retrain's value."""
    if view.chance is not None:
        ax.axhline(fpr, color=color, lw=1.2, ls="--", label=f"FPR = {fpr:g} (perfect unlearning)")
    elif view.gap_to_retrain and (goal := _reference(rows, "retrain", view.headline)) is not None:
        ax.axhline(goal, color=color, lw=1.2, ls="--", label=f"Retrain: {view.headline_short} (perfect unlearning)")


def _unit_range(rows, metrics: Iterable[str]) -> bool:
    values = [v for m in metrics for v in rows[f"{m}_mean"].dropna()]
    return all(0 <= v <= 1 for v in values)


def figure(stats, variant: str, path: str | os.PathLike, fpr: float = 0.01) -> str:
    """Figure 2 of the paper: per method, test accuracy and the attack's headline metric (TPR@FPR=0.01 for
    Gaussian poisons, target success for targeted ones) as bars (± std over seeds), one panel per budget;
    No unlearning as solid lines, where perfect unlearning sits dashed (the FPR level, or Retrain's value)."""
    from hf_unlearn.plots import _pyplot

    plt = _pyplot()
    sub = stats[stats["variant"] == variant]
    view = _stats_view(sub)
    head = "" if view.headline == "test_accuracy" else view.headline  # indiscriminate: accuracy, drawn once
    budgets = [b for b in sub["budget"].unique() if b != "-"] or ["-"]
    fig, axes = plt.subplots(1, len(budgets), figsize=(max(5.0, 0.7 * len(sub["method"].unique()) + 2) * len(budgets), 3.8),
                             squeeze=False, sharey=True)
    for ax, budget in zip(axes[0], budgets):
        rows = sub[(sub["method"] != "none") & ((sub["budget"] == budget) | (sub["method"] == "retrain"))]
        x = range(len(rows))
        w = 0.38
        ax.bar([i - w / 2 for i in x], rows["test_accuracy_mean"], w, yerr=rows["test_accuracy_std"].fillna(0),
               color="tab:blue", capsize=3, label="test accuracy")
        if head:
            ax.bar([i + w / 2 for i in x], rows[f"{head}_mean"], w, yerr=rows[f"{head}_std"].fillna(0),
                   color="tab:orange", capsize=3, label=view.headline_title)
        if (acc := _reference(sub, "none", "test_accuracy")) is not None:
            ax.axhline(acc, color="tab:blue", lw=1.2, label="No unlearning: accuracy")
        if head and (ref := _reference(sub, "none", head)) is not None:
            ax.axhline(ref, color="tab:orange", lw=1.5, label=f"No unlearning: {view.headline_short}")
        _goal_line(ax, view, sub, fpr, "tab:orange" if head else "tab:blue")
        ax.set_xticks(list(x), [LABELS.get(m, m) for m in rows["method"]], rotation=30, ha="right")
        if _unit_range(sub, ["test_accuracy", *([head] if head else [])]):
            ax.set_ylim(0, 1.05)
        ax.set_title(f"{variant}, budget {budget}" if budget != "-" else variant, fontsize=9)
    axes[0][0].set_ylabel("mean ± std over seeds")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)


def sweep_figure(stats, variant: str, path: str | os.PathLike, fpr: float = 0.01) -> str:
    """Figure 8 of the paper, as a sweep: test accuracy and the attack's headline metric (TPR@FPR=0.01, or
    target success) against the budget, one line per method (± std over seeds); No unlearning and Retrain
    as horizontal lines, the chance level (Gaussian: the FPR) dashed."""
    from hf_unlearn.plots import _pyplot

    plt = _pyplot()
    sub = stats[stats["variant"] == variant]
    view = _stats_view(sub)
    title = f"TPR @ FPR={fpr:g}" if view.chance is not None else view.headline_title
    panels = [("test_accuracy", "test accuracy")]
    if view.headline and view.headline != "test_accuracy":
        panels.append((view.headline, title))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), sharex=True, squeeze=False)
    axes = axes[0]
    for ax, (metric, name) in zip(axes, panels):
        for method in sub["method"].unique():
            rows = sub[sub["method"] == method]
            if method in ("none", "retrain"):
                ax.axhline(float(rows[f"{metric}_mean"].iloc[0]), lw=1.2, ls="-" if method == "none" else ":",
                           color="black" if method == "none" else "tab:green", label=LABELS[method])
                continue
            rows = rows.sort_values("budget", key=lambda b: b.astype(float))
            ax.errorbar(rows["budget"].astype(float), rows[f"{metric}_mean"], yerr=rows[f"{metric}_std"].fillna(0),
                        marker="o", ms=3, capsize=2, lw=1, label=LABELS.get(method, method))
        if metric == view.headline and view.chance is not None:
            ax.axhline(fpr, color="grey", lw=1, ls="--", label=f"FPR = {fpr:g} (perfect unlearning)")
        ax.set(xlabel="budget (fraction of the training cost)", title=f"{variant}: {name}")
        if _unit_range(sub, [metric]):
            ax.set_ylim(0, 1.05)
    axes[len(panels) - 1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)


def write_report(records: list[dict[str, Any]], output_dir: str | os.PathLike, *,
                 training_costs: Mapping[str, float] | None = None, title: str = "hf-unlearn benchmark") -> dict[str, str]:
    """summary.csv, summary.md, one figure per variant and report.md from the records (any attack: the
    columns and the plotted metric follow the records' metrics, ``SummaryView``)."""
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
    views: list[SummaryView] = []
    for variant in stats["variant"].unique():
        sub = stats[stats["variant"] == variant]
        views += [v for v in [_stats_view(sub)] if v not in views]
        figures.append(figure(stats, variant, out / f"figure_{variant}.png"))
        paths[f"figure_{variant}"] = figures[-1]
        if len({b for b in sub["budget"] if b != "-"}) > 1:
            figures.append(sweep_figure(stats, variant, out / f"sweep_{variant}.png"))
            paths[f"sweep_{variant}"] = figures[-1]
    notes = [line for v in views for line in v.note]
    seeds = sorted({r["seed"] for r in records})
    versions = records[0].get("versions", {})
    report = [
        f"# {title}", "",
        f"{len(records)} records, seeds {seeds}. Mean ± sample std over seeds (one seed: the value alone).",
        "Compute is counted in forward-equivalents per example (forward 1, forward+backward 3); each iterative",
        "method runs until the first step that would exceed `budget x training cost` (its record's `stopped_by`",
        "says what ended it; SSD is one-shot). No unlearning and Retrain are",
        " ".join(["references: not budgeted, Retrain's compute is one more full training.", *notes[:1]]),
        *notes[1:], "",
        table, "",
        *[f"![{Path(f).stem}]({Path(f).name})" for f in figures], "",
        *(["Settings were tuned before the sweep: every grid cell, the selection rule and the tuning compute",
           "(reported apart from the budget) are in [tuning.md](tuning.md) and `tuning.jsonl`.", ""]
          if (out / "tuning.md").exists() else []),
        "## Environment", "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        f"- accelerator: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (CPU)'}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}",
        f"- training cost per variant (forward-equivalents): {dict(training_costs or {})}", "",
    ]
    (out / "report.md").write_text("\n".join(report))
    paths["report"] = str(out / "report.md")
    return paths
