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

Stored files are read defensively, since anyone with write access to the
folder or repo could plant one: a name is looked at with ``lstat`` and only a
regular file under the size cap is opened (``O_NOFOLLOW | O_NONBLOCK``, so a
symlink or FIFO neither redirects nor blocks the reader), at most cap + 1
bytes are read, and every shape is validated; anything else is skipped and
reported in ``problems``.

Verification files are shown only if they carry the verifier's attestation
for the submission's content hash (``leaderboard.attest``): the store signs
them in ``add_verification`` with its ``verifier_key``, which only the
verifier holds (``LEADERBOARD_VERIFIER_KEY``). A forged, edited or moved file
is skipped and reported.

``HubStore`` keeps the same folder in sync with a Hub dataset repo: it pulls
the files it lacks, runs the same checks, and commits with ``parent_commit``
set to the revision it checked against, so a concurrent writer makes the
commit fail instead of being overwritten; it then pulls and tries again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import random
import re
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from leaderboard import attest, names
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
# Final statuses (verified, mismatch, failed, unsupported) and the queue's (pending, queued, verifying).
VERIFICATION_STATUSES = ("verified", "mismatch", "failed", "pending", "unsupported", "queued", "verifying")
MAX_VERIFICATION_BYTES = 4_000_000  # one verification file
MAX_VERIFICATIONS_PER_SUBMISSION = 64  # files read per submission folder; the rest are reported
MAX_STORE_FILES = 200_000  # names looked at per folder
MAX_KEY_BYTES = 4_096  # the local store's .verifier-key
_FROM_ENV: Any = object()  # LocalStore's default catalog: LEADERBOARD_DATASETS, read on first use


def read_bounded(path: Path, cap: int) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes; OSError for anything else, without blocking.

    ``lstat`` first (a symlink, FIFO, device or folder is refused before it is
    opened), then ``O_NOFOLLOW | O_NONBLOCK`` (a file swapped for a symlink or
    FIFO in between is refused or does not block), ``fstat`` on the open file,
    and at most ``cap + 1`` bytes read.
    """
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = "symlink" if stat.S_ISLNK(info.st_mode) else "folder" if stat.S_ISDIR(info.st_mode) else "special file"
        raise OSError(f"not a regular file (a {kind})")
    if info.st_size > cap:
        raise OSError(f"{info.st_size:,} bytes, over the limit of {cap:,}")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        chunks, total = [], 0
        while total <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > cap:
        raise OSError(f"over the limit of {cap:,} bytes")
    return b"".join(chunks)


def _safe_name(name: str, width: int = 80) -> str:
    """A file name for a problem line: escapes instead of control or invisible characters, shortened."""
    text = ascii(name)[1:-1]
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _listdir(path: Path) -> list[str]:
    """At most MAX_STORE_FILES names of a real folder (not a symlink); [] if missing."""
    if not _is_real_dir(path):
        return []
    out = []
    with os.scandir(path) as it:
        for entry in it:
            out.append(entry.name)
            if len(out) >= MAX_STORE_FILES:
                break
    return out


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


def check_verification_shape(data: Any, sub_id: str, num_records: int) -> str | None:
    """Why a verification document is malformed, or None. Its shape is what ranking and the UI rely on."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("submission") != sub_id:
        return "names another submission"
    if data.get("status") not in VERIFICATION_STATUSES:
        return "unknown status"
    if not isinstance(data.get("checked_at"), str) or len(data["checked_at"]) > 40:
        return "checked_at is not a timestamp"
    try:
        datetime.fromisoformat(data["checked_at"])
    except ValueError:
        return "checked_at is not a timestamp"
    records = data.get("records")
    if not isinstance(records, list) or len(records) > num_records:
        return "'records' is not a list of at most one entry per record"
    seen = set()
    for entry in records:
        if not isinstance(entry, dict):
            return "a records entry is not an object"
        index = entry.get("record")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < num_records or index in seen:
            return "a records entry names no record of the submission"
        seen.add(index)
        if entry.get("status") not in VERIFICATION_STATUSES:
            return f"record {index}: unknown status"
        for key in ("checkpoint", "revision", "error", "dataset", "config"):
            if entry.get(key) is not None and (not isinstance(entry[key], str) or len(entry[key]) > 2000):
                return f"record {index}: {key} is not short text"
        recomputed = entry.get("recomputed")
        if recomputed is not None and (
            not isinstance(recomputed, dict) or len(recomputed) > 64
            or not all(isinstance(k, str) and _number_or_none(v) for k, v in recomputed.items())
        ):
            return f"record {index}: 'recomputed' is not an object of numbers"
        diffs = entry.get("diffs")
        if diffs is not None:
            if not isinstance(diffs, dict) or len(diffs) > 64:
                return f"record {index}: 'diffs' is not an object"
            for metric, diff in diffs.items():
                if not isinstance(diff, dict) or not isinstance(diff.get("ok", True), bool) or not all(
                    _number_or_none(diff.get(k)) for k in ("claimed", "recomputed", "diff", "tolerance")
                ):
                    return f"record {index}: diffs[{str(metric)[:30]!r}] is malformed"
    return None


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
        verifier_key: bytes | None = None,
        catalog: Any = _FROM_ENV,
    ) -> None:
        """``verifier_key`` signs and authenticates verification files. Default: ``LEADERBOARD_VERIFIER_KEY``;
        without it, a local folder uses its own ``.verifier-key`` (``attest.local_key``: fine for one person's
        folder, not for a shared one: a Space must set the variable). ``catalog`` (a
        ``leaderboard.catalog.Catalog``) restricts new submissions to the public variants and checks stored ones
        against them; by default it is read from ``LEADERBOARD_DATASETS`` on first use, so a store opened
        without one still enforces the operator's public variants (``catalog=None``: no restriction)."""
        self.root = Path(root)
        self.rate_limit = rate_limit
        self.limits = limits
        self.allow_local_checkpoints = allow_local_checkpoints
        self._verifier_key = verifier_key if verifier_key is not None else attest.verifier_key_from_env()
        self._catalog = catalog
        self._catalog_problem = ""
        self._sproblems: list[str] = []
        self._vproblems: list[str] = []
        self._cache: dict[str, StoredSubmission] = {}
        self._bad: dict[str, str] = {}
        self._vcache: dict[str, dict[str, Any]] = {}
        self._vbad: dict[str, str] = {}
        self._keys: dict[str, tuple[str, int]] = {}  # record key -> (submission id, record index)
        self._thread_lock = threading.RLock()
        self._key_problem = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @property
    def catalog(self) -> Any:
        """The public variants (``leaderboard.catalog.Catalog``) or None; see ``__init__``.

        Raises ``StoreError`` when ``LEADERBOARD_DATASETS`` is set but cannot be read: nothing is stored then.
        """
        if self._catalog is _FROM_ENV:
            from leaderboard.catalog import Catalog, CatalogError

            try:
                self._catalog = Catalog.from_env()
            except CatalogError as exc:  # not cached: the Hub may answer next time
                raise StoreError(f"cannot read the public datasets (LEADERBOARD_DATASETS): {exc}") from None
        return self._catalog

    @catalog.setter
    def catalog(self, value: Any) -> None:
        self._catalog = value

    def _catalog_for_reading(self) -> Any:
        """The catalog, or None (reported in ``problems``) when it cannot be read: reading must not fail."""
        try:
            catalog = self.catalog
        except StoreError as exc:
            self._catalog_problem = f"{exc}; stored submissions were checked without it"
            return None
        self._catalog_problem = ""
        return catalog

    @property
    def verifier_key(self) -> bytes | None:
        """The key verification files are signed with (see ``__init__``); None if there is none yet."""
        if self._verifier_key is None and self._uses_local_key():
            self._verifier_key = self._local_key(create=False)
        return self._verifier_key

    def _local_key(self, *, create: bool) -> bytes | None:
        """The folder's ``.verifier-key``, read like any stored file (``read_bounded``): a FIFO, a symlink or a
        huge file planted under that name is refused (and reported), never opened blockingly or followed."""
        path = self.root / attest.LOCAL_KEY_FILE
        try:
            data = read_bounded(path, MAX_KEY_BYTES)
        except FileNotFoundError:
            return attest.local_key(self.root, create=True) if create else None
        except OSError as exc:
            self._key_problem = f"{attest.LOCAL_KEY_FILE}: {exc}; no verification can be checked or signed"
            return None
        key = data.strip()
        if len(key) < attest.MIN_KEY_BYTES:
            self._key_problem = f"{attest.LOCAL_KEY_FILE}: shorter than {attest.MIN_KEY_BYTES} bytes; not used"
            return None
        return key

    def _uses_local_key(self) -> bool:
        return True

    def _signing_key(self) -> bytes | None:
        if self._verifier_key is None and self._uses_local_key():
            self._verifier_key = self._local_key(create=True)
        return self._verifier_key

    @property
    def problems(self) -> list[str]:
        """One line per stored file that was skipped (path: why), from the last ``submissions()`` and
        ``verifications()`` reads."""
        extra = [p for p in (self._catalog_problem, self._key_problem) if p]
        return self._sproblems + self._vproblems + extra

    # --- reading ------------------------------------------------------------------------

    def fingerprint(self) -> tuple[int, int]:
        """Cheap change detector: (number of entries, newest mtime) of the two folders (symlinks not followed)."""
        counts, newest = 0, 0
        for name in (SUBMISSIONS_DIR, VERIFICATIONS_DIR):
            folder = self.root / name
            if not _is_real_dir(folder):
                continue
            try:
                newest = max(newest, os.lstat(folder).st_mtime_ns)
                with os.scandir(folder) as it:
                    for entry in it:
                        counts += 1
                        if entry.is_dir(follow_symlinks=False):
                            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime_ns)
                        if counts >= MAX_STORE_FILES:
                            break
            except OSError:
                continue
        return counts, newest

    def _max_submission_bytes(self) -> int:
        return 2 * self.limits.max_bytes + 65_536

    def _read_submission(self, path: Path, catalog: Any = None) -> StoredSubmission:
        raw = read_bounded(path, self._max_submission_bytes())
        data = loads_strict(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise SubmissionError("not a JSON object")
        sub = submission_from_dict(data, allow_local_checkpoints=True, limits=self.limits,
                                   catalog=catalog)
        if sub.id != path.stem:
            raise SubmissionError(f"content hash {sub.id[:12]} does not match the file name")
        if data.get("id") not in (None, sub.id):
            raise SubmissionError("its 'id' field does not match its content hash")
        received = data.get("received_at")
        if not isinstance(received, str) or len(received) > 40:
            raise SubmissionError("missing received_at")
        try:
            parsed = datetime.fromisoformat(received)
        except ValueError:
            raise SubmissionError(f"received_at {received[:40]!r} is not an ISO timestamp") from None
        if parsed.tzinfo is None:
            raise SubmissionError("received_at has no time zone")
        if parsed > _now() + timedelta(days=1):  # planted: it would count against its submitter's rate limit forever
            raise SubmissionError(f"received_at {received[:40]!r} is in the future")
        return StoredSubmission(id=sub.id, submission=sub, received_at=received)

    def submissions(self) -> list[StoredSubmission]:
        """Every valid submission, oldest first; new files are read, known ones come from a cache."""
        with self._thread_lock:
            folder = self.root / SUBMISSIONS_DIR
            problems = []
            if (self.root / SUBMISSIONS_DIR).is_symlink():
                problems.append(f"{SUBMISSIONS_DIR}: a symlink, not a folder; not read")
            names_ = {n for n in _listdir(folder) if not n.startswith(".")}
            gone = set(self._cache) - {n[:-5] for n in names_ if n.endswith(".json")}
            for sub_id in gone:
                self._cache.pop(sub_id, None)
            if gone:
                self._keys = {k: v for k, v in self._keys.items() if v[0] not in gone}
            catalog: Any = _FROM_ENV  # resolved once per read, and only if a new file is read
            for name in sorted(names_):
                stem = name[:-5]
                if stem in self._cache or name in self._bad:
                    continue
                if not name.endswith(".json") or not _SHA_RE.match(stem):
                    self._bad[name] = "file name is not a SHA-256 hex digest + .json"
                    continue
                try:
                    if catalog is _FROM_ENV:
                        catalog = self._catalog_for_reading()
                    stored = self._read_submission(folder / name, catalog)
                except (SubmissionError, OSError, UnicodeDecodeError, RecursionError) as exc:
                    self._bad[name] = str(exc)[:300] or type(exc).__name__
                    continue
                self._remember(stored)
            problems += [f"{SUBMISSIONS_DIR}/{_safe_name(n)}: {why}" for n, why in sorted(self._bad.items())
                         if n in names_]
            self._sproblems = problems
            return sorted(self._cache.values(), key=lambda s: (s.received_at, s.id))

    def _remember(self, stored: StoredSubmission) -> None:
        self._cache[stored.id] = stored
        for i, key in enumerate(stored.submission.record_keys):
            self._keys.setdefault(key, (stored.id, i))

    def get(self, submission_id: str) -> StoredSubmission | None:
        self.submissions()
        return self._cache.get(submission_id)

    def _read_verification(self, rel: str, sub_id: str) -> dict[str, Any]:
        """One verification file, checked for size, content address, shape and attestation; SubmissionError if not."""
        raw = read_bounded(self.root / VERIFICATIONS_DIR / rel, MAX_VERIFICATION_BYTES)
        if hashlib.sha256(raw).hexdigest() != rel.rsplit("/", 1)[1][:-5]:
            raise SubmissionError("content hash does not match the file name")
        data = loads_strict(raw.decode("utf-8"))
        stored = self._cache.get(sub_id)
        if stored is None:
            raise SubmissionError("verifies no stored submission")
        why = check_verification_shape(data, sub_id, len(stored.submission.records))
        if why:
            raise SubmissionError(f"malformed verification: {why}")
        if not attest.is_authentic(data, sub_id, self.verifier_key):
            raise SubmissionError(
                "not signed by this leaderboard's verifier for this submission (forged, edited or moved)"
                if self.verifier_key else "no verifier key configured (LEADERBOARD_VERIFIER_KEY): not trusted"
            )
        return data

    def verifications(self) -> dict[str, dict[str, Any]]:
        """The latest authentic verification of each submission (by ``checked_at``), keyed by submission id.

        A file that is not a regular file, too large, not content-addressed,
        malformed, or not attested for its submission is skipped and reported
        in ``problems``.
        """
        with self._thread_lock:
            self.submissions()  # cheap when nothing changed; a verification needs its submission read first
            out: dict[str, dict[str, Any]] = {}
            problems: list[str] = []
            folder = self.root / VERIFICATIONS_DIR
            for sub_id in sorted(_listdir(folder)):
                if sub_id.startswith("."):
                    continue
                if not _SHA_RE.match(sub_id) or not _is_real_dir(folder / sub_id):
                    problems.append(f"{VERIFICATIONS_DIR}/{_safe_name(sub_id)}: not a submission folder; skipped")
                    continue
                best = None
                names_ = sorted(n for n in _listdir(folder / sub_id) if not n.startswith("."))
                if len(names_) > MAX_VERIFICATIONS_PER_SUBMISSION:
                    problems.append(
                        f"{VERIFICATIONS_DIR}/{sub_id}: {len(names_)} files; only {MAX_VERIFICATIONS_PER_SUBMISSION} read"
                    )
                    names_ = names_[:MAX_VERIFICATIONS_PER_SUBMISSION]
                for name in names_:
                    key = f"{sub_id}/{name}"
                    if key not in self._vcache:
                        if key in self._vbad and sub_id in self._cache:
                            problems.append(f"{VERIFICATIONS_DIR}/{_safe_name(key, 140)}: {self._vbad[key]}")
                            continue
                        if not name.endswith(".json") or not _SHA_RE.match(name[:-5]):
                            why = "file name is not a SHA-256 hex digest + .json"
                        else:
                            try:
                                self._vcache[key] = self._read_verification(key, sub_id)
                                why = ""
                            except (SubmissionError, OSError, UnicodeDecodeError, RecursionError) as exc:
                                why = str(exc)[:300] or type(exc).__name__
                        if why:
                            if sub_id in self._cache:  # a verification may arrive before its submission is pulled
                                self._vbad[key] = why
                            problems.append(f"{VERIFICATIONS_DIR}/{_safe_name(key, 140)}: {why}")
                            continue
                    data = self._vcache[key]
                    if best is None or (data["checked_at"], name) > (best[0]["checked_at"], best[1]):
                        best = (data, name)
                if best is not None:
                    out[sub_id] = best[0]
            self._vproblems = problems
            return out

    # --- writing ------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise check-then-write across threads (RLock) and processes (flock)."""
        with self._thread_lock:
            self.root.mkdir(parents=True, exist_ok=True)
            # Not open(..., "a"): a FIFO planted as .lock would block that open forever, a symlink would be
            # followed (and could create a file elsewhere). Refused instead, with the fix.
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
            try:
                fd = os.open(self.root / ".lock", flags, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot open the store's lock file .lock ({exc.strerror}); if it is a symlink, "
                                 "remove it") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise StoreError("the store's lock file .lock is not a regular file (a FIFO or device?); remove it")
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def check_new(self, submission: Submission, now: datetime | None = None) -> None:
        """Raise if the submission, or any of its records, is already stored, or the submitter is over the limit."""
        now = now or _now()
        if self.catalog is not None:  # also when a caller built the submission without the catalog
            for record in submission.records:
                self.catalog.get(record["task"], record["attack"], record["dataset"].get("config"))
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
            # Per account, compared by skeleton: "Eve", "eve." and a Cyrillic "Evе" are one submitter.
            # Only stored submissions count, so rejected uploads never use up the limit.
            key = names.skeleton(submission.submitter.get("name") or "")
            since = now - timedelta(seconds=self.rate_limit.window_s)
            recent = sorted(
                datetime.fromisoformat(s.received_at)
                for s in stored
                if names.skeleton(s.submission.submitter.get("name") or "") == key
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

    def _signed(self, verification: dict[str, Any]) -> dict[str, Any]:
        """Check a verification document's shape and sign it for its submission (the verifier's job)."""
        sub_id = verification.get("submission")
        if not isinstance(sub_id, str) or not _SHA_RE.match(sub_id):
            raise StoreError(f"verification names no valid submission id: {sub_id!r}")
        if verification.get("status") not in VERIFICATION_STATUSES:
            raise StoreError(f"verification status {verification.get('status')!r} is not one of {VERIFICATION_STATUSES}")
        key = self._signing_key()
        if not key:
            raise StoreError(
                "no verifier key: set LEADERBOARD_VERIFIER_KEY (a secret only the verifier holds) to store verifications"
            )
        stored = self.get(sub_id)
        if stored is None:
            raise StoreError(f"verification of {sub_id[:12]}: no such submission in {self}")
        why = check_verification_shape(verification, sub_id, len(stored.submission.records))
        if why:
            raise StoreError(f"verification of {sub_id[:12]} is malformed: {why}")
        return attest.sign(verification, sub_id, key)

    def add_verification(self, verification: dict[str, Any]) -> str:
        """Sign one verification run for its submission and store it (content-addressed); return its path."""
        verification = self._signed(verification)
        sub_id = verification["submission"]
        digest, data = verification_bytes(verification)
        rel = f"{VERIFICATIONS_DIR}/{sub_id}/{digest}.json"
        with self._locked():
            self._publish(rel, data, f"Verify submission {sub_id[:12]}: {verification['status']}")
        return rel

    def _target(self, rel_path: str) -> Path:
        """``root / rel_path``, refusing to write through a folder of the store that is a symlink or not a folder
        (a planted ``submissions -> /elsewhere`` would send files outside the store, where no reader looks)."""
        parts = rel_path.split("/")
        for depth in range(1, len(parts)):
            folder = self.root.joinpath(*parts[:depth])
            try:
                info = os.lstat(folder)
            except FileNotFoundError:
                break
            if not stat.S_ISDIR(info.st_mode):
                raise StoreError(f"{'/'.join(parts[:depth])} in the store is not a folder (a symlink?); nothing was "
                                 "written: remove it")
        return self.root / rel_path

    def _publish(self, rel_path: str, data: bytes, message: str) -> None:
        if not _write_new_file(self._target(rel_path), data) and rel_path.startswith(SUBMISSIONS_DIR):
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

    def _uses_local_key(self) -> bool:
        # The mirror is a cache: a key kept there would change with every fresh mirror (a Space restart).
        return False

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
                    cap = self._max_submission_bytes() if parts[0] == SUBMISSIONS_DIR else MAX_VERIFICATION_BYTES
                    try:
                        data = read_bounded(Path(local), cap)
                    except OSError:  # too large or not a file: not mirrored, so never read
                        continue
                    try:
                        _write_new_file(self._target(rel), data)
                    except StoreError:  # a planted non-folder in the mirror: not mirrored, so never read
                        continue
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
                    _write_new_file(self._target(rel), data)
                    stored = StoredSubmission(submission.id, submission, received)
                    self._remember(stored)
                    return stored
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # jitter: writers spread out
        raise StoreError(f"the Hub store {self.repo_id} kept changing; {self.max_attempts} commits were refused")

    def add_verification(self, verification: dict[str, Any]) -> str:
        with self._thread_lock:
            self.pull()
            verification = self._signed(verification)
        sub_id = verification["submission"]
        digest, data = verification_bytes(verification)
        rel = f"{VERIFICATIONS_DIR}/{sub_id}/{digest}.json"
        with self._locked():
            for attempt in range(self.max_attempts):
                self.pull()
                if (self.root / rel).exists() or self._commit(rel, data, f"Verify submission {sub_id[:12]}"):
                    _write_new_file(self._target(rel), data)
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
