"""The leaderboard store: one JSON file per submission, named by its content hash.

Layout of a store folder (the same layout lives in a Hub dataset repo)::

    submissions/<sha256>.json                 one submission, never rewritten
    verifications/<submission>/<sha256>.json  one verification run, never rewritten

Files are written atomically: the bytes go to a temporary file in the same
folder, are flushed to disk, and are then hard-linked to their final name,
which fails if the name exists, so nothing is ever overwritten. A lock file
serialises the duplicate and rate-limit checks with the write across threads
and processes. Every file read back is validated again (stored files are
untrusted too) and a file whose name does not match its content hash is
skipped and reported in ``problems``.

``HubStore`` keeps the same folder in sync with a Hub dataset repo: it pulls
the files it lacks, runs the same checks, and commits with ``parent_commit``
set to the revision it checked against, so a concurrent writer makes the
commit fail instead of being overwritten; it then pulls and tries again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from leaderboard.submission import (
    DEFAULT_LIMITS,
    DuplicateSubmissionError,
    Limits,
    RateLimitError,
    Submission,
    SubmissionError,
    canonical_json,
    loads_strict,
    submission_from_dict,
)

SUBMISSIONS_DIR = "submissions"
VERIFICATIONS_DIR = "verifications"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
VERIFICATION_STATUSES = ("verified", "mismatch", "failed", "pending", "unsupported")


class StoreError(RuntimeError):
    """The store could not be read or written (not the submitter's fault)."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_submissions`` per submitter name within ``window_s`` seconds."""

    max_submissions: int = 5
    window_s: float = 3600.0


@dataclass(frozen=True)
class StoredSubmission:
    id: str
    submission: Submission
    received_at: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _write_new_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically, never replacing it; False if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True
    finally:
        os.unlink(tmp)


def submission_bytes(submission: Submission, received_at: str) -> bytes:
    payload = submission.to_dict()
    payload["id"] = submission.id
    payload["received_at"] = received_at
    return (json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def verification_bytes(verification: dict[str, Any]) -> tuple[str, bytes]:
    data = (canonical_json(verification) + "\n").encode()
    return hashlib.sha256(data).hexdigest(), data


class LocalStore:
    """A folder of submissions; see the module docstring for the layout and guarantees."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        rate_limit: RateLimit | None = None,
        limits: Limits = DEFAULT_LIMITS,
        allow_local_checkpoints: bool = True,
    ) -> None:
        self.root = Path(root)
        self.rate_limit = rate_limit
        self.limits = limits
        self.allow_local_checkpoints = allow_local_checkpoints
        self.problems: list[str] = []
        self._cache: dict[str, StoredSubmission] = {}
        self._bad: dict[str, str] = {}
        self._vcache: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, tuple[str, int]] = {}  # record key -> (submission id, record index)
        self._thread_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    # --- reading ------------------------------------------------------------------------

    def fingerprint(self) -> tuple[int, int]:
        """Cheap change detector: (number of entries, newest mtime) of the two folders."""
        counts, newest = 0, 0
        for name in (SUBMISSIONS_DIR, VERIFICATIONS_DIR):
            folder = self.root / name
            try:
                newest = max(newest, folder.stat().st_mtime_ns)
                with os.scandir(folder) as it:
                    for entry in it:
                        counts += 1
                        if entry.is_dir():
                            newest = max(newest, entry.stat().st_mtime_ns)
            except FileNotFoundError:
                continue
        return counts, newest

    def _read_submission(self, path: Path) -> StoredSubmission:
        size = path.stat().st_size
        if size > 2 * self.limits.max_bytes + 65_536:
            raise SubmissionError(f"{size:,} bytes, over the store's limit")
        data = loads_strict(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise SubmissionError("not a JSON object")
        sub = submission_from_dict(data, allow_local_checkpoints=True, limits=self.limits)
        if sub.id != path.stem:
            raise SubmissionError(f"content hash {sub.id[:12]} does not match the file name")
        received = data.get("received_at")
        if not isinstance(received, str):
            raise SubmissionError("missing received_at")
        try:
            datetime.fromisoformat(received)
        except ValueError:
            raise SubmissionError(f"received_at {received[:40]!r} is not an ISO timestamp") from None
        return StoredSubmission(id=sub.id, submission=sub, received_at=received)

    def submissions(self) -> list[StoredSubmission]:
        """Every valid submission, oldest first; new files are read, known ones come from a cache."""
        with self._thread_lock:
            folder = self.root / SUBMISSIONS_DIR
            try:
                names = {n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")}
            except FileNotFoundError:
                names = set()
            gone = set(self._cache) - {n[:-5] for n in names}
            for sub_id in gone:
                self._cache.pop(sub_id, None)
            if gone:
                self._keys = {k: v for k, v in self._keys.items() if v[0] not in gone}
            for name in sorted(names):
                stem = name[:-5]
                if stem in self._cache or name in self._bad:
                    continue
                if not _SHA_RE.match(stem):
                    self._bad[name] = "file name is not a SHA-256 hex digest"
                    continue
                try:
                    stored = self._read_submission(folder / name)
                except (SubmissionError, OSError, UnicodeDecodeError) as exc:
                    self._bad[name] = str(exc)
                    continue
                self._remember(stored)
            self.problems = [f"{SUBMISSIONS_DIR}/{n}: {why}" for n, why in sorted(self._bad.items()) if n in names]
            return sorted(self._cache.values(), key=lambda s: (s.received_at, s.id))

    def _remember(self, stored: StoredSubmission) -> None:
        self._cache[stored.id] = stored
        for i, key in enumerate(stored.submission.record_keys):
            self._keys.setdefault(key, (stored.id, i))

    def get(self, submission_id: str) -> StoredSubmission | None:
        self.submissions()
        return self._cache.get(submission_id)

    def verifications(self) -> dict[str, dict[str, Any]]:
        """The latest verification of each submission (by ``checked_at``), keyed by submission id."""
        with self._thread_lock:
            out: dict[str, dict[str, Any]] = {}
            folder = self.root / VERIFICATIONS_DIR
            try:
                subdirs = [d for d in os.listdir(folder) if _SHA_RE.match(d)]
            except FileNotFoundError:
                return out
            for sub_id in subdirs:
                try:
                    names = [n for n in os.listdir(folder / sub_id) if _SHA_RE.match(n[:-5]) and n.endswith(".json")]
                except (FileNotFoundError, NotADirectoryError):
                    continue
                best = None
                for name in names:
                    key = f"{sub_id}/{name}"
                    if key not in self._vcache:
                        try:
                            raw = (folder / key).read_bytes()
                            if len(raw) > 4 * self.limits.max_bytes or hashlib.sha256(raw).hexdigest() != name[:-5]:
                                continue
                            data = loads_strict(raw.decode("utf-8"))
                        except (OSError, UnicodeDecodeError, SubmissionError):
                            continue
                        if (
                            not isinstance(data, dict)
                            or data.get("submission") != sub_id
                            or data.get("status") not in VERIFICATION_STATUSES
                            or not isinstance(data.get("checked_at"), str)
                            or not isinstance(data.get("records"), list)
                        ):
                            continue
                        self._vcache[key] = data
                    data = self._vcache[key]
                    if best is None or (data["checked_at"], name) > (best[0]["checked_at"], best[1]):
                        best = (data, name)
                if best is not None:
                    out[sub_id] = best[0]
            return out

    # --- writing ------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise check-then-write across threads (RLock) and processes (flock)."""
        with self._thread_lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / ".lock", "a") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def check_new(self, submission: Submission, now: datetime | None = None) -> None:
        """Raise if the submission, or any of its records, is already stored, or the submitter is over the limit."""
        now = now or _now()
        stored = self.submissions()
        if submission.id in self._cache:
            raise DuplicateSubmissionError(
                f"this exact submission is already on the leaderboard as {submission.id[:12]}"
            )
        for index, key in enumerate(submission.record_keys):
            found = self._keys.get(key)
            if found is not None:
                raise DuplicateSubmissionError(
                    f"record {index} is already on the leaderboard (record {found[1]} of submission "
                    f"{found[0][:12]}); the same result is accepted once"
                )
        if self.rate_limit is not None:
            name = (submission.submitter.get("name") or "").casefold()
            since = now - timedelta(seconds=self.rate_limit.window_s)
            recent = sorted(
                datetime.fromisoformat(s.received_at)
                for s in stored
                if (s.submission.submitter.get("name") or "").casefold() == name
                and datetime.fromisoformat(s.received_at) > since
            )
            if len(recent) >= self.rate_limit.max_submissions:
                retry = recent[-self.rate_limit.max_submissions] + timedelta(seconds=self.rate_limit.window_s)
                wait = max(1, int((retry - now).total_seconds()))
                raise RateLimitError(
                    f"submitter {submission.submitter['name']!r} has sent {len(recent)} submissions in the last "
                    f"{self.rate_limit.window_s / 60:g} minutes; the limit is {self.rate_limit.max_submissions}; "
                    f"try again in {wait} s"
                )

    def add(self, submission: Submission, *, now: datetime | None = None) -> StoredSubmission:
        """Store a validated submission; raise DuplicateSubmissionError / RateLimitError instead of storing."""
        now = now or _now()
        received = now.isoformat(timespec="microseconds")
        with self._locked():
            self.check_new(submission, now)
            self._publish(
                f"{SUBMISSIONS_DIR}/{submission.id}.json",
                submission_bytes(submission, received),
                f"Add submission {submission.id[:12]}",
            )
            stored = StoredSubmission(submission.id, submission, received)
            self._remember(stored)
            return stored

    def add_verification(self, verification: dict[str, Any]) -> str:
        """Store one verification run (content-addressed); return its path in the store."""
        sub_id = verification.get("submission")
        if not isinstance(sub_id, str) or not _SHA_RE.match(sub_id):
            raise StoreError(f"verification names no valid submission id: {sub_id!r}")
        if verification.get("status") not in VERIFICATION_STATUSES:
            raise StoreError(f"verification status {verification.get('status')!r} is not one of {VERIFICATION_STATUSES}")
        digest, data = verification_bytes(verification)
        rel = f"{VERIFICATIONS_DIR}/{sub_id}/{digest}.json"
        with self._locked():
            self._publish(rel, data, f"Verify submission {sub_id[:12]}: {verification['status']}")
        return rel

    def _publish(self, rel_path: str, data: bytes, message: str) -> None:
        if not _write_new_file(self.root / rel_path, data) and rel_path.startswith(SUBMISSIONS_DIR):
            raise DuplicateSubmissionError(f"{rel_path} is already in the store")


def _is_conflict(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) in (409, 412)


class HubStore(LocalStore):
    """A ``LocalStore`` mirrored to a Hub dataset repo; writes are commits with ``parent_commit``.

    ``api`` is an ``huggingface_hub.HfApi`` (or anything with its ``repo_info``,
    ``list_repo_files``, ``hf_hub_download`` and ``create_commit`` methods).
    """

    def __init__(
        self,
        repo_id: str,
        root: str | os.PathLike,
        *,
        api: Any = None,
        repo_type: str = "dataset",
        max_attempts: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        self.repo_id = repo_id
        self.repo_type = repo_type
        self.api = api
        self.max_attempts = max_attempts
        self.head: str | None = None

    def __repr__(self) -> str:
        return f"HubStore({self.repo_id!r}, {str(self.root)!r})"

    def pull(self) -> str:
        """Download the store files this mirror lacks (files never change, so names suffice)."""
        with self._thread_lock:
            head = self.api.repo_info(self.repo_id, repo_type=self.repo_type).sha
            if head == self.head:
                return head
            for rel in self.api.list_repo_files(self.repo_id, repo_type=self.repo_type, revision=head):
                parts = rel.split("/")
                wanted = (
                    len(parts) == 2 and parts[0] == SUBMISSIONS_DIR and _SHA_RE.match(parts[1][:-5] or "")
                ) or (
                    len(parts) == 3 and parts[0] == VERIFICATIONS_DIR and _SHA_RE.match(parts[1])
                    and _SHA_RE.match(parts[2][:-5] or "")
                )
                if not wanted or not rel.endswith(".json") or (self.root / rel).exists():
                    continue
                with tempfile.TemporaryDirectory(dir=self.root if self.root.exists() else None) as tmp:
                    local = self.api.hf_hub_download(
                        self.repo_id, rel, repo_type=self.repo_type, revision=head, local_dir=tmp
                    )
                    _write_new_file(self.root / rel, Path(local).read_bytes())
            self.head = head
            return head

    def add(self, submission: Submission, *, now: datetime | None = None) -> StoredSubmission:
        now = now or _now()
        received = now.isoformat(timespec="microseconds")
        rel = f"{SUBMISSIONS_DIR}/{submission.id}.json"
        data = submission_bytes(submission, received)
        with self._locked():
            for attempt in range(self.max_attempts):
                self.pull()
                self.check_new(submission, now)
                if self._commit(rel, data, f"Add submission {submission.id[:12]}"):
                    _write_new_file(self.root / rel, data)
                    stored = StoredSubmission(submission.id, submission, received)
                    self._remember(stored)
                    return stored
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # jitter: writers spread out
        raise StoreError(f"the Hub store {self.repo_id} kept changing; {self.max_attempts} commits were refused")

    def add_verification(self, verification: dict[str, Any]) -> str:
        sub_id = verification.get("submission")
        if not isinstance(sub_id, str) or not _SHA_RE.match(sub_id):
            raise StoreError(f"verification names no valid submission id: {sub_id!r}")
        digest, data = verification_bytes(verification)
        rel = f"{VERIFICATIONS_DIR}/{sub_id}/{digest}.json"
        with self._locked():
            for attempt in range(self.max_attempts):
                self.pull()
                if (self.root / rel).exists() or self._commit(rel, data, f"Verify submission {sub_id[:12]}"):
                    _write_new_file(self.root / rel, data)
                    return rel
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # jitter: writers spread out
        raise StoreError(f"the Hub store {self.repo_id} kept changing; {self.max_attempts} commits were refused")

    def _commit(self, rel_path: str, data: bytes, message: str) -> bool:
        """One commit on top of ``self.head``; False if someone else committed first."""
        from huggingface_hub import CommitOperationAdd

        try:
            info = self.api.create_commit(
                self.repo_id,
                operations=[CommitOperationAdd(path_in_repo=rel_path, path_or_fileobj=data)],
                commit_message=message,
                repo_type=self.repo_type,
                parent_commit=self.head,
            )
        except Exception as exc:  # only the Hub's "parent moved" answer is retried
            if _is_conflict(exc):
                return False
            raise
        self.head = getattr(info, "oid", None) or self.head
        return True


def open_store(target: str | os.PathLike, **kwargs: Any) -> LocalStore:
    """``hf://datasets/ORG/NAME`` (or ``datasets/ORG/NAME``) -> HubStore with a local mirror; else a folder."""
    text = str(target)
    for prefix in ("hf://datasets/", "datasets/"):
        if text.startswith(prefix):
            repo_id = text[len(prefix):].strip("/")
            cache = Path(kwargs.pop("cache_dir", None) or Path.home() / ".cache" / "hf-unlearn" / "leaderboard")
            store = HubStore(repo_id, cache / repo_id.replace("/", "--"), **kwargs)
            store.pull()
            return store
    kwargs.pop("cache_dir", None)
    return LocalStore(text, **kwargs)
