"""Submit a JSONL file of result records to a leaderboard (the library behind ``hf-unlearn submit``).

``leaderboard`` may be

* a local folder (``./board``, ``/data/board``, or any existing path): the
  submission is validated and stored there; named checkpoints are verified
  right away unless ``verify=False``;
* ``hf://datasets/ORG/NAME`` (or ``datasets/ORG/NAME``): the same, committed to
  that Hub dataset repo (needs write access: HF_TOKEN);
* a Space id ``ORG/NAME`` or an ``http(s)://`` address of a running Space: the
  file is uploaded through the Space's ``/submit_jsonl`` API and the Space
  validates, stores and verifies it.

Nothing is stored unless every check passes; a rejection raises
``SubmissionError`` whose message says what was wrong.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from leaderboard.store import LocalStore, RateLimit, open_store
from leaderboard.submission import DEFAULT_LIMITS, Limits, SubmissionError, build_submission, parse_jsonl

_SPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
API_NAME = "submit_jsonl"


@dataclass
class SubmissionResult:
    submission_id: str
    leaderboard: str
    num_records: int
    verification: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.verification) and self.verification.get("status") == "verified"

    def summary(self) -> str:
        lines = [f"accepted submission {self.submission_id[:12]} ({self.num_records} records) into {self.leaderboard}"]
        lines += self.messages
        return "\n".join(lines)


def read_upload(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Read at most ``limits.max_bytes`` from a file, refusing larger ones without reading them."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionError(f"cannot read {path}: {exc.strerror}") from None
    if not path.is_file():
        raise SubmissionError(f"{path} is not a file")
    if size > limits.max_bytes:
        raise SubmissionError(f"file is {size:,} bytes; the limit is {limits.max_bytes:,} bytes")
    with open(path, "rb") as fh:
        data = fh.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise SubmissionError(f"file is over {limits.max_bytes:,} bytes")
    return data


def verification_messages(verification: Mapping[str, Any] | None) -> list[str]:
    """One line per verified record: its status and, for a mismatch, each differing metric."""
    if not verification:
        return []
    lines = [f"verification: {verification['status']}"]
    for entry in verification.get("records", []):
        line = f"  record {entry['record']} ({entry.get('checkpoint')}): {entry['status']}"
        if entry.get("error"):
            line += f" - {entry['error']}"
        lines.append(line)
        for metric, d in sorted((entry.get("diffs") or {}).items()):
            if not d["ok"]:
                lines.append(
                    f"    {metric}: claimed {d['claimed']}, recomputed {d['recomputed']}, "
                    f"difference {d['diff'] if d['diff'] is None else format(d['diff'], '+.6g')} "
                    f"(tolerance {d['tolerance']:.3g})"
                )
    return lines


def submit_records(
    data: bytes,
    store: LocalStore,
    *,
    submitter: str,
    link: str | None = None,
    new_methods: Mapping[str, Any] | None = None,
    checkpoints: Iterable[str] | Mapping[int, str] | None = None,
    verify: bool = True,
    score_fn: Any = None,
    public_datasets: Mapping[str, str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SubmissionResult:
    """Validate the bytes of a JSONL upload, store the submission, and verify named checkpoints."""
    records = parse_jsonl(data, limits)
    submission = build_submission(
        records,
        submitter=submitter,
        link=link,
        new_methods=new_methods,
        checkpoints=checkpoints,
        allow_local_checkpoints=store.allow_local_checkpoints,
        limits=limits,
    )
    stored = store.add(submission)
    result = SubmissionResult(stored.id, str(getattr(store, "repo_id", store.root)), len(submission.records))
    if submission.checkpoints and verify:
        from leaderboard.verify import verify_and_store

        result.verification = verify_and_store(
            store, stored.id, score_fn=score_fn, public_datasets=public_datasets
        )
        result.messages += verification_messages(result.verification)
    elif submission.checkpoints:
        result.messages.append("checkpoints named; verification skipped (verify=False): the entry shows as pending")
    else:
        result.messages.append("no checkpoint named: the entry is shown as unverified")
    return result


def _is_remote(target: str) -> bool:
    if target.startswith(("http://", "https://")):
        return True
    if target.startswith(("hf://", "datasets/")) or os.path.exists(target):
        return False
    return bool(_SPACE_RE.match(target))


def submit_file(
    path: str | os.PathLike,
    leaderboard: str | os.PathLike,
    *,
    submitter: str | None = None,
    link: str | None = None,
    new_methods: Mapping[str, Any] | None = None,
    checkpoints: Iterable[str] | Mapping[int, str] | None = None,
    verify: bool = True,
    score_fn: Any = None,
    public_datasets: Mapping[str, str] | None = None,
    rate_limit: RateLimit | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SubmissionResult:
    """Submit the JSONL file at ``path`` to ``leaderboard`` (a folder, ``hf://datasets/ORG/NAME``, or a Space).

    ``submitter`` defaults to the login name. ``checkpoints`` are
    ``[INDEX=]ID[@REVISION]`` strings (INDEX may be left out for a one-record
    file). ``new_methods`` maps a declared method name to its description.
    Raises ``SubmissionError`` with the reason on rejection.
    """
    if submitter is None:
        import getpass

        submitter = getpass.getuser()
    data = read_upload(path, limits)
    target = str(leaderboard)
    if _is_remote(target):
        return _submit_to_space(
            path, target, submitter=submitter, link=link, new_methods=new_methods, checkpoints=checkpoints
        )
    store = open_store(target, rate_limit=rate_limit, limits=limits)
    return submit_records(
        data,
        store,
        submitter=submitter,
        link=link,
        new_methods=new_methods,
        checkpoints=checkpoints,
        verify=verify,
        score_fn=score_fn,
        public_datasets=public_datasets,
        limits=limits,
    )


def _submit_to_space(
    path: str | os.PathLike,
    target: str,
    *,
    submitter: str,
    link: str | None,
    new_methods: Mapping[str, Any] | None,
    checkpoints: Iterable[str] | Mapping[int, str] | None,
) -> SubmissionResult:
    from gradio_client import Client, handle_file

    methods = dict(new_methods or {})
    if len(methods) > 1:
        raise SubmissionError("a Space submission may declare one new method; split the file per method")
    method_name, info = next(iter(methods.items()), ("", None))
    info = {"description": info} if isinstance(info, str) or info is None else dict(info)
    if isinstance(checkpoints, Mapping):
        checkpoints = [f"{i}={ref}" for i, ref in checkpoints.items()]
    client = Client(target, verbose=False)
    reply = client.predict(
        handle_file(str(path)),
        submitter,
        link or "",
        method_name,
        info.get("description") or "",
        info.get("link") or "",
        "\n".join(checkpoints or []),
        api_name=f"/{API_NAME}",
    )
    if isinstance(reply, str):
        reply = json.loads(reply)
    if not reply.get("ok"):
        raise SubmissionError(reply.get("error") or "the Space rejected the submission without a reason")
    return SubmissionResult(
        reply["submission_id"], target, int(reply["num_records"]), reply.get("verification"),
        list(reply.get("messages") or []),
    )
