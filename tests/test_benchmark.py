"""The benchmark runner: cells, resume after a kill, validated records, summary, figure and report."""

from __future__ import annotations

import json

import pytest
import torch

from hf_unlearn.benchmark import BenchmarkConfig, load_benchmark_preset, plan_cells, run_benchmark
from hf_unlearn.config import PipelineConfig, ScoringConfig
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
from hf_unlearn.results import read_records, validate_record
from hf_unlearn.train import TrainConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread


def tiny_benchmark(**kw) -> BenchmarkConfig:
    pipeline = PipelineConfig(
        source="samples",
        poison=GaussianPoisonConfig(0.15, 5.0, 0, 128),
        train=TrainConfig(epochs=2, batch_size=64, width=4, eval_batch_size=500),
        scoring=ScoringConfig(null_draws=5),
    )
    return BenchmarkConfig(pipeline=pipeline, **{"methods": ["none", "gd", "ssd"], "seeds": [0, 1], "budgets": [1.0], **kw})


class Killed(Exception):
    pass


def test_a_killed_benchmark_resumes_without_redoing_finished_cells(tmp_path):
    cfg = tiny_benchmark()
    expected = plan_cells([cfg.pipeline.poison.name], cfg.methods, cfg.seeds, cfg.budgets)
    assert len(expected) == 6  # 2 seeds x (none + gd + ssd); none has no budget axis

    finished = []

    def kill_after_two(cell, record):
        finished.append(cell)
        if len(finished) == 2:
            raise Killed

    with pytest.raises(Killed):
        run_benchmark(cfg, tmp_path, progress=False, channels_last=False, on_cell=kill_after_two)
    first = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(first) == 2

    again = run_benchmark(cfg, tmp_path, progress=False, channels_last=False)
    assert len(again.skipped) == 2 and len(again.ran) == 4 and set(again.ran).isdisjoint(finished)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert lines[:2] == first, "finished records are kept as they were"
    records = read_records(tmp_path / "results.jsonl")  # validates every line with the shared schema
    keys = [(r.method, r.seed, r.budget_fraction) for r in records]
    assert len(keys) == len(set(keys)) == 6
    for r in again.records:
        validate_record(r)
        if r["budget_fraction"] is not None:
            training_cost = json.loads((tmp_path / "models" / cfg.pipeline.poison.name / "poisoned" /
                                        "training_summary.json").read_text())["training_cost"]
            assert r["compute_used"] <= r["budget_fraction"] * training_cost

    third = run_benchmark(cfg, tmp_path, progress=False, channels_last=False)
    assert third.ran == [] and len(third.skipped) == 6

    for name in ("summary.md", "summary.csv", "report.md", f"figure_{cfg.pipeline.poison.name}.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = (tmp_path / "summary.md").read_text()
    assert "| No unlearning |" in summary and "| GD |" in summary and "±" in summary


def test_budget_sweep_adds_cells_only_for_budgeted_methods():
    cells = plan_cells(["v"], ["none", "retrain", "gd", "scrub"], [0, 1], [0.02, 0.04, 0.06, 0.08, 0.1])
    assert len(cells) == 2 * (1 + 1 + 5 + 5)
    assert {c.budget for c in cells if c.method in ("none", "retrain")} == {None}


@pytest.mark.parametrize("name", ["cpu", "demo", "paper"])
def test_shipped_presets_load(name):
    cfg = load_benchmark_preset(name)
    assert cfg.methods and cfg.seeds and all(0 < b <= 1 for b in cfg.budgets)


def test_pipeline_presets_load_and_the_cpu_preset_is_the_longer_demo():
    from hf_unlearn.config import load_preset

    demo, cpu, paper = (load_preset(n) for n in ("demo", "cpu", "paper"))
    assert cpu.poison == demo.poison and cpu.source == demo.source == "samples"
    assert cpu.train.epochs > demo.train.epochs and cpu.scoring.null_draws > demo.scoring.null_draws
    assert paper.source == "uoft-cs/cifar10" and paper.train.augment and paper.train.epochs == 100


def test_preset_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: demo\nmethod: [gd]\n")
    with pytest.raises(ValueError, match="valid keys"):
        load_benchmark_preset(bad)
    bad.write_text("pipeline: demo\nmethods: [gdd]\n")
    with pytest.raises(ValueError, match="known methods"):
        load_benchmark_preset(bad)
    bad.write_text("pipeline: demo\nmethod_config: {gd: {lrr: 1}}\n")
    with pytest.raises(ValueError, match="valid keys"):
        load_benchmark_preset(bad)


def test_method_config_from_inherits_and_merges_key_by_key(tmp_path):
    """A preset starts from another preset's method settings; its own keys win, the rest are kept."""
    base = tmp_path / "base.yaml"
    base.write_text("pipeline: demo\nmethods: [gd, ga]\nmethod_config: {gd: {lr: 0.02, momentum: 0.5}, ga: {lr: 1.0e-5}}\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"pipeline: demo\nmethods: [gd, ga, scrub]\nmethod_config_from: {base}\n"
                     "method_config: {gd: {lr: 0.01}, scrub: {max_epochs: 1}}\n")
    cfg = load_benchmark_preset(child)
    assert cfg.method_config == {"gd": {"lr": 0.01, "momentum": 0.5}, "ga": {"lr": 1.0e-5}, "scrub": {"max_epochs": 1}}
    assert load_benchmark_preset(base).method_config == {"gd": {"lr": 0.02, "momentum": 0.5}, "ga": {"lr": 1.0e-5}}


def test_method_config_from_errors_name_the_problem(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"pipeline: demo\nmethod_config_from: {b}\n")
    b.write_text(f"pipeline: demo\nmethod_config_from: {a}\n")
    with pytest.raises(ValueError, match="cycle"):
        load_benchmark_preset(a)
    a.write_text(f"pipeline: demo\nmethod_config_from: {b}\n")
    b.write_text("pipeline: demo\nmethod_config: {gd: {lrr: 1}}\n")
    with pytest.raises(ValueError, match=r"a\.yaml: method_config_from .*b\.yaml.*valid keys"):
        load_benchmark_preset(a)  # an inherited bad key fails like an own one, naming where it came from
    b.write_text("pipeline: demo\nmethod_confg: {gd: {lr: 1}}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['method_confg'\] in b\.yaml"):
        load_benchmark_preset(a)  # a typo in the source is not silently an empty inheritance
    a.write_text("pipeline: demo\nmethod_config_from: no-such-preset\n")
    with pytest.raises(FileNotFoundError, match=r"a\.yaml: method_config_from 'no-such-preset'.*known presets"):
        load_benchmark_preset(a)


def test_method_config_from_reads_a_relative_path_from_the_presets_folder(tmp_path, monkeypatch):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "base.yaml").write_text("pipeline: demo\nmethod_config: {gd: {lr: 0.02}}\n")
    (folder / "child.yaml").write_text("pipeline: demo\nmethods: [gd]\nmethod_config_from: base.yaml\n")
    monkeypatch.chdir(tmp_path)  # not the presets' folder: a cwd-relative lookup would miss base.yaml
    assert load_benchmark_preset(folder / "child.yaml").method_config == {"gd": {"lr": 0.02}}


def test_select_setting_follows_the_declared_rule():
    from hf_unlearn.benchmark import select_setting

    cells = [{"validation_accuracy": 0.90, "gus": 1.5}, {"validation_accuracy": 0.89, "gus": 0.4},
             {"validation_accuracy": 0.80, "gus": 0.0}, {"validation_accuracy": 0.95, "gus": -0.6}]
    assert select_setting(cells, original_accuracy=0.905) == 1, "lowest |GUS| among those within 2 points"
    assert select_setting(cells, original_accuracy=0.97) == 3, "none within 2 points: the highest accuracy"
    tie = [{"validation_accuracy": 0.90, "gus": 0.5}, {"validation_accuracy": 0.92, "gus": -0.5}]
    assert select_setting(tie, original_accuracy=0.9) == 1, "equal |GUS|: the higher validation accuracy"


def test_tuning_runs_the_grid_once_records_every_cell_and_sweeps_at_the_selection(tmp_path):
    from hf_unlearn.unlearn.base import load_method_grid

    cfg = tiny_benchmark(methods=["none", "ga"], seeds=[0, 1], budgets=[0.5, 1.0], tune=True, tune_at_budget=1.0,
                         tune_seed=0)
    res = run_benchmark(cfg, tmp_path, progress=False)
    grid = load_method_grid("ga")
    tuning = [r.to_dict() for r in read_records(tmp_path / "tuning.jsonl")]
    assert [t["tuning"]["setting"] for t in tuning] == grid, "every grid cell is recorded, in grid order"
    assert all(t["budget_fraction"] == 1.0 and t["seed"] == 0 for t in tuning)
    selected = [t for t in tuning if t["tuning"]["selected"]]
    assert len(selected) == 1
    total = sum(t["compute_used"] for t in tuning)
    assert all(t["tuning"]["tuning_compute"] == pytest.approx(total) for t in tuning)
    sweep = [r for r in res.records if r["method"] == "ga"]
    assert len(sweep) == 4 and all(r["tuning"]["setting"] == selected[0]["tuning"]["setting"] for r in sweep)
    assert all(r["tuning"]["selected"] and r["tuning"]["tuning_compute"] == pytest.approx(total) for r in sweep)
    for r in sweep:  # the budget still binds; tuning compute is reported apart from it
        assert r["compute_used"] <= r["budget_fraction"] * json.loads(
            (tmp_path / "models" / cfg.pipeline.poison.name / "poisoned" / "training_summary.json").read_text())["training_cost"]
    reused = next(r for r in sweep if r["seed"] == 0 and r["budget_fraction"] == 1.0)
    assert reused["metrics"] == selected[0]["metrics"], "the selected grid cell is the sweep's cell at that budget and seed"
    assert {r["budget_fraction"] for r in sweep} == {0.5, 1.0}
    assert (tmp_path / "tuning.md").read_text().count("**yes**") == 1
    assert (tmp_path / f"sweep_{cfg.pipeline.poison.name}.png").stat().st_size > 0, "two budgets: a sweep figure"
    assert "tuning.md" in (tmp_path / "report.md").read_text()
    n_cells = len((tmp_path / "tuning_cells.jsonl").read_text().splitlines())
    again = run_benchmark(cfg, tmp_path, progress=False)
    assert again.ran == [] and len((tmp_path / "tuning_cells.jsonl").read_text().splitlines()) == n_cells, \
        "a rerun repeats neither grid cells nor sweep cells"


def test_benchmark_cli_tuning_flags(monkeypatch, tmp_path):
    from hf_unlearn import cli

    seen = {}
    monkeypatch.setattr("hf_unlearn.benchmark.run_benchmark", lambda *a, **kw: seen.update(kw) or (_ for _ in ()).throw(
        ValueError("stop here")))
    assert cli.main(["benchmark", "--output-dir", str(tmp_path), "--tune-at-budget", "0.1", "--tune-seed", "0",
                     "--method-set", "ga.lr=0.0001", "--method-set", "ga.stop_on_collapse=true"]) == 2
    assert seen["tune"] is True and seen["tune_at_budget"] == 0.1 and seen["tune_seed"] == 0
    assert seen["method_overrides"] == {"ga": {"lr": 1e-4, "stop_on_collapse": True}}
    assert cli.main(["benchmark", "--method-set", "ga-lr=1"]) == 2


def test_the_paper_preset_tunes_once_at_ten_percent_and_bad_tuning_keys_fail(tmp_path):
    cfg = load_benchmark_preset("paper")
    assert cfg.tune and cfg.tune_at_budget == 0.1 and cfg.tune_seed == 0 and cfg.validation_fraction == 0.05
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: demo\ntune: true\nvalidation_fraction: 1.5\n")
    with pytest.raises(ValueError, match="validation_fraction"):
        load_benchmark_preset(bad)


# ----------------------------------------------------------------------------- summaries of any attack
CPU_RECORDS = "docs/benchmark/results_cpu.jsonl"  # Gaussian records of the documented CPU benchmark
# format_summary's table for those records, as the GUS/TPR-only code printed it (the CIFAR output must not change).
CPU_TABLE = """\
| variant | method | budget | seeds | test acc | GUS | TPR@1% | TPR@0.1% | compute (fwd-eq.) | compute / training |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| eps0.15-b5-s0-n1000 | No unlearning | - | 3 | 0.367 ± 0.000 | 1.66 ± 0.00 | 0.280 ± 0.000 | 0.120 ± 0.000 | 0 | 0.000 ± 0.000 |
| eps0.15-b5-s0-n1000 | Retrain | - | 3 | 0.356 ± 0.013 | 0.13 ± 0.14 | 0.013 ± 0.023 | 0.000 ± 0.000 | 1.14e+05 | 0.950 ± 0.000 |
| eps0.15-b5-s0-n1000 | GD | 0.1 | 3 | 0.362 ± 0.004 | 1.62 ± 0.03 | 0.293 ± 0.042 | 0.107 ± 0.023 | 1.178e+04 | 0.098 ± 0.000 |
| eps0.15-b5-s0-n1000 | NGD | 0.1 | 3 | 0.353 ± 0.006 | 1.46 ± 0.06 | 0.193 ± 0.046 | 0.027 ± 0.023 | 1.178e+04 | 0.098 ± 0.000 |
| eps0.15-b5-s0-n1000 | GA | 0.1 | 3 | 0.349 ± 0.000 | 1.41 ± 0.00 | 0.100 ± 0.000 | 0.020 ± 0.000 | 1500 | 0.013 ± 0.000 |
| eps0.15-b5-s0-n1000 | EU-k | 0.1 | 3 | 0.232 ± 0.007 | 0.08 ± 0.08 | 0.013 ± 0.023 | 0.000 ± 0.000 | 1.178e+04 | 0.098 ± 0.000 |
| eps0.15-b5-s0-n1000 | CF-k | 0.1 | 3 | 0.364 ± 0.004 | 1.66 ± 0.00 | 0.273 ± 0.012 | 0.127 ± 0.012 | 1.178e+04 | 0.098 ± 0.000 |
| eps0.15-b5-s0-n1000 | SCRUB | 0.1 | 3 | 0.350 ± 0.008 | 1.32 ± 0.06 | 0.147 ± 0.031 | 0.020 ± 0.000 | 1.18e+04 | 0.098 ± 0.000 |
| eps0.15-b5-s0-n1000 | NegGrad+ | 0.1 | 3 | 0.356 ± 0.002 | 1.45 ± 0.01 | 0.160 ± 0.020 | 0.013 ± 0.012 | 1.184e+04 | 0.099 ± 0.000 |
| eps0.15-b5-s0-n1000 | SSD | 0.1 | 3 | 0.250 ± 0.028 | 0.91 ± 0.09 | 0.080 ± 0.035 | 0.020 ± 0.020 | 3150 | 0.026 ± 0.000 |"""


def cpu_records() -> list[dict]:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / CPU_RECORDS
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_gaussian_summary_is_the_documented_one():
    import pandas as pd
    from pathlib import Path

    from hf_unlearn.benchmark import format_summary, summarize

    stats = summarize(cpu_records(), {"eps0.15-b5-s0-n1000": 120_000.0})
    assert format_summary(stats) == CPU_TABLE, "Gaussian (CIFAR) tables keep their columns and digits"
    documented = pd.read_csv(Path(__file__).resolve().parents[1] / "docs/benchmark/summary_cpu.csv")
    assert list(stats.columns) == list(documented.columns), "summary.csv keeps its columns for Gaussian records"
    got = stats.assign(budget=stats["budget"].astype(str))
    pd.testing.assert_frame_equal(got, documented.assign(budget=documented["budget"].astype(str)), check_dtype=False)


def targeted_record(method: str, seed: int, budget: float | None, acc: float, success: float, compute: float) -> dict:
    return {"schema_version": 1, "task": "imdb", "attack": "targeted",
            "dataset": {"id": "poisoned-imdb-targeted", "config": "disney-b100-s0", "revision": None},
            "model": {"id": "m", "revision": None}, "method": method, "method_config": {}, "budget_fraction": budget,
            "compute_used": compute, "seed": seed, "created_at": "2026-11-29T00:00:00+00:00",
            "metrics": {"test_accuracy": acc, "target_success": success, "num_targets": 50},
            "versions": {"torch": "test"}}


def test_a_targeted_benchmark_reports_target_success_and_its_gap_to_retrain(tmp_path):
    from hf_unlearn.benchmark import format_summary, summarize, write_report

    records = []
    for s in (0, 1):
        records += [targeted_record("none", s, None, 0.80, 0.90, 0.0),
                    targeted_record("retrain", s, None, 0.78, 0.10 + 0.02 * s, 1000.0)]  # Retrain's mean: 0.11
        for b in (0.05, 0.1):
            records.append(targeted_record("gd", s, b, 0.79, 0.50 - b, 100 * b))
    for r in records:
        validate_record(r)  # the synthetic records are valid targeted records
    paths = write_report(records, tmp_path, training_costs={"disney-b100-s0": 1000.0})

    summary = (tmp_path / "summary.md").read_text()
    header = summary.splitlines()[0]
    assert "target success" in header and "Δ target success vs Retrain" in header
    assert "GUS" not in summary and "TPR" not in summary, "no Gaussian columns for a targeted attack"
    rows = {line.split(" | ")[1] + line.split(" | ")[2]: line for line in summary.splitlines()[2:]}
    assert "| 0.900 ± 0.000 | +0.790 |" in rows["No unlearning-"], "0.90 - Retrain's mean 0.11"
    assert "| 0.110 ± 0.014 | +0.000 |" in rows["Retrain-"]
    assert "| 0.790 ± 0.000 | 0.450 ± 0.000 | +0.340 | 5 | 0.005 ± 0.000 |" in rows["GD0.05"]
    for name in ("figure_disney-b100-s0", "sweep_disney-b100-s0"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0 and paths[name].endswith(f"{name}.png")
    report = (tmp_path / "report.md").read_text()
    assert summary.strip() in report and "Retrain's value" in report and "TPR@1% near 0.01" not in report

    # A Gaussian and a targeted variant together: one table per kind, each with its own columns.
    both = summarize(cpu_records() + records)
    tables = sorted(format_summary(both).split("\n\n"), key=lambda t: "| GUS |" not in t)
    assert len(tables) == 2 and "| GUS |" in tables[0] and "| target success |" in tables[1]
    assert "disney" not in tables[0] and "eps0.15" not in tables[1], "each variant sits in its own kind's table"


def test_a_summary_of_unknown_metrics_tabulates_and_plots_them(tmp_path):
    from hf_unlearn.benchmark import write_report

    records = [targeted_record(m, 0, None if m == "none" else 0.1, 0.5, 0.0, 1.0) for m in ("none", "gd")]
    for r, gap in zip(records, (0.0, -0.25)):
        r["attack"], r["metrics"] = "indiscriminate", {"test_accuracy": 0.5 + gap, "accuracy_gap_to_retrain": gap}
    write_report(records, tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| accuracy_gap_to_retrain |" in summary.splitlines()[0] and "| -0.250 |" in summary
    assert (tmp_path / "figure_disney-b100-s0.png").stat().st_size > 0


def test_tuning_minimises_the_attacks_own_poison_evidence():
    """Gaussian cells are ranked by |GUS|; trigger cells (no GUS) by the forget-set accuracy on the flipped
    labels, never by the test-set target success a method may not see; the 2-point accuracy rule still gates."""
    from hf_unlearn.benchmark import poison_evidence, select_setting

    assert poison_evidence({"gus": -0.7, "forget_accuracy": 0.1}) == 0.7
    assert poison_evidence({"forget_accuracy": 0.4, "target_success": 0.0}) == 0.4
    with pytest.raises(ValueError, match="poison evidence"):
        poison_evidence({"target_success": 0.2})
    cells = [{"validation_accuracy": 0.90, "evidence": poison_evidence({"forget_accuracy": 0.8, "target_success": 0.1})},
             {"validation_accuracy": 0.89, "evidence": poison_evidence({"forget_accuracy": 0.3, "target_success": 0.9})},
             {"validation_accuracy": 0.70, "evidence": poison_evidence({"forget_accuracy": 0.0, "target_success": 0.0})}]
    assert select_setting(cells, original_accuracy=0.90) == 1
    # the old Gaussian-only cells still select by |GUS|
    assert select_setting([{"validation_accuracy": 0.9, "gus": -0.2}, {"validation_accuracy": 0.9, "gus": 0.5}], 0.9) == 0


def test_an_indiscriminate_benchmark_reports_the_accuracy_gap_to_retrain(tmp_path):
    from hf_unlearn.benchmark import write_report

    def rec(method, seed, budget, acc):
        r = targeted_record(method, seed, budget, acc, 0.0, 0.0 if method == "none" else 10.0)
        r["task"], r["attack"] = "cifar10", "indiscriminate"
        r["dataset"] = {"id": "poisoned-cifar10-indiscriminate", "config": "gc-b1.5-s0", "revision": None}
        r["metrics"] = {"test_accuracy": acc, "forget_accuracy": 0.9, "num_poisons": 300}
        return r

    records = []
    for s in (0, 1):
        records += [rec("none", s, None, 0.50), rec("retrain", s, None, 0.70 + 0.02 * s),  # Retrain's mean: 0.71
                    rec("gd", s, 0.05, 0.55), rec("gd", s, 0.1, 0.60), rec("euk", s, 0.1, 0.30)]
    for r in records:
        validate_record(r)
    write_report(records, tmp_path, training_costs={"gc-b1.5-s0": 1000.0})
    summary = (tmp_path / "summary.md").read_text()
    assert "Δ test acc vs Retrain" in summary.splitlines()[0] and "GUS" not in summary and "target" not in summary
    rows = {line.split(" | ")[1] + line.split(" | ")[2]: line for line in summary.splitlines()[2:]}
    assert "| 0.500 ± 0.000 | -0.210 |" in rows["No unlearning-"], "0.50 - Retrain's mean 0.71"
    assert "| 0.600 ± 0.000 | -0.110 |" in rows["GD0.1"] and "| 0.300 ± 0.000 | -0.410 |" in rows["EU-k0.1"]
    assert "| 0.550 ± 0.000 | -0.160 |" in rows["GD0.05"]
    assert (tmp_path / "figure_gc-b1.5-s0.png").stat().st_size > 0
    assert (tmp_path / "sweep_gc-b1.5-s0.png").stat().st_size > 0


def test_a_preset_grid_replaces_the_method_yaml_grid_and_is_checked(tmp_path):
    from hf_unlearn.benchmark import _grid, load_benchmark_preset
    from hf_unlearn.unlearn.base import load_method_grid

    path = tmp_path / "text.yaml"
    path.write_text("pipeline: demo\nmethods: [gd, ga]\ntune: true\nmethod_config: {gd: {momentum: 0.5}}\n"
                    "grids:\n  gd: {lr: [0.003, 0.001], batch_size: [16]}\n")
    cfg = load_benchmark_preset(path)
    assert _grid("gd", cfg) == [{"lr": 0.003, "batch_size": 16}, {"lr": 0.001, "batch_size": 16}]
    assert _grid("ga", cfg) == load_method_grid("ga"), "a method the preset does not name keeps its YAML grid"
    path.write_text("pipeline: demo\nmethods: [gd]\ngrids:\n  gd: {learning_rate: [0.1]}\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_benchmark_preset(path)
    path.write_text("pipeline: demo\nmethods: [gd]\ngrids:\n  gd: {lr: []}\n")
    with pytest.raises(ValueError, match="grids.gd: grid must map"):
        load_benchmark_preset(path)
    path.write_text("pipeline: demo\nmethods: [gd]\ngrids:\n  gdd: {lr: [0.1]}\n")
    with pytest.raises(Exception, match="gdd"):
        load_benchmark_preset(path)


def test_the_imdb_benchmark_presets_load_with_text_grids():
    from hf_unlearn.benchmark import _grid, load_benchmark_preset

    for name in ("imdb-gaussian", "imdb-targeted"):
        cfg = load_benchmark_preset(name)
        assert cfg.pipeline.task == "imdb" and cfg.tune and cfg.seeds == [0, 1, 2]
        assert all(c["lr"] <= 0.01 for c in _grid("gd", cfg)), "GD's ResNet step (0.02) took GPT-2 to chance"


@pytest.mark.parametrize("name, attack, seeds, budgets, variants", [
    ("cifar10-targeted", "targeted", [0, 1, 2], [0.02, 0.04, 0.06, 0.08, 0.1], None),
    ("cifar10-targeted-targets", "targeted", [0], [0.02, 0.1], [4, 5, 6, 7]),
    ("cifar10-indiscriminate", "indiscriminate", [0, 1, 2], [0.02, 0.04, 0.06, 0.08, 0.1], [2.0]),
])
def test_the_cifar10_crafted_benchmark_presets_set_every_budgeted_method(name, attack, seeds, budgets, variants):
    """Untuned (no cheap poison evidence to tune on), so every budgeted method must carry an explicit, valid
    setting, the same one in every crafted preset (the cpu-fidelity Gaussian selection)."""
    from hf_unlearn.benchmark import load_benchmark_preset
    from hf_unlearn.results import REFERENCE_METHODS
    from hf_unlearn.unlearn import build_config

    cfg = load_benchmark_preset(name)
    assert cfg.pipeline.task == "cifar10" and cfg.pipeline.attack == attack and not cfg.tune
    assert cfg.budgets == budgets and cfg.seeds == seeds
    if variants is not None:  # the targets' seeds, or the poison budgets
        assert [getattr(v, "seed" if attack == "targeted" else "budget") for v in cfg.variants] == variants
    budgeted = [m for m in cfg.methods if m not in REFERENCE_METHODS]
    assert sorted(cfg.method_config) == sorted(budgeted) and len(budgeted) == 8
    assert cfg.method_config == load_benchmark_preset("cifar10-targeted").method_config
    for method, overrides in cfg.method_config.items():
        built = build_config(method, overrides, yaml_path="preset")
        assert all(getattr(built, k) == v for k, v in overrides.items())
