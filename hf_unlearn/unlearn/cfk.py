"""CF-k: continue training only the last k blocks on the retain set, the rest frozen.

"Catastrophically forgetting the last k layers" (Goel et al., 2022, "Towards
Adversarial Evaluations for Inexact Machine Unlearning"), as run in Pawelczyk et al.
(ICLR 2025), Appendix A.2.5: the hope is that further training on D_r alone makes the
model forget D_f. Blocks are ``model.blocks()`` (ResNet-18: stem, 8 residual blocks,
head); frozen blocks also keep their BatchNorm statistics (they run in eval mode).
The cost per example is still 3 (DESIGN.md: frozen layers earn no discount).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hf_unlearn.unlearn.base import UnlearnContext, freeze_all_but_last, register_method
from hf_unlearn.unlearn.gd import descend


@dataclass
class CFkConfig:
    k: int = 3  # last blocks trained (3 = layer4's two blocks + head); Goel et al. sweep k in {1, 3, 5, 7} layers (scripts/unlearn.sh), paper A.2.5's set is lost in the text copy
    lr: float = 1e-3  # paper A.2.5: "similar to EU-k" (A.2.4 sweeps 1e-3, 1e-4, 1e-5); the largest
    momentum: float = 0.9  # as GD (SGD, the training algorithm; paper A.2.4)
    weight_decay: float = 5e-4  # as GD
    epochs: int | None = None  # passes over D_r; None = until the budget ends the run (as GD)
    batch_size: int = 128  # as GD
    stop_on_plateau: bool = False  # opt-in early stop when the loss plateaus (rule: hf_unlearn.unlearn.base); ours
    stop_on_collapse: bool = False  # opt-in early stop when held retain+forget accuracy is at chance (base); ours


@register_method("cfk")
def cfk(ctx: UnlearnContext, cfg: CFkConfig) -> nn.Module:
    freeze_all_but_last(ctx.model, cfg.k)
    return descend(ctx, cfg)
