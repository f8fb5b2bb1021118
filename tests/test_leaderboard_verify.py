"""Verification: a checkpoint whose claimed scores do not match is flagged, one that matches is verified."""

from __future__ import annotations

import hashlib
import random

import pytest

from leaderboard.catalog import Catalog, PublicVariant
from leaderboard.demo import synthetic_record
from leaderboard.store import LocalStore
from leaderboard.submission import build_submission
from leaderboard.verify import (TOLERANCES, VerificationNotConfigured, compare, verify_and_store,
                                verify_submission)

PUBLIC_REPO = "hf-unlearn/poisoned-cifar10-gaussian"
SHA = "0123456789abcdef0123456789abcdef01234567"
KEY = b"test-verifier-key-0123456789"


def public_catalog(*configs, num_poisons=750):
    """The catalog of a public repo listing ``configs`` (built directly: no Hub needed)."""
    configs = configs or ("eps0.1-b1.5-s0",)
    return Catalog([PublicVariant("cifar10", "gaussian", PUBLIC_REPO, c, num_poisons, SHA) for c in configs])


def record(seed=0, method="scrub", **metric_changes):
    r = synthetic_record(random.Random(seed), "cifar10", "gaussian", "eps0.1-b1.5-s0", method, seed, 0.05)
    m = r["metrics"]
    for name in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):  # a TPR is a count of poisons over num_poisons
        if m.get(name) is not None:
            m[name] = round(m[name] * m["num_poisons"]) / m["num_poisons"]
    m.update(metric_changes)
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
    truth = {0: honest["metrics"], 1: {**inflated["metrics"], "tpr_at_fpr_0.01": 0.552}}
    calls = []

    def score_fn(checkpoint, dataset, config, **kwargs):
        calls.append((checkpoint, dataset, config, kwargs))
        if checkpoint == "org/broken":
            raise RuntimeError("model.safetensors not found")
        return dict(truth[0] if checkpoint == "org/honest" else truth[1])

    store = LocalStore(tmp_path, verifier_key=KEY)
    sub = build_submission([honest, inflated, broken], submitter="Ada",
                           checkpoints=["0=org/honest", "1=org/inflated@v1", "2=org/broken"])
    store.add(sub)
    ver = verify_and_store(store, sub.id, score_fn=score_fn, catalog=public_catalog(), isolate=False)
    assert [e["status"] for e in ver["records"]] == ["verified", "mismatch", "failed"]
    assert ver["status"] == "mismatch"
    assert calls[1][3]["revision"] == "v1" and calls[1][3]["null_draws"] == 20  # 15000 nulls / 750 poisons
    assert all(c[1] == PUBLIC_REPO and c[2] == "eps0.1-b1.5-s0" for c in calls)
    assert all(c[3]["dataset_revision"] == SHA for c in calls)
    diff = ver["records"][1]["diffs"]["tpr_at_fpr_0.01"]
    assert diff["recomputed"] == 0.552 and not diff["ok"]
    assert ver["records"][1]["recomputed"]["tpr_at_fpr_0.01"] == 0.552
    assert "tpr_at_fpr_0.01" in ver["records"][1]["reason"]
    assert "model.safetensors not found" in ver["records"][2]["error"] == ver["records"][2]["reason"]
    assert [(e["checkpoint"], e["revision"]) for e in ver["records"]] == [
        ("org/honest", None), ("org/inflated", "v1"), ("org/broken", None)]
    assert [ver["records"][0][k] for k in ("dataset", "config", "dataset_revision")] == [
        PUBLIC_REPO, "eps0.1-b1.5-s0", SHA]

    # The store accepts the document's shape, signs it, and reads it back as authentic.
    stored_ver = LocalStore(tmp_path, verifier_key=KEY).verifications()[sub.id]
    assert [e["status"] for e in stored_ver["records"]] == ["verified", "mismatch", "failed"]
    assert LocalStore(tmp_path, verifier_key=b"another-key-0123456789").verifications() == {}


def test_local_checkpoints_refused_where_not_allowed(tmp_path):
    store = LocalStore(tmp_path, allow_local_checkpoints=True, verifier_key=KEY)
    sub = build_submission([record(1)], submitter="Ada", checkpoints=["/srv/secret/ckpt"],
                           allow_local_checkpoints=True)
    stored = store.add(sub)
    ver = verify_submission(stored, score_fn=lambda *a, **k: pytest.fail("must not score"),
                            catalog=public_catalog(), allow_local=False, isolate=False)
    entry = ver["records"][0]
    assert entry["status"] == "failed" and "local checkpoint" in entry["error"]
    assert "/srv" not in entry["error"]  # no server path is echoed


def test_verification_refuses_to_start_without_public_datasets(tmp_path, monkeypatch):
    """Attack 3: with no LEADERBOARD_DATASETS, the old verifier scored on the record's own dataset.id."""
    monkeypatch.delenv("LEADERBOARD_DATASETS", raising=False)
    store = LocalStore(tmp_path, verifier_key=KEY)
    sub = build_submission([record(1)], submitter="Ada", checkpoints=["org/model"])
    store.add(sub)
    with pytest.raises(VerificationNotConfigured, match="LEADERBOARD_DATASETS"):
        verify_and_store(store, sub.id, score_fn=lambda *a, **k: pytest.fail("must not score"), isolate=False)
    with pytest.raises(VerificationNotConfigured):
        verify_submission(store.get(sub.id), isolate=False)
    assert store.verifications() == {}


def test_unknown_variant_fails_with_the_known_ones_named(tmp_path):
    store = LocalStore(tmp_path, verifier_key=KEY)
    sub = build_submission([record(1)], submitter="Ada", checkpoints=["org/model"])
    store.add(sub)
    ver = verify_submission(store.get(sub.id), catalog=public_catalog("eps0.1-b1.5-s1"), isolate=False,
                            score_fn=lambda *a, **k: pytest.fail("must not score"))
    assert ver["records"][0]["status"] == "failed"
    assert "eps0.1-b1.5-s0" in ver["records"][0]["reason"] and "eps0.1-b1.5-s1" in ver["records"][0]["reason"]


def test_verification_is_signed_when_a_key_is_configured(tmp_path):
    from leaderboard.attest import is_authentic

    key = b"k" * 32
    store = LocalStore(tmp_path, verifier_key=KEY)
    rec = record(1)
    sub = build_submission([rec], submitter="Ada", checkpoints=["org/model"])
    store.add(sub)
    ver = verify_submission(store.get(sub.id), catalog=public_catalog(), isolate=False, signing_key=key,
                            score_fn=lambda *a, **k: dict(rec["metrics"]))
    assert ver["status"] == "verified"
    assert is_authentic(ver, sub.id, key)
    assert not is_authentic({**ver, "status": "mismatch"}, sub.id, key)
    assert not is_authentic(ver, "0" * 64, key)


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
    store = LocalStore(root / "board", verifier_key=KEY)
    sub = build_submission([honest, swapped], submitter="tester", checkpoints=[f"0={ckpt_a}", f"1={ckpt_b}"],
                           allow_local_checkpoints=True)
    store.add(sub)
    catalog = Catalog.from_mapping({"cifar10/gaussian": str(dataset)}, allow_local=True)
    # The real path: the default scorer (safe_load) in a spawned child process with a time limit.
    ver = verify_and_store(store, sub.id, catalog=catalog, allow_local=True)
    statuses = [e["status"] for e in ver["records"]]
    assert statuses == ["verified", "mismatch"], ver["records"]
    diffs = ver["records"][1]["diffs"]
    bad = sorted(m for m, d in diffs.items() if not d["ok"])
    assert "gus" in bad, diffs  # a different network cannot reproduce the claimed GUS to 1e-4
    assert ver["records"][0]["recomputed"]["gus"] == pytest.approx(claimed["gus"], abs=1e-6)
    # the exact-threshold TPRs (independent of the null draws) are recomputed and compared too
    assert {"tpr_at_fpr_0.01_exact", "tpr_at_fpr_0.001_exact"} <= set(ver["records"][0]["diffs"]), ver["records"][0]
    weights = (ckpt_a / "model.safetensors").read_bytes()
    assert ver["records"][0]["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert ver["records"][1]["dataset"] == "local:poisoned-cifar10-gaussian" and ver["records"][1]["config"] == config
    assert LocalStore(root / "board", verifier_key=KEY).verifications()[sub.id]["status"] == "mismatch"


def test_verify_and_store_uses_the_store_catalog(tmp_path, monkeypatch):
    monkeypatch.delenv("LEADERBOARD_DATASETS", raising=False)
    rec = record(4)
    store = LocalStore(tmp_path, verifier_key=KEY, catalog=public_catalog())
    sub = build_submission([rec], submitter="Ada", checkpoints=["org/model"])
    store.add(sub)
    seen = []

    def score_fn(checkpoint, dataset, config, **kwargs):
        seen.append(dataset)
        return dict(rec["metrics"])

    ver = verify_and_store(store, sub.id, score_fn=score_fn, isolate=False)
    assert ver["status"] == "verified" and seen == [PUBLIC_REPO]


def test_worker_verifies_stored_submissions_and_reports_status(tmp_path):
    from leaderboard.verify_worker import VerifyWorker

    rec = record(5)
    store = LocalStore(tmp_path, verifier_key=KEY)
    sub = build_submission([rec], submitter="Ada", checkpoints=["org/model"])
    store.add(sub)
    worker = VerifyWorker.for_store(store, catalog=public_catalog(), isolate=False, max_queue=3,
                                    score_fn=lambda *a, **k: dict(rec["metrics"], gus=rec["metrics"]["gus"] + 1))
    try:
        assert worker.submit(sub.id).state in ("queued", "verifying")
        done = worker.wait(sub.id, timeout=30)
        assert done.state == "mismatch" and done.message == "1 checkpoint(s): 1 mismatch"
        assert store.verifications()[sub.id]["status"] == "mismatch"
    finally:
        worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(sub.id)


def test_explicit_local_paths_are_made_absolute_and_limits_come_from_the_environment(tmp_path, monkeypatch):
    from leaderboard.verify import VerifyLimits
    from leaderboard.verify_worker import max_queue_from_env

    monkeypatch.chdir(tmp_path)
    rec = record(6)
    store = LocalStore(tmp_path / "board", verifier_key=KEY)
    sub = build_submission([rec], submitter="Ada", checkpoints=["./runs/unlearned"], allow_local_checkpoints=True)
    store.add(sub)
    seen = []
    ver = verify_submission(store.get(sub.id), catalog=public_catalog(), allow_local=True, isolate=False,
                            score_fn=lambda c, *a, **k: seen.append(c) or dict(rec["metrics"]))
    assert ver["status"] == "verified" and seen == [str(tmp_path / "runs" / "unlearned")]

    assert VerifyLimits.from_env({"LEADERBOARD_VERIFY_TIMEOUT": "60"}).timeout_s == 60
    assert VerifyLimits.from_env({}).timeout_s == 900
    for bad in ("0", "-5", "nan", "soon"):
        with pytest.raises(ValueError, match="LEADERBOARD_VERIFY_TIMEOUT"):
            VerifyLimits.from_env({"LEADERBOARD_VERIFY_TIMEOUT": bad})
    assert max_queue_from_env({}) == 20 and max_queue_from_env({"LEADERBOARD_VERIFY_QUEUE": "5"}) == 5
    with pytest.raises(ValueError, match="LEADERBOARD_VERIFY_QUEUE"):
        max_queue_from_env({"LEADERBOARD_VERIFY_QUEUE": "0"})
