"""GD: keep training the poisoned model on the retain set with SGD (fine-tuning).

Neel et al. (2021), "Descent-to-Delete"; as run in Pawelczyk et al. (ICLR 2025),
Appendix A.2.1: SGD with momentum and weight decay on D_r for 2-10 epochs. The
intuition is that the minimisers on D and on D_r are close, so a few more steps on
D_r should reach the latter. The paper finds it keeps accuracy but does not remove
Gaussian poisons. ``descend`` is the shared fine-tuning loop NGD, EU-k and CF-k reuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from hf_unlearn.unlearn.base import Step, UnlearnContext, ce, register_method, sgd


@dataclass
class GDConfig:
    # Paper A.2.1 names SGD's learning rate, momentum and weight decay, but the numbers
    # are lost in the text copy in paper/; the sources below fill them in.
    lr: float = 0.02  # per step, constant; the fine-tune baseline of if-loops/selective-synaptic-dampening (forget_random_strategies.py: 5 epochs at lr 0.02)
    momentum: float = 0.9  # meghdadk/SCRUB (sgda_momentum), the usual CIFAR ResNet value
    weight_decay: float = 5e-4  # L2, coupled; meghdadk/SCRUB (sgda_weight_decay)
    epochs: int | None = None  # passes over D_r; None = until the budget ends the run (paper A.2.1's 2-10 epochs are its budget axis)
    batch_size: int = 128  # examples per step; if-loops/selective-synaptic-dampening forget_random_main.py (-b 128)
    stop_on_plateau: bool = False  # opt-in early stop when the loss plateaus (rule: hf_unlearn.unlearn.base); ours
    stop_on_collapse: bool = False  # opt-in early stop when held retain+forget accuracy is at chance (base); ours


def descend(ctx: UnlearnContext, cfg: GDConfig, *, after_step: Callable[[], None] | None = None) -> nn.Module:
    """SGD on the retain set over the model's trainable parameters until the budget (or ``cfg.epochs``) ends it."""
    model = ctx.model
    optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
    steps = (Step("retain", {"r": b}) for b in ctx.batches(ctx.retain, cfg.batch_size, cfg.epochs, "retain"))
    ctx.run_steps(steps, lambda s: ce(model, s.batches["r"]), optimizer, after_step=after_step)
    return model


@register_method("gd")
def gd(ctx: UnlearnContext, cfg: GDConfig) -> nn.Module:
    ctx.model.train()
    return descend(ctx, cfg)
