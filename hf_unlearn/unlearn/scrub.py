"""SCRUB: a student pushed away from the teacher on the forget set and kept close on the retain set.

Kurmanji et al. (NeurIPS 2023), "Towards Unbounded Machine Unlearning"; as run in
Pawelczyk et al. (ICLR 2025), Appendix A.2.6. The teacher is the poisoned model,
frozen; the student starts as a copy of it. The reference's schedule is a cycle of
``cycle_epochs`` epochs; epoch ``e`` of a cycle makes, if ``e <= max_epochs``, one *max*
pass over D_f (maximise the temperature-scaled KL(teacher || student)), then one *min*
pass over D_r (minimise ``gamma * CE + alpha * KL``). The cycle repeats until the budget
ends the run (or for ``epochs`` epochs in all when set), so a larger budget means more
max/min rounds. Each step also runs the teacher forward: 1 per example on top of the
student's 3.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hf_unlearn.unlearn.base import Step, UnlearnContext, register_method, sgd


@dataclass
class SCRUBConfig:
    # meghdadk/SCRUB, large-scale CIFAR settings (args of large_scale_unlearning.ipynb / SCRUB_args);
    # paper A.2.6 lists its own values but they are lost in the text copy in paper/.
    lr: float = 5e-4  # sgda_learning_rate; constant (the repo's decays after epochs 3, 5, 9 never fire in its 3-epoch run, and repeated cycles keep it)
    momentum: float = 0.9  # sgda_momentum
    weight_decay: float = 5e-4  # sgda_weight_decay
    epochs: int | None = None  # epochs in all (min passes over D_r); None = repeat the cycle until the budget ends the run
    cycle_epochs: int = 3  # sgda_epochs: the reference's run is one cycle of 3 epochs, repeated here
    max_epochs: int = 2  # msteps: the first max_epochs epochs of each cycle also make a max pass over D_f
    alpha: float = 0.001  # weight of KL(teacher || student) in the min steps
    gamma: float = 0.99  # weight of the cross-entropy in the min steps
    temperature: float = 4.0  # kd_T, softmax temperature of the KL (scaled back by T^2)
    batch_size: int = 128  # sgda_batch_size, retain examples per min step
    forget_batch_size: int = 32  # del_batch_size, forget examples per max step
    stop_on_plateau: bool = False  # opt-in early stop when the loss plateaus (rule: hf_unlearn.unlearn.base); ours
    stop_on_collapse: bool = False  # opt-in early stop when held retain+forget accuracy is at chance (base); ours

    def __post_init__(self) -> None:
        if self.cycle_epochs < 1:
            raise ValueError(f"cycle_epochs={self.cycle_epochs}: a cycle has at least one epoch")


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at temperature T, times T^2 (Hinton et al.'s distillation loss), batch mean."""
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_s, p_t, reduction="batchmean") * temperature**2


def schedule(ctx: UnlearnContext, cfg: SCRUBConfig) -> Iterator[Step]:
    """Max and min passes, epoch by epoch; endless when ``cfg.epochs`` is None (the budget ends it)."""
    epoch = 1
    while cfg.epochs is None or epoch <= cfg.epochs:
        if (epoch - 1) % cfg.cycle_epochs < cfg.max_epochs:
            for b in ctx.epoch_batches(ctx.forget, cfg.forget_batch_size, epoch, "forget"):
                yield Step("max", {"x": b}, extra_forward=len(b))
        for b in ctx.epoch_batches(ctx.retain, cfg.batch_size, epoch, "retain"):
            yield Step("min", {"x": b}, extra_forward=len(b))
        epoch += 1


@register_method("scrub")
def scrub(ctx: UnlearnContext, cfg: SCRUBConfig) -> nn.Module:
    student = ctx.model
    teacher = copy.deepcopy(student).eval().requires_grad_(False)
    student.train()
    optimizer = sgd(student.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)

    def objective(step: Step) -> torch.Tensor:
        batch = step.batches["x"]
        with torch.no_grad():
            t_logits = teacher(batch.x)
        s_logits = student(batch.x)
        kl = kl_to_teacher(s_logits, t_logits, cfg.temperature)
        if step.kind == "max":
            return -kl
        return cfg.gamma * F.cross_entropy(s_logits, batch.y) + cfg.alpha * kl

    def loss(step: Step) -> torch.Tensor:
        # both terms are means over the batch: under N processes, weighed by this process's share of its rows
        return step.batches["x"].weigh(objective(step))

    ctx.run_steps(schedule(ctx, cfg), loss, optimizer)
    return student
