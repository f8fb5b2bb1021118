"""Train a (poisoned or retrained) model of any registered task with Accelerate, metering its compute.

Reads top to bottom like airbench: hyper-parameters, batch helpers, the loop.
The same function runs under plain ``python`` (one process) and under
``accelerate launch --num_processes N`` (DDP), where it is exact: the global batches are the
one-process run's, each process takes a contiguous slice of each and weighs its mean by its
share of the rows, so the averaged gradient is the global batch's mean gradient (up to float
summation order; hf_unlearn.distributed explains the weighting, the last partial batch and why
BatchNorm needs ``sync_batchnorm``). Augmentation is drawn for the whole global batch and each
process applies its rows' draws, so every row is augmented the same way whatever the process count.

Determinism is by construction, not by saved RNG state: the epoch's permutation
comes from (seed, epoch) and each batch's augmentation from (seed, epoch, step),
so a run resumed from an ``epoch_{i}`` checkpoint repeats the uninterrupted run
exactly. Poison noise is added *before* augmentation, as the attacker's data would be.
The model comes from the task (``task.build_model``: ResNet-18 for CIFAR-10, GPT-2 for
IMDb); image augmentation applies only to tasks whose inputs are images.

On an accelerator an image split lives on the device for the whole run (``DeviceImages``, as airbench
keeps CIFAR-10): each step indexes, noises and augments its batch there from draws copied once per epoch,
the model runs NHWC (``channels_last``) and the epoch's loss is summed on the device and read once, so no
step waits for the host. The bits are the host path's: a test forces the device path on the CPU and
compares (tests/test_gpu_check.py); the CPU keeps the host path and its defaults.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hf_unlearn.budget import ComputeMeter
from hf_unlearn.distributed import ProcessShard, convert_sync_batchnorm, has_batchnorm, revert_sync_batchnorm
from hf_unlearn.fileio import write_text_atomic


# ----------------------------------------------------------------------------- hyper-parameters
AUGMENT_MODES = ("none", "flip", "flip-crop")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class TrainConfig:
    """The training recipe. Units in the comments; defaults are the CPU demo's (see configs/)."""

    epochs: int = 40  # passes over the training split
    batch_size: int = 128  # global batch (split across processes)
    lr: float = 0.05  # peak SGD learning rate for batch_size examples
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # L2, coupled (torch SGD)
    warmup_epochs: float = 1.0  # linear warm-up, then linear decay to 0 at the end
    label_smoothing: float = 0.0
    # "none" (or False), "flip" (horizontal flip only: the noise stays pixel-aligned with its
    # image, mirrored half the time) or "flip-crop" (or True: flip + random crop with
    # ``crop_pad`` zero padding, the paper's augmentation; shifts the noise every epoch and
    # blurs its memorisation at CPU scale, docs/calibration.md)
    augment: bool | str = False
    crop_pad: int = 4  # pixels of zero padding for "flip-crop" (4 = the paper's; airbench uses 2)
    width: int = 16  # ResNet-18 base width; 64 is the paper's network
    seed: int = 0  # fixes the initial weights, the batch order and the augmentation
    eval_batch_size: int = 512
    # "sgd" (momentum/nesterov, coupled L2: the CIFAR recipe) or "adamw" (decoupled weight decay, torch's
    # default betas: the usual GPT-2 fine-tuning recipe); momentum/nesterov apply to "sgd" only
    optimizer: str = "sgd"
    # task-specific architecture keys, checked by the task's build_model (e.g. GPT-2's kind, n_layer, n_embd);
    # the cifar10 task takes none (its size is ``width``)
    model: dict[str, Any] = field(default_factory=dict)
    # under N > 1 processes, BatchNorm layers become SyncBatchNorm (statistics of the global batch, as in one
    # process; torch runs SyncBatchNorm on GPUs only); no effect in one process. Off: each process normalises
    # its own slice, so a BatchNorm model matches the one-process run only approximately
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "width", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be a positive integer")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r}: must be > 0")
        if self.augment_mode not in AUGMENT_MODES:
            raise ValueError(f"augment={self.augment!r}: expected one of {list(AUGMENT_MODES)} (or true/false)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={self.label_smoothing!r}: must be in [0, 1)")
        if int(self.crop_pad) < 0:
            raise ValueError(f"crop_pad={self.crop_pad!r}: must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}: expected one of {list(OPTIMIZERS)}")
        if not isinstance(self.model, dict) or not all(isinstance(k, str) for k in self.model):
            raise ValueError(f"model={self.model!r}: a mapping of architecture keys to values, e.g. {{n_layer: 2}}")
        plain = (str, int, float, bool, type(None))
        bad = {k: v for k, v in self.model.items()
               if not (isinstance(v, plain) or (isinstance(v, (list, tuple)) and all(isinstance(x, plain) for x in v)))}
        if bad:
            raise ValueError(f"model keys {sorted(bad)}: values must be plain strings, numbers, booleans or null, "
                             "or lists of them (e.g. label_words)")

    @property
    def augment_mode(self) -> str:
        """``augment`` as one of AUGMENT_MODES (YAML booleans map to "none" / "flip-crop")."""
        if isinstance(self.augment, bool):
            return "flip-crop" if self.augment else "none"
        return str(self.augment)


@dataclass
class RunOptions:
    """How to run (not what to learn): kept apart from TrainConfig, as in accelerate's examples."""

    output_dir: str = "runs/model"
    cpu: bool = False
    # "no", "bf16", "fp16": autocast for the network; the first layer runs on float32 pixels (ResNet18.stem) and
    # the returned model is plain float32 (what scoring uses)
    mixed_precision: str = "no"
    checkpointing: bool = True  # save_state to checkpoints/epoch_{i} after every epoch
    resume: bool = True  # continue from the latest epoch_{i} in output_dir if there is one
    progress: bool = True
    keep_checkpoints: bool = False  # keep checkpoints/ after a finished run
    # NHWC. None: on for CUDA (tensor cores want it), off elsewhere: ~15% faster at width 16 on CPU, but torch 2.14.1
    # aborted (double free) at width 4 on the CPU, so the CPU never gets it unless asked
    channels_last: bool | None = None
    # The whole image split (uint8 pixels, labels, noise) copied to the device once, batches indexed and augmented
    # there, the epoch's loss read once per epoch (no host sync per step). None: on for an image split on an
    # accelerator when it fits (``device_data_fits``), else batches come from host memory each step as before.
    # True forces it (also on the CPU, where it must give the host path's exact bits: tests/test_gpu_check.py).
    data_on_device: bool | None = None
    stop_after_epochs: int | None = None  # testing hook: stop early as if killed (no final save)


@dataclass
class TrainResult:
    model: torch.nn.Module
    training_cost: float  # forward-equivalents
    test_accuracy: float
    wall_seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- batch helpers
def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


def batch_flip(x: torch.Tensor, generator: torch.Generator, *, batch_rows: int | None = None,
               offset: int = 0) -> torch.Tensor:
    """Random horizontal flip, one draw per image (the image and its noise flip together).

    The draws are made for a global batch of ``batch_rows`` images (default: ``x`` is the whole batch) of which
    ``x`` holds rows ``offset`` onwards: a process's slice gets the same draws as in the one-process run.
    """
    n = x.shape[0] if batch_rows is None else batch_rows
    flip = (torch.rand(n, generator=generator) < 0.5)[offset : offset + x.shape[0]]
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)


def batch_flip_crop(x: torch.Tensor, generator: torch.Generator, pad: int = 4, *, batch_rows: int | None = None,
                    offset: int = 0) -> torch.Tensor:
    """Random horizontal flip and random crop with zero padding, one draw per image (global batch as in
    ``batch_flip``)."""
    b, _, h, w = x.shape
    n = b if batch_rows is None else batch_rows
    x = batch_flip(x, generator, batch_rows=n, offset=offset)
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)[offset : offset + b].tolist()
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)[offset : offset + b].tolist()
    if b == 0:  # a process with no rows of a small last batch
        return x
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def lr_at(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to 1, then linear decay to 0: the triangular schedule airbench uses."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``params`` (``config.optimizer``)."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )


@torch.no_grad()
def accuracy(model: torch.nn.Module, split: Any, batch_size: int = 512, device=None) -> float:
    """Top-1 accuracy on clean inputs, model in eval mode (any split whose inputs have ``.to``)."""
    if len(split) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    correct = 0
    for start in range(0, len(split), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(split)))
        logits = model(split.inputs(rows, noisy=False).to(device))
        correct += (logits.argmax(1).cpu() == split.y[rows]).sum().item()
    model.train(was_training)
    return correct / len(split)


# ----------------------------------------------------------------------------- data kept on the device
DEVICE_DATA_SHARE = 0.25  # at most this share of the accelerator's free memory goes to the resident split
DEVICE_DATA_CAP = 4 << 30  # bytes, where the device cannot say how much is free (MPS, XPU, ...)


def device_data_bytes(split: Any) -> int:
    """Bytes an image split takes on the device: uint8 pixels, int64 labels and slots, float32 noise (+ a zero row)."""
    row = split.x[0].numel() if len(split) else 0
    return len(split) * (row + 16) + (len(split.noise) + 1) * row * 4


def device_data_fits(nbytes: int, device: torch.device) -> tuple[bool, str]:
    """Whether ``nbytes`` of resident training data leave room for the model: at most ``DEVICE_DATA_SHARE`` of the
    device's free memory (CUDA reports it), or ``DEVICE_DATA_CAP`` where the device does not. With the reason."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        room = int(free * DEVICE_DATA_SHARE)
        why = f"{nbytes / 2**30:.2f} GiB against {DEVICE_DATA_SHARE:.0%} of {free / 2**30:.1f} GiB free on {device}"
    else:
        room = DEVICE_DATA_CAP
        why = f"{nbytes / 2**30:.2f} GiB against a {DEVICE_DATA_CAP / 2**30:.0f} GiB cap on {device}"
    return nbytes <= room, why


class DeviceImages:
    """An image split's training tensors resident on one device, batched and augmented there without a host sync.

    CIFAR-10's 50,000 training images are 150 MiB as uint8: copied once, each step is an index into device memory
    instead of a host gather, a float conversion and a copy (airbench's ``CifarLoader``). The poison noise sits in a
    table with one extra row of zeros that every clean row points at, so a batch's noise is one gather and one add;
    ``x + 0.0`` is ``x``, so the pixels are exactly ``ImageSplit.inputs``'s (no boolean mask, whose ``nonzero``
    would wait for the device). Augmentation draws come from the same seeded CPU generators as the host path
    (``epoch_draws``), made for a whole epoch and copied once, then applied by indexing: the same pixels as
    ``batch_flip`` / ``batch_flip_crop``, which are copies too.
    """

    def __init__(self, split: Any, device: torch.device) -> None:
        self.device = torch.device(device)
        self.x = split.x.to(self.device)
        self.y = split.y.to(self.device)
        zero = torch.zeros(1, *split.x.shape[1:], dtype=torch.float32)
        self.noise = torch.cat([split.noise.to(torch.float32), zero]).to(self.device)
        slots = split.noise_slot.clone()
        slots[slots < 0] = len(split.noise)  # the zero row
        self.slot = slots.to(self.device)

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self, rows: torch.Tensor) -> torch.Tensor:
        """Float pixels in [0, 1] plus each poisoned row's noise, for device ``rows``."""
        x = self.x[rows].float().div_(255.0)
        return x.add_(self.noise[self.slot[rows]])


@dataclass
class EpochDraws:
    """One epoch's augmentation draws for this process's rows, step by step, on the device (``epoch_draws``)."""

    flip: list[torch.Tensor]  # bool (rows,) per step
    dx: list[torch.Tensor] | None  # int64 (rows,) per step; None without cropping
    dy: list[torch.Tensor] | None

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(flip, dx, dy) of one step (dx, dy None without cropping)."""
        if self.dx is None or self.dy is None:
            return self.flip[step], None, None
        return self.flip[step], self.dx[step], self.dy[step]


def epoch_draws(mode: str, pad: int, seed: int, epoch: int, batch_sizes: list[int], shard: ProcessShard,
                device: torch.device) -> EpochDraws:
    """The draws ``batch_flip`` / ``batch_flip_crop`` make at each step of an epoch, copied to ``device`` at once.

    Same generators, same order (flip, then dx, then dy, for the global batch, sliced to this process's rows) as the
    host path, so the augmented pixels are the same; one copy per epoch instead of one per step.
    """
    flips, dxs, dys = [], [], []
    crop = mode == "flip-crop" and pad > 0
    for step, n in enumerate(batch_sizes):
        g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 100_003 + step)
        lo, hi = shard.bounds(n)
        flips.append((torch.rand(n, generator=g) < 0.5)[lo:hi])
        if crop:
            dxs.append(torch.randint(0, 2 * pad + 1, (n,), generator=g)[lo:hi])
            dys.append(torch.randint(0, 2 * pad + 1, (n,), generator=g)[lo:hi])
    sizes = [len(f) for f in flips]

    def to_device(parts: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(torch.cat(parts).to(device).split(sizes))

    return EpochDraws(to_device(flips), to_device(dxs) if crop else None, to_device(dys) if crop else None)


def apply_draws(x: torch.Tensor, flip: torch.Tensor, dx: torch.Tensor | None, dy: torch.Tensor | None,
                pad: int) -> torch.Tensor:
    """Flip rows where ``flip``, then crop each row at (``dy``, ``dx``) of its ``pad``-zero-padded copy: one
    gather for the batch, the pixels ``batch_flip_crop``'s per-row loop gives."""
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if dx is None or dy is None or pad == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    ar = functools.partial(torch.arange, device=x.device)
    iy = (dy.view(b, 1) + ar(h)).view(b, 1, h, 1)
    ix = (dx.view(b, 1) + ar(w)).view(b, 1, 1, w)
    return padded[ar(b).view(b, 1, 1, 1), ar(c).view(1, c, 1, 1), iy, ix]


def _resident_data(split: Any, device: torch.device, wanted: bool | None,
                   say: Callable[[str], None]) -> DeviceImages | None:
    """The split on the device (``RunOptions.data_on_device``), or None: the host path (saying why if it matters)."""
    from hf_unlearn.variant import ImageSplit

    if wanted is False or (wanted is None and device.type == "cpu"):
        return None
    if not isinstance(split, ImageSplit):
        if wanted:
            raise ValueError(f"data_on_device=True: only image splits can be kept on the device, got "
                             f"{type(split).__name__}; leave data_on_device unset (None)")
        return None
    fits, why = device_data_fits(device_data_bytes(split), device)
    if not fits and not wanted:
        say(f"training data stay in host memory ({why}): batches are copied every step, which is slower; "
            "free device memory, or set data_on_device=True to try anyway")
        return None
    return DeviceImages(split, device)


# ----------------------------------------------------------------------------- checkpoints
def _latest_epoch_checkpoint(ckpt_dir: Path) -> tuple[int, Path] | None:
    found = []
    for p in ckpt_dir.glob("epoch_*"):
        suffix = p.name[len("epoch_") :]
        if suffix.isdigit() and (p / "trainer_state.json").exists():
            found.append((int(suffix), p))
    return max(found) if found else None


# ----------------------------------------------------------------------------- the loop
def train(
    train_split: Any,
    test_split: Any | None,
    config: TrainConfig,
    options: RunOptions,
    *,
    num_classes: int | None = None,
    card_info: dict[str, Any] | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    task: Any = None,
) -> TrainResult:
    """Train from scratch (or resume), save ``model.safetensors`` + ``config.json`` + card.

    ``task`` (a registered task or its name) builds the model; default: the task whose split class
    ``train_split`` is. ``num_classes`` defaults to the task's number of labels.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from hf_unlearn.tasks import get_task, task_of_split

    task = task_of_split(train_split) if task is None else get_task(task)
    if num_classes is None:  # the variant's own classes when its split knows them (trigger word mode: 3)
        num_classes = len(getattr(train_split, "label_names", None) or task.label_names)

    if len(train_split) == 0:
        raise ValueError("the training split is empty")
    out = Path(options.output_dir)
    ckpt_dir = out / "checkpoints"
    accelerator = Accelerator(cpu=options.cpu, mixed_precision=options.mixed_precision)
    shard = ProcessShard.of(accelerator)

    # Seed before building the model so the seed also fixes the initial weights.
    set_seed(config.seed)
    model = task.build_model(config, num_classes)
    synced_bn = config.sync_batchnorm and shard.parallel and has_batchnorm(model)
    if synced_bn:
        if accelerator.device.type == "cpu":
            raise ValueError(f"sync_batchnorm=True with {shard.world} CPU processes: torch's SyncBatchNorm runs on "
                             "GPUs only; launch on GPUs, or set sync_batchnorm: false (per-process statistics)")
        model = convert_sync_batchnorm(model)  # same parameter tensors: the optimizer below sees the same ones
    # NHWC on CUDA unless told otherwise; never by default on the CPU (RunOptions.channels_last)
    channels_last = accelerator.device.type == "cuda" if options.channels_last is None else options.channels_last
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = make_optimizer(config, model.parameters())
    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, total_steps, warmup))
    # The scheduler is stepped once per global batch by us, not prepared (a prepared
    # scheduler steps num_processes times per call); it is checkpointed explicitly.
    # The data are not prepared either: every process slices the seeded global batch itself
    # (hf_unlearn.distributed: a prepared loader pads or drops the last partial batch).
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    meter = ComputeMeter()

    # New Code: resume from the latest epoch checkpoint -------------------------------
    start_epoch = 0
    if options.resume and (latest := _latest_epoch_checkpoint(ckpt_dir)):
        epoch_done, path = latest
        accelerator.load_state(str(path))
        state = json.loads((path / "trainer_state.json").read_text())
        meter.used = float(state["training_cost"])
        start_epoch = epoch_done + 1
        accelerator.print(f"resumed from {path} (epoch {epoch_done} done, cost {meter.used:.4g})")
    # ---------------------------------------------------------------------------------

    device = accelerator.device
    x_all, y_all = train_split, train_split.y
    # New Code: the split on the device once (GPU): no host gather, copy or sync per step ----------------
    resident = _resident_data(train_split, device, options.data_on_device, accelerator.print)
    # -----------------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    bar = tqdm(
        range(start_epoch, config.epochs),
        desc=f"train {out.name}",
        unit="epoch",
        disable=not (options.progress and accelerator.is_main_process),
        initial=start_epoch,
        total=config.epochs,
    )
    model.train()
    augment = config.augment_mode
    if augment != "none" and not getattr(task, "image_augmentation", False):
        accelerator.print(f"augment={config.augment!r} ignored: task {task.name!r} has no image inputs")
        augment = "none"
    last_loss = float("nan")
    pad = int(config.crop_pad)
    draws: EpochDraws | None = None
    for epoch in bar:
        perm = epoch_permutation(len(train_split), config.seed, epoch)
        running, seen = 0.0, 0
        if resident is not None:  # the permutation and the epoch's augmentation draws go over once
            perm = perm.to(device)
            sizes = [min(config.batch_size, len(perm) - s * config.batch_size) for s in range(steps_per_epoch)]
            draws = epoch_draws(augment, pad, config.seed, epoch, sizes, shard, device) if augment != "none" else None
            # float64 on the device, added to as Python adds floats: the same sum as the host path, read once
            running_t = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
        for step in range(steps_per_epoch):
            global_rows = perm[step * config.batch_size : (step + 1) * config.batch_size]
            rows = shard.rows(global_rows)
            offset = shard.bounds(len(global_rows))[0]
            if resident is not None:
                xb = resident.inputs(rows)
                if draws is not None:
                    xb = apply_draws(xb, *draws.at(step), pad)
            else:
                xb = x_all.inputs(rows)
                if augment != "none":  # drawn for the global batch: a row's augmentation does not depend on the world
                    g = torch.Generator().manual_seed((config.seed * 1_000_003 + epoch) * 100_003 + step)
                    n = len(global_rows)
                    xb = (batch_flip(xb, g, batch_rows=n, offset=offset) if augment == "flip"
                          else batch_flip_crop(xb, g, pad, batch_rows=n, offset=offset))
            if isinstance(xb, torch.Tensor):
                xb = xb.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            else:  # e.g. text inputs (ids, mask, noise): anything with .to(device)
                xb = xb.to(device)
            yb = (resident.y if resident is not None else y_all)[rows].to(device, non_blocking=True)
            logits = model(xb)  # every process runs it, even on no rows: DDP's and SyncBatchNorm's collectives
            loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages the processes' gradients: weigh each mean by its share of the global batch
            accelerator.backward(shard.weigh(loss, len(rows), len(global_rows)))
            optimizer.step()
            scheduler.step()
            meter.charge_train(len(global_rows))  # the global batch, once (every process holds the same meter)
            if len(rows):
                if resident is not None:  # no .item(): the device keeps the sum, the host reads it after the epoch
                    running_t += loss.detach().to(running_t.dtype) * len(rows)
                else:
                    running += loss.item() * len(rows)
                seen += len(rows)
        if resident is not None:
            running = float(running_t.item())
        if shard.parallel:  # the epoch's mean loss over all processes' rows
            running, seen = shard.sum([running, float(seen)], device)
        last_loss = running / max(1, seen)
        bar.set_postfix(loss=f"{last_loss:.3f}", cost=f"{meter.used:.3g}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, {"loss": last_loss, "cost": meter.used})
        # New Code: save_state after every epoch, keep only the newest ---------------
        if options.checkpointing:
            path = ckpt_dir / f"epoch_{epoch}"
            accelerator.save_state(str(path))
            if accelerator.is_main_process:
                state = {"epoch": epoch, "training_cost": meter.used, "loss": last_loss}
                write_text_atomic(path / "trainer_state.json", json.dumps(state))
                for old in ckpt_dir.glob("epoch_*"):
                    if old != path:
                        shutil.rmtree(old, ignore_errors=True)
            accelerator.wait_for_everyone()
        # -----------------------------------------------------------------------------
        if options.stop_after_epochs is not None and epoch + 1 - start_epoch >= options.stop_after_epochs:
            break
    wall = time.perf_counter() - t0

    # keep_fp32_wrapper=False: under --mixed-precision the prepared forward runs in autocast;
    # the returned model (scored by the demo and the benchmark) must run in plain float32.
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if shard.parallel:  # DDP syncs buffers at each forward: after the last one, every process takes rank 0's
        shard.broadcast_state(unwrapped)
    if synced_bn:  # scored and saved in one process (or on the CPU, where SyncBatchNorm does not run)
        unwrapped = revert_sync_batchnorm(unwrapped)
    unwrapped.eval()
    test_acc = accuracy(unwrapped, test_split, config.eval_batch_size, device) if test_split is not None else float("nan")
    finished = options.stop_after_epochs is None or start_epoch + (options.stop_after_epochs or 0) >= config.epochs
    summary = {
        **(card_info or {}),
        "task": task.name,
        "train_config": asdict(config),
        "seed": config.seed,
        "training_cost": meter.used,
        "test_accuracy": test_acc,
        "final_train_loss": last_loss,
        "num_train": len(train_split),
        "num_poisons_trained_on": int(train_split.is_poison.sum()),
        "wall_seconds": wall,
        "num_processes": shard.world,
    }
    if accelerator.is_main_process and finished:
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(unwrapped, out, summary, task=task)
        if not options.keep_checkpoints:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    return TrainResult(unwrapped, meter.used, test_acc, wall, summary)


def save_checkpoint(model: torch.nn.Module, folder: str | os.PathLike, summary: dict[str, Any], title: str | None = None,
                    *, task: Any = None) -> None:
    """safetensors weights + config.json (the model's own ``save_pretrained``) + summary JSON + model card.

    ``task`` (default: ``summary["task"]``, else the default task) names the model family in the card."""
    from hf_unlearn.cards import write_model_card
    from hf_unlearn.tasks import DEFAULT_TASK, get_task

    task = get_task(task if task is not None else summary.get("task") or DEFAULT_TASK)
    folder = Path(folder)
    summary = _finite_or_none(summary)  # NaN is not JSON: the Hub (and olah) refuse to serve it
    model.save_pretrained(folder)
    write_text_atomic(folder / "training_summary.json",
                      json.dumps(summary, indent=2, sort_keys=True, default=str, allow_nan=False))
    title = title or f"hf-unlearn {getattr(task, 'model_title', 'model')} ({summary.get('role', 'poisoned')})"
    write_model_card(folder, summary, title=title, task=task)
    if hasattr(model, "training_summary"):  # ResNet18's mixin save_pretrained/push_to_hub write these back
        model.training_summary, model.card_text = summary, (folder / "README.md").read_text(encoding="utf-8")


def _finite_or_none(value: Any) -> Any:
    """Non-finite floats (no test split: accuracy NaN) become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def checkpoint_config(folder_or_repo: str, revision: str | None = None) -> dict[str, Any]:
    """The checkpoint's ``config.json`` ({} if it has none): what ``load_checkpoint`` dispatches on."""
    from hf_unlearn.hub import check_local_or_repo_id

    if check_local_or_repo_id(str(folder_or_repo), "checkpoint"):
        path = Path(folder_or_repo) / "config.json"
        return json.loads(path.read_text()) if path.is_file() else {}
    from hf_unlearn import hub

    return hub.read_model_config(str(folder_or_repo), revision=revision)


def load_checkpoint(folder_or_repo: str, revision: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A checkpoint and its training summary (safetensors only; nothing is unpickled).

    The task is read from the checkpoint's ``config.json`` (a ResNet config, or a transformers config with its
    ``model_type``: ``hf_unlearn.tasks.task_for_checkpoint``) and that task's ``load_model`` loads it.
    """
    from hf_unlearn.tasks import task_for_checkpoint

    task = task_for_checkpoint(checkpoint_config(folder_or_repo, revision))
    model, summary = task.load_model(str(folder_or_repo), revision=revision)
    model.eval()
    return model, summary
