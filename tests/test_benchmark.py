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


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
