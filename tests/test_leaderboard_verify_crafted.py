"""Verification re-scores checkpoints on crafted-poison variants (CIFAR-10 targeted and indiscriminate) too.

The attack's own metrics are recomputed by its ``evaluate`` (target success on the targets split), so a claim made
with another network's numbers, an inflated target success or a false target count is flagged, while an honest
record verifies. The real scorer (``score_public_variant`` with ``safe_load``) runs in process here; the spawned
child process is covered by the Gaussian tests.
"""

from __future__ import annotations

import pytest

from leaderboard.catalog import Catalog
from leaderboard.store import LocalStore
from leaderboard.submission import build_submission
from leaderboard.verify import verify_submission

KEY = b"test-verifier-key-0123456789"


@pytest.fixture(scope="module")
def targeted_setup(tmp_path_factory):
    """A tiny targeted variant (tiny crafting recipe, 300 training rows, 4 targets) and two untrained ResNets."""
    import torch

    from dataset_builders.poisoned_cifar10_targeted import build
    from hf_unlearn.attacks.targeted import TargetedConfig
    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.train import save_checkpoint

    root = tmp_path_factory.mktemp("verify-crafted")
    cfg = TargetedConfig(eps=16, budget=5.0, num_targets=4, seed=0, max_train_rows=300, recipe="tiny")
    dataset = build("samples", [cfg], root / "poisoned-cifar10-targeted", progress=False)
    checkpoints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = root / f"unlearned-{seed}"
        save_checkpoint(ResNet18(num_classes=10, width=4), folder, {"role": "unlearned"})
        checkpoints.append(folder)
    return root, dataset, cfg.name, checkpoints


def _verify(root, dataset, config, records, checkpoints, name):
    store = LocalStore(root / name, verifier_key=KEY)
    sub = build_submission(records, submitter="tester", checkpoints=[f"{i}={c}" for i, c in enumerate(checkpoints)],
                           allow_local_checkpoints=True)
    store.add(sub)
    catalog = Catalog.from_mapping({"cifar10/targeted": str(dataset)}, allow_local=True)
    return verify_submission(store.get(sub.id), catalog=catalog, allow_local=True, isolate=False)


def test_targeted_claims_are_recomputed_and_lies_flagged(targeted_setup):
    from hf_unlearn.scoring import score_checkpoint

    root, dataset, config, (ckpt_a, ckpt_b) = targeted_setup
    claimed = score_checkpoint(str(ckpt_a), str(dataset), config)
    assert claimed["num_targets"] == 4 and 0.0 <= claimed["target_success"] <= 1.0
    base = {"schema_version": 1, "task": "cifar10", "attack": "targeted",
            "dataset": {"id": str(dataset), "config": config, "revision": None},
            "method": "scrub", "method_config": {}, "budget_fraction": 0.1, "compute_used": 10.0}

    def rec(ckpt, seed, **changes):
        return {**base, "model": {"id": str(ckpt), "revision": None}, "seed": seed,
                "metrics": {**claimed, **changes}}

    lower = max(0.0, claimed["target_success"] - 0.5)  # two targets' worth below the truth: beyond 1/4
    records = [
        rec(ckpt_a, 0),  # honest
        rec(ckpt_b, 1),  # another network with a's numbers
        rec(ckpt_a, 2, target_success=lower) if claimed["target_success"] >= 0.5
        else rec(ckpt_a, 2, target_success=claimed["target_success"] + 0.5),  # a target success off by 2 targets
        rec(ckpt_a, 3, num_targets=1, target_success=0.0 if claimed["target_success"] else 1.0),  # a false count
    ]
    ver = _verify(root, dataset, config, records, [ckpt_a, ckpt_b, ckpt_a, ckpt_a], "board")
    statuses = [e["status"] for e in ver["records"]]
    assert statuses == ["verified", "mismatch", "mismatch", "mismatch"], ver["records"]
    honest = ver["records"][0]
    assert honest["recomputed"]["target_success"] == pytest.approx(claimed["target_success"])
    assert honest["diffs"]["target_success"]["tolerance"] == pytest.approx(0.25)  # one target of four
    bad = lambda i: sorted(m for m, d in ver["records"][i]["diffs"].items() if not d["ok"])  # noqa: E731
    assert "test_accuracy" in bad(1)
    assert bad(2) == ["target_success"]
    assert "num_targets" in bad(3)  # claiming one target would have widened the tolerance to 1.0
