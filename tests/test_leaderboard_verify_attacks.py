"""Issue 7, attacks 3, 5, 7 and 10 against verification: each reproduced, then shown refused or harmless.

* 3: "verified" against a dataset the submitter chose; a Hub-shaped id read from a local folder; an
  untrained network shown verified.
* 5: verification as a denial-of-service lever: unbounded null draws, a config that sizes the model
  (102 GB from a 50 KB checkpoint), unbounded downloads, no timeout, an unbounded queue.
* 7: a repo without model.safetensors makes the generic loader unpickle pytorch_model.bin.
* 10: dataset.id used as a server path, and server paths echoed in public error text.

The "Hub" is a fake that serves local folders through monkeypatched ``huggingface_hub`` functions,
except in ``test_attack_03_07_through_a_real_hub_server``, which runs olah (a Hub mirror, offline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from leaderboard import safe_load
from leaderboard.catalog import Catalog, PublicVariant
from leaderboard.safe_load import CheckpointLimits, CheckpointRefused
from leaderboard.store import StoredSubmission
from leaderboard.submission import Submission
from leaderboard.verify import VerifyLimits, null_draws_for, scrub, verify_submission
from leaderboard.verify_worker import QueueFull, VerifyWorker
from olah_server import commit_folder, init_repo, olah_server, run_client

PUBLIC_REPO = "hf-unlearn/poisoned-cifar10-gaussian"
VARIANT = "eps0.1-b1.5-s0"
SHA = "a" * 40


# --------------------------------------------------------------------------------------------- helpers


def catalog(num_poisons: int = 750, repo: str = PUBLIC_REPO) -> Catalog:
    return Catalog([PublicVariant("cifar10", "gaussian", repo, VARIANT, num_poisons, SHA)])


def metrics(num_poisons: int = 750, num_nulls: int = 15_000, **changes) -> dict:
    m = {"test_accuracy": 0.9, "forget_accuracy": 0.95, "retain_accuracy": 0.97, "gus": 0.5, "gus_stderr": 0.01,
         "tpr_at_fpr_0.01": 300 / 750, "tpr_at_fpr_0.001": 150 / 750, "auc": 0.8,
         "num_poisons": num_poisons, "num_nulls": num_nulls}
    m.update(changes)
    return m


def hostile(records_metrics: list[dict], checkpoints: list[str], dataset_id: str = "/etc",
            variant: str = VARIANT) -> StoredSubmission:
    """A stored submission built directly, skipping submission checks: the verifier must not rely on them."""
    records = [{
        "schema_version": 1, "task": "cifar10", "attack": "gaussian",
        "dataset": {"id": dataset_id, "config": variant, "revision": None},
        "model": {"id": "evilorg/claimed-model", "revision": None}, "method": "ngd", "method_config": {},
        "budget_fraction": 0.1, "compute_used": 1.0, "seed": i, "metrics": m,
    } for i, m in enumerate(records_metrics)]
    refs = []
    for i, spec in enumerate(checkpoints):
        repo, _, rev = spec.partition("@")
        refs.append({"record": i, "id": repo, "revision": rev or None})
    sub = Submission(submitter={"name": "eve", "link": None}, records=records, checkpoints=refs)
    return StoredSubmission(sub.id, sub, datetime.now(timezone.utc).isoformat())


def tiny_checkpoint(folder: Path, width: int = 2, seed: int = 0) -> Path:
    """A real ResNet-18 (CIFAR) checkpoint as ``save_pretrained`` writes it: config.json + model.safetensors."""
    import torch

    from hf_unlearn.models.resnet import ResNet18

    torch.manual_seed(seed)
    ResNet18(num_classes=10, width=width).save_pretrained(folder)
    return folder


class FakeHub:
    """``HfApi.model_info`` / ``list_repo_tree`` and ``hf_hub_download`` over local folders, recording requests."""

    def __init__(self, repos: dict[str, Path], sizes: dict[tuple[str, str], int] | None = None) -> None:
        self.repos, self.sizes = repos, sizes or {}
        self.downloads: list[tuple[str, str]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeHub":
        import huggingface_hub
        import huggingface_hub.hub_mixin

        hub = self

        def model_info(api, repo_id, *, revision=None, **kwargs):
            if repo_id not in hub.repos:
                raise FileNotFoundError(f"/srv/hub-cache/models--{repo_id.replace('/', '--')} not found")
            return SimpleNamespace(id=repo_id, sha="c" * 40)

        def list_repo_tree(api, repo_id, path_in_repo=None, *, revision=None, recursive=False, **kwargs):
            folder = hub.repos[repo_id]
            return [SimpleNamespace(path=p.name, size=hub.sizes.get((repo_id, p.name), p.stat().st_size))
                    for p in sorted(folder.iterdir())]

        def hf_hub_download(repo_id, filename, *, revision=None, cache_dir=None, **kwargs):
            from huggingface_hub.errors import EntryNotFoundError

            hub.downloads.append((repo_id, filename))
            src = hub.repos[repo_id] / filename
            if not src.exists():
                raise EntryNotFoundError(f"{filename} not in {repo_id}")
            dest = Path(cache_dir or hub.repos[repo_id].parent / "cache") / repo_id / filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            return str(dest)

        monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", list_repo_tree)
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
        monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", hf_hub_download)
        return self


@pytest.fixture
def no_torch_load(monkeypatch):
    """torch.load (and so any unpickling of weights) fails the test if anything calls it."""
    import torch

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("torch.load was called: a pickle was about to be loaded")

    monkeypatch.setattr(torch, "load", refuse)
    return calls


# --------------------------------------------------------------------------------------------- attack 3


def test_attack_03_record_dataset_id_is_never_used(tmp_path):
    """Old: without LEADERBOARD_DATASETS the record's dataset.id was scored on. Now only the catalog's repo."""
    private = tmp_path / "private-variant"  # a folder of parquet the submitter points at
    (private / "data").mkdir(parents=True)
    (private / "data" / "forget-00000-of-00001.parquet").write_bytes(b"PAR1")
    seen = []

    def score_fn(checkpoint, dataset, config, **kwargs):
        seen.append((dataset, config, kwargs["dataset_revision"]))
        return metrics()

    for dataset_id in ("/etc", str(private), "evilorg/private-variant"):
        stored = hostile([metrics()], ["org/model"], dataset_id=dataset_id)
        ver = verify_submission(stored, catalog=catalog(), score_fn=score_fn, isolate=False)
        assert ver["records"][0]["status"] == "verified"
        assert ver["records"][0]["dataset"] == PUBLIC_REPO
        assert dataset_id not in json.dumps(ver)
    assert seen == [(PUBLIC_REPO, VARIANT, SHA)] * 3


def test_attack_03_hub_shaped_id_with_a_local_folder_is_fetched_from_the_hub(tmp_path, monkeypatch):
    """Old: ``evilorg/ckpt`` was loaded from ./evilorg/ckpt when that folder existed. Now: from the Hub, or fail."""
    from hf_unlearn.train import load_checkpoint

    work = tmp_path / "cwd"
    local = tiny_checkpoint(work / "evilorg" / "ckpt", seed=1)  # what the attacker planted next to the server
    hub_copy = tiny_checkpoint(tmp_path / "hub" / "ckpt", seed=2)  # what the Hub serves under that id
    monkeypatch.chdir(work)
    # The attack, reproduced: the generic loader takes the id for a local path.
    model, _ = load_checkpoint("evilorg/ckpt")
    assert (Path("evilorg/ckpt") / "model.safetensors").exists() and model is not None

    hub = FakeHub({"evilorg/ckpt": hub_copy}).install(monkeypatch)
    for allow_local in (False, True):
        fetched = safe_load.fetch_checkpoint("evilorg/ckpt", None, tmp_path / f"dl{allow_local}",
                                             allow_local=allow_local)
        assert fetched.source == "hub" and fetched.revision == "c" * 40
        assert fetched.weights_path.read_bytes() == (hub_copy / "model.safetensors").read_bytes()
        assert fetched.weights_path.read_bytes() != (local / "model.safetensors").read_bytes()
    assert hub.downloads == [("evilorg/ckpt", "config.json"), ("evilorg/ckpt", "model.safetensors")] * 2
    # Not on the Hub: an error, never the local folder.
    with pytest.raises(FileNotFoundError):
        safe_load.fetch_checkpoint("evilorg/other", None, tmp_path / "dl", allow_local=True)
    # A local folder only as an explicit path, and only with the operator flag.
    assert safe_load.fetch_checkpoint("./evilorg/ckpt", None, tmp_path / "dl", allow_local=True).source == "local"
    with pytest.raises(CheckpointRefused, match="Hub model id"):
        safe_load.fetch_checkpoint("./evilorg/ckpt", None, tmp_path / "dl", allow_local=False)


# --------------------------------------------------------------------------------------------- attack 5


def test_attack_05_config_sized_model_refused_before_allocation(tmp_path, monkeypatch):
    """Old: a 50 KB checkpoint whose config.json says width 3060 made the loader build a 102 GB network."""
    import safetensors.torch
    import torch

    from hf_unlearn.models import resnet

    folder = tiny_checkpoint(tmp_path / "ckpt", width=2)
    config = json.loads((folder / "config.json").read_text())
    config["width"] = 3060
    (folder / "config.json").write_text(json.dumps(config))
    assert (folder / "config.json").stat().st_size + (folder / "model.safetensors").stat().st_size < 60_000
    # The attack, reproduced without allocating: on the meta device the config's network needs ~102 GB.
    with torch.device("meta"):
        meta = resnet.ResNet18(**config)
    wanted = sum(t.numel() for t in meta.state_dict().values())
    assert round(wanted * 4 / 1e9) == 102
    assert safe_load.parameter_count(3060, 10) == wanted  # the pinned count matches the real module exactly

    def refuse(*args, **kwargs):
        raise AssertionError("allocation attempted before the parameter cap was checked")

    monkeypatch.setattr(resnet.ResNet18, "__init__", refuse)
    monkeypatch.setattr(safetensors.torch, "load_file", refuse)
    fetched = safe_load.fetch_checkpoint(str(folder), None, tmp_path, allow_local=True)
    with pytest.raises(CheckpointRefused, match=rf"width 3060 with {wanted:,} parameters \(102.0 GB as float32\); "
                                                 r"the limit is 50,000,000"):
        safe_load.load_resnet(fetched, 10)


def test_attack_05_pinned_architecture_and_header(tmp_path):
    """config.json and the safetensors header must describe exactly the pinned ResNet-18, before any tensor is read."""
    import torch
    from safetensors.torch import load_file

    from hf_unlearn.models.resnet import ResNet18

    for width in (1, 4, 64):
        real = {k: tuple(v.shape) for k, v in ResNet18(width=width).state_dict().items()}
        assert safe_load.expected_tensors(width, 10) == real
    folder = tiny_checkpoint(tmp_path / "ok", width=2)
    model = safe_load.load_resnet(safe_load.fetch_checkpoint(str(folder), None, tmp_path, allow_local=True), 10)
    ref = ResNet18(width=2)
    ref.load_state_dict(load_file(str(folder / "model.safetensors")))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))

    def refused(config_changes=None, header=None, match=""):
        case = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        shutil.copytree(folder, case)
        cfg = json.loads((case / "config.json").read_text())
        cfg.update(config_changes or {})
        (case / "config.json").write_text(json.dumps(cfg))
        if header is not None:
            raw = json.dumps(header).encode()
            (case / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
        with pytest.raises(CheckpointRefused, match=match):
            safe_load.load_resnet(safe_load.fetch_checkpoint(str(case), None, tmp_path, allow_local=True), 10)

    refused({"num_classes": 1000}, match="num_classes=1000")
    refused({"width": 2.5}, match="width")
    refused({"depth": 152}, match="depth")
    refused({"mean": [0.5, float("nan"), 0.5]}, match="not JSON|three numbers")
    refused({"width": 4}, match="shape")  # config and weights disagree
    refused(header={"conv1.weight": {"dtype": "F32", "shape": [10**6, 3, 3, 3], "data_offsets": [0, 10**8]}},
            match="missing")
    expected = safe_load.expected_tensors(2, 10)
    lying = {name: {"dtype": "F32", "shape": list(shape), "data_offsets": [0, 4]} for name, shape in expected.items()}
    refused(header=lying, match="dtype|offsets")
    big = tmp_path / "bighdr"
    shutil.copytree(folder, big)
    (big / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(CheckpointRefused, match="header"):
        safe_load.load_resnet(safe_load.fetch_checkpoint(str(big), None, tmp_path, allow_local=True), 10)


def test_attack_05_null_draws_are_capped(tmp_path):
    """Old: null draws = num_nulls / num_poisons without a cap (one record asked for an 80 GB allocation)."""
    limits = VerifyLimits()
    assert null_draws_for(metrics(num_nulls=750 * 200), 750, limits) == 200
    with pytest.raises(ValueError, match="at most 200 per poison"):
        null_draws_for(metrics(num_nulls=750 * 201), 750, limits)
    with pytest.raises(ValueError, match="1,000,000"):
        null_draws_for(metrics(num_poisons=6000, num_nulls=6000 * 200), 6000, limits)
    with pytest.raises(ValueError, match="multiple"):
        null_draws_for(metrics(num_nulls=15_001), 750, limits)
    # A record asking for 10^13 null scores is refused without scoring.
    stored = hostile([metrics(num_nulls=750 * 10**10)], ["org/model"])
    ver = verify_submission(stored, catalog=catalog(), isolate=False,
                            score_fn=lambda *a, **k: pytest.fail("must not score"))
    entry = ver["records"][0]
    assert entry["status"] == "failed" and "null draws per poison" in entry["reason"]
    assert ver["limits"]["max_null_draws"] == 200 and ver["limits"]["max_total_nulls"] == 1_000_000
    # At most max_checkpoints checkpoints are scored per submission.
    stored = hostile([metrics()] * 3, ["org/a", "org/b", "org/c"])
    ver = verify_submission(stored, catalog=catalog(), isolate=False, limits=VerifyLimits(max_checkpoints=2),
                            score_fn=lambda *a, **k: metrics())
    assert [e["status"] for e in ver["records"]] == ["verified", "verified", "failed"]
    assert "at most 2 checkpoints" in ver["records"][2]["reason"]


def test_attack_05_download_sizes_are_capped_before_downloading(tmp_path, monkeypatch):
    folder = tiny_checkpoint(tmp_path / "repo")
    hub = FakeHub({"evilorg/huge": folder, "evilorg/bigconfig": folder},
                  sizes={("evilorg/huge", "model.safetensors"): 600_000_000,
                         ("evilorg/bigconfig", "config.json"): 100_000}).install(monkeypatch)
    with pytest.raises(CheckpointRefused, match="600,000,000 bytes; the limit is 500,000,000"):
        safe_load.fetch_checkpoint("evilorg/huge", None, tmp_path / "dl")
    with pytest.raises(CheckpointRefused, match="config.json .* 100,000 bytes; the limit is 65,536"):
        safe_load.fetch_checkpoint("evilorg/bigconfig", None, tmp_path / "dl")
    assert hub.downloads == []  # refused from the listing alone
    small = CheckpointLimits(max_model_bytes=1000)
    with pytest.raises(CheckpointRefused, match="limit is 1,000"):
        safe_load.fetch_checkpoint(str(folder), None, tmp_path, allow_local=True, limits=small)


def _slow_score(checkpoint, dataset, config, **kwargs):
    """A scorer that never finishes (runs in the spawned child: must be module-level)."""
    Path(os.environ["VERIFY_TEST_PID_FILE"]).write_text(str(os.getpid()))
    time.sleep(120)
    return {}


def test_attack_05_timeout_kills_a_slow_job(tmp_path, monkeypatch):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("VERIFY_TEST_PID_FILE", str(pid_file))
    stored = hostile([metrics(), metrics()], ["org/slow", "org/slower"])
    start = time.monotonic()
    ver = verify_submission(stored, catalog=catalog(), score_fn=_slow_score, limits=VerifyLimits(timeout_s=8))
    elapsed = time.monotonic() - start
    assert elapsed < 40, elapsed
    assert [e["status"] for e in ver["records"]] == ["failed", "failed"]
    assert all("time limit of 8 s" in e["reason"] for e in ver["records"])
    pid = int(pid_file.read_text())  # the child did start scoring, and is gone now
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_attack_05_queue_is_bounded_and_status_is_queryable():
    release = threading.Event()
    started = []

    def verify(sub_id):
        started.append(sub_id)
        if sub_id == "boom":
            raise RuntimeError("store unavailable at /srv/data/store")
        release.wait(30)
        return {"status": "mismatch" if sub_id == "b" else "verified", "records": [{"status": "verified"}]}

    worker = VerifyWorker(verify, max_queue=2)
    try:
        assert worker.submit("a").state == "queued"
        deadline = time.monotonic() + 10
        while worker.status("a").state != "verifying" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.status("a").state == "verifying"
        assert worker.submit("b").position == 1 and worker.submit("boom").position == 2
        assert worker.submit("a").state == "verifying"  # not queued twice
        with pytest.raises(QueueFull, match="queue is full \\(2 submissions waiting\\).*stored"):
            worker.submit("c")
        assert worker.status("c") is None and worker.queue_length == 2
        release.set()
        assert worker.join(timeout=30)
        assert [worker.status(s).state for s in ("a", "b", "boom")] == ["verified", "mismatch", "failed"]
        assert "/srv" not in worker.status("boom").message and "RuntimeError" in worker.status("boom").message
        assert worker.submit("c").state == "queued"  # room again
        assert worker.wait("c", timeout=30).state == "verified"
        assert started == ["a", "b", "boom", "c"]
        assert worker.status("a").to_dict()["finished_at"]
    finally:
        release.set()
        worker.close()


# --------------------------------------------------------------------------------------------- attack 7


def test_attack_07_pickle_only_repo_refused_without_unpickling(tmp_path, monkeypatch, no_torch_load):
    """Old: no model.safetensors -> huggingface_hub fell back to pytorch_model.bin via torch.load."""
    import torch

    from hf_unlearn.models.resnet import ResNet18

    repo = tmp_path / "pickled"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"num_classes": 10, "width": 2}))
    (repo / "pytorch_model.bin").write_bytes(b"\x80\x04not-a-real-pickle.")  # never read either way
    hub = FakeHub({"evilorg/pickled": repo}).install(monkeypatch)
    # The attack, reproduced: the generic mixin loader reaches torch.load.
    with pytest.raises(AssertionError, match="torch.load was called"):
        ResNet18._from_pretrained(model_id="evilorg/pickled", revision=None, cache_dir=str(tmp_path / "c"),
                                  force_download=False, local_files_only=False, token=None, num_classes=10, width=2)
    assert len(no_torch_load) == 1 and ("evilorg/pickled", "pytorch_model.bin") in hub.downloads
    no_torch_load.clear()
    hub.downloads.clear()
    # Now: refused from the file listing; nothing downloaded, nothing unpickled.
    with pytest.raises(CheckpointRefused, match="no model.safetensors: only safetensors"):
        safe_load.fetch_checkpoint("evilorg/pickled", None, tmp_path / "dl")
    stored = hostile([metrics()], ["evilorg/pickled"])
    ver = verify_submission(stored, catalog=catalog(), isolate=False)  # the default scorer, in this process
    assert ver["records"][0]["status"] == "failed"
    assert "no model.safetensors" in ver["records"][0]["reason"]
    assert no_torch_load == [] and hub.downloads == []
    assert torch.load is not None


# --------------------------------------------------------------------------------------------- attack 10


def test_attack_10_server_paths_are_not_read_or_echoed(tmp_path, monkeypatch):
    """Old: dataset.id '/etc' was loaded and the public column read 'No (supported) data files found in /etc'."""
    from leaderboard.catalog import CatalogError

    # A public dataset that is a path needs the operator flag; otherwise the catalog refuses to build.
    with pytest.raises(CatalogError, match="LEADERBOARD_ALLOW_LOCAL"):
        Catalog.from_mapping({"cifar10/gaussian": "/etc"})
    # A catalog entry that is not a Hub id (a stand-in that skipped those checks) is refused, path not echoed.
    stored = hostile([metrics()], ["org/model"])
    ver = verify_submission(stored, catalog=catalog(repo="/etc"), allow_local=False, isolate=False,
                            score_fn=lambda *a, **k: pytest.fail("must not score"))
    assert ver["records"][0]["status"] == "failed" and "/etc" not in json.dumps(ver["records"])

    # The real scorer (in this process, a fake Hub): the only dataset it loads is the public one, never the
    # record's dataset.id ('/etc', or a folder of parquet files on the server).
    import datasets

    parquet = tmp_path / "srv-data"
    parquet.mkdir()
    (parquet / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    loads = []

    def load_dataset(path, *args, **kwargs):
        loads.append(str(path))
        raise ConnectionError(f"offline test: not loading {path} (cache /srv/cache/datasets)")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    # A Hub variant is fetched as a snapshot first (its shards checked against its card): that is the load here.
    import hf_unlearn.hub

    monkeypatch.setattr(hf_unlearn.hub, "dataset_snapshot", lambda repo, *a, **k: load_dataset(repo))
    FakeHub({"org/model": tiny_checkpoint(tmp_path / "model")}).install(monkeypatch)
    for dataset_id in ("/etc", str(parquet)):
        ver = verify_submission(hostile([metrics()], ["org/model"], dataset_id=dataset_id), catalog=catalog(),
                                isolate=False)
        assert ver["records"][0]["status"] == "failed" and "/srv" not in ver["records"][0]["reason"]
    assert loads == [PUBLIC_REPO, PUBLIC_REPO]

    # Errors raised while scoring reach the public page without any path of this machine.
    FakeHub({}).install(monkeypatch)  # model_info raises FileNotFoundError naming /srv/hub-cache/...
    ver = verify_submission(hostile([metrics()], ["evilorg/missing"]), catalog=catalog(), isolate=False)
    reason = ver["records"][0]["reason"]
    assert ver["records"][0]["status"] == "failed" and "FileNotFoundError" in reason
    assert "/srv" not in reason and "<path>" in reason
    # Local checkpoint paths are refused without the flag, and not echoed.
    ver = verify_submission(hostile([metrics()], ["/etc/passwd"]), catalog=catalog(), isolate=False)
    assert "local checkpoint paths are not accepted" in ver["records"][0]["reason"]
    assert "/etc" not in ver["records"][0]["reason"]
    assert scrub("No (supported) data files found in /etc") == "No (supported) data files found in <path>"
    assert scrub("see https://huggingface.co/org/x and C:\\x\\y ~/z") == (
        "see https://huggingface.co/org/x and <path> <path>")


# --------------------------------------------------------------------------------------------- one real Hub


HUB_CLIENT = r"""
import json, sys
from datetime import datetime, timezone
args = json.loads(sys.argv[1])
from leaderboard.catalog import Catalog
from leaderboard.store import StoredSubmission
from leaderboard.submission import Submission
from leaderboard.verify import VerifyLimits, verify_submission

base = {"schema_version": 1, "task": "cifar10", "attack": "gaussian",
        "dataset": {"id": "/etc", "config": args["config"], "revision": None},
        "method": "ngd", "method_config": {}, "budget_fraction": 0.1, "compute_used": 1.0}
records = [dict(base, model={"id": "x/y", "revision": None}, seed=i, metrics=args["claimed"]) for i in range(3)]
refs = [{"record": 0, "id": "ORG/honest", "revision": None}, {"record": 1, "id": "evilorg/ckpt", "revision": None},
        {"record": 2, "id": "evilorg/pickled", "revision": None}]
sub = Submission(submitter={"name": "eve", "link": None}, records=records, checkpoints=refs)
catalog = Catalog.from_mapping({"cifar10/gaussian": args["dataset"]})
ver = verify_submission(StoredSubmission(sub.id, sub, datetime.now(timezone.utc).isoformat()), catalog=catalog,
                        limits=VerifyLimits(timeout_s=240))
print("RESULT " + json.dumps(ver))
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to build the repos olah serves")
def test_attack_03_07_through_a_real_hub_server(tiny_variant, tmp_path):
    """olah serves ORG/honest, evilorg/ckpt (an untrained network), evilorg/pickled and the public variant.

    The client's working directory holds ./evilorg/ckpt with the honest weights: reading it would verify the
    claim. Verification must fetch the Hub's evilorg/ckpt (mismatch), refuse the pickle-only repo, verify the
    honest repo, show the scored commit, and never touch the record's dataset.id (/etc).
    """
    pytest.importorskip("olah", reason="olah (a Hub mirror) is needed: pip install 'olah>=0.5'")
    from hf_unlearn.scoring import score_checkpoint

    dataset, cfg = tiny_variant
    honest = tiny_checkpoint(tmp_path / "src" / "honest", width=4, seed=5)
    untrained = tiny_checkpoint(tmp_path / "src" / "untrained", width=4, seed=6)
    pickled = tmp_path / "src" / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"num_classes": 10, "width": 4}))
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04pickle.")
    claimed = score_checkpoint(str(honest), str(dataset), cfg.name, null_draws=5, seed=0)

    mirrors = tmp_path / "mirrors"
    shas = {
        "honest": commit_folder(init_repo(mirrors / "models" / "ORG" / "honest"), honest),
        "ckpt": commit_folder(init_repo(mirrors / "models" / "evilorg" / "ckpt"), untrained),
        "pickled": commit_folder(init_repo(mirrors / "models" / "evilorg" / "pickled"), pickled),
        "dataset": commit_folder(init_repo(mirrors / "datasets" / "ORG" / "poisoned-cifar10-gaussian"), Path(dataset)),
    }
    client_cwd = tmp_path / "client"
    shutil.copytree(honest, client_cwd / "evilorg" / "ckpt")  # the planted local folder

    # Pinned to the commit: olah answers /api/datasets/ORG/NAME only with a revision.
    args = {"dataset": f"ORG/poisoned-cifar10-gaussian@{shas['dataset']}", "config": cfg.name, "claimed": claimed}
    with olah_server(mirrors, tmp_path / "olah", probe_model="ORG/honest") as server:
        ver = run_client(HUB_CLIENT, args, cwd=client_cwd, server=server, timeout=400)
    honest_e, evil_e, pickled_e = ver["records"]
    assert honest_e["status"] == "verified", honest_e
    assert evil_e["status"] == "mismatch", evil_e  # the Hub's untrained network, not ./evilorg/ckpt
    assert pickled_e["status"] == "failed" and "no model.safetensors" in pickled_e["reason"]
    assert (honest_e["checkpoint"], honest_e["revision"]) == ("ORG/honest", shas["honest"])
    assert (evil_e["checkpoint"], evil_e["revision"]) == ("evilorg/ckpt", shas["ckpt"])
    assert all(e["dataset"] == "ORG/poisoned-cifar10-gaussian" for e in ver["records"])
    assert honest_e["dataset_revision"] == shas["dataset"]
    assert honest_e["weights_sha256"] == hashlib.sha256((honest / "model.safetensors").read_bytes()).hexdigest()
    served = server.log.read_text()  # read after the server stopped: every request it served is in
    assert "/evilorg/pickled/resolve/" not in served  # nothing of the pickle-only repo was downloaded
    assert "/etc" not in json.dumps(ver)
