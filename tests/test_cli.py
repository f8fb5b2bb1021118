"""The `hf-unlearn` verbs as a user runs them: subprocesses, return codes, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_unlearn.results import read_records

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "train.epochs=1", "--set", "train.width=4", "--set", "poison.max_train_rows=120",
        "--set", "scoring.null_draws=10", "--no-progress", "--cpu"]


def hf_unlearn(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "hf_unlearn.cli", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"hf-unlearn {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_help_is_fast_and_lists_every_verb():
    t0 = time.perf_counter()
    out = hf_unlearn("--help").stdout
    for verb in ("build", "train", "unlearn", "score", "demo", "benchmark", "submit", "board", "publish"):
        assert verb in out
    assert time.perf_counter() - t0 < 20, "start-up must not import torch/evaluate/gradio"
    code = "import sys, hf_unlearn.cli; print(any(m in sys.modules for m in ('torch', 'evaluate', 'gradio')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_build_train_score_chain(tmp_path):
    """Each verb reads the previous verb's folder: build -> train -> score -> JSONL record."""
    hf_unlearn("build", "--source", "samples", "--eps", "0.1", "--budget", "5", "--max-train-rows", "120", cwd=tmp_path)
    assert (tmp_path / "poisoned-cifar10-gaussian" / "README.md").exists()
    cfg = "eps0.1-b5-s0-n120"
    hf_unlearn("train", "--dataset", "poisoned-cifar10-gaussian", "--config", cfg, "--output-dir", "m",
               "--set", "train.epochs=1", "--set", "train.width=4", "--no-progress", "--cpu", cwd=tmp_path)
    assert (tmp_path / "m" / "model.safetensors").exists()
    out = hf_unlearn("score", "--checkpoint", "m", "--dataset", "poisoned-cifar10-gaussian", "--config", cfg,
                     "--null-draws", "10", "--output", "results.jsonl", cwd=tmp_path)
    metrics = json.loads(out.stdout)
    assert metrics["num_poisons"] == 6 and metrics["num_nulls"] == 60
    (record,) = read_records(tmp_path / "results.jsonl")
    assert record.dataset["config"] == cfg and record.method == "none"
    # score writes its results into the local checkpoint's card, where the Hub reads them (model-index)
    from huggingface_hub import ModelCard

    results = {(r.metric_type, r.dataset_config): r.metric_value for r in ModelCard.load(tmp_path / "m" / "README.md").data.eval_results}
    assert results[("gus", cfg)] == pytest.approx(metrics["gus"]) and ("accuracy", cfg) in results

    # unlearn the poisoned checkpoint, with plain python and under `accelerate launch`
    common = ["--checkpoint", "m", "--dataset", "poisoned-cifar10-gaussian", "--config", cfg, "--budget", "0.1",
              "--null-draws", "10", "--output", "results.jsonl", "--no-progress", "--cpu"]
    plain = json.loads(hf_unlearn("unlearn", "--method", "ga", "--output-dir", "u-ga", *common, cwd=tmp_path).stdout)
    assert plain["compute_used"] <= plain["compute_limit"] and plain["checkpoint"] == "u-ga"
    assert (tmp_path / "u-ga" / "model.safetensors").exists() and (tmp_path / "u-ga" / "README.md").exists()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hf_unlearn.cli", "unlearn",
         "--method", "scrub", "--seed", "1", "--set", "lr=0.001", "--output-dir", "u-scrub", *common],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert launched.returncode == 0, launched.stderr[-2000:]
    records = read_records(tmp_path / "results.jsonl")
    assert [(r.method, r.seed, r.budget_fraction) for r in records] == [("none", 0, None), ("ga", 0, 0.1), ("scrub", 1, 0.1)]
    assert records[2].method_config["lr"] == 0.001
    bad = hf_unlearn("unlearn", "--method", "forget-everything", *common, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "forget-everything" in bad.stderr.strip().splitlines()[-1]


def test_benchmark_verb_writes_report_and_resumes(tmp_path):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(
        "pipeline: demo\n"
        "set: [train.epochs=1, train.width=4, poison.max_train_rows=120, scoring.null_draws=5]\n"
        "methods: [none, gd]\nseeds: [0]\nbudgets: [0.1]\n"
    )
    args = ("benchmark", "--preset", str(preset), "--output-dir", "b", "--no-progress", "--cpu")
    out = hf_unlearn(*args, "--budgets", "0.05", "0.1", cwd=tmp_path).stdout
    assert "0 already in" in out and "3 run now" in out
    for name in ("results.jsonl", "summary.md", "summary.csv", "report.md"):
        assert (tmp_path / "b" / name).stat().st_size > 0
    assert list((tmp_path / "b").glob("figure_*.png"))
    assert sorted(r.budget_fraction or 0 for r in read_records(tmp_path / "b" / "results.jsonl")) == [0, 0.05, 0.1]
    again = hf_unlearn(*args, "--budgets", "0.05", "0.1", cwd=tmp_path).stdout
    assert "3 already in" in again and "0 run now" in again


def test_demo_writes_records_table_and_plots(tmp_path):
    out = hf_unlearn("demo", "--output-dir", str(tmp_path / "d"), "--methods", "none", "retrain", *TINY).stdout
    assert "| No unlearning |" in out and "| Retrain |" in out
    records = read_records(tmp_path / "d" / "results.jsonl")
    assert [r.method for r in records] == ["none", "retrain"]
    assert records[1].compute_used < records[0].compute_used, "retrain trains on fewer rows"
    for name in ("roc.png", "scores_hist.png", "summary.md"):
        assert (tmp_path / "d" / name).stat().st_size > 0
    # a second run reuses the finished models
    again = hf_unlearn("demo", "--output-dir", str(tmp_path / "d"), "--methods", "none", "retrain", *TINY)
    assert "train poisoned" not in again.stderr
    # References come only from the maintainers: submitting the demo's No-unlearning/Retrain rows is refused,
    # and the store folder must exist (a missing path is never taken for a Space id).
    store = tmp_path / "store"
    missing = hf_unlearn("submit", str(tmp_path / "d" / "results.jsonl"), "--leaderboard", str(store),
                         "--submitter", "ci", "--no-verify", check=False)
    assert missing.returncode == 2 and "no such folder" in missing.stderr and "mkdir" in missing.stderr
    store.mkdir()
    refused = hf_unlearn("submit", str(tmp_path / "d" / "results.jsonl"), "--leaderboard", str(store),
                         "--submitter", "ci", "--no-verify", check=False)
    assert refused.returncode == 2 and "reference" in refused.stderr, refused.stderr
    assert not list(store.rglob("*.json")), "a refused submission leaves nothing behind"
    # An unlearning row (the poisoned model's numbers under a method name) goes through once; a resend is a duplicate.
    row = records[0].to_dict() | {"method": "gd", "budget_fraction": 0.1}
    (tmp_path / "gd.jsonl").write_text(json.dumps(row) + "\n")
    hf_unlearn("submit", str(tmp_path / "gd.jsonl"), "--leaderboard", str(store), "--submitter", "ci", "--no-verify")
    assert len(list(store.rglob("*.json"))) >= 1
    dup = hf_unlearn("submit", str(tmp_path / "gd.jsonl"), "--leaderboard", str(store),
                     "--submitter", "ci", "--no-verify", check=False)
    assert dup.returncode == 2 and "already" in dup.stderr, dup.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "--preset", "nope"], "no preset 'nope'"),
        (["demo", "--set", "train.epoch=3"], "unknown key 'epoch'"),
        (["demo", "--set", "train.epochs=0"], "epochs=0"),
        (["demo", "--set", "poison.eps=-1"], "eps=-1"),
        (["score", "--checkpoint", "missing", "--dataset", "x", "--config", "eps0.1-b1-s0"], "missing"),
        (["train", "--dataset", "nowhere", "--config", "eps0.1-b1.5-s0"], "nowhere"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(args, message, tmp_path):
    proc = hf_unlearn(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "error:" in last and message in last, last


def test_board_prints_the_ranked_table_for_scripts(tmp_path):
    """`hf-unlearn board` prints what the Space shows: references from the trusted file, ranks, JSON for scripts."""
    from leaderboard.demo import write_demo

    demo = write_demo(tmp_path / "demo", 60)
    env_refs = {"LEADERBOARD_REFERENCES": str(demo.references_path)}
    proc = subprocess.run([sys.executable, "-m", "hf_unlearn.cli", "board", "--leaderboard", str(demo.store.root),
                           "--task", "cifar10", "--attack", "gaussian", "--format", "json"],
                          env={**os.environ, **env_refs}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and {r["attack"] for r in rows} == {"gaussian"}
    refs = [r for r in rows if r["is_reference"]]
    assert {r["method"] for r in refs} == {"none", "retrain"}
    assert all(r["rank"] is None for r in refs) and any(r["rank"] == 1 for r in rows)
    md = hf_unlearn("board", "--leaderboard", str(demo.store.root), "--format", "md").stdout
    assert md.startswith("### ") and "| Rank |" in md
    bad = hf_unlearn("board", "--leaderboard", str(tmp_path / "nowhere"), check=False)
    assert bad.returncode == 2 and "no such folder" in bad.stderr
