"""`hf-unlearn publish` without a network: discovery, dry run, the git mirror target, and the Hub target's requests.

The Hub target runs huggingface_hub's real client code: ``HfApi`` builds and sends every request (create repo, tree,
refs, preupload, LFS batch and PUT, NDJSON commit, tag, Space variables) and :class:`RecordingHub` answers them
from memory through an ``httpx2.MockTransport`` (``huggingface_hub.set_client_factory``), keeping each repo's files
as the bytes those requests carried. The same workspace published to the git mirror must give byte-identical repos,
file for file (``git show main:PATH``): the bytes published are the bytes olah serves
(tests/test_publish_olah_e2e.py then loads them back through olah). Artefacts here are fake bytes in the right
layout: publishing never parses weights or parquet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from hf_unlearn.cli import main
from hf_unlearn.hub import HubAccessError
from hf_unlearn.publish import (LEADERBOARD_SPACE, REFERENCES_REPO, HubTarget, MirrorTarget, PublishError,
                                checkpoint_repo_name, discover, publish, push_checkpoint)

ORG = "ORG"
DATASET_CARD = """---
configs:
- config_name: eps0.1-b5-s0
  data_files:
  - split: train
    path: data/eps0.1-b5-s0/train-*.parquet
---
# a dataset card
"""


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def fake_dataset(folder: Path, seed: int = 0) -> Path:
    rng = random.Random(seed)
    write(folder / "README.md", DATASET_CARD)
    write(folder / "data" / "eps0.1-b5-s0" / "train-00000-of-00001.parquet", rng.randbytes(5000))
    write(folder / ".build-tmp" / "junk.parquet", b"half-written")  # an interrupted build's temporary folder
    return folder


def fake_checkpoint(folder: Path, seed: int = 0) -> Path:
    rng = random.Random(seed)
    write(folder / "model.safetensors", rng.randbytes(4000))
    write(folder / "config.json", json.dumps({"width": 4}))
    write(folder / "training_summary.json", json.dumps({"seed": seed, "training_cost": 1.0}))
    write(folder / "README.md", f"---\nlibrary_name: hf-unlearn\n---\n# model {seed}\n")
    write(folder / "checkpoints" / "epoch_1" / "model.safetensors", b"resume state")
    write(folder / ".DS_Store", b"hidden")
    return folder


@pytest.fixture
def workspace(tmp_path):
    """A benchmark-like workspace: a dataset repo, a poisoned and an unlearned checkpoint, and decoys."""
    ws = tmp_path / "ws"
    fake_dataset(ws / "runs" / "benchmark" / "poisoned-cifar10-gaussian")
    fake_checkpoint(ws / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "poisoned", 1)
    fake_checkpoint(ws / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "ga-b0.1-s0", 2)
    fake_checkpoint(ws / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "tuning" / "ga-cell0", 3)  # grid: skipped
    write(ws / "poisoned-notes" / "README.md", "# no configs: not a dataset repo\n")
    fake_checkpoint(ws / ".cache" / "hidden-model", 4)
    write(ws / "runs" / "half" / "model.safetensors", b"no config or summary: not a checkpoint")
    fake_dataset(ws / "old-mirror" / "datasets" / ORG / "poisoned-cifar10-gaussian")  # a git work tree: not ours
    (ws / "old-mirror" / "datasets" / ORG / "poisoned-cifar10-gaussian" / ".git").mkdir()
    return ws


def git_files(repo: Path) -> dict[str, bytes]:
    """Every file of ``main`` in a mirror repo, as git serves its bytes."""
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", "-z", "main"], cwd=repo, check=True,
                           capture_output=True).stdout.decode().split("\0")
    return {n: subprocess.run(["git", "show", f"main:{n}"], cwd=repo, check=True, capture_output=True).stdout
            for n in names if n}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def run_publish(target, ws: Path, **kwargs):
    kwargs.setdefault("spaces", False)
    return publish(ORG, target, root=ws, progress=False, **kwargs)


# --------------------------------------------------------------------------------------------- discovery


def test_discovery_finds_repos_and_checkpoints_and_skips_decoys(workspace):
    found = discover(workspace)
    assert [p.relative_to(workspace).as_posix() for p in found.datasets] == ["runs/benchmark/poisoned-cifar10-gaussian"]
    assert sorted(p.relative_to(workspace).as_posix() for p in found.checkpoints) == [
        "runs/benchmark/models/eps0.1-b5-s0/ga-b0.1-s0", "runs/benchmark/models/eps0.1-b5-s0/poisoned"]
    names = sorted(checkpoint_repo_name(p, workspace) for p in found.checkpoints)
    assert names == ["benchmark-eps0.1-b5-s0-ga-b0.1-s0", "benchmark-eps0.1-b5-s0-poisoned"]


def test_checkpoint_names_are_hub_valid(tmp_path):
    assert checkpoint_repo_name(tmp_path / "runs" / "my run..v2--x" / "a b", tmp_path) == "my-run.v2-x-a-b"
    assert checkpoint_repo_name(tmp_path / "x" / ("n" * 120), tmp_path) == "n" * 96
    assert checkpoint_repo_name(Path("/elsewhere/demo.git"), tmp_path) == "demo"


def test_named_folders_are_checked_and_collisions_refused(workspace, tmp_path):
    with pytest.raises(PublishError, match="not a checkpoint folder"):
        discover(workspace, checkpoints=[workspace / "runs" / "half"], search=False)
    with pytest.raises(PublishError, match="not a dataset repo folder"):
        discover(workspace, datasets=[workspace / "poisoned-notes"], search=False)
    fake_dataset(workspace / "demo_output" / "poisoned-cifar10-gaussian", seed=9)  # a second repo of the same name
    with pytest.raises(PublishError, match="would both be the dataset repo ORG/poisoned-cifar10-gaussian"):
        run_publish(MirrorTarget(tmp_path / "mirror"), workspace, dry_run=True)


# --------------------------------------------------------------------------------------------- dry run and mirror


def test_dry_run_lists_actions_and_writes_nothing(workspace, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    actions = run_publish(MirrorTarget(mirror), workspace, dry_run=True, tag="v1")
    assert not mirror.exists()
    assert [(a.repo.repo_type, a.repo.repo_id, a.action) for a in actions] == [
        ("dataset", f"{ORG}/poisoned-cifar10-gaussian", "create"),
        ("model", f"{ORG}/benchmark-eps0.1-b5-s0-ga-b0.1-s0", "create"),
        ("model", f"{ORG}/benchmark-eps0.1-b5-s0-poisoned", "create"),
    ]
    out = capsys.readouterr().out
    assert re.search(r"^model +ORG/benchmark-eps0.1-b5-s0-poisoned +create +4 +0 +0 +v1 \(new\)$", out, re.M), out
    assert "dry run: nothing written" in out
    # Uploaded files: no hidden file, no resume state, no half-written build.
    assert sorted(actions[1].repo.files) == ["README.md", "config.json", "model.safetensors", "training_summary.json"]
    assert sorted(actions[0].repo.files) == ["README.md", "data/eps0.1-b5-s0/train-00000-of-00001.parquet"]


def test_mirror_first_run_commits_second_is_a_no_op_then_only_changes(workspace, tmp_path):
    mirror = tmp_path / "mirror"
    target = MirrorTarget(mirror)
    first = run_publish(target, workspace, tag="v1")
    model_repo = mirror / "models" / ORG / "benchmark-eps0.1-b5-s0-poisoned"
    local = workspace / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "poisoned"
    names = ("README.md", "config.json", "model.safetensors", "training_summary.json")
    assert git_files(model_repo) == {n: (local / n).read_bytes() for n in names}
    assert (model_repo / "model.safetensors").read_bytes() == (local / "model.safetensors").read_bytes()  # work tree
    head = git(model_repo, "rev-parse", "main")
    assert [a.commit for a in first if a.repo.repo_id.endswith("-poisoned")] == [head]
    assert git(model_repo, "rev-parse", "v1^{commit}") == head
    assert git(model_repo, "log", "-1", "--format=%an <%ae>") == "hf-unlearn <hf-unlearn@users.noreply.huggingface.co>"

    second = run_publish(target, workspace, tag="v1")
    assert [a.action for a in second] == ["unchanged"] * 3
    assert git(model_repo, "rev-parse", "main") == head and git(model_repo, "rev-list", "--count", "main") == "1"

    # One changed file and one deleted file: one new commit with exactly those, the rest untouched.
    write(local / "config.json", json.dumps({"width": 8}))
    (local / "README.md").unlink()
    dataset_head = git(mirror / "datasets" / ORG / "poisoned-cifar10-gaussian", "rev-parse", "main")
    third = {a.repo.repo_id: a for a in run_publish(target, workspace, tag="v2")}
    changed = third[f"{ORG}/benchmark-eps0.1-b5-s0-poisoned"]
    assert (changed.action, changed.changes.changed, changed.changes.deleted) == ("update", ("config.json",),
                                                                                 ("README.md",))
    assert git(model_repo, "diff", "--name-status", "v1", "main").splitlines() == ["D\tREADME.md", "M\tconfig.json"]
    assert git_files(model_repo)["config.json"] == b'{"width": 8}' and "README.md" not in git_files(model_repo)
    assert not (model_repo / "README.md").exists()  # the work tree shows what is served
    assert git(mirror / "datasets" / ORG / "poisoned-cifar10-gaussian", "rev-parse", "main") == dataset_head
    assert third[f"{ORG}/poisoned-cifar10-gaussian"].tag_action == "create"  # v2 on the unchanged commit
    assert git(model_repo, "rev-parse", "v2^{commit}") == git(model_repo, "rev-parse", "main")


def test_a_tag_names_one_commit(workspace, tmp_path):
    target = MirrorTarget(tmp_path / "mirror")
    run_publish(target, workspace, tag="v1")
    write(workspace / "runs" / "benchmark" / "poisoned-cifar10-gaussian" / "README.md", DATASET_CARD + "more\n")
    with pytest.raises(PublishError, match="tag v1 already names commit .* choose a new --tag"):
        run_publish(target, workspace, tag="v1")
    with pytest.raises(PublishError, match="--tag"):
        run_publish(target, workspace, tag="bad tag")


def test_references_repo_and_spaces_are_planned(workspace, tmp_path):
    from leaderboard.demo import synthetic_references
    from leaderboard.references import write_references

    refs = write_references(tmp_path / "refs.jsonl", synthetic_references(seed=0, seeds_per_method=1))
    actions = run_publish(MirrorTarget(tmp_path / "mirror"), workspace, references=refs, spaces=True, dry_run=True)
    by_id = {a.repo.repo_id: a.repo for a in actions}
    assert (by_id[f"{ORG}/{REFERENCES_REPO}"].repo_type, sorted(by_id[f"{ORG}/{REFERENCES_REPO}"].files)) == (
        "dataset", ["README.md", "references.jsonl"])
    assert by_id[f"{ORG}/{REFERENCES_REPO}"].files["references.jsonl"].sha256 == hashlib.sha256(
        refs.read_bytes()).hexdigest()
    assert {by_id[f"{ORG}/{n}"].repo_type for n in ("gus", "tpr_at_fpr", LEADERBOARD_SPACE)} == {"space"}
    assert {"gus.py", "app.py", "requirements.txt", "README.md"} <= set(by_id[f"{ORG}/gus"].files)
    assert {"app.py", "leaderboard/store.py", "hf_unlearn/results.py"} <= set(by_id[f"{ORG}/{LEADERBOARD_SPACE}"].files)
    assert not any("__pycache__" in p for p in by_id[f"{ORG}/{LEADERBOARD_SPACE}"].files)
    write(tmp_path / "bad.jsonl", '{"method": "ga"}\n')
    with pytest.raises(PublishError, match="bad record"):
        run_publish(MirrorTarget(tmp_path / "mirror"), workspace, references=tmp_path / "bad.jsonl", dry_run=True)


# --------------------------------------------------------------------------------------------- the Hub target


class RecordingHub:
    """The Hub's HTTP API in memory, answering huggingface_hub's own requests (its real client code builds them).

    Installed with ``huggingface_hub.set_client_factory`` and an ``httpx2.MockTransport``, so every request
    ``HfApi`` sends lands here and nothing reaches a network: repo creation, the tree and refs listings,
    preupload (files >= 1 kB are LFS), the LFS batch call and the PUT of each LFS object's bytes, the NDJSON
    commit (regular files' bytes base64, LFS files by sha256, deletions), tags and Space variables. A repo's
    files are the bytes these requests carried; the tree lists them as the Hub does (an LFS file's ``oid`` is
    its pointer's blob id, its ``lfs.oid`` the content's sha256). ``fail`` answers every request with an error.
    """

    LFS_MIN = 1024

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict] = {}  # (repo type, ORG/NAME) -> files, head, tags, variables
        self.lfs: dict[str, bytes] = {}  # sha256 -> the bytes PUT for it
        self.requests: list[tuple[str, str]] = []
        self.commits: list[dict] = []  # repo, message, parent, ops
        self.fail: tuple[int, str] | None = None

    def __call__(self, request):
        import httpx2

        path, body = request.url.path, request.read()
        self.requests.append((request.method, path))
        if self.fail is not None:
            return httpx2.Response(self.fail[0], json={"error": self.fail[1]})
        if request.method != "GET" and request.url.host != "lfs.test" and "authorization" not in request.headers:
            return httpx2.Response(401, json={"error": "Invalid username or password."})  # writes need a token
        if path == "/api/validate-yaml":  # huggingface_hub has the Hub check a README's front matter before a commit
            yaml_text = json.loads(body)["content"]
            return httpx2.Response(200 if yaml_text.startswith("---") else 400, json={"errors": [], "warnings": []})
        if path == "/api/repos/create":
            data = json.loads(body)
            key = (data.get("type", "model"), f"{data['organization']}/{data['name']}")
            if key in self.repos:
                return httpx2.Response(409, json={"error": "You already created this repo",
                                                  "url": f"https://huggingface.co/{key[1]}"})
            if key[0] == "space" and data.get("sdk") != "gradio":
                return httpx2.Response(400, json={"error": "a Space needs an sdk"})
            self.repos[key] = {"files": {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"},
                               "head": hashlib.sha1(repr(key).encode()).hexdigest(), "tags": {}, "variables": {}}
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{key[1]}"})
        if m := re.fullmatch(r"/api/(model|dataset|space)s/([^/]+/[^/]+)/(.+)", path):
            key, rest = (m[1], m[2]), m[3]
            if key not in self.repos:
                return httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"}, json={"error": "Repo not found"})
            return self._repo_call(key, self.repos[key], request.method, rest, body)
        if m := re.fullmatch(r"/(?:(dataset|space)s/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
            objects = json.loads(body)["objects"]
            return httpx2.Response(200, json={"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"],
                 **({} if o["oid"] in self.lfs else {"actions": {"upload": {"href": f"https://lfs.test/{o['oid']}"}}})}
                for o in objects]})
        if m := re.fullmatch(r"/([0-9a-f]{64})", path):
            assert hashlib.sha256(body).hexdigest() == m[1], "LFS bytes do not match their oid"
            self.lfs[m[1]] = body
            return httpx2.Response(200)
        return httpx2.Response(404, json={"error": f"not faked: {request.method} {path}"})

    def _repo_call(self, key, repo, method, rest, body):
        import httpx2

        if rest.startswith("tree/main"):
            return httpx2.Response(200, json=[self._tree_entry(p, b) for p, b in sorted(repo["files"].items())])
        if rest == "refs":
            return httpx2.Response(200, json={
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo["head"]}], "converts": [],
                "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in repo["tags"].items()]})
        if rest == "preupload/main":
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "lfs" if f["size"] >= self.LFS_MIN else "regular",
                 "shouldIgnore": False} for f in json.loads(body)["files"]]})
        if rest == "commit/main":
            return self._commit(key, repo, body)
        if rest.startswith("tag/"):
            tag, revision = json.loads(body)["tag"], rest[len("tag/"):]
            if tag in repo["tags"]:
                return httpx2.Response(409, json={"error": "tag exists"})
            repo["tags"][tag] = repo["head"] if revision == "main" else revision
            return httpx2.Response(200, json={})
        if rest == "variables" and method == "GET":
            return httpx2.Response(200, json={k: {"value": v} for k, v in repo["variables"].items()})
        if rest == "variables" and method == "POST":
            data = json.loads(body)
            repo["variables"][data["key"]] = data["value"]
            return httpx2.Response(200, json={k: {"value": v} for k, v in repo["variables"].items()})
        return httpx2.Response(404, json={"error": f"not faked: {method} {rest}"})

    def _tree_entry(self, path: str, data: bytes) -> dict:
        if len(data) < self.LFS_MIN:
            return {"type": "file", "path": path, "size": len(data), "oid": _blob_id(data)}
        sha256 = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
        return {"type": "file", "path": path, "size": len(data), "oid": _blob_id(pointer),
                "lfs": {"oid": sha256, "size": len(data), "pointerSize": len(pointer)}}

    def _commit(self, key, repo, body):
        import httpx2

        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, repo["head"]):
            return httpx2.Response(412, json={"error": "A commit has happened since. Please refresh and try again."})
        ops = []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                repo["files"][value["path"]] = base64.b64decode(value["content"])
                ops.append(("add", value["path"]))
            elif line["key"] == "lfsFile":
                repo["files"][value["path"]] = self.lfs[value["oid"]]  # an LFS file must have been uploaded first
                ops.append(("add", value["path"]))
            else:
                assert line["key"] == "deletedFile", line
                del repo["files"][value["path"]]
                ops.append(("delete", value["path"]))
        repo["head"] = hashlib.sha1(f"{repo['head']}{header['summary']}{ops}".encode()).hexdigest()
        self.commits.append({"repo": key, "message": header["summary"], "parent": header.get("parentCommit"),
                             "ops": ops})
        return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/{key[1]}/commit/{repo['head']}",
                                          "commitOid": repo["head"]})


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def hub(monkeypatch):
    """A RecordingHub behind huggingface_hub's HTTP client, with a token and no offline flag (conftest sets one)."""
    import httpx2
    import huggingface_hub.constants as constants
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import close_session, default_client_factory

    fake = RecordingHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # xet uploads run in Rust, outside the HTTP client
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    close_session()
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake), follow_redirects=True))
    yield fake
    close_session()
    set_client_factory(default_client_factory)


def test_hub_uploads_the_bytes_the_mirror_serves(workspace, tmp_path, hub):
    mirror = tmp_path / "mirror"
    run_publish(MirrorTarget(mirror), workspace, tag="v1")
    hub_actions = run_publish(HubTarget(), workspace, tag="v1")
    assert [a.action for a in hub_actions] == ["create"] * 3
    for (repo_type, repo_id), repo in hub.repos.items():
        served = git_files(mirror / f"{repo_type}s" / repo_id)
        uploaded = {p: b for p, b in repo["files"].items() if p != ".gitattributes"}
        assert uploaded == served, repo_id  # same paths, same bytes
        mirror_repo = mirror / f"{repo_type}s" / repo_id
        assert [c["message"] for c in hub.commits if c["repo"] == (repo_type, repo_id)] == [
            git(mirror_repo, "log", "-1", "--format=%s", "main")]
        assert repo["tags"] == {"v1": repo["head"]}

    # Second run: nothing differs (LFS files compare by sha256, small ones by blob id): no commit, no tag.
    n_commits = len(hub.commits)
    assert [a.action for a in run_publish(HubTarget(), workspace, tag="v1")] == ["unchanged"] * 3
    assert len(hub.commits) == n_commits

    # One changed weight file and one deleted card: one commit with exactly these two operations, on the head it saw.
    local = workspace / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "ga-b0.1-s0"
    write(local / "model.safetensors", random.Random(7).randbytes(4000))
    (local / "README.md").unlink()
    repo_id = f"{ORG}/benchmark-eps0.1-b5-s0-ga-b0.1-s0"
    parent = hub.repos[("model", repo_id)]["head"]
    run_publish(HubTarget(), workspace, tag="v2")
    assert hub.commits[n_commits:] == [{
        "repo": ("model", repo_id), "parent": parent, "ops": [("add", "model.safetensors"), ("delete", "README.md")],
        "message": "hf-unlearn publish: checkpoint ga-b0.1-s0 (0 added, 1 changed, 1 deleted)"}]
    assert hub.repos[("model", repo_id)]["files"][".gitattributes"]  # the Hub's own file is left alone
    run_publish(MirrorTarget(mirror), workspace, tag="v2")
    assert git_files(mirror / "models" / repo_id) == {
        p: b for p, b in hub.repos[("model", repo_id)]["files"].items() if p != ".gitattributes"}


def test_hub_errors_are_one_line_with_the_auth_hint(workspace, hub, capsys, monkeypatch, tmp_path):
    hub.fail = (403, "You don't have the rights to create a model under the namespace ORG")
    with pytest.raises(HubAccessError, match="HF_TOKEN"):
        run_publish(HubTarget(), workspace)
    code = main(["publish", "--namespace", ORG, "--from", str(workspace), "--no-spaces", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("hf-unlearn publish: error: ") and "HF_TOKEN" in err[0] and "403" in err[0]
    # No token: the Hub refuses the first write (401), and nothing was created.
    hub.fail = None
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    code = main(["publish", "--namespace", ORG, "--from", str(workspace), "--no-spaces", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "HF_TOKEN" in err[-1] and "401" in err[-1], err
    assert not hub.repos and not hub.commits


def test_offline_hub_is_one_line_error(workspace, capsys, monkeypatch):
    """The real request layer, no fake: HF_HUB_OFFLINE (set by conftest) refuses the first call."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code = main(["publish", "--namespace", ORG, "--from", str(workspace), "--no-spaces", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "OfflineModeIsEnabled" in err[0] and "HF_TOKEN" in err[0], err


def test_cli_publish_to_a_mirror_and_bad_namespace(workspace, capsys):
    mirror = workspace / "mirror"  # inside the workspace: its repos are not taken for the workspace's artefacts
    for expected in ("3 repos: 3 were created", "3 repos: 0 were created, 0 were updated, 3 unchanged"):
        code = main(["publish", "--namespace", ORG, "--from", str(workspace), "--mirror", str(mirror),
                     "--no-spaces", "--no-progress", "--tag", "v1"])
        out = capsys.readouterr().out
        assert code == 0 and expected in out, out
    assert (mirror / "datasets" / ORG / "poisoned-cifar10-gaussian" / ".git").is_dir()
    code = main(["publish", "--namespace", "bad--org", "--from", str(workspace), "--no-spaces", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("hf-unlearn publish: error: --namespace") and "\n" not in err


def test_push_checkpoint_and_train_flag(workspace, hub, capsys):
    folder = workspace / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "poisoned"
    first = push_checkpoint(folder, f"{ORG}/one")
    assert first.action == "create" and first.commit == hub.repos[("model", f"{ORG}/one")]["head"]
    assert push_checkpoint(folder, f"{ORG}/one").action == "unchanged"
    assert len(hub.commits) == 1
    capsys.readouterr()  # the upload's progress bars
    # A bad repo id fails before any training, in one line.
    code = main(["train", "--dataset", str(workspace), "--config", "x", "--push-to-hub", "no-slash", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "hf-unlearn train: error: --push-to-hub 'no-slash': expected ORG/NAME"
    code = main(["unlearn", "--checkpoint", str(folder), "--dataset", str(workspace), "--config", "x",
                 "--method", "none", "--push-to-hub", f"{ORG}/x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "method none writes no checkpoint" in err and "\n" not in err


def test_train_push_to_hub_uploads_the_saved_folder(tiny_variant, tmp_path, hub, capsys, one_torch_thread):
    folder, cfg = tiny_variant
    out_dir = tmp_path / "m"
    code = main(["train", "--dataset", str(folder), "--config", cfg.name, "--output-dir", str(out_dir),
                 "--task", "cifar10", "--attack", "gaussian", "--set", "train.epochs=1", "--set", "train.width=4",
                 "--no-progress", "--cpu", "--push-to-hub", f"{ORG}/tiny"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    repo = hub.repos[("model", f"{ORG}/tiny")]
    assert printed["pushed"] == {"repo_id": f"{ORG}/tiny", "action": "create", "commit": repo["head"]}
    saved = {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert {"model.safetensors", "config.json", "training_summary.json", "README.md"} <= set(saved)
    assert {p: b for p, b in repo["files"].items() if p != ".gitattributes"} == saved

    hub.fail = (403, "no write access")
    code = main(["train", "--dataset", str(folder), "--config", cfg.name, "--output-dir", str(tmp_path / "m2"),
                 "--task", "cifar10", "--attack", "gaussian", "--set", "train.epochs=1", "--set", "train.width=4",
                 "--no-progress", "--cpu", "--push-to-hub", f"{ORG}/tiny2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("hf-unlearn train: error: "), err
    assert f"{tmp_path / 'm2'} is saved, but pushing it failed" in err[-1] and "HF_TOKEN" in err[-1]
    assert (tmp_path / "m2" / "model.safetensors").is_file()


def test_hub_leaderboard_space_gets_the_settings_that_name_its_repos(workspace, tmp_path, hub, capsys):
    from leaderboard.demo import synthetic_references
    from leaderboard.references import write_references

    write_references(workspace / "references.jsonl", synthetic_references(seed=0, seeds_per_method=1))
    actions = run_publish(HubTarget(), workspace, spaces=True, tag="v1")
    space = f"{ORG}/{LEADERBOARD_SPACE}"
    assert {a.repo.repo_id for a in actions} >= {space, f"{ORG}/gus", f"{ORG}/tpr_at_fpr", f"{ORG}/{REFERENCES_REPO}"}
    assert hub.repos[("space", space)]["variables"] == {
        "LEADERBOARD_DATASETS": f"cifar10/gaussian={ORG}/poisoned-cifar10-gaussian@v1",
        "LEADERBOARD_REFERENCES": f"hf://datasets/{ORG}/{REFERENCES_REPO}"}
    assert "LEADERBOARD_VERIFIER_KEY" in capsys.readouterr().out
    n_requests = len(hub.requests)
    assert {a.action for a in run_publish(HubTarget(), workspace, spaces=True, tag="v1")} == {"unchanged"}
    # Settings already right, files unchanged, tags there: only reads (no commit, tag or variable set).
    assert {m for m, _ in hub.requests[n_requests:]} == {"GET"}


def test_an_interrupted_run_is_finished_by_the_next(workspace, tmp_path):
    """Cut short after the first repo's commit (before its tag), then run again: only what is missing is done."""
    mirror = tmp_path / "mirror"

    class Interrupted(MirrorTarget):
        def tag(self, *args, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_publish(Interrupted(mirror), workspace, tag="v1")
    dataset_repo = mirror / "datasets" / ORG / "poisoned-cifar10-gaussian"
    assert git(dataset_repo, "tag") == "" and not (mirror / "models").exists()
    rerun = run_publish(MirrorTarget(mirror), workspace, tag="v1")
    assert [(a.action, a.tag_action) for a in rerun] == [("unchanged", "create"), ("create", "create"),
                                                         ("create", "create")]
    assert git(dataset_repo, "rev-list", "--count", "main") == "1"
    assert git(dataset_repo, "rev-parse", "v1^{commit}") == git(dataset_repo, "rev-parse", "main")


def test_a_concurrent_push_is_not_overwritten(workspace, hub):
    from hf_unlearn.publish import compare, run_action

    run_publish(HubTarget(), workspace)
    folder = workspace / "runs" / "benchmark" / "models" / "eps0.1-b5-s0" / "poisoned"
    write(folder / "config.json", "{}")
    action = compare(next(a.repo for a in run_publish(HubTarget(), workspace, dry_run=True)
                          if a.repo.repo_id.endswith("-poisoned")), HubTarget())
    hub.repos[("model", action.repo.repo_id)]["head"] = "f" * 40  # someone else pushed meanwhile
    with pytest.raises(PublishError, match="changed while publishing .* run publish again"):
        run_action(action, HubTarget())


def test_an_empty_workspace_is_an_error(tmp_path):
    with pytest.raises(PublishError, match="nothing to publish"):
        run_publish(MirrorTarget(tmp_path / "mirror"), tmp_path, dry_run=True)


def test_the_leaderboard_space_card_names_the_datasets_under_the_published_namespace(tmp_path):
    from huggingface_hub import SpaceCard

    from hf_unlearn.publish import stage_leaderboard

    shipped = SpaceCard.load(Path(__file__).resolve().parents[1] / "space" / "README.md").data.datasets
    card = SpaceCard.load(stage_leaderboard(tmp_path / "space", "ACME") / "README.md")
    assert card.data.datasets == [f"ACME/{d.split('/', 1)[1]}" for d in shipped]
    assert "leaderboard" in card.data.tags and len(shipped) == 5
