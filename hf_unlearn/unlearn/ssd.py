"""SSD: dampen the parameters that matter far more to the forget set than to the training data.

Selective Synaptic Dampening (Foster et al., AAAI 2024; if-loops/selective-synaptic-dampening).
Importances are diagonal Fisher estimates: the mean over mini-batches of the squared
batch gradient, on D_f (``I_f``) and on the training data (``I_D``; D = D_r + D_f as in
the reference, or D_r alone). Every parameter with ``I_f > alpha * I_D`` is multiplied by
``min(lambda * I_D / I_f, 1)``; all others are left exactly as they were. There is no
training: the cost is the forward+backward passes that estimate the importances
(3 per example), forget set first; if the budget ends a pass, its mean uses the batches seen.
It is one-shot: a larger budget buys nothing once both passes fit, and its records say
``stopped_by: one_shot`` (``budget`` when the budget cut a pass short).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hf_unlearn.unlearn.base import Split, UnlearnContext, ce, concat_splits, register_method


@dataclass
class SSDConfig:
    # if-loops/selective-synaptic-dampening, forget_random_main.py (ResNet-18, CIFAR random forgetting)
    alpha: float = 10.0  # selection_weighting: select where I_f > alpha * I_D
    lam: float = 1.0  # dampening_constant (lambda): factor min(lambda * I_D / I_f, 1)
    batch_size: int = 128  # -b 128, batch size of both importance passes
    importance_data: str = "full"  # "full" (D_r + D_f, the reference's full_train_dl) or "retain" (D_r)

    def __post_init__(self) -> None:
        if self.importance_data not in ("full", "retain"):
            raise ValueError(f"importance_data={self.importance_data!r}: expected 'full' or 'retain'")


def importances(ctx: UnlearnContext, split: Split, batch_size: int, stream: str) -> dict[str, torch.Tensor] | None:
    """Mean over batches of the squared batch gradient, per parameter (eval mode); None if no batch was affordable."""
    model = ctx.model
    model.eval()
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    seen = 0
    for batch in ctx.epoch_batches(split, batch_size, 0, stream):
        if not ctx.charge(forward_backward=len(batch)):
            break
        model.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss = ce(model, batch)  # under N processes: this process's share of the batch mean
        ctx.backward(loss)  # the batch's gradient, averaged over processes before it is squared
        for n, p in params.items():
            if p.grad is not None:
                total[n] += p.grad.detach() ** 2
        ctx.trace.append(stream)
        seen += 1
    model.zero_grad(set_to_none=True)
    return {n: t / seen for n, t in total.items()} if seen else None


@register_method("ssd")
def ssd(ctx: UnlearnContext, cfg: SSDConfig) -> nn.Module:
    reference = ctx.retain if cfg.importance_data == "retain" else concat_splits(ctx.retain, ctx.forget)
    forget_imp = importances(ctx, ctx.forget, cfg.batch_size, "forget")
    data_imp = importances(ctx, reference, cfg.batch_size, cfg.importance_data) if forget_imp is not None else None
    if forget_imp is None or data_imp is None:
        return ctx.model  # the budget did not cover both estimates: nothing is changed
    if ctx.stopped_by is None:
        ctx.stopped_by = "one_shot"
    with torch.no_grad():
        for name, p in ctx.model.named_parameters():
            i_f, i_d = forget_imp[name], data_imp[name]
            selected = i_f > cfg.alpha * i_d
            factor = (cfg.lam * i_d / i_f.clamp_min(torch.finfo(i_f.dtype).tiny)).clamp(max=1.0)
            p.mul_(torch.where(selected, factor, torch.ones_like(factor)))  # x * 1.0 is exact: the rest stays bit for bit
    return ctx.model
