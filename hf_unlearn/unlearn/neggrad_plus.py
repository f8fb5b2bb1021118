"""NegGrad+: descend on the retain loss and ascend on the forget loss in the same step.

Kurmanji et al. (NeurIPS 2023), "Towards Unbounded Machine Unlearning"; as run in
Pawelczyk et al. (ICLR 2025), Appendix A.2.7: minimise
``alpha * L(D_r) - (1 - alpha) * L(D_f)``. Each step pairs a retain batch with the
next forget batch (the forget set is cycled), one forward+backward over both. It
is GA made stable by the retain term.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hf_unlearn.unlearn.base import Step, UnlearnContext, ce, register_method, sgd
from hf_unlearn.unlearn.gd import GDConfig


@dataclass
class NegGradPlusConfig(GDConfig):
    # lr, momentum, weight_decay, epochs (over D_r), batch_size: GD's (paper A.2.7: "similar hyper-parameters as GD and GA").
    alpha: float = 0.999  # weight of the retain loss; Kurmanji et al.'s NegGrad+ value (paper A.2.7's own value is lost in the text copy)


@register_method("neggrad_plus")
def neggrad_plus(ctx: UnlearnContext, cfg: NegGradPlusConfig) -> nn.Module:
    model = ctx.model
    model.train()
    optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
    forget = ctx.cycled(ctx.forget, cfg.batch_size, "forget")
    steps = (Step("neggrad", {"r": r, "f": next(forget)}) for r in ctx.batches(ctx.retain, cfg.batch_size, cfg.epochs, "retain"))

    def loss(step: Step):
        return cfg.alpha * ce(model, step.batches["r"]) - (1 - cfg.alpha) * ce(model, step.batches["f"])

    ctx.run_steps(steps, loss, optimizer)
    return model
