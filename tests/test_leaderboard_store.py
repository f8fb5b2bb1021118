"""The store: content addresses, atomic writes, tamper detection, concurrent writers (local and Hub)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from leaderboard.demo import synthetic_record
from leaderboard.store import HubStore, LocalStore, StoreError
from leaderboard.submission import (
    DuplicateSubmissionError,
    SubmissionError,
    build_submission,
    canonical_json,
    record_key,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_submission(i: int, submitter: str | None = None, n_records: int = 2):
    rng = random.Random(i)
    records = [
        synthetic_record(rng, "cifar10", "gaussian", "eps0.1-b1.5-s0", "scrub", 100 * i + k, 0.05)
        for k in range(n_records)
    ]
    return build_submission(records, submitter=submitter or f"team {i}")


def test_layout_content_address_and_reload(tmp_path):
    store = LocalStore(tmp_path)
    sub = make_submission(1)
    stored = store.add(sub)
    path = tmp_path / "submissions" / f"{sub.id}.json"
    assert path.is_file()
    data = json.loads(path.read_text())
    assert data["id"] == sub.id and data["received_at"] == stored.received_at
    body = {k: v for k, v in data.items() if k not in ("id", "received_at")}
    assert hashlib.sha256(canonical_json(body).encode()).hexdigest() == sub.id == path.stem
    fresh = LocalStore(tmp_path)
    [again] = fresh.submissions()
    assert again.id == sub.id and again.submission.records == sub.records
    assert not fresh.problems
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []


def test_tampered_or_foreign_files_are_skipped_and_reported(tmp_path):
    store = LocalStore(tmp_path)
    good, bad = make_submission(1), make_submission(2)
    store.add(good)
    store.add(bad)
    path = tmp_path / "submissions" / f"{bad.id}.json"
    data = json.loads(path.read_text())
    data["records"][0]["metrics"]["tpr_at_fpr_0.01"] = 0.0  # a better score, edited in place
    path.write_text(json.dumps(data))
    (tmp_path / "submissions" / "notes.json").write_text("{}")
    (tmp_path / "submissions" / f"{'0' * 64}.json").write_text('{"format": 1, "records": NaN}')
    fresh = LocalStore(tmp_path)
    assert [s.id for s in fresh.submissions()] == [good.id]
    problems = "\n".join(fresh.problems)
    assert "content hash" in problems and "not a SHA-256" in problems and "NaN is not allowed" in problems


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)
    sub = make_submission(1)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(OSError, match="disk full"):
        store.add(sub)
    monkeypatch.undo()
    assert not any(p.is_file() and p.name != ".lock" for p in tmp_path.rglob("*"))
    assert LocalStore(tmp_path).submissions() == []
    store.add(sub)  # and the same submission goes in once the disk is back
    assert len(LocalStore(tmp_path).submissions()) == 1


def test_verifications_are_content_addressed_and_latest_wins(tmp_path):
    store = LocalStore(tmp_path)
    sub = make_submission(1)
    store.add(sub)
    base = {"submission": sub.id, "records": [], "scoring_seed": 0}
    store.add_verification({**base, "status": "mismatch", "checked_at": "2025-01-01T00:00:00+00:00"})
    store.add_verification({**base, "status": "verified", "checked_at": "2025-02-01T00:00:00+00:00"})
    assert LocalStore(tmp_path).verifications()[sub.id]["status"] == "verified"
    assert len(list((tmp_path / "verifications" / sub.id).glob("*.json"))) == 2
    with pytest.raises(StoreError, match="status"):
        store.add_verification({**base, "status": "trust me", "checked_at": "2025-03-01T00:00:00+00:00"})


def _expected_outcomes(subs):
    """20 distinct submissions + 2 exact resends + 2 copies of others' records under new names."""
    distinct = subs[:20]
    resend = [distinct[3], distinct[11]]
    copies = [build_submission(distinct[5].records, submitter="copycat"),
              build_submission(distinct[17].records[:1], submitter="copycat 2")]
    return distinct, resend + copies


def check_outcome(results, distinct, hostile, stored: list) -> None:
    """Whichever of two conflicting submissions arrives first wins; nothing is lost or stored twice."""
    accepted = [value for status, value in results if status == "ok"]
    rejected = [value for status, value in results if status == "rejected"]
    assert len(accepted) == 20 and len(set(accepted)) == 20, results
    assert len(rejected) == 4 and all("already" in r for r in rejected), rejected
    assert sorted(s.id for s in stored) == sorted(accepted), "an accepted submission is missing from the store"
    groups = [{d.id} for d in distinct]
    groups[5].add(hostile[2].id)
    groups[17].add(hostile[3].id)
    for group in groups:
        assert len(group & set(accepted)) == 1, "each submission (or the copy that beat it) is in exactly once"
    keys = [record_key(r) for s in stored for r in s.submission.records]
    assert len(keys) == len(set(keys)), "a record is stored twice"


def test_concurrent_processes_lose_and_duplicate_nothing(tmp_path):
    distinct, hostile = _expected_outcomes([make_submission(i) for i in range(20)])
    jobs = distinct + hostile
    store_dir = tmp_path / "store"
    script = (
        "import json, os, sys, time\n"
        "from leaderboard.store import LocalStore\n"
        "from leaderboard.submission import SubmissionError, submission_from_dict\n"
        "sub = submission_from_dict(json.load(open(sys.argv[1])))\n"
        "open(sys.argv[1] + '.ready', 'w').close()\n"
        "while not os.path.exists(sys.argv[3]): time.sleep(0.002)\n"
        "try:\n"
        "    print('ok', LocalStore(sys.argv[2]).add(sub).id)\n"
        "except SubmissionError as exc:\n"
        "    print('rejected', exc)\n"
    )
    go = tmp_path / "go"
    procs = []
    for i, sub in enumerate(jobs):
        spec = tmp_path / f"sub{i}.json"
        spec.write_text(json.dumps(sub.to_dict()))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", script, str(spec), str(store_dir), str(go)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"sub{i}.json.ready").exists() for i in range(len(jobs))):
        assert time.monotonic() < deadline, "writer processes did not start"
        time.sleep(0.05)
    go.touch()  # all 24 writers are waiting: release them at once
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outputs.append(out.strip())
    results = [tuple(o.split(" ", 1)) for o in outputs]
    check_outcome(results, distinct, hostile, LocalStore(store_dir).submissions())
    assert len(list((store_dir / "submissions").glob("*.json"))) == 20
    assert not list(store_dir.rglob(".tmp-*"))


def test_concurrent_threads_lose_and_duplicate_nothing(tmp_path):
    distinct, hostile = _expected_outcomes([make_submission(i) for i in range(20)])
    store = LocalStore(tmp_path)
    barrier = threading.Barrier(len(distinct) + len(hostile))

    def add(sub):
        barrier.wait()
        try:
            return "ok", store.add(sub).id
        except DuplicateSubmissionError as exc:
            return "rejected", str(exc)

    with ThreadPoolExecutor(len(distinct) + len(hostile)) as pool:
        results = list(pool.map(add, distinct + hostile))
    check_outcome(results, distinct, hostile, LocalStore(tmp_path).submissions())


# --- Hub sync ----------------------------------------------------------------------------------


class FakeHub:
    """The four HfApi methods HubStore uses, with the Hub's parent_commit rule and a race window."""

    def __init__(self, delay: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.delay = delay
        root = "0" * 40
        self.head = root
        self.trees: dict[str, dict[str, bytes]] = {root: {}}
        self.conflicts = 0
        self.overwrites = 0
        self.parents: list[str | None] = []

    def repo_info(self, repo_id, repo_type=None):
        with self.lock:
            return SimpleNamespace(sha=self.head)

    def list_repo_files(self, repo_id, repo_type=None, revision=None):
        return sorted(self.trees[revision])

    def hf_hub_download(self, repo_id, filename, repo_type=None, revision=None, local_dir=None):
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.trees[revision][filename])
        return str(path)

    def create_commit(self, repo_id, operations, commit_message, repo_type=None, parent_commit=None):
        from huggingface_hub.errors import HfHubHTTPError

        time.sleep(self.delay)  # the upload takes time: others may commit meanwhile
        with self.lock:
            self.parents.append(parent_commit)
            if parent_commit is not None and parent_commit != self.head:
                self.conflicts += 1
                raise HfHubHTTPError(
                    "412 Precondition Failed: A commit has happened since. Please refresh and try again.",
                    response=SimpleNamespace(status_code=412, headers={}, request=None),
                )
            tree = dict(self.trees[self.head])
            for op in operations:
                self.overwrites += op.path_in_repo in tree
                tree[op.path_in_repo] = bytes(op.path_or_fileobj)
            new = hashlib.sha1(f"{self.head}{len(self.trees)}".encode()).hexdigest()
            self.trees[new] = tree
            self.head = new
            return SimpleNamespace(oid=new)


def test_hub_store_concurrent_writers_commit_on_top_of_each_other(tmp_path):
    hub = FakeHub(delay=0.01)
    distinct, hostile = _expected_outcomes([make_submission(i) for i in range(20)])
    jobs = distinct + hostile
    # Each writer is a separate replica with its own mirror folder, as two Space instances would be.
    writers = [HubStore("org/board", tmp_path / f"mirror{i}", api=hub, max_attempts=60) for i in range(len(jobs))]
    barrier = threading.Barrier(len(jobs))

    def add(args):
        writer, sub = args
        barrier.wait()
        try:
            return "ok", writer.add(sub).id
        except SubmissionError as exc:
            return "rejected", str(exc)

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(add, zip(writers, jobs, strict=True)))
    reader = HubStore("org/board", tmp_path / "reader", api=hub)
    reader.pull()
    check_outcome(results, distinct, hostile, reader.submissions())
    accepted = sorted(r[1] for r in results if r[0] == "ok")
    files = sorted(f for f in hub.trees[hub.head] if f.startswith("submissions/"))
    assert files == [f"submissions/{i}.json" for i in accepted]
    assert hub.overwrites == 0
    assert all(p is not None for p in hub.parents), "every commit must name its parent"
    assert hub.conflicts > 0, "the race window should have made some commits retry"


def test_hub_store_stale_mirror_still_detects_duplicates(tmp_path):
    hub = FakeHub()
    a = HubStore("org/board", tmp_path / "a", api=hub)
    b = HubStore("org/board", tmp_path / "b", api=hub)
    b.pull()  # b's view predates a's commit
    sub = make_submission(7)
    a.add(sub)
    with pytest.raises(DuplicateSubmissionError):
        b.add(build_submission(sub.records, submitter="someone else"))
    assert sum(f.startswith("submissions/") for f in hub.trees[hub.head]) == 1


def test_hub_errors_other_than_conflicts_propagate(tmp_path):
    hub = FakeHub()

    def refuse(*args, **kwargs):
        from huggingface_hub.errors import HfHubHTTPError

        raise HfHubHTTPError("403 Forbidden", response=SimpleNamespace(status_code=403, headers={}, request=None))

    hub.create_commit = refuse
    store = HubStore("org/board", tmp_path, api=hub)
    with pytest.raises(Exception, match="403"):
        store.add(make_submission(1))
    assert not list((tmp_path / "submissions").glob("*.json")) if (tmp_path / "submissions").exists() else True


def test_hub_pull_does_not_mirror_oversized_or_misnamed_files(tmp_path):
    hub = FakeHub()
    store = HubStore("org/board", tmp_path / "a", api=hub)
    store.add(make_submission(1))
    head = hub.head
    tree = dict(hub.trees[head])
    tree[f"submissions/{'e' * 64}.json"] = b" " * (3 * 2**20)  # over the stored-submission cap
    tree[f"verifications/{'e' * 64}/{'f' * 64}.json"] = b" " * (5 * 2**20)  # over the verification cap
    tree["submissions/../../escape.json"] = b"{}"
    hub.trees["1" * 40] = tree
    hub.head = "1" * 40
    reader = HubStore("org/board", tmp_path / "b", api=hub)
    reader.pull()
    files = sorted(str(p.relative_to(tmp_path / "b")) for p in (tmp_path / "b").rglob("*.json"))
    assert files == [f"submissions/{make_submission(1).id}.json"]
    assert not (tmp_path / "escape.json").exists()


def test_add_verification_refuses_malformed_documents(tmp_path):
    store = LocalStore(tmp_path, verifier_key=b"k" * 32)
    sub = make_submission(1)
    store.add(sub)
    base = {"submission": sub.id, "status": "verified", "checked_at": "2025-01-01T00:00:00+00:00"}
    for records, why in (([{"record": 5, "status": "verified"}], "names no record"),
                         ([{"record": 0, "status": "verified", "recomputed": {"gus": "high"}}], "'recomputed'"),
                         ("all", "'records' is not a list")):
        with pytest.raises(StoreError, match=why):
            store.add_verification({**base, "records": records})
    with pytest.raises(StoreError, match="no such submission"):
        store.add_verification({**base, "submission": "f" * 64, "records": []})
    path = store.add_verification({**base, "records": [{"record": 0, "status": "verified", "recomputed": {"gus": 0.1}}]})
    stored = json.loads((tmp_path / path).read_text())
    assert set(stored["attestation"]) == {"submission_sha256", "hmac"}
    assert LocalStore(tmp_path, verifier_key=b"k" * 32).verifications()[sub.id]["status"] == "verified"
    assert sub.id not in LocalStore(tmp_path, verifier_key=b"z" * 32).verifications(), "another key: not trusted"
