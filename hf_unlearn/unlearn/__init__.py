"""Unlearning methods behind one interface, a registry and a compute budget.

    from hf_unlearn.unlearn import list_methods, run_method
    result = run_method(model, retain, forget, "scrub", limit=0.1 * training_cost, seed=0)

Each method lives in its own module (``gd.py``, ``scrub.py``, ...) and registers
itself with ``@register_method``; ``base.py`` holds the shared pieces. The
checkpoint-level runner is ``hf_unlearn.unlearn.runner.unlearn_checkpoint``.
"""

from hf_unlearn.unlearn.base import (
    Batch,
    MethodSpec,
    Step,
    UnlearnContext,
    UnlearnResult,
    build_config,
    get_method,
    list_methods,
    load_method_preset,
    mean_loss,
    parse_overrides,
    register_method,
    run_method,
)

__all__ = [
    "Batch",
    "MethodSpec",
    "Step",
    "UnlearnContext",
    "UnlearnResult",
    "build_config",
    "get_method",
    "list_methods",
    "load_method_preset",
    "mean_loss",
    "parse_overrides",
    "register_method",
    "run_method",
]
