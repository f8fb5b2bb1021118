"""The compute meter: cost in forward-equivalents per example (DESIGN.md, "Compute budget").

A forward pass costs 1 per example and a forward+backward pass 3, whatever layers
are frozen, so methods that freeze layers are not credited with savings the
paper's accounting does not give them. Training records its total; an unlearning
run gets ``budget_fraction * training_cost`` and is stopped before the first step
that would exceed it.

Under ``accelerate launch --num_processes N`` every process holds its own meter and charges
the *global* batch (all processes' rows), so each meter reads the one-process run's cost and
every process stops at the same step: the work is counted once, not N times, and not 1/N.
"""

from __future__ import annotations

from dataclasses import dataclass

FORWARD = 1.0
FORWARD_BACKWARD = 3.0


class BudgetExceeded(RuntimeError):
    """Raised by ``ComputeMeter.charge`` when a step would cross the limit (nothing is charged)."""


@dataclass
class ComputeMeter:
    limit: float | None = None  # forward-equivalents; None = unmetered (training, retrain)
    used: float = 0.0

    def cost(self, examples: int, *, backward: bool) -> float:
        return examples * (FORWARD_BACKWARD if backward else FORWARD)

    def can_afford(self, examples: int, *, backward: bool = True) -> bool:
        return self.limit is None or self.used + self.cost(examples, backward=backward) <= self.limit + 1e-9

    def charge(self, examples: int, *, backward: bool = True) -> None:
        c = self.cost(examples, backward=backward)
        if not self.can_afford(examples, backward=backward):
            raise BudgetExceeded(f"step of {c:g} would exceed the budget ({self.used:g} of {self.limit:g} used)")
        self.used += c

    def charge_train(self, examples: int) -> None:
        self.charge(examples, backward=True)

    @property
    def remaining(self) -> float:
        return float("inf") if self.limit is None else max(0.0, self.limit - self.used)
