"""Exact data parallelism: which rows of a global batch a process takes, how its loss is weighed, how it syncs.

Training and unlearning run the same global batches under ``accelerate launch --num_processes N`` as in one
process: the batch's rows come from the seed, not from the process count, and each process takes one
contiguous slice of them (``ProcessShard.rows``; sizes differ by at most one row, and a batch with fewer rows
than processes leaves the last processes with none).

Why slices are weighed. Every loss here is a mean over a batch's rows, and the gradient wanted is that of the
mean over the *global* batch: ``(1/N) sum_i grad l_i = (1/world) sum_r w_r grad mean_r`` with
``w_r = n_r * world / N`` for a process holding ``n_r`` of the ``N`` rows. The gradient all-reduce averages over
processes (DDP's reducer in training, ``average_gradients`` in unlearning), so each process multiplies its local
mean by ``w_r`` (``ProcessShard.weigh``). When the slices are equal ``w_r`` is exactly 1 and nothing is
multiplied; a process with no rows contributes an exact zero (its empty mean is NaN, which must not reach the
sum), yet still runs its forward and backward pass so that every collective (DDP's, SyncBatchNorm's) lines up.

Why not an Accelerate-prepared DataLoader. ``split_batches=True`` with ``even_batches=True`` pads the last
partial batch with rows from the start of the epoch (duplicates: the global batch is no longer the one-process
batch), and ``even_batches=False`` gives a process with no rows no batch at all, so it skips a step the others
take and the collectives hang. Slicing the seeded global batch here keeps every process in lockstep with the
exact rows.

BatchNorm. A process normalises its slice with the slice's statistics, not the global batch's, so a model with
BatchNorm in training mode matches the one-process run only with SyncBatchNorm (``TrainConfig.sync_batchnorm``;
torch runs it on GPUs only) or when its batch norms run in eval mode (EU-k/CF-k's frozen blocks). The test of
equality (tests/test_data_parallel.py) uses a BatchNorm-free ResNet. Dropout (GPT-2's default 0.1) draws its masks
per process, so a text model in training mode is not the one-process run either, only a run like it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ProcessShard:
    """This process's place in a data-parallel run: ``rank`` of ``world`` processes (1 process: ``rank`` 0)."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank={self.rank}, world={self.world}: need world >= 1 and 0 <= rank < world")

    @classmethod
    def of(cls, accelerator: Any = None) -> "ProcessShard":
        """The shard of an ``accelerate.Accelerator`` (or ``PartialState``); one process when None."""
        if accelerator is None:
            return cls()
        return cls(int(accelerator.process_index), int(accelerator.num_processes))

    @property
    def parallel(self) -> bool:
        return self.world > 1

    # ------------------------------------------------------------------ rows and weights
    def bounds(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this process's contiguous slice of ``n`` rows (the first ``n % world`` get one more)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def rows(self, global_rows: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch (all of them in one process)."""
        if not self.parallel:
            return global_rows
        start, stop = self.bounds(len(global_rows))
        return global_rows[start:stop]

    def weight(self, local_rows: int, global_rows: int) -> float:
        """``n_r * world / N``: the factor that turns this process's mean into its share of the global mean
        once the gradients are averaged over processes (exactly 1.0 for equal slices and in one process)."""
        if global_rows < 1:
            raise ValueError(f"global batch of {global_rows} rows: a step needs at least one row")
        return local_rows * self.world / global_rows

    def weigh(self, loss: torch.Tensor, local_rows: int, global_rows: int) -> torch.Tensor:
        """A local batch-mean ``loss`` weighed by ``weight``; an exact 0 (with zero gradients) for an empty slice.

        Unchanged (the same tensor) when the weight is 1.0, so one process computes bit for bit what it did
        before data parallelism existed.
        """
        if local_rows == 0:
            return loss.nan_to_num(0.0) * 0.0  # mean over no rows is NaN; its gradient into the empty batch is empty
        w = self.weight(local_rows, global_rows)
        return loss if w == 1.0 else loss * w

    # ------------------------------------------------------------------ collectives (no-ops in one process)
    def mean(self, value: float, device: torch.device | str = "cpu") -> float:
        """The average of a float over processes (each process gets the same number)."""
        if not self.parallel:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def sum(self, values: list[float], device: torch.device | str = "cpu") -> list[float]:
        """Elementwise sums of floats over processes."""
        if not self.parallel:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Average ``.grad`` over processes in place (what DDP's reducer does), in one flat all-reduce.

        A parameter whose gradient is None on every process stays None (the optimiser then skips it, as in one
        process); one that has a gradient somewhere counts zeros where it has none.
        """
        if not self.parallel:
            return
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        device = params[0].device
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
        torch.distributed.all_reduce(present)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).to(torch.float32) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g, seen in zip(params, grads, present.tolist()):
            n = g.numel()
            if seen:
                p.grad = flat[offset : offset + n].view_as(p).to(p.dtype).clone()
            offset += n

    def broadcast_state(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers on every process (what DDP does when it wraps a model)."""
        if not self.parallel:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                torch.distributed.broadcast(t.data, src=0)

    def broadcast_batchnorm_stats(self, module: nn.Module) -> None:
        """Rank 0's batch-norm statistics on every process (DDP broadcasts buffers before each forward pass): the
        processes' copies stay identical, so their eval-mode checks agree. The only buffers training changes."""
        if not self.parallel:
            return
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    for t in m.buffers(recurse=False):
                        torch.distributed.broadcast(t.data, src=0)


# ----------------------------------------------------------------------------- SyncBatchNorm
def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Every BatchNorm of ``model`` as a SyncBatchNorm sharing its parameters and buffers (torch's converter)."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """The inverse of ``convert_sync_batchnorm``: plain BatchNorm2d modules on the same tensors.

    The returned model is scored and saved on one process (and on the CPU, where SyncBatchNorm refuses to run even
    in eval mode), so it must not keep SyncBatchNorm. Weights and statistics are the same tensors, bit for bit.
    """
    out = module
    if isinstance(module, nn.SyncBatchNorm):
        out = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, revert_sync_batchnorm(child))
    return out


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ----------------------------------------------------------------------------- mixed precision
MIXED_PRECISION = ("no", "bf16", "fp16")


def check_mixed_precision(value: str) -> str:
    if value not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision={value!r}: expected one of {list(MIXED_PRECISION)}")
    return value


def autocast_dtype(mixed_precision: str) -> torch.dtype | None:
    """The autocast dtype of a mixed-precision setting; None for "no" (plain float32, no autocast context)."""
    return {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[check_mixed_precision(mixed_precision)]
