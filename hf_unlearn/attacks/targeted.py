"""The clean-label targeted attack on CIFAR-10: Witches' Brew gradient matching (Geiping et al., ICLR 2021).

The paper's Section 4.1 / Appendix A.1.1 run it this way: choose target test images
of a target class ("truck"), an adversarial (poison) class among the other nine, and
``budget`` percent of the training set from the poison class as poisons. Each poison
gets a perturbation ``delta`` with ``|delta|_inf <= eps/255`` (eps = 16) that makes the
training gradient of the poisons *point the same way* as the gradient of the targets
under the adversarial label, measured on a clean model trained on the clean data:

    loss(delta) = 1 - cos( grad_theta L(x_p + delta, y_p),  grad_theta L(x_t, y_adv) )

Training on the poisons then moves the model towards classifying the targets as the
poison class. Labels never change (clean label), so the poisons are ordinary-looking
images of their true class. With several targets the target gradient is the mean over
them (the loss is a mean cross-entropy), as in Witches' Brew's multi-target runs.

The cosine loss must be differentiable *in delta*, so the poison gradient is taken with
``create_graph=True`` (a second-order term through the network); without it the loss
is a constant as far as delta is concerned and crafting does nothing.

Crafting recipe (``RECIPES["paper"]``, the reference implementation's defaults,
``JonasGeiping/poisoning-gradient-matching``, ``forest/options.py`` and
``forest/witchcoven/witch_base.py``): signed Adam (Adam on the sign of the gradient)
with step size 0.1 in the reference's *normalised-input* units (so a pixel step of
0.1 * std_c per channel), 8 restarts keeping the lowest final loss, the step size
times 0.1 at 3/8, 5/8 and 7/8 of the steps, poisons in batches of 512, random-normal
initialisation clipped to the eps ball, differentiable flip + shift augmentation, and a
projection to the eps ball and to valid pixels after every step. 240 steps as in the
Witches' Brew paper (the code's default is 250).

Config names: ``<target class>-eps<eps/255>-b<budget %>-t<targets>-s<seed>[-n<train rows>][-<recipe>]``,
e.g. ``truck-eps16-b1.5-t1-s0`` or ``truck-eps16-b1.5-t4-s0-n5000-cpu``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hf_unlearn.attacks import AttackBase, predict
from hf_unlearn.data import task_spec
from hf_unlearn.poisons.gaussian import num_poisons

CIFAR10_CLASSES = task_spec("cifar10").label_names  # the source's ClassLabel names, label order
# The reference's per-channel std of CIFAR-10 (its inputs are normalised, so its step size is in those units).
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_CHOICE_STREAM = 0x7A26E7  # first word of the seed sequence of the variant's random choices
_CRAFT_STREAM = 0xC2AF7  # ... and of crafting's initialisation / augmentation draws

_NAME_RE = re.compile(
    r"^(?P<cls>[a-z]+)-eps(?P<eps>\d+)-b(?P<budget>[0-9.]+)-t(?P<targets>\d+)-s(?P<seed>\d+)"
    r"(?:-n(?P<n>\d+))?(?:-(?P<recipe>[a-z]+))?$"
)


# ----------------------------------------------------------------------------- crafting recipes
@dataclass(frozen=True)
class GradientMatchingRecipe:
    """How poisons are crafted (one preset per fidelity). Sources in the field comments."""

    restarts: int = 8  # independent crafting runs, the lowest final loss wins (forest/options.py --restarts 8)
    steps: int = 240  # signed-Adam steps per restart (Witches' Brew, Sec. 4; the code's --attackiter default is 250)
    lr: float = 0.1  # Adam step size in normalised-input units, i.e. 0.1 * std_c per pixel (--tau 0.1, "rule 2")
    drop_at: tuple[float, ...] = (0.375, 0.625, 0.875)  # step-size drops at these fractions of the steps
    # (witch_base.py: MultiStepLR milestones attackiter // 2.667, // 1.6, // 1.142, i.e. 3/8, 5/8, 7/8)
    drop_factor: float = 0.1  # ... each multiplying the step size by this (gamma=0.1)
    batch_size: int = 512  # poisons per matching-loss batch (--pbatch 512)
    augment: bool = True  # differentiable flip + shift of the poison batch while crafting (--paugment on)
    shift: int = 4  # maximal shift in pixels of that augmentation (RandomTransform shift=8 of linspace(0,1,32): 4 px)

    def __post_init__(self) -> None:
        for name in ("restarts", "steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr={self.lr!r}: must be a finite number > 0")
        if not all(0 < f < 1 for f in self.drop_at) or list(self.drop_at) != sorted(self.drop_at):
            raise ValueError(f"drop_at={self.drop_at!r}: increasing fractions of the steps in (0, 1)")
        if not 0 < self.drop_factor <= 1:
            raise ValueError(f"drop_factor={self.drop_factor!r}: must be in (0, 1]")
        if not isinstance(self.shift, int) or self.shift < 0:
            raise ValueError(f"shift={self.shift!r}: a non-negative number of pixels")
        object.__setattr__(self, "drop_at", tuple(float(f) for f in self.drop_at))

    def lr_at(self, step: int) -> float:
        """The step size at ``step`` (0-based): ``lr`` times ``drop_factor`` per milestone already reached."""
        milestones = [round(f * self.steps) for f in self.drop_at]
        return self.lr * self.drop_factor ** sum(step >= m for m in milestones)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the dataset card (tuples as lists)."""
        d = asdict(self)
        d["drop_at"] = list(self.drop_at)
        return d


RECIPES: dict[str, GradientMatchingRecipe] = {
    # The published recipe (GPU scale: 8 x 240 double-backward passes over 750 poisons).
    "paper": GradientMatchingRecipe(),
    # CPU fidelity: the same optimiser and schedule, fewer restarts and steps.
    "cpu": GradientMatchingRecipe(restarts=2, steps=80),
    # Tests: every code path (restarts, drops, augmentation, batching) in a few seconds.
    "tiny": GradientMatchingRecipe(restarts=2, steps=4, batch_size=8),
}


# ----------------------------------------------------------------------------- the variant's parameters
@dataclass(frozen=True)
class TargetedConfig:
    """One variant of the gradient-matching attack.

    ``target_class`` the CIFAR-10 class of the target test images (the paper: "truck");
    ``eps`` the L-inf bound in 1/255 units (the paper: 16); ``budget`` poisons in percent of
    the training rows (the paper: 1.5, i.e. 750 of 50,000); ``num_targets`` target test
    images (the paper: 1), all pushed to the same adversarial class; ``seed`` picks targets,
    poison class, poisons and crafting's draws; ``max_train_rows`` an optional
    seed-independent training subset (CPU presets); ``recipe`` a key of ``RECIPES``.
    """

    target_class: str = "truck"
    eps: int = 16
    budget: float = 1.5
    num_targets: int = 1
    seed: int = 0
    max_train_rows: int | None = None
    recipe: str = "paper"

    def __post_init__(self) -> None:
        if self.target_class not in CIFAR10_CLASSES:
            raise ValueError(f"target_class={self.target_class!r}: expected a CIFAR-10 class name, one of {list(CIFAR10_CLASSES)}")
        if isinstance(self.eps, bool) or not isinstance(self.eps, int) or not 1 <= self.eps <= 255:
            raise ValueError(f"eps={self.eps!r}: the L-inf bound is an integer number of 1/255 steps in 1..255 (the paper: 16)")
        if not (isinstance(self.budget, (int, float)) and math.isfinite(self.budget) and 0 < self.budget <= 100):
            raise ValueError(f"budget={self.budget!r}: poisons in percent of the training rows, in (0, 100]")
        if isinstance(self.num_targets, bool) or not isinstance(self.num_targets, int) or self.num_targets < 1:
            raise ValueError(f"num_targets={self.num_targets!r}: a positive number of target test images")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: seeds are non-negative integers")
        if self.max_train_rows is not None and (not isinstance(self.max_train_rows, int) or self.max_train_rows <= 0):
            raise ValueError(f"max_train_rows={self.max_train_rows!r}: must be a positive integer or None")
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe={self.recipe!r}: expected one of {sorted(RECIPES)}")
        object.__setattr__(self, "budget", float(self.budget))  # 2 and 2.0 are one variant: one card entry
        if "e" in f"{self.budget:g}":
            raise ValueError(f"budget={self.budget!r}: too small to name (use at least 0.0001 percent)")

    @property
    def name(self) -> str:
        base = f"{self.target_class}-eps{self.eps}-b{self.budget:g}-t{self.num_targets}-s{self.seed}"
        base += f"-n{self.max_train_rows}" if self.max_train_rows else ""
        return base + ("" if self.recipe == "paper" else f"-{self.recipe}")

    @classmethod
    def from_name(cls, name: str) -> "TargetedConfig":
        m = _NAME_RE.match(name)
        if not m or m.group("recipe") == "paper":
            raise ValueError(
                f"config name {name!r} is not a gradient-matching variant name; expected e.g. 'truck-eps16-b1.5-t1-s0' "
                "or 'truck-eps16-b1.5-t4-s0-n5000-cpu' (target class, eps in 1/255, budget in percent, targets, seed, "
                f"optional train rows, optional recipe other than 'paper': one of {sorted(set(RECIPES) - {'paper'})})"
            )
        n = m.group("n")
        return cls(m.group("cls"), int(m.group("eps")), float(m.group("budget")), int(m.group("targets")),
                   int(m.group("seed")), int(n) if n else None, m.group("recipe") or "paper")

    @property
    def target_label(self) -> int:
        return CIFAR10_CLASSES.index(self.target_class)


# ----------------------------------------------------------------------------- choosing targets and poisons
@dataclass(frozen=True)
class TargetedChoice:
    """What a seed picks: target test rows, the poison (adversarial) class and the poison rows."""

    target_rows: np.ndarray  # int64, positions in the test split (ascending)
    poison_class: int  # the adversarial label of every target; poisons are from this class
    poison_rows: np.ndarray  # int64, positions in the given training rows (ascending)


def choose_variant(train_labels: Any, test_labels: Any, cfg: TargetedConfig) -> TargetedChoice:
    """The seeded choices of Appendix A.1.1, all from ``default_rng([0x7A26E7, seed])`` in this order:

    1. ``num_targets`` test images of ``target_class`` (uniform, without replacement);
    2. the poison class, uniform among the other nine classes;
    3. ``round(budget/100 * N_train)`` training rows of the poison class (uniform, without replacement).
    """
    train_labels = np.asarray(train_labels, dtype=np.int64).reshape(-1)
    test_labels = np.asarray(test_labels, dtype=np.int64).reshape(-1)
    rng = np.random.default_rng([_CHOICE_STREAM, cfg.seed])
    candidates = np.flatnonzero(test_labels == cfg.target_label)
    if len(candidates) < cfg.num_targets:
        raise ValueError(f"num_targets={cfg.num_targets}, but the test split has only {len(candidates)} "
                         f"{cfg.target_class!r} images; ask for fewer targets")
    targets = np.sort(rng.choice(candidates, size=cfg.num_targets, replace=False)).astype(np.int64)
    others = [c for c in range(len(CIFAR10_CLASSES)) if c != cfg.target_label]
    poison_class = int(others[int(rng.integers(len(others)))])
    n = num_poisons(len(train_labels), cfg.budget)
    pool = np.flatnonzero(train_labels == poison_class)
    if len(pool) < n:
        raise ValueError(
            f"budget {cfg.budget:g}% of {len(train_labels)} training rows is {n} poisons, but the poison class "
            f"{CIFAR10_CLASSES[poison_class]!r} has only {len(pool)} rows (clean-label poisons come from one class); "
            "lower the budget or use more training rows (max_train_rows)"
        )
    poisons = np.sort(rng.choice(pool, size=n, replace=False)).astype(np.int64)
    return TargetedChoice(targets, poison_class, poisons)


# ----------------------------------------------------------------------------- gradient matching
def _parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return list(model.parameters())


class _Frozen:
    """Eval mode and ``requires_grad`` on every parameter (autograd.grad needs it; nothing is updated),
    restoring the model's train/eval state and each parameter's flag on exit."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> torch.nn.Module:
        self.training = self.model.training
        self.flags = [p.requires_grad for p in self.model.parameters()]
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(True)
        return self.model

    def __exit__(self, *exc: Any) -> None:
        for p, flag in zip(self.model.parameters(), self.flags):
            p.requires_grad_(flag)
        self.model.train(self.training)


def target_gradient(model: torch.nn.Module, target_x: torch.Tensor, adversarial_y: torch.Tensor) -> list[torch.Tensor]:
    """The gradient over all parameters of the mean cross-entropy of the targets under their adversarial labels
    (detached): the direction training should take for the targets to flip."""
    with _Frozen(model):
        loss = F.cross_entropy(model(target_x), adversarial_y)
        grads = torch.autograd.grad(loss, _parameters(model))
    return [g.detach() for g in grads]


def matching_loss(model: torch.nn.Module, poison_x: torch.Tensor, poison_y: torch.Tensor,
                  target_grads: Sequence[torch.Tensor], label_smoothing: float = 0.0) -> torch.Tensor:
    """1 - cosine similarity between the poison batch's loss gradient (all parameters) and ``target_grads``.

    The poison gradient is taken with ``create_graph=True`` so that the result is differentiable in
    ``poison_x`` (and so in the perturbation): that second-order path is the whole attack. The caller
    puts the model in eval mode with ``requires_grad`` parameters (``craft`` does). ``label_smoothing`` is the
    victim's: the poisons must steer the gradient the victim will take on them, and with smoothing that
    gradient differs in direction (a poison the model already fits with p > 1 - smoothing pushes its own label
    down), as the reference crafts with the victim's own loss.
    """
    params = _parameters(model)
    if len(params) != len(target_grads):
        raise ValueError(f"target_grads has {len(target_grads)} tensors but the model has {len(params)} parameters; "
                         "compute it with target_gradient on the same model")
    loss = F.cross_entropy(model(poison_x), poison_y, label_smoothing=label_smoothing)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    dot = sum((g * t).sum() for g, t in zip(grads, target_grads))
    poison_norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).clamp_min(1e-12)
    target_norm = torch.sqrt(sum(t.pow(2).sum() for t in target_grads)).clamp_min(1e-12)
    return 1 - dot / (poison_norm * target_norm)


def flip_shift(x: torch.Tensor, draws: torch.Tensor, shift: int) -> torch.Tensor:
    """Differentiable augmentation: a horizontal flip and a sub-pixel shift of up to ``shift`` pixels per image.

    ``draws`` (B, 3) uniform in [0, 1): x-shift, y-shift, flip (> 0.5). Bilinear resampling of the shifted
    (and mirrored) grid, zero outside the image, as the reference's RandomTransform does; gradients flow to ``x``.
    """
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0).repeat(b, 1, 1, 1)
    draws = draws.to(device=x.device, dtype=x.dtype)
    # align_corners=True: grid units of 2/(w-1) per pixel
    grid[..., 0] += ((draws[:, 0] - 0.5) * 2 * shift * 2 / (w - 1)).view(b, 1, 1)
    grid[..., 1] += ((draws[:, 1] - 0.5) * 2 * shift * 2 / (h - 1)).view(b, 1, 1)
    flip = (draws[:, 2] > 0.5).view(b, 1, 1)
    grid[..., 0] = torch.where(flip, -grid[..., 0], grid[..., 0])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def project(delta: torch.Tensor, base_x: torch.Tensor, eps: float) -> torch.Tensor:
    """``delta`` clipped to the eps ball and so that ``base_x + delta`` stays in [0, 1]."""
    delta = delta.clamp(-eps, eps)
    return torch.maximum(torch.minimum(delta, 1 - base_x), -base_x)


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def craft(
    model: torch.nn.Module,
    base_x: torch.Tensor,
    base_y: torch.Tensor,
    target_x: torch.Tensor,
    adversarial_y: torch.Tensor,
    eps: float,
    recipe: GradientMatchingRecipe,
    seed: int,
    progress: bool = True,
    *,
    label_smoothing: float = 0.0,
    augment: bool | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Perturbations (float, same shape as ``base_x``, |delta| <= eps, base_x + delta in [0, 1]) that minimise
    the matching loss against the mean target gradient, and a record of the run.

    ``base_x`` float pixels in [0, 1] (N, 3, 32, 32); ``eps`` in pixel units (16/255 for the paper). The model
    is used in eval mode and never updated; its state is restored. Each restart draws its initialisation and its
    augmentation from ``torch.Generator`` seeded by (seed, restart), so a run is reproducible on one machine.
    The info dict has ``restart_losses`` (each restart's loss at its last step, as the reference scores
    restarts), ``initial_losses`` and ``best_restart``.

    ``label_smoothing`` and ``augment`` match the crafting to the victim's training (the builder passes the
    victim recipe's): the poison gradient uses the victim's loss, and the differentiable flip + shift runs only
    if the victim augments (None: the recipe's ``augment``). Crafting for an augmenting victim against one
    that never augments optimises a harder, noisier objective than the one the victim will see; the
    reference's own ablation turns both off together.
    """
    from tqdm.auto import tqdm

    if base_x.dim() != 4 or base_x.shape[1] != 3:
        raise ValueError(f"base_x must be float images (N, 3, H, W) in [0, 1], got shape {tuple(base_x.shape)}")
    if base_x.dtype == torch.uint8 or float(base_x.min()) < 0 or float(base_x.max()) > 1:
        raise ValueError("base_x must be float pixels in [0, 1] (uint8 / 255)")
    if len(base_y) != len(base_x) or len(target_x) != len(adversarial_y) or len(target_x) == 0:
        raise ValueError(f"{len(base_x)} poisons with {len(base_y)} labels, {len(target_x)} targets with "
                         f"{len(adversarial_y)} adversarial labels: counts must match and targets be non-empty")
    if not 0 < eps <= 1:
        raise ValueError(f"eps={eps!r}: the bound in pixel units, in (0, 1] (16/255 for the paper)")
    use_augment = recipe.augment if augment is None else bool(augment)
    device = next(model.parameters()).device
    base_x, base_y = base_x.to(device, torch.float32), base_y.to(device)
    std = torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1)
    target_grads = target_gradient(model, target_x.to(device, torch.float32), adversarial_y.to(device))
    batches = _batches(len(base_x), recipe.batch_size)
    best, best_loss, losses, initial = None, math.inf, [], []
    start = time.perf_counter()
    with _Frozen(model):
        bar = tqdm(total=recipe.restarts * recipe.steps, desc="crafting poisons", disable=not progress)
        for restart in range(recipe.restarts):
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([_CRAFT_STREAM, seed, restart]).generate_state(1)[0]))
            init = torch.randn(base_x.shape, generator=gen).to(device) * eps
            delta = project(init, base_x, eps)
            # Adam works on delta / std (the reference's normalised-input units), so lr 0.1 means 0.1 * std_c per pixel
            u = (delta / std).requires_grad_(True)
            opt = torch.optim.Adam([u], lr=recipe.lr)
            step_loss = math.nan
            for step in range(recipe.steps):
                for group in opt.param_groups:
                    group["lr"] = recipe.lr_at(step)
                grad = torch.zeros_like(u)
                total = 0.0
                for sl in batches:
                    part = (u[sl] * std).detach().requires_grad_(True)
                    x = base_x[sl] + part
                    if use_augment:
                        x = flip_shift(x, torch.rand(len(part), 3, generator=gen), recipe.shift)
                    loss = matching_loss(model, x, base_y[sl], target_grads, label_smoothing)
                    (g,) = torch.autograd.grad(loss, part)
                    grad[sl] = g
                    total += float(loss.detach())
                step_loss = total / len(batches)
                if step == 0:
                    initial.append(step_loss)
                u.grad = grad.sign()  # signed Adam: the sign of d loss / d delta (std > 0 keeps the sign)
                opt.step()
                with torch.no_grad():
                    delta = project(u * std, base_x, eps)
                    u.copy_(delta / std)
                bar.update(1)
                bar.set_postfix(restart=restart, loss=f"{step_loss:.4f}")
            losses.append(step_loss)
            if step_loss < best_loss:
                best, best_loss = delta.detach().clone(), step_loss
        bar.close()
    info = {
        "restart_losses": [float(v) for v in losses],
        "initial_losses": [float(v) for v in initial],
        "best_restart": int(np.argmin(losses)),
        "label_smoothing": float(label_smoothing),
        "augment": use_augment,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return best.cpu(), info


# ----------------------------------------------------------------------------- 8-bit poisons and success
def quantise(base_uint8: torch.Tensor, delta: torch.Tensor, eps_int: int) -> torch.Tensor:
    """The poisoned images as uint8: ``base + round(255 * delta)`` clipped so that |poison - base| <= eps_int
    exactly and every pixel is in 0..255 (rounding alone can step one level past the float bound)."""
    if base_uint8.dtype != torch.uint8:
        raise ValueError(f"base_uint8 must be uint8 images, got {base_uint8.dtype}")
    if base_uint8.shape != delta.shape:
        raise ValueError(f"base {tuple(base_uint8.shape)} and delta {tuple(delta.shape)} differ in shape")
    base = base_uint8.to(torch.int64)
    step = torch.round(delta.detach().to(torch.float64).cpu() * 255).to(torch.int64).clamp(-eps_int, eps_int)
    return (base + step).clamp(0, 255).to(torch.uint8)


def target_success(predictions: Any, adversarial_labels: Any) -> float:
    """Share of targets predicted as their adversarial label (0..1): 1 = every target flipped to the poison class.

    A model that ignores the poisons scores about 0 (the targets are mostly classified as their true class).
    """
    pred = np.asarray(predictions, dtype=np.int64).reshape(-1)
    adv = np.asarray(adversarial_labels, dtype=np.int64).reshape(-1)
    if pred.shape != adv.shape:
        raise ValueError(f"predictions ({pred.size}) and adversarial_labels ({adv.size}) differ in length")
    if pred.size == 0:
        raise ValueError("target_success of no targets is undefined; the targets split is empty")
    if (adv < 0).any():
        raise ValueError("adversarial_labels holds -1 (not a target); pass the targets split's adversarial_label")
    return float(np.mean(pred == adv))


# ----------------------------------------------------------------------------- the registered attack
@dataclass(frozen=True)
class TargetedAttack(AttackBase):
    """Gradient matching on CIFAR-10, recorded as attack ``targeted`` (interface: ``hf_unlearn.attacks``).

    Its metric is ``target_success`` on the ``targets`` split: the share of target test images the model
    classifies as their adversarial label, measured on the clean images.
    """

    name: str = "targeted"
    tasks: tuple[str, ...] = ("cifar10",)
    columns: tuple[str, ...] = ("adversarial_label",)
    config_class: type = TargetedConfig


    def parse_config(self, name: str) -> TargetedConfig:
        return TargetedConfig.from_name(name)

    def build(self, source: str | None, cfg: TargetedConfig, out_dir: Any, *, task: Any = "cifar10"):
        """Build one variant into a Hub-layout folder (``dataset_builders/poisoned_cifar10_targeted.py``)."""
        if not self.supports(task):
            raise ValueError(f"gradient matching supports tasks {list(self.tasks)}, not {getattr(task, 'name', task)!r}")
        from dataset_builders.poisoned_cifar10_targeted import build

        return build(source, [cfg], out_dir)

    def evaluate(self, model: Any, splits: Any, *, task: Any = None, config: str | None = None,
                 null_draws: int | None = None, seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
        """``target_success`` and ``num_targets`` on ``splits["targets"]`` (null_draws/seed unused: no randomness)."""
        if "targets" not in splits:
            raise ValueError(f"the targeted variant's splits lack 'targets' (have {sorted(splits)}); the task's "
                             "load_splits must decode the targets split of poisoned-cifar10-targeted")
        targets = splits["targets"]
        adversarial = getattr(targets, "adversarial_label", None)
        if adversarial is None:
            raise ValueError("the targets split has no adversarial_label column; rebuild the variant with "
                             "dataset_builders/poisoned_cifar10_targeted.py")
        preds = predict(model, targets, batch_size)  # clean inputs, eval mode, train/eval state restored
        adv = adversarial.cpu().numpy() if hasattr(adversarial, "cpu") else np.asarray(adversarial)
        return {"target_success": target_success(preds, adv), "num_targets": int(len(targets))}


ATTACK = TargetedAttack()
