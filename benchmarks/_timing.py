"""Shared timing helper: interleaved repeats, median seconds, so machine noise hits all arms alike."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved(arms: dict[str, Callable[[], object]], repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Median wall seconds per arm, arms run round-robin ``repeats`` times after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in arms.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def environment() -> str:
    import os
    import platform

    import torch

    return f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.machine()}"


def sync(device: str) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def add_gpt2_arguments(parser) -> None:
    """The tiny GPT-2 both text benchmarks build (hf_unlearn.models.text), and its review length."""
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--n-head", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128, help="max_length: tokens per review, left-padded")
