"""The GPU path of training, checked on the CPU, and the prepared GPU check in its TINY mode.

No GPU runs these tests, so the on-device data path (``RunOptions.data_on_device``) is forced on the CPU, where it
must give the host path's exact bits: the same pixels, augmentation, losses and weights. What only a GPU can show
(speed, NHWC, bf16 tensor cores) is left to ``scripts/gpu_check.sh`` on a GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_unlearn.distributed import ProcessShard
from hf_unlearn.train import (DeviceImages, RunOptions, TrainConfig, _resident_data, apply_draws, batch_flip,
                              batch_flip_crop, device_data_bytes, device_data_fits, epoch_draws, train)
from synthetic import make_split

ROOT = Path(__file__).resolve().parents[1]


def _split():
    """37 clean + 13 poisoned rows of 16x16 images: batches of 12 leave a partial last batch of 2."""
    from hf_unlearn.variant import ImageSplit

    return ImageSplit.concat(make_split(37, poisoned=False, seed=1), make_split(13, poisoned=True, seed=2))


@pytest.mark.parametrize("augment", ["flip-crop", "none"])
def test_device_data_path_gives_the_host_paths_bits(tmp_path, augment):
    split = _split()
    cfg = TrainConfig(epochs=2, batch_size=12, width=4, seed=3, augment=augment, label_smoothing=0.1)
    runs = {}
    for on in (False, True):
        res = train(split, None, cfg, RunOptions(output_dir=str(tmp_path / str(on)), cpu=True, progress=False,
                                                 checkpointing=False, data_on_device=on))
        runs[on] = res
    host, dev = runs[False].model.state_dict(), runs[True].model.state_dict()
    assert all(torch.equal(host[k], dev[k]) for k in host)
    assert runs[True].summary["final_train_loss"] == runs[False].summary["final_train_loss"]
    assert runs[True].training_cost == runs[False].training_cost
    # the CPU keeps the contiguous (NCHW) default: channels_last is for CUDA only
    assert runs[True].model.conv1.weight.is_contiguous()


def test_resident_inputs_are_the_splits_inputs():
    split = _split()
    data = DeviceImages(split, torch.device("cpu"))
    rows = torch.tensor([0, 40, 36, 37, 49, 5])  # clean and poisoned rows, out of order
    assert torch.equal(data.inputs(rows), split.inputs(rows))
    assert torch.equal(data.y[rows], split.y[rows])
    clean = make_split(5, poisoned=False, seed=4)  # Retrain's split: no noise table at all, only the zero row
    assert torch.equal(DeviceImages(clean, torch.device("cpu")).inputs(torch.arange(5)), clean.inputs(torch.arange(5)))


@pytest.mark.parametrize("mode,pad", [("flip-crop", 4), ("flip-crop", 0), ("flip", 4)])
@pytest.mark.parametrize("rank,world", [(0, 1), (1, 3), (2, 3)])
def test_epoch_draws_augment_as_the_host_path(mode, pad, rank, world):
    """Each process's rows of each global batch get the draws batch_flip/_crop make for them, however many processes."""
    shard = ProcessShard(rank, world)
    sizes = [7, 7, 2]  # a partial last batch: with 3 processes its third process has no rows
    draws = epoch_draws(mode, pad, seed=5, epoch=1, batch_sizes=sizes, shard=shard, device=torch.device("cpu"))
    x = torch.rand(7, 3, 6, 6)
    for step, n in enumerate(sizes):
        lo, hi = shard.bounds(n)
        g = torch.Generator().manual_seed((5 * 1_000_003 + 1) * 100_003 + step)
        want = (batch_flip(x[lo:hi], g, batch_rows=n, offset=lo) if mode == "flip"
                else batch_flip_crop(x[lo:hi], g, pad, batch_rows=n, offset=lo))
        assert torch.equal(apply_draws(x[lo:hi], *draws.at(step), pad), want)


def test_device_data_fall_back_when_too_big(monkeypatch):
    split = _split()
    said: list[str] = []
    meta = torch.device("meta")  # not the CPU and no free-memory query: the fixed cap applies
    monkeypatch.setattr("hf_unlearn.train.DEVICE_DATA_CAP", device_data_bytes(split) - 1)
    assert _resident_data(split, meta, None, said.append) is None
    assert "host memory" in said[0] and "data_on_device=True" in said[0]
    assert _resident_data(split, torch.device("cpu"), None, said.append) is None  # the CPU: host path, silently
    assert len(said) == 1
    monkeypatch.setattr("hf_unlearn.train.DEVICE_DATA_CAP", device_data_bytes(split))
    assert isinstance(_resident_data(split, meta, None, said.append), DeviceImages)
    with pytest.raises(ValueError, match="only image splits"):
        _resident_data(object(), meta, True, said.append)


def test_cuda_room_is_a_quarter_of_free_memory(monkeypatch):
    """On CUDA the resident split may take a quarter of the free memory (CIFAR-10's 150 MiB: any current GPU)."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (4 << 30, 8 << 30))
    cuda = torch.device("cuda", 0)
    assert device_data_fits(1 << 30, cuda)[0] and not device_data_fits((1 << 30) + 1, cuda)[0]
    assert "4.0 GiB free on cuda:0" in device_data_fits(1 << 30, cuda)[1]
    assert device_data_bytes(_split()) == 50 * (3 * 16 * 16 + 16) + 14 * 3 * 16 * 16 * 4


@pytest.mark.skipif(shutil.which("bash") is None, reason="scripts/gpu_check.sh needs bash")
def test_gpu_check_script_runs_tiny(tmp_path):
    """TINY=1: the whole GPU check on the shipped samples on the CPU: one JSON line per model, both benchmarks."""
    env = {**os.environ, "TINY": "1", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    lines = [json.loads(s) for s in (tmp_path / "out" / "gpu_check.jsonl").read_text().splitlines()]
    assert [r["method"] for r in lines] == ["none", "retrain", "gd", "ngd", "scrub"]
    for r in lines:
        assert r["dataset"]["config"] == "eps0.1-b1.5-s0-n400" and isinstance(r["metrics"]["gus"], float)
    assert [r["budget_fraction"] for r in lines[2:]] == [0.1, 0.1, 0.1]
    assert all(r["compute_used"] > 0 for r in lines), "every unlearning run took at least one step"
    bench = [json.loads(s) for s in (tmp_path / "out" / "bench.jsonl").read_text().splitlines()]
    assert [b["benchmark"] for b in bench] == ["train", "scoring"] and all(b["device"] == "cpu" for b in bench)
    assert "poisoned" in done.stdout and "scrub" in done.stdout  # the summary table


def test_summary_turns_measured_times_into_epochs(tmp_path):
    """The summary scales the steps that grow with the epochs (trainings, unlearning) and keeps the rest fixed."""
    (tmp_path / "timings.tsv").write_text("build\t10\ntrain-poisoned\t100\ntrain-retrain\t100\nscore-poisoned\t5\n"
                                          "unlearn-gd\t20\nbench-train\t15\n")
    (tmp_path / "poisoned").mkdir()
    (tmp_path / "poisoned" / "training_summary.json").write_text(json.dumps(
        {"train_config": {"epochs": 25}, "wall_seconds": 90.0, "num_train": 50000, "test_accuracy": 0.9}))
    record = {"method": "none", "metrics": {"test_accuracy": 0.9, "gus": 0.5, "auc": 0.7}, "compute_used": 3e6}
    script = [sys.executable, str(ROOT / "scripts" / "gpu_check_summary.py"), str(tmp_path), "--epochs", "25"]
    missing = subprocess.run(script, capture_output=True, text=True)
    assert missing.returncode != 0 and "no result records" in missing.stderr
    (tmp_path / "gpu_check.jsonl").write_text(json.dumps(record) + "\n")
    out = subprocess.run(script, capture_output=True, text=True, check=True).stdout
    # 250 s in all, 220 s of it scaling with 25 epochs: (480 - 30) / 220 * 25 = 51.1
    assert "3.60 s/epoch (13889 images/s)" in out and "EPOCHS=51 would take about 8 min" in out
    assert "poisoned      0.900    0.500" in out
