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
