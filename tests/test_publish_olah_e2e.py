"""`hf-unlearn publish` end to end: publish a workspace into olah's mirror, then load every artefact over HTTP.

A tiny variant, a tiny trained checkpoint and a references file are published with :class:`MirrorTarget`
(tag ``v1``), olah serves the mirror on 127.0.0.1 (tests/olah_server.py), and a child process with
``HF_ENDPOINT`` pointing at it loads each artefact with the ordinary calls and compares it with the local
original: ``datasets.load_dataset(ORG/poisoned-cifar10-gaussian, CONFIG, revision="v1")``,
``ResNet18.from_pretrained`` (weights and training summary), ``ModelCard.load`` (``model-index``), the
leaderboard's ``Catalog`` and ``References`` from the settings publish gives its Space (its repos),
the leaderboard Space's files, and ``evaluate.load("ORG/gus", revision="v1")`` / ``("ORG/tpr_at_fpr")`` from
their Spaces, computing what the local modules compute. (Without ``revision`` evaluate first asks for a tag named
after its own version; the Hub's 404 makes it fall back to ``main``, olah's 401 does not.)

No network beyond 127.0.0.1. Skipped when olah is not installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from olah_server import olah_server, run_client

pytest.importorskip("olah", reason="olah (a Hub mirror) is needed for the publish test: pip install 'olah>=0.5'")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

ORG = "ORG"
TINY = {"epochs": 1, "batch_size": 64, "width": 4, "lr": 0.05}


@pytest.fixture(scope="module")
def published(tiny_variant, tiny_splits, tmp_path_factory, one_torch_thread):
    """A workspace (variant, checkpoint, references) published into a mirror; the local copies to compare with."""
    from hf_unlearn.publish import REPO_ROOT, MirrorTarget, folder_files, publish
    from hf_unlearn.train import RunOptions, TrainConfig, train
    from leaderboard.demo import synthetic_references
    from leaderboard.references import write_references

    root = tmp_path_factory.mktemp("publish-e2e")
    ws = root / "ws"
    dataset, cfg = tiny_variant
    shutil.copytree(dataset, ws / "poisoned-cifar10-gaussian")
    # With a test split: without one the summary and card hold test_accuracy NaN, which olah cannot serve as JSON.
    train(tiny_splits["train"], tiny_splits["test"], TrainConfig(**TINY, seed=1),
          RunOptions(output_dir=str(ws / "runs" / "poisoned"), cpu=True, progress=False, checkpointing=False))
    write_references(ws / "references.jsonl", synthetic_references(seed=0, seeds_per_method=1))
    # The metric folders as published (other work may edit metrics/ meanwhile: compare with this snapshot).
    metrics = root / "local-metrics"
    for name in ("gus", "tpr_at_fpr"):
        shutil.copytree(REPO_ROOT / "metrics" / name, metrics / name, ignore=shutil.ignore_patterns("__pycache__"))
    mirrors = root / "mirrors"
    actions = {a.repo.repo_id: a for a in publish(ORG, MirrorTarget(mirrors), root=ws, tag="v1", progress=False)}
    for name in ("gus", "tpr_at_fpr"):
        assert {p: f.sha256 for p, f in folder_files(metrics / name).items()} == {
            p: f.sha256 for p, f in actions[f"{ORG}/{name}"].repo.files.items()}, "metrics/ changed during the test"
    leaderboard = actions[f"{ORG}/hf-unlearn-leaderboard"].repo
    assert actions[f"{ORG}/hf-unlearn-leaderboard"].unset_variables == leaderboard.variables  # a mirror holds none
    return {"root": root, "ws": ws, "config": cfg.name, "mirrors": mirrors, "metrics": metrics, "actions": actions,
            "space_files": {p: (mirrors / "spaces" / ORG / "hf-unlearn-leaderboard" / p).read_bytes()
                            for p in ("app.py", "README.md", "leaderboard/references.py")},
            "space_hashes": {p: f.sha256 for p, f in leaderboard.files.items()},
            "space_variables": leaderboard.variables}


CLIENT = r"""
import hashlib, json, sys
args = json.loads(sys.argv[1])
org, cfg = args["org"], args["config"]
out = {}

import datasets
import huggingface_hub
import torch
from huggingface_hub import ModelCard, hf_hub_download

out["endpoint"] = huggingface_hub.constants.ENDPOINT

hub = datasets.load_dataset(f"{org}/poisoned-cifar10-gaussian", cfg, revision="v1")
local = datasets.load_dataset(args["local_dataset"], cfg)
out["tables_equal"] = {s: hub[s].data.table.equals(local[s].data.table) for s in local}
out["splits"] = sorted(hub)

from hf_unlearn.models.resnet import ResNet18
hub_model = ResNet18.from_pretrained(f"{org}/poisoned", revision="v1")
local_model = ResNet18.from_pretrained(args["local_model"])
sa, sb = hub_model.state_dict(), local_model.state_dict()
out["weights_equal"] = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
out["summary_equal"] = hub_model.training_summary == local_model.training_summary and bool(local_model.training_summary)
card, local_card = ModelCard.load(f"{org}/poisoned"), ModelCard.load(args["local_model"] + "/README.md")
out["card_equal"] = card.content == local_card.content
out["eval_results"] = [[r.metric_type, r.dataset_config, r.metric_value] for r in card.data.eval_results or []]

from leaderboard.references import References
from leaderboard.catalog import Catalog
local_refs = References.load(args["local_references"]).records
try:  # what the Space does with LEADERBOARD_REFERENCES=hf://datasets/ORG/hf-unlearn-references
    out["references_hf_equal"] = References.from_env(args["space_variables"]).records == local_refs
except Exception as exc:
    out["references_hf_equal"] = f"{type(exc).__name__}: {exc}"
# The same file by hf_hub_download, read at its blob (the cache's snapshot entry is a symlink to it).
from pathlib import Path
path = Path(hf_hub_download(f"{org}/hf-unlearn-references", "references.jsonl", repo_type="dataset", revision="v1"))
refs = References.load(path.resolve())
out["references_equal"] = refs.records == local_refs and bool(refs.records)
out["references_problems"] = refs.problems
catalog = Catalog.from_env(args["space_variables"])  # LEADERBOARD_DATASETS as publish would set it on the Space
out["public_variants"] = catalog.variants("cifar10", "gaussian")

out["space_sha256"] = {p: hashlib.sha256(open(hf_hub_download(f"{org}/hf-unlearn-leaderboard", p, repo_type="space",
                                                              revision="v1"), "rb").read()).hexdigest()
                       for p in args["space_files"]}

import evaluate
scores = [2.1, 1.4, 0.3, 1.9, -0.2, 0.1, -1.3, 0.4, -0.6, 0.2, 0.9, -0.1]
member = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
out["metrics"] = {}
for name in ("gus", "tpr_at_fpr"):
    # revision: evaluate first asks for a tag named after its own version (v0.4.6); the Hub answers 404 and evaluate
    # falls back to main, olah answers 401 for an unknown revision, which evaluate takes for a connection error.
    from_hub = evaluate.load(f"{org}/{name}", revision="v1").compute(predictions=scores, references=member)
    from_disk = evaluate.load(args["local_metrics"] + "/" + name).compute(predictions=scores, references=member)
    out["metrics"][name] = {"hub": from_hub, "local": from_disk}
print("RESULT " + json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def served(published):
    """The client's results (one child process for every check) and the olah request log."""
    workdir = published["root"] / "client"
    workdir.mkdir()
    ws = published["ws"]
    args = {"org": ORG, "config": published["config"], "local_dataset": str(ws / "poisoned-cifar10-gaussian"),
            "local_model": str(ws / "runs" / "poisoned"), "local_references": str(ws / "references.jsonl"),
            "local_metrics": str(published["metrics"]), "space_files": sorted(published["space_files"]),
            "space_variables": published["space_variables"]}
    with olah_server(published["mirrors"], published["root"] / "olah", probe_model=f"{ORG}/poisoned") as server:
        out = run_client(CLIENT, args, cwd=workdir, server=server, timeout=400)
        return out, server.endpoint, server.log.read_text()


def test_published_artefacts_load_through_olah(published, served):
    import hashlib

    from huggingface_hub import ModelCard

    out, endpoint, served = served
    ws = published["ws"]
    assert {a.action for a in published["actions"].values()} == {"create"}
    assert set(published["actions"]) == {f"{ORG}/{n}" for n in ("poisoned-cifar10-gaussian", "poisoned",
                                                                "hf-unlearn-references", "gus", "tpr_at_fpr",
                                                                "hf-unlearn-leaderboard")}
    assert out["endpoint"] == endpoint
    assert out["splits"] == ["forget", "test", "train"]
    assert out["tables_equal"] == {"train": True, "forget": True, "test": True}
    assert out["weights_equal"] and out["summary_equal"] and out["card_equal"]
    local_results = ModelCard.load(ws / "runs" / "poisoned" / "README.md").data.eval_results
    assert out["eval_results"] == [[r.metric_type, r.dataset_config, r.metric_value] for r in local_results]
    assert [r[0] for r in out["eval_results"]] == ["accuracy"]
    assert out["references_equal"] and out["references_problems"] == []
    assert out["public_variants"] == [published["config"]]
    assert published["space_variables"] == {
        "LEADERBOARD_DATASETS": f"cifar10/gaussian={ORG}/poisoned-cifar10-gaussian@v1",
        "LEADERBOARD_REFERENCES": f"hf://datasets/{ORG}/hf-unlearn-references"}
    assert out["space_sha256"] == {p: published["space_hashes"][p] for p in published["space_files"]}
    assert out["space_sha256"] == {p: hashlib.sha256(b).hexdigest() for p, b in published["space_files"].items()}
    for name, pair in out["metrics"].items():
        assert pair["hub"] == pair["local"], name
    assert out["metrics"]["gus"]["hub"]["gus"] == pytest.approx((2.1 + 1.4 + 0.3 + 1.9) / 4)
    # Everything came over HTTP from olah, at the tag or from the Spaces' files.
    assert f"/datasets/{ORG}/poisoned-cifar10-gaussian/resolve/" in served
    assert f"/{ORG}/poisoned/resolve/v1/model.safetensors" in served
    assert f"/spaces/{ORG}/gus/resolve/v1/gus.py" in served and f"/spaces/{ORG}/tpr_at_fpr/resolve/v1/" in served
    assert f"/spaces/{ORG}/hf-unlearn-leaderboard/resolve/v1/app.py" in served
    assert f"/datasets/{ORG}/hf-unlearn-references/resolve/v1/references.jsonl" in served


def test_leaderboard_reads_its_references_repo(served):
    out, _, _ = served
    result = out["references_hf_equal"]
    if isinstance(result, str) and "symlink" not in result:  # another failure than the known one is not expected
        pytest.fail(result)
    assert result is True, result
