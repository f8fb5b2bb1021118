"""Verification: a checkpoint whose claimed scores do not match is flagged, one that matches is verified."""

from __future__ import annotations

import json
import random

import pytest

from leaderboard.board import Board
from leaderboard.demo import synthetic_record
from leaderboard.ranking import Filters
from leaderboard.store import LocalStore
from leaderboard.submission import build_submission
from leaderboard.submit import submit_file, verification_messages
from leaderboard.verify import TOLERANCES, compare, verify_and_store, verify_submission


def record(seed=0, method="scrub", **metric_changes):
    r = synthetic_record(random.Random(seed), "cifar10", "gaussian", "eps0.1-b1.5-s0", method, seed, 0.05)
    r["metrics"].update(metric_changes)
    return r


def test_compare_uses_the_stated_tolerances():
    claimed = {"test_accuracy": 0.9, "gus": 1.0, "tpr_at_fpr_0.01": 0.30, "num_poisons": 750, "auc": 0.7}
    recomputed = {"test_accuracy": 0.9 + 5e-7, "gus": 1.0 - 9e-5, "tpr_at_fpr_0.01": 0.30 - 1 / 750,
                  "num_poisons": 750, "auc": 0.7, "zero_gradients": 3}
    diffs = compare(claimed, recomputed)
    assert all(d["ok"] for d in diffs.values()), diffs
    assert "zero_gradients" not in diffs
    assert diffs["tpr_at_fpr_0.01"]["tolerance"] == pytest.approx(1 / 750)
    worse = compare(claimed, {**recomputed, "tpr_at_fpr_0.01": 0.30 - 2 / 750, "gus": 1.0 + 2e-4})
    assert not worse["tpr_at_fpr_0.01"]["ok"] and not worse["gus"]["ok"]
    assert worse["gus"]["diff"] == pytest.approx(-2e-4)
    assert set(TOLERANCES) >= {"test_accuracy", "gus", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "auc"}
    assert compare({"tpr_at_fpr_0.001": None}, {"tpr_at_fpr_0.001": None})["tpr_at_fpr_0.001"]["ok"]
    assert not compare({"tpr_at_fpr_0.001": 0.1}, {"tpr_at_fpr_0.001": None})["tpr_at_fpr_0.001"]["ok"]


def test_verification_with_an_injected_scorer(tmp_path):
    honest, inflated, broken = record(1, "scrub"), record(2, "ngd"), record(3, "gd")
    truth = {0: honest["metrics"], 1: {**inflated["metrics"], "tpr_at_fpr_0.01": 0.55}}
    calls = []

    def score_fn(checkpoint, dataset, config, **kwargs):
        calls.append((checkpoint, dataset, config, kwargs))
        if checkpoint == "org/broken":
            raise RuntimeError("model.safetensors not found")
        return dict(truth[0] if checkpoint == "org/honest" else truth[1])

    store = LocalStore(tmp_path)
    sub = build_submission([honest, inflated, broken], submitter="Ada",
                           checkpoints=["0=org/honest", "1=org/inflated@v1", "2=org/broken"])
    store.add(sub)
    ver = verify_and_store(store, sub.id, score_fn=score_fn,
                           public_datasets={"cifar10/gaussian": "hf-unlearn/poisoned-cifar10-gaussian"})
    assert [e["status"] for e in ver["records"]] == ["verified", "mismatch", "failed"]
    assert ver["status"] == "mismatch"
    assert calls[1][3]["revision"] == "v1" and calls[1][3]["null_draws"] == 20  # 15000 nulls / 750 poisons
    assert all(c[1] == "hf-unlearn/poisoned-cifar10-gaussian" and c[2] == "eps0.1-b1.5-s0" for c in calls)
    diff = ver["records"][1]["diffs"]["tpr_at_fpr_0.01"]
    assert diff["recomputed"] == 0.55 and not diff["ok"]
    assert "model.safetensors not found" in ver["records"][2]["error"]

    board = Board(store)
    shown = board.view(Filters(task="cifar10", attack="gaussian"),
                       ["Method", "Verification", "Verification detail"]).table
    assert sorted(shown["Verification"]) == ["failed", "mismatch", "verified"]
    detail = " ".join(shown["Verification detail"])
    assert "tpr_at_fpr_0.01: claimed" in detail and "recomputed 0.55" in detail
    only = board.view(Filters(task="cifar10", attack="gaussian", verified_only=True), ["Method", "Verification"])
    assert list(only.table["Verification"]) == ["verified"]


def test_local_checkpoints_refused_where_not_allowed(tmp_path):
    store = LocalStore(tmp_path, allow_local_checkpoints=True)
    sub = build_submission([record(1)], submitter="Ada", checkpoints=["/srv/secret/ckpt"],
                           allow_local_checkpoints=True)
    stored = store.add(sub)
    ver = verify_submission(stored, score_fn=lambda *a, **k: pytest.fail("must not score"),
                            allow_local_checkpoints=False)
    assert ver["records"][0]["status"] == "failed" and "local checkpoint" in ver["records"][0]["error"]


# --- with a real checkpoint and dataset variant ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_variant_and_checkpoints(tmp_path_factory):
    """A 200-row CIFAR-10 Gaussian variant from the shipped samples and two tiny untrained ResNets."""
    import torch

    from dataset_builders.poisoned_cifar10_gaussian import build
    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
    from hf_unlearn.train import save_checkpoint

    root = tmp_path_factory.mktemp("verify")
    cfg = GaussianPoisonConfig(0.1, 10.0, 0, 200)
    dataset = build("samples", [cfg], root / "poisoned-cifar10-gaussian", progress=False)
    checkpoints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = root / f"unlearned-{seed}"
        save_checkpoint(ResNet18(num_classes=10, width=4), folder, {"role": "unlearned"})
        checkpoints.append(folder)
    return root, dataset, cfg.name, checkpoints


def test_real_checkpoint_matching_claim_is_verified_and_other_is_flagged(tiny_variant_and_checkpoints):
    from hf_unlearn.scoring import score_checkpoint

    root, dataset, config, (ckpt_a, ckpt_b) = tiny_variant_and_checkpoints
    claimed = score_checkpoint(str(ckpt_a), str(dataset), config, null_draws=20, seed=0)
    base = {
        "schema_version": 1, "task": "cifar10", "attack": "gaussian",
        "dataset": {"id": str(dataset), "config": config, "revision": None},
        "method": "ngd", "method_config": {}, "budget_fraction": 0.1, "compute_used": 10.0,
    }
    honest = {**base, "model": {"id": str(ckpt_a), "revision": None}, "seed": 0, "metrics": claimed}
    # Model b is submitted with model a's (better-looking) numbers.
    swapped = {**base, "model": {"id": str(ckpt_b), "revision": None}, "seed": 1, "metrics": dict(claimed)}
    path = root / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (honest, swapped)) + "\n")

    result = submit_file(path, root / "board", submitter="tester",
                         checkpoints=[f"0={ckpt_a}", f"1={ckpt_b}"])
    statuses = [e["status"] for e in result.verification["records"]]
    assert statuses == ["verified", "mismatch"], verification_messages(result.verification)
    diffs = result.verification["records"][1]["diffs"]
    bad = sorted(m for m, d in diffs.items() if not d["ok"])
    assert "gus" in bad, diffs  # a different network cannot reproduce the claimed GUS to 1e-4
    lines = "\n".join(result.messages)
    assert "record 1" in lines and "mismatch" in lines and "gus: claimed" in lines
    shown = Board(LocalStore(root / "board")).view(Filters(task="cifar10", attack="gaussian"),
                                                   ["Seeds", "Verification"]).table
    assert list(shown["Verification"]) == ["mismatch (1/2 seeds)"]
