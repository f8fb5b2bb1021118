"""No unlearning: the poisoned model itself, the reference every method must improve on.

Its scores are the "No unlearning" line of the paper's Figure 2 (Pawelczyk et al.,
*Machine Unlearning Fails to Remove Data Poisoning Attacks*, ICLR 2025, Section 5).
It makes no forward pass, so it costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hf_unlearn.unlearn.base import UnlearnContext, register_method


@dataclass
class NoneConfig:
    """No hyper-parameters."""


@register_method("none")
def none(ctx: UnlearnContext, cfg: NoneConfig) -> nn.Module:
    return ctx.model
