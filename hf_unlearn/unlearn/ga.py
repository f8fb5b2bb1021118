"""GA: gradient ascent on the forget set (raise the loss of the points to delete).

Graves et al. (2021) stored and reversed the training updates; the practical form of
Jang et al. (2022) takes mini-batch steps that *maximise* the cross-entropy on D_f,
as run in Pawelczyk et al. (ICLR 2025), Appendix A.2.3 ("similar hyper-parameters as
GD but with a smaller learning rate"). The loss is unbounded, so GA trades accuracy
for forgetting; the paper reports test accuracy falling to chance on CIFAR-10.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hf_unlearn.unlearn.base import Step, UnlearnContext, ce, register_method, sgd


@dataclass
class GAConfig:
    lr: float = 1e-3  # smaller than GD's 0.02 (paper A.2.3; its exact range is lost in the text copy in paper/)
    momentum: float = 0.9  # as GD (paper A.2.3: "similar hyper-parameters as GD")
    weight_decay: float = 5e-4  # as GD
    epochs: int = 10  # passes over D_f; as GD's largest setting (paper A.2.1)
    batch_size: int = 128  # as GD


@register_method("ga")
def ga(ctx: UnlearnContext, cfg: GAConfig) -> nn.Module:
    model = ctx.model
    model.train()
    optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
    steps = (Step("ascent", {"f": b}) for b in ctx.batches(ctx.forget, cfg.batch_size, cfg.epochs, "forget"))
    ctx.run_steps(steps, lambda s: -ce(model, s.batches["f"]), optimizer)
    return model
