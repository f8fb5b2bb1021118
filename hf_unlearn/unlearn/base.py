"""What every unlearning method shares: the interface, the registry, configs, metered steps.

A method is one function in its own file, registered by name::

    @register_method("gd")
    def gd(ctx: UnlearnContext, cfg: GDConfig) -> nn.Module: ...

``cfg`` is a typed dataclass holding the method's only defaults (the registry
reads it from the annotation); ``ctx`` carries the model's data (retain and
forget splits), the compute meter, the seed and the device, plus the shared
loop pieces below: deterministic batches, a budget-metered optimisation loop
and evaluation helpers. A method contains only its update rule.

Budget (DESIGN.md, "Compute budget"): every forward pass a method makes costs 1
per example and every forward+backward pass 3, frozen layers or not. Each step is
charged *before* it runs; the first step the meter cannot afford ends the method.
Iterative methods run until that happens (``epochs = None``, the default): the budget,
not an epoch count, sets how much unlearning a run does, as in the paper, where the
budget is the x-axis. An explicit ``epochs`` caps a run below its budget.

Why a run stopped is recorded (``stopped_by``): ``"budget"`` (the meter ended it),
``"converged"`` / ``"collapsed"`` (the opt-in early stops below), ``"one_shot"`` (a
method with no iterations, SSD), or None (it ran its configured epochs).

Early stops (opt-in per run, fields ``stop_on_plateau`` / ``stop_on_collapse`` of an
iterative method's config; the rules are fixed here):

- converged: the mean training loss of the last ``PLATEAU_WINDOW`` steps differs from
  that of the ``PLATEAU_WINDOW`` steps before by at most ``PLATEAU_REL_TOL`` of the
  latter's magnitude;
- collapsed: every ``COLLAPSE_CHECK_EVERY`` steps, the model (eval mode) classifies a
  fixed held batch of up to ``COLLAPSE_HELD`` retain and ``COLLAPSE_HELD`` forget rows
  no better than chance plus 3 binomial standard errors. The check's forward passes are
  charged (1 per example) like any other; a check the budget cannot afford is skipped.

Data parallelism (``accelerate launch --num_processes N``; ``run_method(accelerator=...)``):
every process holds the whole model and the same meter, and walks the same seeded global
batches; ``ctx.batch`` gives it its contiguous slice (``hf_unlearn.distributed``). A loss
term is a batch mean weighed by ``batch.weigh`` (``ce`` does it), so that the gradients,
averaged over processes after each backward pass, are the one-process run's. ``len(batch)``
is the *global* batch's size: the meter charges the global work once, the same on every
process, so every process stops at the same step; the logged loss and the early-stop checks
see global values too. Batch norms in training mode see only their process's slice (the
module docstring of ``hf_unlearn.distributed``).

Mixed precision (``mixed_precision="bf16"``/``"fp16"``): a method's losses run under
autocast (``ctx.autocast``); parameters, optimiser state and NGD's noise addition stay
float32 (the noise is added outside autocast), the first layer runs on float32 inputs
(``ResNet18.stem``), and the returned model is plain float32, so scoring is float32.
fp16 scales the loss (``torch.amp.GradScaler``) in the shared loop.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import time
import typing
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hf_unlearn.budget import ComputeMeter
from hf_unlearn.distributed import ProcessShard, autocast_dtype, check_mixed_precision
from hf_unlearn.results import METHODS

# A split of any task (hf_unlearn.variant.ImageSplit, the text task's TextSplit, ...): y, index, noise_slot,
# is_poison, subset(), inputs(rows, noisy=...), and the classmethods concat(a, b) and cat_inputs(list).
Split = Any

# Modules of this package that hold shared machinery rather than a method.
_NOT_METHODS = frozenset({"base", "runner"})

# Why a run stopped (hf_unlearn.results.STOPPED_BY); None = it ran its configured epochs.
STOP_REASONS = ("budget", "converged", "collapsed", "one_shot")

# The early-stop rules (module docstring). Fixed in code so every run states the same thing.
PLATEAU_WINDOW = 10  # steps per window of the loss-plateau rule
PLATEAU_REL_TOL = 0.01  # converged: |mean(last window) - mean(window before)| <= 1% of |mean(window before)|
COLLAPSE_CHECK_EVERY = 10  # steps between collapse checks
COLLAPSE_HELD = 64  # retain rows and forget rows (each, at most) in the held batch


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class MethodSpec:
    name: str
    fn: Callable[..., nn.Module]
    config_cls: type
    budgeted: bool  # False only for retrain: its cost is recorded, not limited
    summary: str  # first line of the method module's docstring


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, *, budgeted: bool = True):
    """Register ``fn(ctx, cfg: SomeConfig) -> model`` under ``name``; the config class comes from ``cfg``'s annotation."""

    def deco(fn):
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if len(params) != 2 or params[1] not in hints or not dataclasses.is_dataclass(hints[params[1]]):
            raise TypeError(f"method {name!r}: expected fn(ctx, cfg: SomeConfigDataclass), got {fn.__qualname__}{inspect.signature(fn)}")
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"method {name!r} is already registered by {_REGISTRY[name].fn.__module__}")
        doc = (inspect.getmodule(fn).__doc__ or fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = MethodSpec(name, fn, hints[params[1]], budgeted, doc[0] if doc else "")
        return fn

    return deco


def _load_all() -> None:
    """Import every module of the package, so a new method is just a new file that registers itself."""
    import pkgutil

    package = importlib.import_module("hf_unlearn.unlearn")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_METHODS and not info.name.startswith("_"):
            importlib.import_module(f"hf_unlearn.unlearn.{info.name}")


def list_methods() -> list[str]:
    """Registered method names, in the paper's order (references first)."""
    _load_all()
    order = {m: i for i, m in enumerate(METHODS)}  # the paper's order; later methods sort after, by name
    return sorted(_REGISTRY, key=lambda n: (order.get(n, len(order)), n))


def get_method(name: str) -> MethodSpec:
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown unlearning method {name!r}; known methods: {list_methods()}")
    return _REGISTRY[name]


# ----------------------------------------------------------------------------- configs
def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=0.01", "k=2"]`` -> ``{"lr": 0.01, "k": 2}`` (values parsed as YAML)."""
    import yaml

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} must look like key=value, e.g. lr=0.01")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def build_config(method: str, overrides: Mapping[str, Any] | Iterable[str] | None = None, *, yaml_path: str | None = None):
    """The method's config dataclass: defaults, then a YAML preset's ``config:``, then ``overrides``.

    ``yaml_path`` may be a path or ``"preset"`` for ``hf_unlearn/configs/methods/<method>.yaml``.
    Unknown keys raise ValueError naming the valid keys; values are checked against their field types as the
    pipeline's ``--set`` values are (``config.typed_value``: ``lr=abc``, ``epochs=2.5`` or ``stop_on_plateau=maybe``
    are refused, naming the key and the type).
    """
    from hf_unlearn.config import typed_value

    spec = get_method(method)
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(load_method_preset(method, None if yaml_path == "preset" else yaml_path))
    if overrides is not None:
        values.update(overrides if isinstance(overrides, Mapping) else parse_overrides(overrides))
    hints = typing.get_type_hints(spec.config_cls)
    valid = [f.name for f in dataclasses.fields(spec.config_cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} for method {method!r}; valid keys: {valid}")
    # One mechanism for every --set (hf_unlearn.config.typed_value): the pipeline's sections and the methods'.
    kwargs = {k: typed_value(v, hints[k], f"{method}.{k}") for k, v in values.items()}
    return spec.config_cls(**kwargs)


METHOD_PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs" / "methods"


def _read_method_yaml(method: str, path: str | None) -> tuple[Path, dict[str, Any]]:
    import yaml

    file = Path(path) if path else METHOD_PRESETS_DIR / f"{method}.yaml"
    if not file.exists():
        raise FileNotFoundError(f"no method preset {str(file)!r}; presets live in {METHOD_PRESETS_DIR}")
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict) or set(data) - {"method", "config", "grid"}:
        raise ValueError(f"{file}: expected the keys 'method', 'config' and optionally 'grid', "
                         f"got {sorted(data) if isinstance(data, dict) else data!r}")
    if data.get("method", method) != method:
        raise ValueError(f"{file} is a preset for method {data['method']!r}, not {method!r}")
    return file, data


def load_method_preset(method: str, path: str | None = None) -> dict[str, Any]:
    """The ``config:`` mapping of a method YAML (``method:`` must name ``method``)."""
    return dict(_read_method_yaml(method, path)[1].get("config") or {})


MAX_GRID_CELLS = 6  # grids stay small: each cell is one more unlearning run


def load_method_grid(method: str, path: str | None = None) -> list[dict[str, Any]]:
    """The tuning grid of a method YAML: the cartesian product of its ``grid:`` lists, in file order.

    ``grid: {lr: [1e-3, 1e-4], k: [1, 3]}`` -> ``[{lr: 1e-3, k: 1}, {lr: 1e-3, k: 3}, ...]``.
    A method without ``grid:`` has one cell, ``{}`` (its preset). Every cell is checked
    against the config dataclass (unknown keys and wrong types fail here, before any run).
    """
    file, data = _read_method_yaml(method, path)
    return expand_grid(method, data.get("grid") or {}, preset=data.get("config") or {}, where=str(file))


def expand_grid(method: str, grid: Any, *, preset: Mapping[str, Any] | None = None, where: str = "grid") -> list[dict[str, Any]]:
    """The cells of one grid mapping (``{key: [values]}``), each checked against the method's config.

    One function for the method YAMLs' grids and a benchmark preset's ``grids:`` (a task whose
    models train differently, e.g. GPT-2 with AdamW, needs other ranges than ResNet-18 with SGD),
    so both are validated the same way before any run.
    """
    import itertools

    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ValueError(f"{where}: grid must map each hyper-parameter to a non-empty list, e.g. grid: {{lr: [1e-3, 1e-4]}}")
    cells = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else [{}]
    if len(cells) > MAX_GRID_CELLS:
        raise ValueError(f"{where}: the grid has {len(cells)} cells; keep it at most {MAX_GRID_CELLS} (each is a run)")
    for cell in cells:
        build_config(method, {**dict(preset or {}), **cell})
    return cells


# ----------------------------------------------------------------------------- data helpers
def concat_splits(a: Split, b: Split) -> Split:
    """Rows of ``a`` then ``b`` (noise tables merged), e.g. retain + forget = the training set: the split
    class's own ``concat``, so this works for every task."""
    return type(a).concat(a, b)


@dataclass
class Batch:
    """A global batch as this process holds it: all its rows in one process, its slice under N processes."""

    x: Any  # model input on the device, poison noise included (what was trained on): pixels, or text inputs
    y: torch.Tensor
    size: int | None = None  # rows of the global batch (None: len(y), one process); what len() and the meter count
    world: int = 1  # processes the global batch is split over

    def __len__(self) -> int:
        return len(self.y) if self.size is None else self.size

    def weigh(self, loss: torch.Tensor) -> torch.Tensor:
        """A mean over this process's rows, weighed so the averaged gradient is the global batch's; an exact 0
        for a process with no rows. The loss itself in one process (bit for bit)."""
        if self.size is None:
            return loss
        return ProcessShard(0, self.world).weigh(loss, len(self.y), self.size)


@dataclass
class Step:
    """One optimiser step: its kind (for the trace), its batches and any extra forward-only examples."""

    kind: str
    batches: dict[str, Batch]
    extra_forward: int = 0  # e.g. SCRUB's teacher forward, 1 per example

    @property
    def examples(self) -> int:
        return sum(len(b) for b in self.batches.values())


# ----------------------------------------------------------------------------- the context
@dataclass
class UnlearnContext:
    """Everything a method may use. ``model`` is the method's own copy and may be changed in place."""

    model: nn.Module
    retain: Split
    forget: Split
    meter: ComputeMeter = field(default_factory=ComputeMeter)
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    train_config: Any = None  # hf_unlearn.train.TrainConfig of the poisoned model (retrain's recipe)
    num_classes: int = 10
    work_dir: Path | None = None  # where retrain may keep (and reuse) its checkpoint
    channels_last: bool = False
    progress: bool = False
    trace: list[str] = field(default_factory=list)  # the kind of every step taken, in order
    losses: list[float] = field(default_factory=list)
    stopped_by: str | None = None  # one of STOP_REASONS, or None (ran its configured epochs)
    stop_on_plateau: bool = False  # opt-in early stops (module docstring); run_method copies them from the config
    stop_on_collapse: bool = False
    shard: ProcessShard = field(default_factory=ProcessShard)  # this process of a data-parallel run (module docstring)
    mixed_precision: str = "no"  # "no", "bf16" or "fp16": autocast for the losses (module docstring)

    def __post_init__(self) -> None:
        check_mixed_precision(self.mixed_precision)
        self._scaler = None

    @property
    def stopped_by_budget(self) -> bool:
        return self.stopped_by == "budget"

    # --- randomness: every stream derives from (seed, name), so runs repeat exactly
    def generator(self, stream: str, *extra: int, device: torch.device | str = "cpu") -> torch.Generator:
        key = zlib.crc32(f"{stream}:{':'.join(map(str, extra))}".encode())
        return torch.Generator(device=device).manual_seed((self.seed * 1_000_003 + key) % (2**63 - 1))

    # --- data
    def to_device(self, x: Any) -> Any:
        """A model input on the method's device: a tensor, or any input object with ``.to(device)``."""
        if not isinstance(x, torch.Tensor):
            return x.to(self.device)
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batch(self, split: Split, rows: torch.Tensor) -> Batch:
        """The global batch ``rows`` of ``split``: this process's slice of it under N processes."""
        if not self.shard.parallel:
            return self._full_batch(split, rows)
        local = self.shard.rows(rows)
        return Batch(self.to_device(split.inputs(local, noisy=True)), split.y[local].to(self.device, non_blocking=True),
                     size=len(rows), world=self.shard.world)

    def _full_batch(self, split: Split, rows: torch.Tensor) -> Batch:
        return Batch(self.to_device(split.inputs(rows, noisy=True)), split.y[rows].to(self.device, non_blocking=True))

    def epoch_batches(self, split: Split, batch_size: int, epoch: int, stream: str) -> Iterator[Batch]:
        """One pass over ``split`` in a seeded order (last batch may be smaller)."""
        if len(split) == 0:
            return
        perm = torch.randperm(len(split), generator=self.generator(stream, epoch))
        for start in range(0, len(split), batch_size):
            yield self.batch(split, perm[start : start + batch_size])

    def batches(self, split: Split, batch_size: int, epochs: int | None, stream: str) -> Iterator[Batch]:
        """``epochs`` seeded passes over ``split``; ``None``: endless passes, until the budget ends the run."""
        if epochs is None:
            yield from self.cycled(split, batch_size, stream)
            return
        for epoch in range(epochs):
            yield from self.epoch_batches(split, batch_size, epoch, stream)

    def cycled(self, split: Split, batch_size: int, stream: str) -> Iterator[Batch]:
        """Endless passes over ``split`` (a fresh order each pass)."""
        epoch = 0
        while len(split):
            yield from self.epoch_batches(split, batch_size, epoch, stream)
            epoch += 1

    # --- the budget
    def charge(self, forward_backward: int = 0, forward: int = 0) -> bool:
        """Charge one step, or return False (charging nothing) if it would exceed the budget."""
        cost = self.meter.cost(forward_backward, backward=True) + self.meter.cost(forward, backward=False)
        if self.meter.limit is not None and self.meter.used + cost > self.meter.limit + 1e-9:
            self.stopped_by = "budget"
            return False
        self.meter.used += cost
        return True

    # --- early stops (opt-in; rules in the module docstring)
    def _plateaued(self) -> bool:
        w = PLATEAU_WINDOW
        if len(self.losses) < 2 * w:
            return False
        last, before = sum(self.losses[-w:]) / w, sum(self.losses[-2 * w : -w]) / w
        return abs(last - before) <= PLATEAU_REL_TOL * abs(before)

    def _held_batch(self) -> Batch:
        if not hasattr(self, "_held"):
            rows_r = torch.randperm(len(self.retain), generator=self.generator("held-retain"))[:COLLAPSE_HELD]
            rows_f = torch.randperm(len(self.forget), generator=self.generator("held-forget"))[:COLLAPSE_HELD]
            # whole, not sliced: every process computes the same accuracy and so takes the same decision
            r, f = self._full_batch(self.retain, rows_r), self._full_batch(self.forget, rows_f)
            self._held = Batch(type(self.retain).cat_inputs([r.x, f.x]), torch.cat([r.y, f.y]))
        return self._held

    @torch.no_grad()
    def _collapsed(self) -> bool:
        held = self._held_batch()
        if not len(held) or not self.charge(forward=len(held)):
            if self.stopped_by == "budget":
                self.stopped_by = None  # a skipped check is not the budget ending the run
            return False
        modes = {m: m.training for m in self.model.modules()}  # EU-k/CF-k keep frozen blocks in eval mode
        self.model.eval()
        accuracy = (self.model(held.x).argmax(1) == held.y).float().mean().item()
        for m, mode in modes.items():
            m.train(mode)
        chance = 1.0 / self.num_classes
        return accuracy <= chance + 3 * (chance * (1 - chance) / len(held)) ** 0.5

    def should_stop(self, steps_done: int) -> bool:
        """After a step: does an opt-in early stop fire? Sets ``stopped_by`` when it does."""
        if self.stop_on_plateau and self._plateaued():
            self.stopped_by = "converged"
        elif self.stop_on_collapse and steps_done % COLLAPSE_CHECK_EVERY == 0 and self._collapsed():
            self.stopped_by = "collapsed"
        return self.stopped_by in ("converged", "collapsed")

    # --- precision and data parallelism (module docstring)
    def autocast(self):
        """The autocast context of ``mixed_precision`` (none at all for "no": float32 exactly as before)."""
        dtype = autocast_dtype(self.mixed_precision)
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, then the gradients averaged over processes (each loss term weighed by
        ``Batch.weigh``), so every process holds the global batch's gradient."""
        loss.backward()
        self.shard.average_gradients(self.model.parameters())

    def run_steps(
        self,
        steps: Iterable[Step],
        loss_fn: Callable[[Step], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        after_step: Callable[[], None] | None = None,
    ) -> int:
        """The shared loop: charge, forward, backward, step; stops at the first unaffordable step
        (or when an opt-in early stop fires). ``steps`` may be endless: the budget ends it.
        ``after_step`` (NGD's noise) runs outside autocast, on the float32 parameters."""
        done = 0
        if self.mixed_precision == "fp16" and self._scaler is None:
            self._scaler = torch.amp.GradScaler(self.device.type)
        for step in steps:
            if not self.charge(forward_backward=step.examples, forward=step.extra_forward):
                break
            with self.autocast():
                loss = loss_fn(step)
            optimizer.zero_grad(set_to_none=True)
            if self._scaler is None:
                self.backward(loss)
                optimizer.step()
            else:  # fp16: scaled loss; the averaged gradients are the same on every process, so is the inf check
                self.backward(self._scaler.scale(loss))
                self._scaler.step(optimizer)
                self._scaler.update()
            if self.shard.parallel:  # batch norm statistics: rank 0's everywhere, as DDP does
                self.shard.broadcast_batchnorm_stats(self.model)
            if after_step is not None:
                after_step()
            self.trace.append(step.kind)
            # weighed local losses average to the global batch's loss (the plateau rule sees the same on every process)
            self.losses.append(self.shard.mean(float(loss.detach()), self.device))
            done += 1
            if self.should_stop(done):
                break
        return done


# ----------------------------------------------------------------------------- shared pieces
def sgd(params: Iterable[torch.nn.Parameter], lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD([p for p in params if p.requires_grad], lr=lr, momentum=momentum, weight_decay=weight_decay)


def ce(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the batch (weighed by its share of the global batch under N processes)."""
    return batch.weigh(F.cross_entropy(model(batch.x), batch.y))


def blocks_of(model: nn.Module) -> list[nn.Module]:
    if not hasattr(model, "blocks"):
        raise TypeError(f"{type(model).__name__} has no blocks(); EU-k/CF-k need a model that lists its blocks input to output")
    return list(model.blocks())


def freeze_all_but_last(model: nn.Module, k: int) -> list[nn.Module]:
    """Freeze every parameter outside the last ``k`` blocks and put frozen blocks in eval mode
    (so their BatchNorm statistics stay untouched too); returns the trainable blocks."""
    blocks = blocks_of(model)
    if not 1 <= k <= len(blocks):
        raise ValueError(f"k={k}: the model has {len(blocks)} blocks; choose 1 <= k <= {len(blocks)}")
    model.train()
    model.requires_grad_(False)
    for block in blocks[:-k]:
        block.eval()
    for block in blocks[-k:]:
        block.requires_grad_(True)
    return blocks[-k:]


@torch.no_grad()
def mean_loss(model: nn.Module, split: Split, *, batch_size: int = 256, noisy: bool = True) -> float:
    """Mean cross-entropy in eval mode (not metered: for reports and tests, never inside a method)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(split), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(split)))
        logits = model(split.inputs(rows, noisy=noisy).to(device))
        total += F.cross_entropy(logits, split.y[rows].to(device), reduction="sum").item()
    model.train(was)
    return total / max(1, len(split))


# ----------------------------------------------------------------------------- running a method
@dataclass
class UnlearnResult:
    model: nn.Module
    method: str
    config: Any  # the method's config dataclass
    compute_used: float  # forward-equivalents
    limit: float | None
    steps: list[str]
    losses: list[float]
    stopped_by: str | None  # one of STOP_REASONS, or None (ran its configured epochs; references)
    wall_seconds: float

    @property
    def stopped_by_budget(self) -> bool:
        return self.stopped_by == "budget"

    @property
    def method_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


def run_method(
    model: nn.Module,
    retain: Split,
    forget: Split,
    method: str,
    *,
    config: Any = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    limit: float | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    accelerator: Any = None,
    train_config: Any = None,
    num_classes: int = 10,
    work_dir: str | Path | None = None,
    channels_last: bool = False,
    progress: bool = False,
    mixed_precision: str | None = None,
) -> UnlearnResult:
    """Unlearn ``forget`` from a copy of ``model`` with ``method`` under ``limit`` forward-equivalents.

    ``config`` (the method's dataclass) wins over ``overrides``; ``limit`` is ignored for
    methods that are not budgeted (retrain), whose cost is still recorded. The caller's
    model is never modified. With an ``accelerator``, its device is used, and under
    ``accelerate launch --num_processes N`` every process runs this call on its slice of
    each global batch (module docstring): the result, ``compute_used`` included, is the
    one-process run's up to float summation order (and batch-norm statistics), on every process.
    ``mixed_precision`` ("no", "bf16", "fp16"; default: the accelerator's, else "no") runs the
    losses under autocast; the first layer, NGD's noise and the returned model stay float32.
    ``channels_last`` (NHWC) is off by default: with torch 2.14's oneDNN on CPU, a width-4
    ResNet-18 in NHWC crashes or corrupts memory in the backward pass on one thread.
    """
    import copy

    spec = get_method(method)
    if config is None:
        config = build_config(method, overrides)
    elif not isinstance(config, spec.config_cls):
        raise TypeError(f"config for {method!r} must be a {spec.config_cls.__name__}, got {type(config).__name__}")
    if spec.budgeted and limit is None and getattr(config, "epochs", 0) is None:
        raise ValueError(f"method {method!r} runs until its budget ends (epochs=None): give a limit "
                         f"(forward-equivalents) or cap it with epochs=N")
    if device is None:
        device = accelerator.device if accelerator is not None else next(model.parameters()).device
    device = torch.device(device)
    if mixed_precision is None:
        mixed_precision = str(getattr(accelerator, "mixed_precision", "no") or "no")
    shard = ProcessShard.of(accelerator)
    work = copy.deepcopy(model).to(device)
    shard.broadcast_state(work)  # every process starts from rank 0's weights (no-op in one process)
    if channels_last:
        work = work.to(memory_format=torch.channels_last)
    meter = ComputeMeter(limit=limit if spec.budgeted else None)
    ctx = UnlearnContext(
        work, retain, forget, meter, seed=seed, device=device, train_config=train_config, num_classes=num_classes,
        work_dir=Path(work_dir) if work_dir else None, channels_last=channels_last, progress=progress,
        stop_on_plateau=bool(getattr(config, "stop_on_plateau", False)),
        stop_on_collapse=bool(getattr(config, "stop_on_collapse", False)),
        shard=shard, mixed_precision=mixed_precision,
    )
    # Seed the global RNG too, so any initialisation a method does (EU-k) repeats exactly.
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    out = spec.fn(ctx, config)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    out = out.to(memory_format=torch.contiguous_format)
    out.requires_grad_(True)
    out.eval()
    return UnlearnResult(out, method, config, meter.used, meter.limit, ctx.trace, ctx.losses, ctx.stopped_by, wall)
