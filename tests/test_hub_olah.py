"""Hub repo ids end to end against a real Hub-compatible server: olah, serving local git repos offline.

olah (https://github.com/vtuber-plan/olah) is a Hugging Face Hub mirror. With
``[accessibility] offline = true`` it never contacts huggingface.co, and with
``[basic] mirrors-path`` it serves git repositories laid out as
``<mirrors-path>/<models|datasets>/<ORG>/<NAME>`` (olah/server_mirror.py) over the
Hub's HTTP API: ``/api/<type>/<repo>/revision/<rev>``, ``/api/.../tree/...`` and
``/<repo>/resolve/<rev>/<file>`` (olah/mirror/repos.py reads branches, tags and
commits with GitPython). This test builds a tiny variant and two tiny trained
checkpoints, commits them into such repos, starts olah on a free localhost port
and, in a child process with ``HF_ENDPOINT`` pointing at it (huggingface_hub
reads the endpoint and offline flags at import time, and conftest.py sets
``HF_HUB_OFFLINE=1`` here), checks that the project's own functions accept
Hub ids: ``load_checkpoint``, ``load_variant``/``datasets.load_dataset``,
``score_checkpoint`` (same metrics as the local folders) and leaderboard
verification of a Hub checkpoint, including an ``@revision`` (a git tag).

No network beyond 127.0.0.1. Skipped when olah is not installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from olah_server import commit_folder, git, init_repo, olah_server, run_client

pytest.importorskip("olah", reason="olah (a Hub mirror) is needed for the Hub-id test: pip install 'olah>=0.5'")

ORG = "ORG"
MODEL_REPO = f"{ORG}/tiny-model"
DATASET_REPO = f"{ORG}/poisoned-cifar10-gaussian"
TAMPERED_REPO = "ORG2/poisoned-cifar10-gaussian"  # the same variant with its forget shard swapped for another file
NULL_DRAWS = 5
TINY = {"epochs": 1, "batch_size": 64, "width": 4, "lr": 0.05}


@pytest.fixture(scope="module")
def local_artifacts(tiny_variant, tiny_splits, tmp_path_factory):
    """Two tiny checkpoints trained one epoch on the tiny variant (seeds 1 and 2), as local folders."""
    from hf_unlearn.train import RunOptions, TrainConfig, train

    root = tmp_path_factory.mktemp("olah-local")
    folders = {}
    for seed in (1, 2):
        out = root / f"model-seed{seed}"
        # With a test split: without one the summary and card hold test_accuracy NaN, which olah cannot serve as JSON.
        train(tiny_splits["train"], tiny_splits["test"], TrainConfig(**TINY, seed=seed),
              RunOptions(output_dir=str(out), cpu=True, progress=False, checkpointing=False),
              card_info={"role": "unlearned"})
        folders[seed] = out
    dataset, cfg = tiny_variant
    return {"dataset": Path(dataset), "config": cfg.name, "models": folders}


@pytest.fixture(scope="module")
def olah_hub(local_artifacts, tmp_path_factory):
    """olah serving the local git repos offline; yields (endpoint, {ref: commit sha})."""
    root = tmp_path_factory.mktemp("olah")
    mirrors = root / "mirrors"
    # Model repo: the seed-2 model first (tagged v1), then the seed-1 model on main.
    model_repo = init_repo(mirrors / "models" / MODEL_REPO)
    shas = {"v1": commit_folder(model_repo, local_artifacts["models"][2], "seed-2 model")}
    git(model_repo, "tag", "v1")
    shas["model_main"] = commit_folder(model_repo, local_artifacts["models"][1], "seed-1 model")
    dataset_repo = init_repo(mirrors / "datasets" / DATASET_REPO)
    shas["dataset_main"] = commit_folder(dataset_repo, local_artifacts["dataset"], "tiny variant")
    # A well-formed lie: valid parquet, the card unchanged, but the forget shard's bytes are another shard's.
    tampered = root / "tampered"
    shutil.copytree(local_artifacts["dataset"], tampered, ignore=shutil.ignore_patterns(".*"))
    shards = sorted((tampered / "data" / local_artifacts["config"]).glob("*.parquet"))
    forget = next(p for p in shards if p.name.startswith("forget"))
    shutil.copyfile(next(p for p in shards if p.name.startswith("test")), forget)
    commit_folder(init_repo(mirrors / "datasets" / TAMPERED_REPO), tampered, "tampered variant")
    with olah_server(mirrors, root, probe_model=MODEL_REPO) as server:
        yield server, shas


# Runs in a child process: HF_ENDPOINT -> olah, a fresh HF_HOME, and cwd an empty folder (so "ORG/..." is no path).
CLIENT = r"""
import json, sys
import torch

args = json.loads(sys.argv[1])
out = {}

from hf_unlearn.train import load_checkpoint
from hf_unlearn.variant import load_variant
from hf_unlearn.scoring import score_checkpoint
import datasets
import huggingface_hub

out["endpoint"] = huggingface_hub.constants.ENDPOINT
out["offline"] = huggingface_hub.constants.HF_HUB_OFFLINE

def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

hub_main, hub_summary = load_checkpoint(args["model"])
hub_v1, _ = load_checkpoint(args["model"], revision="v1")
hub_v1_at, _ = load_checkpoint(args["model"] + "@v1")
local_main, local_summary = load_checkpoint(args["local_models"]["1"])
local_v1, _ = load_checkpoint(args["local_models"]["2"])
out["weights"] = {
    "main_equals_local": same_weights(hub_main, local_main),
    "v1_equals_local": same_weights(hub_v1, local_v1),
    "at_v1_equals_local": same_weights(hub_v1_at, local_v1),
    "main_differs_from_v1": not same_weights(hub_main, hub_v1),
}
out["summary_equal"] = hub_summary == local_summary and bool(hub_summary)

hub_ds = datasets.load_dataset(args["dataset"], args["config"])
local_ds = datasets.load_dataset(args["local_dataset"], args["config"])
out["rows"] = {split: part.num_rows for split, part in hub_ds.items()}
out["poisons_in_train"] = int(sum(hub_ds["train"]["is_poison"]))
out["tables_equal"] = {split: hub_ds[split].data.table.equals(local_ds[split].data.table) for split in local_ds}
out["variant_rows"] = {split: part.num_rows for split, part in load_variant(args["dataset"], args["config"]).items()}
try:
    load_variant(args["tampered"], args["config"])
    out["tampered"] = "loaded"
except Exception as exc:
    out["tampered"] = f"{type(exc).__name__}: {exc}"

out["scores"] = {
    "main": score_checkpoint(args["model"], args["dataset"], args["config"], null_draws=args["null_draws"]),
    "v1": score_checkpoint(args["model"], args["dataset"], args["config"], null_draws=args["null_draws"], revision="v1"),
}

from leaderboard.submit import submit_file, verification_messages
claimed = args["claimed"]
base = {
    "schema_version": 1, "task": "cifar10", "attack": "gaussian",
    "dataset": {"id": args["dataset"], "config": args["config"], "revision": None},
    "method": "ngd", "method_config": {}, "budget_fraction": 0.1, "compute_used": 10.0,
}
honest = {**base, "model": {"id": args["model"], "revision": None}, "seed": 0, "metrics": claimed}
# The v1 checkpoint is submitted with main's numbers.
swapped = {**base, "model": {"id": args["model"], "revision": "v1"}, "seed": 1, "metrics": dict(claimed)}
path = args["workdir"] + "/results.jsonl"
with open(path, "w") as f:
    f.write("\n".join(json.dumps(r) for r in (honest, swapped)) + "\n")
# A local leaderboard is an existing folder (a missing one is an error, never taken for a Space id).
import os
board = args["workdir"] + "/board"
os.makedirs(board)
# No revision pinned: the catalog asks the server for "main" and pins the commit it resolves to.
result = submit_file(path, board, submitter="tester",
                     checkpoints=[f"0={args['model']}", f"1={args['model']}@v1"],
                     public_datasets={"cifar10/gaussian": args["dataset"]})
out["verification"] = result.verification
out["verification_messages"] = verification_messages(result.verification)
print("RESULT " + json.dumps(out))
"""


def test_hub_ids_through_olah(olah_hub, local_artifacts, tmp_path):
    from hf_unlearn.scoring import score_checkpoint

    server, shas = olah_hub
    dataset, config, models = local_artifacts["dataset"], local_artifacts["config"], local_artifacts["models"]
    local_main = score_checkpoint(str(models[1]), str(dataset), config, null_draws=NULL_DRAWS)
    local_v1 = score_checkpoint(str(models[2]), str(dataset), config, null_draws=NULL_DRAWS)

    workdir = tmp_path / "client"
    workdir.mkdir()
    args = {
        "model": MODEL_REPO, "dataset": DATASET_REPO, "config": config, "null_draws": NULL_DRAWS,
        "local_models": {str(k): str(v) for k, v in models.items()}, "local_dataset": str(dataset),
        "claimed": local_main, "workdir": str(workdir), "tampered": TAMPERED_REPO,
    }
    out = run_client(CLIENT, args, cwd=workdir, server=server, timeout=300)

    assert out["endpoint"] == server.endpoint and not out["offline"]
    # The checkpoints came over HTTP from olah, at the right revisions.
    assert out["weights"] == {"main_equals_local": True, "v1_equals_local": True,
                              "at_v1_equals_local": True, "main_differs_from_v1": True}
    assert out["summary_equal"]
    served = server.log.read_text()
    assert f"/{MODEL_REPO}/resolve/main/model.safetensors" in served
    assert f"/{MODEL_REPO}/resolve/v1/model.safetensors" in served
    assert f"/datasets/{DATASET_REPO}/resolve/{shas['dataset_main']}/data/{config}/" in served

    # The variant: 200 training rows (from max_train_rows), the poisons as the forget split, the samples' test set.
    poisons = out["poisons_in_train"]
    assert out["rows"] == out["variant_rows"] == {"train": 200, "forget": poisons, "test": 1000}
    assert poisons == 10
    assert out["tables_equal"] == {"train": True, "forget": True, "test": True}
    # The loader checks a Hub variant's shards against its card as it does a folder's: the swapped shard is named.
    assert out["tampered"].startswith("VariantModifiedError") and "forget" in out["tampered"], out["tampered"]

    # Scores from Hub ids equal the local folders' scores, metric for metric (same weights, data and seed;
    # up to float summation order, which changes with the thread count of the process).
    for got, want in ((out["scores"]["main"], local_main), (out["scores"]["v1"], local_v1)):
        assert got.keys() == want.keys()
        for key, value in want.items():  # None where an FPR is unresolvable with this few nulls
            assert got[key] == (None if value is None else pytest.approx(value, rel=1e-6, abs=1e-9)), key
    assert local_main["num_poisons"] == poisons and local_main["num_nulls"] == poisons * NULL_DRAWS
    assert local_main["gus"] != local_v1["gus"]

    # Leaderboard verification re-scored the Hub checkpoints on the Hub dataset.
    ver = out["verification"]
    assert [e["status"] for e in ver["records"]] == ["verified", "mismatch"], out["verification_messages"]
    # Each entry records the commit it scored (what the submitter wrote stays in requested_revision).
    assert [(e["checkpoint"], e["revision"]) for e in ver["records"]] == [
        (MODEL_REPO, shas["model_main"]), (MODEL_REPO, shas["v1"])]
    assert [e["requested_revision"] for e in ver["records"]] == [None, "v1"]
    assert all(len(e["weights_sha256"]) == 64 for e in ver["records"])
    # The public variant came from the catalog: the dataset card read at "main", pinned to its commit.
    assert all(e["dataset"] == DATASET_REPO and e["config"] == config for e in ver["records"])
    assert all(e["dataset_revision"] == shas["dataset_main"] for e in ver["records"])
    assert f"/api/datasets/{DATASET_REPO}/revision/main" in served
    assert ver["status"] == "mismatch"
    bad = sorted(m for m, d in ver["records"][1]["diffs"].items() if not d["ok"])
    assert "gus" in bad
    assert ver["records"][1]["diffs"]["gus"]["recomputed"] == pytest.approx(local_v1["gus"], rel=1e-6)
