"""GA: gradient ascent on the forget set (raise the loss of the points to delete).

Graves et al. (2021) stored and reversed the training updates; the practical form of
Jang et al. (2022) takes mini-batch steps that *maximise* the cross-entropy on D_f,
as run in Pawelczyk et al. (ICLR 2025), Appendix A.2.3 ("similar hyper-parameters as
GD but with a smaller learning rate"). The loss is unbounded, so GA trades accuracy
for forgetting; the paper reports test accuracy falling to chance on CIFAR-10
(Section 5.3 table, "NGP/GA": 10% at every epoch count). By default GA cycles over
D_f until the budget ends it, so a larger budget means more ascent steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hf_unlearn.unlearn.base import Step, UnlearnContext, ce, register_method, sgd


@dataclass
class GAConfig:
    # paper A.2.3: GD's settings "with a smaller learning rate" (its range is lost in the text copy in paper/)
    lr: float = 1e-4  # per step; OPTML-Group/Unlearn-Sparse README, GA on CIFAR-10 ResNet-18 (--unlearn_lr 0.0001)
    momentum: float = 0.9  # as GD (paper A.2.3: "similar hyper-parameters as GD")
    weight_decay: float = 5e-4  # as GD
    epochs: int | None = None  # passes over D_f; None = until the budget ends the run (paper Section 5: the budget is the axis)
    batch_size: int = 128  # as GD
    stop_on_plateau: bool = False  # opt-in early stop when the loss plateaus (rule: hf_unlearn.unlearn.base); ours
    stop_on_collapse: bool = False  # opt-in early stop when held retain+forget accuracy is at chance (base); ours


@register_method("ga")
def ga(ctx: UnlearnContext, cfg: GAConfig) -> nn.Module:
    model = ctx.model
    model.train()
    optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
    steps = (Step("ascent", {"f": b}) for b in ctx.batches(ctx.forget, cfg.batch_size, cfg.epochs, "forget"))
    ctx.run_steps(steps, lambda s: -ce(model, s.batches["f"]), optimizer)
    return model
