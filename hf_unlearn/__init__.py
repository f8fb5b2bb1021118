"""hf-unlearn: a benchmark that checks whether machine unlearning removes poisoned data.

The package import is kept light (no torch, datasets or evaluate at import time)
so that the CLI starts quickly; submodules import what they need.
"""

__version__ = "0.1.0"
