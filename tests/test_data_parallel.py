"""Exact data parallelism (issue 12): two CPU processes (gloo) give the one-process run's weights and costs.

The end-to-end test runs this file as a script twice, once as one plain process and once under
``torch.distributed.run --nproc_per_node 2`` (what ``accelerate launch --num_processes 2 --cpu`` starts:
Accelerate reads the same environment), and compares what the two wrote. The model is a width-4 ResNet-18
with its batch norms replaced by identities: per-process batch statistics would differ from the global
batch's, and SyncBatchNorm (the option that fixes that) runs on GPUs only. Everything else is the real
code path: 97 training rows in batches of 32 (the last has 1 row, so one process has none), flip-crop
augmentation, label smoothing; GD (also under a budget), NegGrad+ (two batches per step, uneven forget
slices), SCRUB (a last forget batch of 1 row), SSD, GA, NGD and EU-k; retrain's cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from hf_unlearn.distributed import ProcessShard, convert_sync_batchnorm, revert_sync_batchnorm
from hf_unlearn.models.resnet import ResNet18

from synthetic import make_split

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread

TOL = 1e-5  # float summation order: the all-reduce adds the processes' gradients in another order than one process
UNLEARN_RUNS = {  # method -> (overrides, limit in forward-equivalents)
    "gd": ({"epochs": 2, "batch_size": 16}, None),
    "neggrad_plus": ({"epochs": 1, "batch_size": 16}, None),
    "scrub": ({"epochs": 2, "batch_size": 16, "forget_batch_size": 5}, None),
    "ssd": ({"batch_size": 16}, None),  # squares the global batch's gradient: averaged before it is squared
    "ga": ({"epochs": 1, "batch_size": 4}, None),  # 11 forget rows: a last batch of 3, slices of 2 and 1
    "ngd": ({"epochs": 1, "batch_size": 16}, None),  # the same noise on every process, added once
    "euk": ({"epochs": 1, "batch_size": 16, "k": 2}, None),  # re-initialised blocks, the same on every process
    "gd_budget": ({"batch_size": 16, "stop_on_plateau": True}, 500.0),
}


def strip_batchnorm(model: nn.Module) -> nn.Module:
    """The ResNet without batch norms (identities), so per-process statistics cannot differ."""
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, nn.Identity())
        else:
            strip_batchnorm(child)
    return model


class BatchNormFreeTask:
    """The cifar10 task whose ``build_model`` strips the batch norms (everything else delegates)."""

    def __init__(self) -> None:
        from hf_unlearn.tasks import get_task

        self._base = get_task("cifar10")

    def __getattr__(self, name: str):
        return getattr(self._base, name)

    def build_model(self, config, num_classes: int) -> nn.Module:
        return strip_batchnorm(self._base.build_model(config, num_classes))


# ----------------------------------------------------------------------------- the script (one or two processes)
def _worker(out: Path, variant: Path, config: str) -> None:
    from accelerate import Accelerator
    from safetensors.torch import save_file

    from hf_unlearn.train import RunOptions, TrainConfig, train
    from hf_unlearn.unlearn import run_method

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    meta: dict = {"world": accelerator.num_processes}

    def save(name: str, model: nn.Module) -> None:
        tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, out / f"{name}.rank{rank}.safetensors")

    data = make_split(97, poisoned=True, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=32, width=4, lr=0.05, seed=1, augment="flip-crop", label_smoothing=0.1)
    with tempfile.TemporaryDirectory() as tmp:
        res = train(data, None, cfg, RunOptions(output_dir=tmp, cpu=True, progress=False, checkpointing=False),
                    task=BatchNormFreeTask())
    save("train", res.model)
    meta["train"] = {"cost": res.training_cost, "loss": res.summary["final_train_loss"]}

    torch.manual_seed(2)
    start = strip_batchnorm(ResNet18(width=4))
    retain, forget = make_split(45, poisoned=False, seed=3), make_split(11, poisoned=True, seed=4)
    for name, (overrides, limit) in UNLEARN_RUNS.items():
        r = run_method(start, retain, forget, name.removesuffix("_budget"), overrides=overrides, limit=limit, seed=5,
                       accelerator=accelerator)
        save(name, r.model)
        meta[name] = {"cost": r.compute_used, "steps": r.steps, "losses": r.losses, "stopped_by": r.stopped_by}

    # retrain is a training run: the same cost however many processes train it
    r = run_method(start, retain, forget, "retrain", overrides={"epochs": 1}, seed=5, accelerator=accelerator,
                   train_config=TrainConfig(epochs=1, batch_size=16, width=4, seed=1))
    meta["retrain"] = {"cost": r.compute_used}

    # a model with (unsynchronised) batch norms: runs, and a process with no rows adds no NaN
    with tempfile.TemporaryDirectory() as tmp:
        bn = train(data, None, cfg, RunOptions(output_dir=tmp, cpu=True, progress=False, checkpointing=False))
    floats = [v for v in bn.model.state_dict().values() if v.is_floating_point()]
    meta["bn_finite"] = all(bool(torch.isfinite(v).all()) for v in floats)
    try:
        from dataclasses import replace

        with tempfile.TemporaryDirectory() as tmp:
            train(data, None, replace(cfg, sync_batchnorm=True),
                  RunOptions(output_dir=tmp, cpu=True, progress=False, checkpointing=False))
        meta["sync_bn_cpu"] = "ran"
    except ValueError as exc:
        meta["sync_bn_cpu"] = str(exc)

    # the runner on a real variant: one checkpoint and one record however many processes, the same cost
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.unlearn.runner import unlearn_checkpoint

    splits = load_splits(variant, config)
    train(splits["train"], None, TrainConfig(epochs=1, batch_size=64, width=4, seed=1),
          RunOptions(output_dir=str(out / "poisoned"), cpu=True, progress=False, checkpointing=False))
    outcome = unlearn_checkpoint(out / "poisoned", variant, config, "gd", budget=0.2, overrides={"batch_size": 16},
                                 accelerator=accelerator, output_dir=out / "unlearned",
                                 results_path=out / "results.jsonl", null_draws=20)
    meta["runner"] = {"cost": outcome.result.compute_used, "steps": outcome.result.steps}
    (out / f"meta.rank{rank}.json").write_text(json.dumps(meta))


def _run(out: Path, processes: int, variant: tuple[Path, str]) -> None:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone",
                                          "--nproc_per_node", str(processes)]
    command = [sys.executable, *launcher, __file__, str(out), str(variant[0]), variant[1]]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{processes}-process run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def test_two_processes_equal_one_process(tmp_path, tiny_variant):
    variant = (tiny_variant[0], tiny_variant[1].name)
    _run(tmp_path / "one", 1, variant)
    _run(tmp_path / "two", 2, variant)
    one = json.loads((tmp_path / "one" / "meta.rank0.json").read_text())
    two = json.loads((tmp_path / "two" / "meta.rank0.json").read_text())
    assert (one["world"], two["world"]) == (1, 2), "the launcher must have started 2 gloo processes"
    diffs = {}
    for name in ["train", *UNLEARN_RUNS]:
        a = _weights(tmp_path / "one" / f"{name}.rank0.safetensors")
        b = _weights(tmp_path / "two" / f"{name}.rank0.safetensors")
        b1 = _weights(tmp_path / "two" / f"{name}.rank1.safetensors")
        assert a.keys() == b.keys()
        diffs[name] = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
        assert all(torch.equal(b[k], b1[k]) for k in b), f"{name}: the two processes hold different models"
        assert one[name]["cost"] == two[name]["cost"], f"{name}: the meter must count the global work once"
    print("max abs weight difference, 1 vs 2 processes:", diffs)
    assert all(d < TOL for d in diffs.values()), f"weights differ by more than {TOL} (float summation order): {diffs}"
    for name in UNLEARN_RUNS:
        assert one[name]["steps"] == two[name]["steps"] and one[name]["stopped_by"] == two[name]["stopped_by"]
        torch.testing.assert_close(torch.tensor(two[name]["losses"]), torch.tensor(one[name]["losses"]),
                                   rtol=1e-5, atol=1e-5, msg=f"{name}: per-step global losses")
    assert one["gd_budget"]["stopped_by"] == "budget", "the budgeted run must end on its budget"
    assert one["retrain"]["cost"] == two["retrain"]["cost"] == 3 * 45, "retrain: one pass over 45 retain rows"
    assert abs(one["train"]["loss"] - two["train"]["loss"]) < 1e-5, "the epoch loss is over all processes' rows"
    assert one["train"]["cost"] == 3 * 97
    assert two["bn_finite"], "a process with no rows must not put NaN into the batch-norm model"
    assert "GPUs only" in two["sync_bn_cpu"] and one["sync_bn_cpu"] == "ran", "SyncBatchNorm: 1 CPU process ignores it"
    assert one["runner"]["steps"], "the runner's budget must buy some steps"
    assert one["runner"] == two["runner"], "the runner's cost and steps do not depend on the process count"
    for run in ("one", "two"):
        records = (tmp_path / run / "results.jsonl").read_text().splitlines()
        assert len(records) == 1, f"{run}: one record, written by the main process only, got {len(records)}"
        assert (tmp_path / run / "unlearned" / "model.safetensors").is_file()


# ----------------------------------------------------------------------------- pieces, in one process
@pytest.mark.parametrize("n, world", [(32, 2), (1, 2), (7, 3), (0, 2)])
def test_slices_cover_the_global_batch_once_in_order(n, world):
    rows = torch.randperm(50)[:n]
    slices = [ProcessShard(r, world).rows(rows) for r in range(world)]
    assert torch.equal(torch.cat(slices), rows), "the processes' slices, in rank order, are the global batch"
    assert max(map(len, slices)) - min(map(len, slices)) <= 1
    if n:
        weights = [ProcessShard(r, world).weight(len(s), n) for r, s in enumerate(slices)]
        assert sum(weights) == pytest.approx(world), "averaging the weighed means gives the global mean"


def test_weigh_gives_the_global_mean_and_zero_for_an_empty_slice():
    losses = torch.arange(5.0, requires_grad=True)
    world = 2
    parts = [ProcessShard(r, world).rows(torch.arange(5)) for r in range(world)]
    avg = sum(ProcessShard(r, world).weigh(losses[p].mean(), len(p), 5) for r, p in enumerate(parts)) / world
    assert avg.item() == pytest.approx(losses.mean().item())
    empty = ProcessShard(1, 2).weigh(torch.nn.functional.cross_entropy(torch.zeros(0, 3, requires_grad=True),
                                                                        torch.zeros(0, dtype=torch.long)), 0, 1)
    assert empty.item() == 0.0, "a process with no rows contributes 0, not NaN"
    same = torch.tensor(2.5)
    assert ProcessShard(0, 2).weigh(same, 3, 6) is same, "equal slices: the loss itself (bit for bit)"
    with pytest.raises(ValueError, match="rank=2, world=2"):
        ProcessShard(2, 2)


@pytest.mark.parametrize("mode", ["flip", "flip-crop"])
def test_a_rows_augmentation_does_not_depend_on_the_number_of_processes(mode):
    from hf_unlearn.train import batch_flip, batch_flip_crop

    x = torch.rand(9, 3, 8, 8)

    def aug(part, offset):
        g = torch.Generator().manual_seed(11)
        if mode == "flip":
            return batch_flip(part, g, batch_rows=len(x), offset=offset)
        return batch_flip_crop(part, g, 2, batch_rows=len(x), offset=offset)

    whole = aug(x, 0)
    for world in (2, 4, 10):
        pieces = []
        for r in range(world):
            start, stop = ProcessShard(r, world).bounds(len(x))
            pieces.append(aug(x[start:stop], start))
        assert torch.equal(torch.cat(pieces), whole), f"{world} processes augment a row differently from one"


def test_sync_batchnorm_round_trip_keeps_the_tensors():
    torch.manual_seed(0)
    model = ResNet18(width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    synced = convert_sync_batchnorm(model)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
    back = revert_sync_batchnorm(synced).eval()
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in back.modules())
    assert all(torch.equal(before[k], v) for k, v in back.state_dict().items())
    back(torch.rand(2, 3, 16, 16))  # runs on the CPU again


def test_unlearning_under_bf16_keeps_float32_weights_and_the_cost():
    from hf_unlearn.unlearn import run_method

    torch.manual_seed(0)
    model = ResNet18(width=4).eval()
    retain, forget = make_split(24, poisoned=False, seed=1), make_split(8, poisoned=True, seed=2)
    kw = dict(overrides={"epochs": 1, "batch_size": 8, "noise_std": 1e-3}, seed=0)
    fp32 = run_method(model, retain, forget, "ngd", **kw)
    bf16 = run_method(model, retain, forget, "ngd", mixed_precision="bf16", **kw)
    assert bf16.compute_used == fp32.compute_used and bf16.steps == fp32.steps
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters()), "parameters and noise stay float32"
    a, b = fp32.model.state_dict(), bf16.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a), "bf16 autocast must actually run"
    assert all(bool(torch.isfinite(v).all()) for v in b.values() if v.is_floating_point())
    # the first loss comes before any update: bf16 rounding only (a width-4 net's bf16 gradients differ by ~30%)
    assert bf16.losses[0] == pytest.approx(fp32.losses[0], rel=1e-2)
    with pytest.raises(ValueError, match="mixed_precision='fp8'"):
        run_method(model, retain, forget, "gd", mixed_precision="fp8", **{**kw, "overrides": {"epochs": 1}})


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
