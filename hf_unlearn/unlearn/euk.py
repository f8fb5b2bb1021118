"""EU-k: re-initialise the last k blocks and train only them on the retain set.

"Exact unlearning the last k layers" (Goel et al., 2022, "Towards Adversarial
Evaluations for Inexact Machine Unlearning"), as run in Pawelczyk et al. (ICLR 2025),
Appendix A.2.4: if the first blocks are assumed not to depend on D_f, retraining the
last ones from scratch on D_r is exact unlearning for them. Blocks are
``model.blocks()`` (ResNet-18: stem, 8 residual blocks, head); re-initialisation
calls each layer's ``reset_parameters`` (PyTorch's default initialiser, which the
model was built with) and resets BatchNorm statistics; frozen blocks run in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hf_unlearn.unlearn.base import UnlearnContext, freeze_all_but_last, register_method
from hf_unlearn.unlearn.cfk import CFkConfig
from hf_unlearn.unlearn.gd import descend


@dataclass
class EUkConfig(CFkConfig):
    """CF-k's fields and defaults (paper A.2.5: CF-k uses EU-k's settings): k, lr (1e-3 of A.2.4's
    1e-3/1e-4/1e-5; the tuning grid runs all three), momentum, weight_decay, epochs (None = until the
    budget ends), batch_size, early stops."""


@register_method("euk")
def euk(ctx: UnlearnContext, cfg: EUkConfig) -> nn.Module:
    trainable = freeze_all_but_last(ctx.model, cfg.k)
    # Seeded so the new weights repeat for the same run seed.
    torch.manual_seed(ctx.generator("euk-init").initial_seed())
    for block in trainable:
        # A block that knows its own initialiser (the GPT-2 blocks of hf_unlearn.models.text: transformers'
        # Conv1D has no reset_parameters, and GPT-2 initialises N(0, 0.02)) resets as a whole; otherwise each
        # layer resets with PyTorch's default (ResNet-18's convolutions, batch norms and head).
        if hasattr(block, "reset_parameters"):
            block.reset_parameters()
            continue
        for module in block.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return descend(ctx, cfg)
