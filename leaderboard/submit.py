"""Submit a JSONL file of result records to a leaderboard (the library behind ``hf-unlearn submit``).

``leaderboard`` may be (``resolve_target`` decides, and never guesses):

* an existing local folder (``./board``, ``/data/board``, ``results/board``):
  the submission is validated and stored there; named checkpoints are verified
  right away unless ``verify=False``;
* ``hf://datasets/ORG/NAME`` (or ``datasets/ORG/NAME``): the same, committed to
  that Hub dataset repo (needs write access: HF_TOKEN);
* a Space, named explicitly: ``spaces/ORG/NAME`` (or ``hf://spaces/ORG/NAME``)
  or its ``https://`` address: the file is uploaded through the Space's
  ``/submit_jsonl`` API and the Space validates, stores and verifies it.

Anything else (``results/board`` that does not exist, a bare ``ORG/NAME``
that is not a local folder) is an error that says which form to use: a typo
in a folder name must not send the file to a Space of that name.

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

from leaderboard.names import check_submitter
from leaderboard.store import LocalStore, RateLimit, open_store
from leaderboard.submission import DEFAULT_LIMITS, Limits, SubmissionError, build_submission, parse_jsonl

_SPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
API_NAME = "submit_jsonl"


class LeaderboardTargetError(SubmissionError):
    """``--leaderboard`` names nothing usable (no such folder, unreachable Space or repo)."""


def resolve_target(target: str | os.PathLike) -> tuple[str, str]:
    """``(kind, value)`` with kind "local", "hub" (a dataset repo store) or "space"; raises on anything ambiguous.

    Only explicit forms are remote: ``hf://datasets/ORG/NAME`` / ``datasets/ORG/NAME`` (a Hub store),
    ``spaces/ORG/NAME`` / ``hf://spaces/ORG/NAME`` / ``http(s)://...`` (a Space). An existing path is a
    local folder. Everything else is refused, telling the user to create the folder or use a remote form.
    """
    text = str(target).strip()
    if text.startswith(("spaces/", "datasets/")) and os.path.lexists(text):
        # Both a local folder and the short remote form: say which, rather than send the file to the Hub.
        raise LeaderboardTargetError(
            f"--leaderboard {text!r} is ambiguous: a local folder of that name exists. Write ./{text} for the "
            f"folder, or hf://{text} for the Hub"
        )
    if text.startswith(("http://", "https://")):
        return "space", text
    # A Space is addressed by its ORG/NAME; a Hub store keeps the hf:// form open_store reads.
    for prefix, kind in (("hf://spaces/", "space"), ("spaces/", "space"), ("hf://datasets/", "hub"),
                         ("datasets/", "hub")):
        if text.startswith(prefix):
            repo = text[len(prefix):].strip("/")
            if not _SPACE_RE.match(repo):
                raise LeaderboardTargetError(f"--leaderboard {text!r}: expected {prefix}ORG/NAME")
            return kind, (repo if kind == "space" else text)
    if text and os.path.isdir(text):
        return "local", text
    if text and os.path.exists(text):
        raise LeaderboardTargetError(f"--leaderboard {text!r} is a file, not a leaderboard folder")
    raise LeaderboardTargetError(
        f"--leaderboard {text!r}: no such folder. For a local leaderboard create it first (mkdir -p {text}); "
        "for a remote one write spaces/ORG/NAME (or https://ORG-NAME.hf.space) or hf://datasets/ORG/NAME"
    )


def default_submitter() -> str:
    """The Hub login (``huggingface_hub.whoami()``), as ``hf-unlearn submit``'s help promises.

    Raises ``SubmissionError`` with the fix when not logged in or offline.
    """
    try:
        from huggingface_hub import whoami

        info = whoami()
    except Exception as exc:  # noqa: BLE001 - not logged in, offline, bad token: one clear line
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SubmissionError(
            f"no submitter name: not logged in to the Hub ({reason}); run `hf auth login` "
            "(or set HF_TOKEN), or pass --submitter NAME"
        ) from None
    name = info.get("name") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name:
        raise SubmissionError("no submitter name: the Hub login has no user name; pass --submitter NAME")
    return name


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


@dataclass
class SubmissionResult:
    submission_id: str
    leaderboard: str
    num_records: int
    verification: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)
    num_checkpoints: int = 0  # records that named a checkpoint

    @property
    def verified(self) -> bool:
        return bool(self.verification) and self.verification.get("status") == "verified"

    @property
    def status(self) -> str:
        """What the board shows for the submission now: the verification's status when it ran, else
        "pending" (checkpoints named, not verified yet) or "unverified" (no checkpoint named)."""
        if self.verification:
            return str(self.verification.get("status"))
        return "pending" if self.num_checkpoints else "unverified"

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
    # Read defensively: the document may come back from a remote Space.
    lines = [f"verification: {verification.get('status')}"]
    records = verification.get("records")
    for entry in records if isinstance(records, list) else []:
        if not isinstance(entry, Mapping):
            continue
        line = f"  record {entry.get('record')} ({entry.get('checkpoint')}): {entry.get('status')}"
        if entry.get("error"):
            line += f" - {entry['error']}"
        lines.append(line)
        diffs = entry.get("diffs")
        for metric, d in sorted(diffs.items() if isinstance(diffs, Mapping) else []):
            if isinstance(d, Mapping) and not d.get("ok", True):
                diff, tol = d.get("diff"), d.get("tolerance")
                lines.append(
                    f"    {metric}: claimed {d.get('claimed')}, recomputed {d.get('recomputed')}, "
                    f"difference {format(diff, '+.6g') if isinstance(diff, (int, float)) else diff} "
                    f"(tolerance {format(tol, '.3g') if isinstance(tol, (int, float)) else tol})"
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
    display_name: str | None = None,
    account: bool = False,
) -> SubmissionResult:
    """Validate the bytes of a JSONL upload, store the submission, and verify named checkpoints.

    ``display_name`` (free text, checked like a submitter name) is stored with the submitter and shown beside
    it. ``account=True`` only for a submitter name the caller verified with the Hub (the Space's OAuth login):
    it is then checked for characters only and shown as ``@name`` (``names.check_account``).
    """
    records = parse_jsonl(data, limits)
    submission = build_submission(
        records,
        submitter=submitter,
        display_name=display_name,
        account=account,
        link=link,
        new_methods=new_methods,
        checkpoints=checkpoints,
        allow_local_checkpoints=store.allow_local_checkpoints,
        limits=limits,
        catalog=getattr(store, "catalog", None),
    )
    stored = store.add(submission)
    result = SubmissionResult(stored.id, str(getattr(store, "repo_id", store.root)), len(submission.records),
                              num_checkpoints=len(submission.checkpoints))
    if submission.checkpoints and verify:
        # Imported here: verification pulls in multiprocessing and the checkpoint loader.
        from leaderboard.verify import VerificationNotConfigured, verify_and_store

        try:
            result.verification = verify_and_store(store, stored.id, score_fn=score_fn, public_datasets=public_datasets)
        except VerificationNotConfigured as exc:
            # Raised before any scoring (no public datasets, or no verifier key to sign results with), after the
            # submission was stored: only the operator can fix this, so the submitter gets the stored id and a
            # clear status, not a traceback.
            result.messages.append(
                f"verification: pending - checkpoints named, but not verified here: {exc}. The submission is "
                "stored and shows as pending until a leaderboard with public datasets verifies it"
            )
        else:
            result.messages += verification_messages(result.verification)
    elif submission.checkpoints:
        result.messages.append("checkpoints named; verification skipped (verify=False): the entry shows as pending")
    else:
        result.messages.append("no checkpoint named: the entry is shown as unverified")
    return result


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
    catalog: Any = None,
    display_name: str | None = None,
) -> SubmissionResult:
    """Submit the JSONL file at ``path`` to ``leaderboard`` (see ``resolve_target`` for the accepted forms).

    ``submitter`` defaults to the Hub login (``default_submitter``); on a Space
    that requires login the Space takes the account from the Hub token this
    sends instead. ``display_name`` is shown beside the submitter (on a Space:
    beside the ``@account``). ``catalog``
    (default: ``LEADERBOARD_DATASETS``) restricts a local or Hub store to the
    public variants. ``checkpoints`` are
    ``[INDEX=]ID[@REVISION]`` strings (INDEX may be left out for a one-record
    file). ``new_methods`` maps a declared method name to its description.
    Raises ``SubmissionError`` with the reason on rejection.
    """
    kind, target = resolve_target(leaderboard)
    data = read_upload(path, limits)
    if display_name is not None:  # refused here, before anything is sent or stored
        display_name = check_submitter(display_name, limits.max_name_chars, field="display name")
    if submitter is None:
        submitter = default_submitter()
    if kind == "space":
        try:
            return _submit_to_space(
                path, target, submitter=submitter, link=link, new_methods=new_methods, checkpoints=checkpoints,
                display_name=display_name,
            )
        except SubmissionError:
            raise
        except Exception as exc:  # noqa: BLE001 - offline, no such Space, no API: one clear line
            raise LeaderboardTargetError(
                f"cannot reach the Space {target}: {type(exc).__name__}: {_one_line(exc)}"
            ) from None
    if kind == "local":
        checkpoints = local_checkpoint_refs(checkpoints)
    if catalog is None:
        from leaderboard.catalog import Catalog, CatalogError

        try:
            catalog = Catalog.from_env()
        except CatalogError as exc:  # the operator's setting, read before anything is stored: one clear line
            raise LeaderboardTargetError(f"cannot read the public datasets (LEADERBOARD_DATASETS): {exc}") from None
    try:
        store = open_store(target, rate_limit=rate_limit, limits=limits, catalog=catalog)
    except Exception as exc:  # noqa: BLE001 - e.g. the Hub repo is unreachable
        if kind == "local":
            raise
        raise LeaderboardTargetError(f"cannot open {target}: {type(exc).__name__}: {_one_line(exc)}") from None
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
        display_name=display_name,
    )


def local_checkpoint_refs(checkpoints: Iterable[str] | Mapping[int, str] | None) -> list[str] | None:
    """``[INDEX=]ID[@REV]`` refs with each ID that is an existing relative folder (``runs/u-ga``) written as
    ``./runs/u-ga``: the submission format takes a local folder only with an explicit ``./`` or ``/`` (a bare
    ``runs/u-ga`` is also shaped like a Hub id), but on the command line an existing folder is what was meant."""
    if checkpoints is None:
        return None
    refs = [f"{i}={ref}" for i, ref in checkpoints.items()] if isinstance(checkpoints, Mapping) else list(checkpoints)
    out = []
    for ref in refs:
        indexed = isinstance(ref, str) and re.match(r"^\s*\d+\s*=", ref)
        index, eq, ident = ref.partition("=") if indexed else ("", "", ref)
        if (isinstance(ident, str) and ident.strip() and not ident.strip().startswith(("/", "./", "../", "~"))
                and os.path.isdir(ident.strip())):
            ident = "./" + ident.strip()
        out.append(f"{index}{eq}{ident}")
    return out


def hub_token() -> str | None:
    """The saved Hub token (``HF_TOKEN`` or ``hf auth login``), or None when there is none."""
    try:
        from huggingface_hub import get_token

        return get_token() or None
    except Exception:  # noqa: BLE001 - an unreadable token file is "no token": the Space then asks to sign in
        return None


def _submit_to_space(
    path: str | os.PathLike,
    target: str,
    *,
    submitter: str,
    link: str | None,
    new_methods: Mapping[str, Any] | None,
    checkpoints: Iterable[str] | Mapping[int, str] | None,
    display_name: str | None = None,
) -> SubmissionResult:
    """Upload through the Space's ``/submit_jsonl`` API.

    A Space that requires login (``hf_oauth``) takes the submitter from the caller's Hub token: gradio_client
    sends it only to endpoints that declare a ``gr.OAuthToken`` parameter (``/submit_jsonl`` does), and never
    infers it from the saved login, so it is passed here explicitly. The name box then carries the display
    name (``display_name``, else the submitter name, which the Space drops when it equals the account).
    """
    from gradio_client import Client, handle_file

    methods = dict(new_methods or {})
    if len(methods) > 1:
        raise SubmissionError("a Space submission may declare one new method; split the file per method")
    method_name, info = next(iter(methods.items()), ("", None))
    info = {"description": info} if isinstance(info, str) or info is None else dict(info)
    if isinstance(checkpoints, Mapping):
        checkpoints = [f"{i}={ref}" for i, ref in checkpoints.items()]
    checkpoints = [c for c in checkpoints or [] if isinstance(c, str) and c.strip()]
    token = hub_token()
    client = Client(target, verbose=False, oauth_token=token) if token else Client(target, verbose=False)
    reply = client.predict(
        handle_file(str(path)),
        display_name or submitter,
        link or "",
        method_name,
        info.get("description") or "",
        info.get("link") or "",
        "\n".join(checkpoints),
        api_name=f"/{API_NAME}",
    )
    if isinstance(reply, str):
        reply = json.loads(reply)
    if not isinstance(reply, Mapping):
        raise SubmissionError(f"the Space answered {type(reply).__name__}, not a submission reply; is it an "
                              "hf-unlearn leaderboard?")
    if not reply.get("ok"):
        error = str(reply.get("error") or "the Space rejected the submission without a reason")
        if token is None and "sign in" in error:
            error += "; no Hub token here: run `hf auth login` (or set HF_TOKEN) and submit again"
        raise SubmissionError(error)
    return SubmissionResult(
        reply["submission_id"], target, int(reply["num_records"]), reply.get("verification"),
        list(reply.get("messages") or []), num_checkpoints=len(checkpoints),
    )
