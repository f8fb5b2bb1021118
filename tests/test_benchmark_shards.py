"""Benchmark cells spread over shards: shard ids, the split of the grid, torn lines, the merge, shards killed at
random points and restarted, and a real `accelerate launch` of two processes with tuning."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hf_unlearn.benchmark import BenchmarkConfig, merge_results, plan_cells, run_benchmark, shard_cells
from hf_unlearn.results import read_records
from hf_unlearn.shards import MergeConflict, Shard, append_line, parse_shard, read_lines, resolve_shard

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread

ROOT = Path(__file__).resolve().parents[1]
# A tiny benchmark a subprocess rebuilds from JSON: 128 training rows, a width-4 ResNet, one epoch, 5 null draws.
SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from hf_unlearn.benchmark import run_benchmark
    sys.path.insert(0, sys.argv[1])
    from test_benchmark_shards import tiny
    args = json.loads(sys.argv[2])
    out, shard = args.pop("out"), args.pop("shard")
    run_benchmark(tiny(**args), out, shard=shard, progress=False)
""")


def tiny(**kw) -> BenchmarkConfig:
    from hf_unlearn.config import PipelineConfig, ScoringConfig
    from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
    from hf_unlearn.train import TrainConfig

    pipeline = PipelineConfig(source="samples", poison=GaussianPoisonConfig(0.15, 5.0, 0, 128),
                              train=TrainConfig(epochs=1, batch_size=32, width=4, eval_batch_size=500),
                              scoring=ScoringConfig(null_draws=5))
    return BenchmarkConfig(pipeline=pipeline, **kw)


GRID = {"methods": ["gd", "ssd"], "seeds": [0, 1], "budgets": [1.0, 2.0]}  # 2 x 2 x 2 = 8 cells


def start(out: Path, shard: str | None, log: Path, launcher: list[str] | None = None, **grid) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    script = log.with_suffix(".py")
    script.write_text(SCRIPT)
    argv = [str(script), str(Path(__file__).parent), json.dumps({"out": str(out), "shard": shard, **grid})]
    proc = subprocess.Popen([*(launcher or [sys.executable]), *argv], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)  # its own group: a hang is killed whole
    STARTED.append(proc)
    return proc


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """A failing test must not leave shards running: kill whatever it started and did not reap."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # e.g. launched processes stuck in one data-parallel group
        proc.wait()
        raise AssertionError(f"{proc.args} still running after {timeout} s:\n{log.read_text()[-4000:]}") from None
    assert rc == 0, f"{proc.args} exited {rc}:\n{log.read_text()[-4000:]}"


def kill_at_random_points(procs: list[subprocess.Popen], files: list[Path], rng: random.Random) -> int:
    """SIGKILL each process at a seeded point: some a random time after start (building, training, scoring),
    the others a random moment after their next finished cell (between cells, or inside the next one)."""
    def lines(path: Path) -> int:
        return path.read_text().count("\n") if path.exists() else 0

    plans = [(lines(f), rng.random() < 0.6, rng.uniform(1.0, 6.0), rng.uniform(0.0, 0.8)) for f in files]
    t0, armed, kills = time.monotonic(), [None] * len(procs), 0
    while any(p.poll() is None for p in procs):
        now = time.monotonic() - t0
        for i, (proc, path, (before, after_cell, at, extra)) in enumerate(zip(procs, files, plans)):
            if proc.poll() is not None:
                continue
            if after_cell and armed[i] is None and lines(path) > before:
                armed[i] = now + extra
            due = armed[i] if after_cell else at
            if (due is not None and now >= due) or now > 60:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        time.sleep(0.02)
    return kills


def cell_of(record: dict) -> tuple:
    return record["dataset"]["config"], record["method"], record["seed"], record["budget_fraction"]


def comparable(record: dict) -> dict:
    """What a cell computed: equal whichever process ran it (paths and timestamps aside)."""
    return {k: record[k] for k in ("metrics", "compute_used", "method_config", "stopped_by", "seed", "method",
                                   "budget_fraction", "tuning")}


# ----------------------------------------------------------------------------- shard ids and the split
def test_shard_ids_are_zero_based_k_of_n_and_come_from_a_launched_world():
    assert parse_shard("2/4") == Shard(2, 4) and parse_shard(" 0 / 1 ") == Shard(0, 1)
    for bad in ("4/4", "1-4", "0/0", "-1/2", "a/b"):
        with pytest.raises(ValueError, match="0-based"):
            parse_shard(bad)
    assert Shard(1, 4).file("o", "results") == Path("o/results.shard-1-of-4.jsonl")
    assert Shard().file("o", "results") == Path("o/results.jsonl"), "one process keeps the historical name"

    world = {"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"}  # what accelerate launch / torchrun set
    assert resolve_shard(None, world) == Shard(1, 3, 1)
    assert resolve_shard("1/2", world) == Shard(4, 6, 1), "an array task of launched processes: K*W + rank of N*W"
    assert resolve_shard("1/2", {}) == Shard(1, 2) and resolve_shard(None, {"WORLD_SIZE": "1", "RANK": "0"}) == Shard()


def test_every_cell_goes_to_exactly_one_shard_and_the_expensive_ones_spread_first():
    cells = plan_cells(["v1", "v2"], ["none", "gd", "retrain"], [0, 1, 2], [0.05, 0.1])
    for n in (1, 2, 3, 5):
        owners = shard_cells(cells, n)
        assert owners == shard_cells(list(cells), n), "every shard computes the same split"
        assert set(owners) == set(range(n)) and len(owners) == len(cells)
    owners = shard_cells(cells, 3)
    retrains = [k for c, k in zip(cells, owners) if c.method == "retrain"]
    assert sorted(retrains) == [0, 0, 1, 1, 2, 2], "six Retrains (a full training each) over three shards: two each"


# ----------------------------------------------------------------------------- torn lines and the merge
def test_a_torn_last_line_is_ignored_and_cut_off_by_its_writer(tmp_path):
    path = tmp_path / "results.shard-0-of-2.jsonl"
    append_line(path, {"a": 1})
    append_line(path, {"b": 2})
    with path.open("a") as fh:
        fh.write('{"c": 3, "d"')  # a write cut short by a kill
    assert [d for _, d in read_lines(path)] == [{"a": 1}, {"b": 2}] and path.read_text().endswith('"d"'), \
        "readers skip it and leave the file alone"
    assert len(read_lines(path, repair=True)) == 2 and path.read_text().endswith("\n")
    append_line(path, {"c": 3})
    assert [d for _, d in read_lines(path)] == [{"a": 1}, {"b": 2}, {"c": 3}], "the next append starts a fresh line"

    path.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(ValueError, match=r"shard-0-of-2.jsonl:2: not valid JSON"):
        read_lines(path, repair=True)


def record(method: str, seed: int, budget: float | None, acc: float, created: str = "2026-11-29T00:00:00+00:00"):
    return {"schema_version": 1, "task": "imdb", "attack": "targeted",
            "dataset": {"id": "poisoned-imdb-targeted", "config": "v", "revision": None},
            "model": {"id": "m", "revision": None}, "method": method, "method_config": {}, "budget_fraction": budget,
            "compute_used": 1.0, "seed": seed, "created_at": created,
            "metrics": {"test_accuracy": acc, "target_success": 0.5}, "versions": {"torch": "test"}}


def test_the_merge_is_the_validated_union_in_plan_order_and_refuses_disagreeing_copies(tmp_path):
    cells = plan_cells(["v"], ["none", "gd"], [0, 1], [0.1])  # none s0, gd s0, none s1, gd s1
    a, b, c, d = (record("none", 0, None, 0.5), record("gd", 0, 0.1, 0.6), record("none", 1, None, 0.7),
                  record("gd", 1, 0.1, 0.8))
    other = record("gd", 7, 0.1, 0.9)  # a cell of an earlier, larger grid: kept, after the plan's
    for r in (d, other, a):
        append_line(tmp_path / "results.jsonl", r)
    append_line(tmp_path / "results.shard-0-of-2.jsonl", c)
    append_line(tmp_path / "results.shard-0-of-2.jsonl", {**a, "created_at": "2026-11-30T00:00:00+00:00"})
    append_line(tmp_path / "results.shard-1-of-2.jsonl", b)
    with (tmp_path / "results.shard-1-of-2.jsonl").open("a") as fh:
        fh.write(json.dumps(record("gd", 1, 0.1, 0.1))[:40])  # torn: a shard killed (or still writing)

    merged = merge_results(tmp_path, cells)
    assert [cell_of(r) for r in merged] == [cell_of(r) for r in (a, b, c, d, other)], "plan order, then the rest"
    assert [r.metrics["test_accuracy"] for r in read_records(tmp_path / "results.jsonl")] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert merge_results(tmp_path, cells) == merged, "merging again (shard files kept) changes nothing"

    disagreeing = {**a, "metrics": {"test_accuracy": 0.51, "target_success": 0.5}}
    append_line(tmp_path / "results.shard-0-of-2.jsonl", disagreeing)
    with pytest.raises(MergeConflict, match=r"cell v none s=0 has two different records: .*results.jsonl:1 and "
                                            r".*shard-0-of-2.jsonl:3 differ in \['metrics'\]"):
        merge_results(tmp_path, cells)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 5, "a refused merge leaves results.jsonl"

    (tmp_path / "results.shard-0-of-2.jsonl").write_text(json.dumps({**c, "seed": -1}) + "\n")
    with pytest.raises(ValueError, match=r"shard-0-of-2.jsonl:1: result record field 'seed'"):
        merge_results(tmp_path, cells)


# ----------------------------------------------------------------------------- the real thing
def test_shards_killed_at_random_points_and_restarted_merge_into_the_single_process_results(tmp_path):
    single = run_benchmark(tiny(**GRID), tmp_path / "single", progress=False)
    assert len(single.records) == 8
    expected = {cell_of(r): comparable(r) for r in single.records}

    out, n, rng, kills = tmp_path / "sharded", 3, random.Random(1129), 0
    for round_ in range(2):  # two rounds of three shards, each killed at a seeded random point
        procs = [start(out, f"{k}/{n}", tmp_path / f"r{round_}-s{k}.log", **GRID) for k in range(n)]
        kills += kill_at_random_points(procs, [out / f"results.shard-{k}-of-{n}.jsonl" for k in range(n)], rng)
        # A kill mid-write leaves a torn last line: make one (half of a shard's last record) to see it dropped.
        written = [p for p in sorted(out.glob("results.shard-*.jsonl")) if p.read_text().strip()]
        if round_ == 0 and written:
            lines = written[0].read_text().splitlines(keepends=True)
            written[0].write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    assert kills >= 2, "the test must actually kill shards"
    partial = run_benchmark(tiny(**GRID), out, stage="merge", progress=False)  # merging early runs nothing
    assert partial.ran == [] and partial.merged and len(partial.records) + len(partial.missing) == 8
    assert len(read_records(out / "results.jsonl")) == len(partial.records)
    procs = [(start(out, f"{k}/{n}", tmp_path / f"final-s{k}.log", **GRID), tmp_path / f"final-s{k}.log")
             for k in range(n)]
    for proc, log in procs:
        finish(proc, log)

    shard_lines = [d for p in sorted(out.glob("results.shard-*-of-3.jsonl")) for _, d in read_lines(p)]
    assert all(p.read_text().endswith("\n") for p in out.glob("results.shard-*.jsonl")), "torn lines were cut off"
    assert sorted(cell_of(r) for r in shard_lines) == sorted(expected), "every cell ran exactly once over all restarts"
    merged = [r.to_dict() for r in read_records(out / "results.jsonl")]  # the last shard merged (validated on read)
    assert [cell_of(r) for r in merged] == [cell_of(r) for r in single.records], "no loss, no duplicate, plan order"
    for r in merged:
        assert comparable(r) == expected[cell_of(r)], f"{cell_of(r)}: same numbers as the single-process run"
    assert (out / "summary.md").read_text() == (tmp_path / "single" / "summary.md").read_text()

    before = (out / "results.jsonl").read_text()
    for shard in ("1/3", "0/2", None):  # the same split, another split, one process: nothing is redone
        again = run_benchmark(tiny(**GRID), out, shard=shard, progress=False)
        assert again.ran == [] and again.merged and not again.missing, shard
    assert (out / "results.jsonl").read_text() == before


def test_accelerate_launch_gives_each_process_its_cells_and_the_same_tuned_selection(tmp_path):
    grid = {"methods": ["none", "ga"], "seeds": [0, 1], "budgets": [0.5, 1.0], "tune": True, "tune_at_budget": 1.0,
            "tune_seed": 0}
    single = run_benchmark(tiny(**grid), tmp_path / "single", progress=False)
    out = tmp_path / "launched"
    log = tmp_path / "launch.log"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    finish(start(out, None, log, launcher, **grid), log)

    for k in (0, 1):  # each process ran its own share of the sweep, alone (no data-parallel group: it would hang)
        assert len(read_lines(out / f"results.shard-{k}-of-2.jsonl")) == 3, f"process {k}:\n{log.read_text()}"
    # Grid cells go to whichever process starts them first (a shard runs the ones its owner has not started yet),
    # but each runs once.
    rows = [d for k in (0, 1) for _, d in read_lines(out / f"tuning_cells.shard-{k}-of-2.jsonl")]
    assert sorted(r["record"]["tuning"]["setting"]["lr"] for r in rows) == [1e-5, 1e-4, 1e-3]
    assert "Traceback" not in log.read_text()
    tuning = [r.to_dict() for r in read_records(out / "tuning.jsonl")]
    want = [r.to_dict() for r in read_records(tmp_path / "single" / "tuning.jsonl")]
    assert [comparable(r) for r in tuning] == [comparable(r) for r in want], "the same grid, the same selection"
    merged = [r.to_dict() for r in read_records(out / "results.jsonl")]
    assert [(cell_of(r), comparable(r)) for r in merged] == [(cell_of(r), comparable(r)) for r in single.records]


def test_stages_prepare_then_tune_then_merge_run_only_their_part(tmp_path):
    grid = {"methods": ["none", "ga"], "seeds": [0], "budgets": [1.0], "tune": True}
    prepared = run_benchmark(tiny(**grid), tmp_path, shard="0/2", stage="prepare", progress=False)
    model = tmp_path / "models" / "eps0.15-b5-s0-n128" / "poisoned" / "model.safetensors"
    assert prepared.ran == [] and model.exists()
    assert not list(tmp_path.glob("*.jsonl")), "preparing trains the shared model and nothing else"
    tuned = run_benchmark(tiny(**grid), tmp_path, shard="0/2", stage="tune", progress=False)
    rows = read_lines(tmp_path / "tuning_cells.shard-0-of-2.jsonl")
    assert tuned.ran == [] and len(rows) == 3, "with no other shard running, shard 0 ran the whole grid (3 cells)"
    assert not list(tmp_path.glob("results*.jsonl"))
    merged = run_benchmark(tiny(**grid), tmp_path, stage="merge", progress=False)
    assert merged.records == [] and len(merged.missing) == 2 and (tmp_path / "tuning.jsonl").exists()
