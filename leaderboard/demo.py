"""Synthetic result records for tests, the benchmark, screenshots and ``python space/app.py --demo``.

The numbers are made up (shaped like the paper's CIFAR-10 Gaussian results:
Retrain near chance, No-unlearning far from it, methods in between) and every
submission made here says so in its submitter name. Never publish them as
results.

The reference rows (No unlearning, Retrain) are not submissions: they go to a
trusted references file (``synthetic_references`` / ``write_demo``), as the
maintainers' runs do on the real leaderboard, and ``demo_catalog`` lists the
demo variants as the public ones.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from dataclasses import dataclass
from pathlib import Path

from hf_unlearn.results import REFERENCE_METHODS, SCHEMA_VERSION
from leaderboard.catalog import Catalog, PublicVariant
from leaderboard.references import References, write_references
from leaderboard.submission import Submission, build_submission

SYNTHETIC_SUBMITTER = "synthetic example"
# method -> (test accuracy, TPR@1%, GUS, target success) around which seeds scatter
_PROFILE = {
    "retrain": (0.930, 0.011, 0.05, 0.08),
    "none": (0.931, 0.620, 3.10, 0.92),
    "gd": (0.925, 0.540, 2.60, 0.85),
    "ngd": (0.915, 0.160, 0.90, 0.40),
    "ga": (0.760, 0.090, 0.45, 0.20),
    "euk": (0.921, 0.560, 2.80, 0.88),
    "cfk": (0.924, 0.570, 2.85, 0.87),
    "scrub": (0.905, 0.310, 1.60, 0.60),
    "neggrad_plus": (0.890, 0.250, 1.20, 0.55),
    "ssd": (0.900, 0.420, 2.00, 0.70),
}
VARIANTS = {
    ("cifar10", "gaussian"): ["eps0.1-b1.5-s0", "eps0.1-b2.5-s0"],
    ("cifar10", "targeted"): ["b1.0-t10-s0"],
    ("imdb", "gaussian"): ["eps0.05-b1.5-s0"],
}
BUDGETS = (0.02, 0.05, 0.1)
NUM_POISONS = 750  # forget size of every synthetic Gaussian variant
DEMO_REPO = "hf-unlearn/poisoned-{task}-{attack}"  # shown as the public dataset of the demo variants


def _on_grid(value: float, n: int) -> float:
    """The nearest multiple of 1/n: a TPR is a share of the n poisons."""
    return round(min(1.0, max(0.0, value)) * n) / n


def synthetic_record(
    rng: random.Random, task: str, attack: str, variant: str, method: str, seed: int, budget: float | None,
    profile: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    acc, tpr, gus, target = profile or _PROFILE.get(method, _PROFILE["scrub"])
    if method not in ("none", "retrain") and budget is not None:
        # more budget removes a little more poison here, at a little more accuracy cost
        tpr = max(0.0, tpr - 0.6 * (budget - 0.05))
        acc -= 0.05 * (budget - 0.05)
    num_poisons, draws = NUM_POISONS, 20
    clip = lambda v: min(1.0, max(0.0, v))  # noqa: E731
    metrics: dict[str, Any] = {
        "test_accuracy": round(clip(acc + rng.gauss(0, 0.004)), 6),
        "retain_accuracy": round(clip(acc + 0.05 + rng.gauss(0, 0.004)), 6),
        "forget_accuracy": round(clip(acc + 0.02 + rng.gauss(0, 0.01)), 6),
    }
    if attack == "gaussian":
        metrics.update({
            "gus": round(gus + rng.gauss(0, 0.05), 6),
            "gus_stderr": round(abs(0.037 + rng.gauss(0, 0.002)), 6),
            "tpr_at_fpr_0.01": _on_grid(tpr + rng.gauss(0, 0.02), num_poisons),
            "tpr_at_fpr_0.001": _on_grid(tpr / 3 + rng.gauss(0, 0.01), num_poisons),
            "auc": round(clip(0.5 + tpr / 2 + rng.gauss(0, 0.01)), 6),
            "num_poisons": num_poisons,
            "num_nulls": num_poisons * draws,
        })
    elif attack == "targeted":
        metrics["target_success"] = round(clip(target + rng.gauss(0, 0.03)), 6)
    return {
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "attack": attack,
        "dataset": {"id": DEMO_REPO.format(task=task, attack=attack), "config": variant, "revision": None},
        "model": {"id": f"hf-unlearn/{task}-{attack}-{variant}-{method}-s{seed}", "revision": None},
        "method": method,
        "metrics": metrics,
        "method_config": {},
        "budget_fraction": None if method in ("none", "retrain") else budget,
        "compute_used": 0.0 if method == "none" else round(1e6 * (budget or 1.0), 1),
        "seed": seed,
        "versions": {"hf-unlearn": "0.0.0"},
        "created_at": "2025-01-01T00:00:00+00:00",
    }


def synthetic_submissions(
    n_records: int, *, seed: int = 0, records_per_submission: int = 9, seeds_per_method: int = 3
) -> list[Submission]:
    """About ``n_records`` records of unlearning methods in submissions of ``records_per_submission``.

    No reference rows: those come from ``synthetic_references``.
    """
    rng = random.Random(seed)
    combos = []  # method and budget outside, variants inside: a small n still covers every variant
    for method in _PROFILE:
        if method in REFERENCE_METHODS:
            continue
        for budget in BUDGETS:
            for (task, attack), variants in VARIANTS.items():
                for variant in variants:
                    combos.append((task, attack, variant, method, budget))
    records = []
    k = 0
    while len(records) < n_records:
        task, attack, variant, method, budget = combos[k % len(combos)]
        for s in range(seeds_per_method):
            records.append(synthetic_record(rng, task, attack, variant, method, s + 1000 * (k // len(combos)), budget))
        k += 1
    records = records[:n_records]
    subs = []
    for start in range(0, len(records), records_per_submission):
        chunk = records[start:start + records_per_submission]
        number = start // records_per_submission
        subs.append(build_submission(chunk, submitter=f"{SYNTHETIC_SUBMITTER} {number % 7}"))
    return subs


def fill_store(store: Any, n_records: int = 300, *, seed: int = 0) -> int:
    """Add synthetic submissions to a store, with received times spread over a month; return how many."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    subs = synthetic_submissions(n_records, seed=seed)
    for i, sub in enumerate(subs):
        store.add(sub, now=start + timedelta(hours=i))
    return len(subs)


def synthetic_references(*, seed: int = 0, seeds_per_method: int = 3) -> list[dict[str, Any]]:
    """The maintainers' reference records of the demo: No unlearning and Retrain on every demo variant."""
    rng = random.Random(seed + 7919)
    return [
        synthetic_record(rng, task, attack, variant, method, s, None)
        for (task, attack), variants in VARIANTS.items()
        for variant in variants
        for method in REFERENCE_METHODS
        for s in range(seeds_per_method)
    ]


def demo_references(*, seed: int = 0) -> References:
    """The demo's trusted references, in memory (``write_demo`` also writes them to a file)."""
    return References.from_records(synthetic_references(seed=seed), source="synthetic references",
                                   catalog=demo_catalog())


def demo_catalog() -> Catalog:
    """The demo variants as the public ones (Gaussian variants have 750 poisons)."""
    return Catalog(
        PublicVariant(task, attack, DEMO_REPO.format(task=task, attack=attack), variant,
                      NUM_POISONS if attack == "gaussian" else None, None)
        for (task, attack), variants in VARIANTS.items()
        for variant in variants
    )


@dataclass
class Demo:
    """What a demo leaderboard needs: a filled store, its trusted references and its catalog."""

    store: Any
    references: References
    catalog: Catalog
    references_path: Path


def write_demo(folder: str | Path, n_records: int = 300, *, seed: int = 0, store: Any = None) -> Demo:
    """A demo leaderboard in ``folder``: ``store/`` filled with synthetic submissions and a trusted
    ``references.jsonl`` beside it (outside the store: submitters cannot write it)."""
    from leaderboard.store import LocalStore

    folder = Path(folder)
    catalog = demo_catalog()
    store = store if store is not None else LocalStore(folder / "store", catalog=catalog)
    fill_store(store, n_records, seed=seed)
    path = write_references(folder / "references.jsonl", synthetic_references(seed=seed))
    return Demo(store, References.load(path, catalog=catalog), catalog, path)
