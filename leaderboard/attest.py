"""Verification results bound to the submission they verify, and written only by the verifier.

Why: the store is a folder (or a Hub repo) that more than one party can write
to; a planted ``verifications/<id>/....json`` saying ``"verified"`` must not
make a row verified, and a genuine verification copied next to another
submission must not verify that one. The verifier signs each result with a
key only it holds (``LEADERBOARD_VERIFIER_KEY``, a Space secret, never in the
store): an HMAC-SHA256 over the canonical JSON of the verification together
with the SHA-256 content hash of the submission it checked. The store shows a
verification only if ``is_authentic`` holds for that submission's hash.

What this does not do: it does not stop someone who holds the key, and it
does not make the verifier's *numbers* right; it only says that the verifier
wrote this result for this exact submission content.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any, Mapping

ENV_KEY = "LEADERBOARD_VERIFIER_KEY"
MIN_KEY_BYTES = 16
LOCAL_KEY_FILE = ".verifier-key"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def _canonical(verification: Mapping[str, Any], submission_sha256: str) -> bytes:
    body = {k: v for k, v in verification.items() if k != "attestation"}
    return json.dumps(
        {"submission_sha256": submission_sha256, "verification": body},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
    ).encode("ascii")


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the verifier key must be at least {MIN_KEY_BYTES} bytes (set {ENV_KEY} to a long random secret)")
    return bytes(key)


def sign(verification: dict, submission_sha256: str, key: bytes) -> dict:
    """A copy of ``verification`` with ``"attestation": {"submission_sha256", "hmac"}`` (hex HMAC-SHA256)."""
    if not isinstance(submission_sha256, str) or not _SHA_RE.match(submission_sha256):
        raise ValueError(f"submission_sha256 must be 64 lowercase hex digits, got {submission_sha256!r:.80}")
    mac = hmac.new(_check_key(key), _canonical(verification, submission_sha256), hashlib.sha256).hexdigest()
    out = {k: v for k, v in verification.items() if k != "attestation"}
    out["attestation"] = {"submission_sha256": submission_sha256, "hmac": mac}
    return out


def is_authentic(verification: Mapping, submission_sha256: str, key: bytes | None) -> bool:
    """True only if ``verification`` was signed with ``key`` for exactly this submission content hash.

    Never raises: anything malformed (wrong types, NaN, a missing or foreign
    attestation, no key configured) is simply not authentic.
    """
    if key is None:
        return False
    try:
        key = _check_key(key)
        att = verification.get("attestation") if isinstance(verification, Mapping) else None
        if not isinstance(att, Mapping) or set(att) != {"submission_sha256", "hmac"}:
            return False
        claimed, mac = att["submission_sha256"], att["hmac"]
        if claimed != submission_sha256 or not isinstance(mac, str) or len(mac) != 64:
            return False
        expected = hmac.new(key, _canonical(verification, submission_sha256), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, mac)
    except (ValueError, TypeError, UnicodeError, RecursionError):
        return False


def verifier_key_from_env(environ: Mapping[str, str] = os.environ) -> bytes | None:
    """``LEADERBOARD_VERIFIER_KEY`` as bytes; None when unset; ValueError when set but too short."""
    value = environ.get(ENV_KEY)
    if not value:
        return None
    return _check_key(value.encode("utf-8"))


def local_key(root: str | os.PathLike, *, create: bool = True) -> bytes | None:
    """A per-folder key for a *local* store used by one person (the CLI): ``ROOT/.verifier-key``, mode 0600.

    It detects moved or hand-edited verification files, but anyone who can
    read the folder can sign: a shared or public store (a Space) must use
    ``LEADERBOARD_VERIFIER_KEY`` instead. Never used for a Hub store.
    """
    path = Path(root) / LOCAL_KEY_FILE
    try:
        # Never block on a planted FIFO or follow a planted symlink: only a small regular file is a key.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = os.read(fd, 4097)
        finally:
            os.close(fd)
        return _check_key(data.strip()) if len(data) <= 4096 else None
    except FileNotFoundError:
        if not create:
            return None
    except (OSError, ValueError):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return local_key(root, create=False)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key
