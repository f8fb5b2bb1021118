"""Re-score a submitted checkpoint on the public variant and compare with the claim, with bounded work.

What "verified" means here, and only this: *this checkpoint (Hub id at this
commit), scored on this public variant, gives these numbers*. The method and
the compute budget a record names are the submitter's claims; nothing here
checks them.

How (``verify_submission``):

* **Only the configured public datasets.** The variant is looked up in the
  ``Catalog`` (``LEADERBOARD_DATASETS``); the record's own ``dataset.id`` is
  never used. Without a catalog verification refuses to start
  (``VerificationNotConfigured``). A record whose variant is not public fails
  with a message naming the known ones.
* **Safetensors only, pinned architecture, capped size**: see
  ``leaderboard.safe_load`` (a Hub id always goes to the Hub; a local path
  only with the operator flag ``LEADERBOARD_ALLOW_LOCAL=1`` and only when it
  is written as a path).
* **Bounded work**: null draws per poison at most ``max_null_draws`` and in
  all at most ``max_total_nulls`` (a record asking more is refused, not
  scored); at most ``max_checkpoints`` checkpoints per submission; the scoring
  runs in a child process (multiprocessing ``spawn``) that is killed when the
  submission's ``timeout_s`` runs out; downloads go to a temporary folder
  deleted afterwards. ``leaderboard.verify_worker`` adds the bounded queue.
* **Fixed scoring seed**: the null draws use ``scoring_seed`` (0, the
  ``ScoringConfig`` default) whatever the record says, so a submitter cannot
  shop for a lucky seed.

* **Scored like ``hf-unlearn score``.** CIFAR-10 checkpoints are a pinned
  ResNet-18 (``safe_load.load_resnet``); IMDb checkpoints a pinned GPT-2
  (``safe_load.load_gpt2``: a classifier on Gaussian variants, a prompt model
  with one label word per class on trigger variants, checked against the
  catalog's variant). Either is then scored with the library's own functions
  for that task and attack (``hf_unlearn.scoring.gaussian_scores``, the
  attack's ``evaluate``), so verified numbers are what ``score_checkpoint`` gives.

Tolerances (``TOLERANCES``): accuracies 1e-6 (deterministic given weights and
data); GUS and its standard error 1e-4 (independent of the null draws; float
summation order differs between machines); TPR@FPR one step of
1/num_poisons; target success one step of 1/num_targets; AUC 1e-3; counts exact.

Each record ends ``verified``, ``mismatch`` (differences stored), ``failed``
(not scored: the reason is stored, without any path of this machine) or
``unsupported`` (no scorer or pinned architecture for that task/attack: ``supported_tracks`` lists the
CIFAR-10 and IMDb tracks that have one, ``unsupported_reason`` says why another has not; the row then ranks
as an unverified claim, never as verified).
The document is signed with ``leaderboard.attest.sign`` when a verifier key
is configured.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from leaderboard.safe_load import (
    DEFAULT_CHECKPOINT_LIMITS,
    TASK_NUM_CLASSES,
    TEXT_TASKS,
    CheckpointLimits,
    CheckpointRefused,
    check_revision,
    is_explicit_local_path,
    is_hub_id,
)
from leaderboard.store import LocalStore, StoredSubmission
from leaderboard.submission import DEFAULT_LIMITS as SUBMISSION_LIMITS
from leaderboard.submission import MAX_VERIFIED_NULL_DRAWS

ScoreFn = Callable[..., dict]

TOLERANCES: dict[str, float | str] = {
    "test_accuracy": 1e-6,
    "forget_accuracy": 1e-6,
    "retain_accuracy": 1e-6,
    "gus": 1e-4,
    "gus_stderr": 1e-4,
    "tpr_at_fpr_0.01": "1/num_poisons",
    "tpr_at_fpr_0.001": "1/num_poisons",
    "tpr_at_fpr_0.01_exact": "1/num_poisons",
    "tpr_at_fpr_0.001_exact": "1/num_poisons",
    "auc": 1e-3,
    "num_poisons": 0.0,
    "num_nulls": 0.0,
    # targeted attacks: one target may flip on a near-tie of logits; num_targets is exact, so a false count fails
    "target_success": "1/num_targets",
    "num_targets": 0.0,
}
SUPPORTED_ATTACKS = ("gaussian", "targeted", "indiscriminate")  # on the tasks of TASK_NUM_CLASSES (CIFAR-10)
TEXT_ATTACKS = ("gaussian", "targeted")  # on TEXT_TASKS (IMDb's GPT-2: Gaussian embeddings, the "Disney" trigger)
DEFAULT_NULL_DRAWS = 40  # hf_unlearn.config.ScoringConfig's default, used when a record has no counts
DEFAULT_SCORING_SEED = 0  # hf_unlearn.config.ScoringConfig's default null-noise seed
ENV_TIMEOUT = "LEADERBOARD_VERIFY_TIMEOUT"
ENV_ALLOW_LOCAL = "LEADERBOARD_ALLOW_LOCAL"
RECORD_STATUSES = ("verified", "mismatch", "failed", "unsupported")


class VerificationNotConfigured(RuntimeError):
    """No public datasets are configured, so there is nothing trustworthy to score on."""


class VerificationRefused(ValueError):
    """A record asks for more work than the limits allow; the message is safe to show publicly."""


@dataclass(frozen=True)
class VerifyLimits:
    """Caps on the work one submission can cause (see docs/leaderboard.md, "Limits")."""

    max_null_draws: int = MAX_VERIFIED_NULL_DRAWS  # null draws per poison (uploads naming a checkpoint: the same cap)
    max_total_nulls: int = 1_000_000  # null draws per record, over all poisons
    max_checkpoints: int = SUBMISSION_LIMITS.max_checkpoints  # re-scored per submission (uploads: the same cap)
    timeout_s: float = 900.0  # wall time of one submission's scoring child process
    checkpoint: CheckpointLimits = field(default_factory=CheckpointLimits)

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_null_draws": self.max_null_draws,
            "max_total_nulls": self.max_total_nulls,
            "max_checkpoints": self.max_checkpoints,
            "timeout_s": self.timeout_s,
            **self.checkpoint.as_dict(),
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "VerifyLimits":
        """The defaults, with ``LEADERBOARD_VERIFY_TIMEOUT`` (seconds) if set."""
        value = environ.get(ENV_TIMEOUT, "").strip()
        if not value:
            return cls()
        try:
            timeout = float(value)
        except ValueError:
            timeout = float("nan")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"{ENV_TIMEOUT}={value!r}: expected a positive number of seconds, e.g. 900")
        return cls(timeout_s=timeout)


DEFAULT_LIMITS = VerifyLimits()


def _supported() -> dict[str, tuple[str, ...]]:
    return {**{t: SUPPORTED_ATTACKS for t in TASK_NUM_CLASSES}, **{t: TEXT_ATTACKS for t in TEXT_TASKS}}


def supported_tracks() -> list[str]:
    """The task/attack pairs whose checkpoints this verifier can re-score (a scorer and a pinned network)."""
    return [f"{t}/{a}" for t, attacks in sorted(_supported().items()) for a in attacks]


def unsupported_reason(task: str, attack: str) -> str:
    """Why a checkpoint on ``task``/``attack`` cannot be re-scored here, or "" when it can.

    Why a status of its own: a scorer and a pinned architecture exist only for ResNet-18 on CIFAR-10 (Gaussian,
    targeted and indiscriminate variants) and GPT-2 on IMDb (Gaussian and trigger variants). A checkpoint of
    another track must not be loaded as one of those (it would fail obscurely or, worse, be compared on the wrong
    metrics), and its row must not look refuted either: it stays an unverified claim, ranked like any record
    without a checkpoint, never as verified.
    """
    supported = _supported()
    if attack in supported.get(task, ()):
        return ""
    what = f"task {task}" if task not in supported else f"the {attack} attack of {task}"
    return (f"checkpoint verification is not available for {what} yet (supported: {', '.join(supported_tracks())}); "
            "the row is shown as an unverified claim")


# --------------------------------------------------------------------------------------------- comparing


def tolerance(metric: str, claimed_metrics: Mapping[str, Any]) -> float:
    tol = TOLERANCES.get(metric, 1e-6)
    if isinstance(tol, str) and tol.startswith("1/"):  # one row's worth of a share; the count itself is exact
        n = claimed_metrics.get(tol[2:])
        return 1.0 / n if isinstance(n, (int, float)) and not isinstance(n, bool) and n >= 1 else 1e-6
    return float(tol)


def compare(claimed: Mapping[str, Any], recomputed: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per metric: claimed, recomputed, claimed - recomputed, tolerance, ok. Only metrics both sides know."""
    out = {}
    for metric in sorted(set(claimed) & set(recomputed) & set(TOLERANCES)):
        c, r = claimed[metric], recomputed[metric]
        tol = tolerance(metric, claimed)
        if c is None or r is None:
            ok, diff = c is None and r is None, None
        else:
            diff = float(c) - float(r)
            ok = math.isfinite(diff) and abs(diff) <= tol + 1e-12
        out[metric] = {
            "claimed": c,
            "recomputed": None if r is None else float(r),
            "diff": diff,
            "tolerance": tol,
            "ok": bool(ok),
        }
    return out


def null_draws_for(metrics: Mapping[str, Any], public_poisons: int | None, limits: VerifyLimits = DEFAULT_LIMITS
                   ) -> int:
    """Null draws per poison to reproduce the record's ``num_nulls``, within the limits (else refused).

    The total is bounded with the public variant's forget size when the
    catalog knows it (the claimed ``num_poisons`` otherwise; the child checks
    the real split size again before drawing).
    """

    def whole(value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return int(value) if math.isfinite(value) and float(value).is_integer() and value >= 1 else None

    poisons, nulls = whole(metrics.get("num_poisons")), whole(metrics.get("num_nulls"))
    if poisons and nulls:
        if nulls % poisons:
            raise VerificationRefused(
                f"num_nulls={nulls} is not a multiple of num_poisons={poisons}: scoring draws the same number of "
                "null scores for every poison (hf-unlearn score --null-draws)"
            )
        draws = nulls // poisons
    else:
        draws = DEFAULT_NULL_DRAWS
    if draws > limits.max_null_draws:
        raise VerificationRefused(
            f"the record asks for {draws:,} null draws per poison; verification draws at most "
            f"{limits.max_null_draws} per poison: rescore with --null-draws {limits.max_null_draws} or fewer"
        )
    total = draws * (public_poisons or poisons or 0)
    if total > limits.max_total_nulls:
        raise VerificationRefused(
            f"the record needs {total:,} null draws; verification draws at most {limits.max_total_nulls:,} per record"
        )
    return draws


# --------------------------------------------------------------------------------------------- public errors

# A path of this machine: "/x/y", "~/x", "C:\x". Not preceded by a letter, digit, ':' or '/' (so URLs stay).
_PATH_RE = re.compile(r"(?<![\w:/.~-])(?:~|[A-Za-z]:\\|/)[^\s'\"<>|,;()\[\]]*")


def scrub(text: str, limit: int = 300) -> str:
    """``text`` with anything that looks like a file path replaced by ``<path>``, on one line, shortened."""
    text = _PATH_RE.sub("<path>", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def public_reason(exc: BaseException) -> str:
    """What went wrong, in words safe to show on a public page (no paths, no tracebacks)."""
    from leaderboard.catalog import UnknownVariantError

    if isinstance(exc, (CheckpointRefused, VerificationRefused, UnknownVariantError, VerificationNotConfigured)):
        return scrub(str(exc), 500)
    try:
        from huggingface_hub import errors as hf_errors
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        hf_errors = None
    if hf_errors is not None:
        if isinstance(exc, hf_errors.GatedRepoError):
            return "the model repo is gated; verification reads public repos only"
        if isinstance(exc, hf_errors.RepositoryNotFoundError):
            return "the model repo was not found on the Hub (or it is private); check the id"
        if isinstance(exc, hf_errors.RevisionNotFoundError):
            return "the revision was not found in the model repo; check the branch, tag or commit"
        if isinstance(exc, hf_errors.EntryNotFoundError):
            return "a file the Hub listed could not be downloaded; try again"
        if isinstance(exc, hf_errors.HfHubHTTPError):
            status = getattr(getattr(exc, "response", None), "status_code", None)
            return f"the Hub answered HTTP {status or 'error'}; try again later"
        if isinstance(exc, getattr(hf_errors, "OfflineModeIsEnabled", ())):
            return "the verifier cannot reach the Hub (offline mode)"
    if isinstance(exc, MemoryError):
        return "the scoring ran out of memory"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return "could not reach the Hub; try again later"
    return f"could not score the checkpoint: {type(exc).__name__}: {scrub(str(exc), 200)}"


# --------------------------------------------------------------------------------------------- scoring (child)

_VARIANT_CACHE: dict[tuple[str, str, str | None], Any] = {}


def score_public_variant(
    checkpoint: str,
    dataset: str,
    config: str,
    *,
    null_draws: int,
    seed: int = DEFAULT_SCORING_SEED,
    batch_size: int = 256,
    revision: str | None = None,
    dataset_revision: str | None = None,
    allow_local: bool = False,
    num_classes: int | None = 10,
    max_total_nulls: int = DEFAULT_LIMITS.max_total_nulls,
    limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS,
    workdir: str | None = None,
    task: str = "cifar10",
    attack: str = "gaussian",
    **_: Any,
) -> dict[str, Any]:
    """The record's metrics for a checkpoint on a public variant, loaded through ``safe_load``.

    ``task``/``attack`` come from the catalog entry (never from the submission). A CIFAR-10 Gaussian variant is
    scored here; a crafted one (targeted, indiscriminate) through its attack's ``evaluate``, as ``score`` does.
    An IMDb checkpoint is a pinned GPT-2 (``safe_load.load_gpt2``: a classifier for Gaussian variants, a prompt
    model with one label word per class for trigger variants) scored exactly as ``score_checkpoint`` scores it:
    ``load_splits``, the attack's ``evaluate`` (GUS/TPR in the embedding space, or ``target_success``), then
    test and forget accuracy.

    The same computation as ``hf_unlearn.scoring.score_checkpoint`` (same
    functions, same order), but with the checked model instead of
    ``load_checkpoint``; adds ``checkpoint_revision`` (the commit scored)
    and ``weights_sha256`` (the SHA-256 of the weights file scored). Meant to
    run in the verification child process (imports torch).
    """
    from hf_unlearn.scoring import gaussian_scores
    from hf_unlearn.train import accuracy
    from hf_unlearn.variant import image_split, load_variant, variant_config

    from leaderboard.safe_load import fetch_checkpoint, load_gpt2, load_resnet, text_expectation, text_limits

    dest = Path(workdir or tempfile.mkdtemp(prefix="hf-unlearn-ckpt-")) / "downloads"
    if task in TEXT_TASKS:
        expect = text_expectation(task, attack, config)  # from the catalog's variant, before anything is fetched
        fetched = fetch_checkpoint(checkpoint, revision, dest, allow_local=allow_local, limits=text_limits(limits))
        model = load_gpt2(fetched, expect, limits)
        return {**_score_with_attack(model, dataset, config, task, attack, dataset_revision, seed, batch_size,
                                     null_draws=null_draws if attack == "gaussian" else None,
                                     max_total_nulls=max_total_nulls),
                "checkpoint_revision": fetched.revision, "weights_sha256": _sha256_file(fetched.weights_path)}
    fetched = fetch_checkpoint(checkpoint, revision, dest, allow_local=allow_local, limits=limits)
    model = load_resnet(fetched, num_classes or TASK_NUM_CLASSES[task], limits)
    if attack != "gaussian":
        return {**_score_crafted(model, dataset, config, task, attack, dataset_revision, seed, batch_size),
                "checkpoint_revision": fetched.revision, "weights_sha256": _sha256_file(fetched.weights_path)}
    key = (dataset, config, dataset_revision)
    if key not in _VARIANT_CACHE:
        ds = load_variant(dataset, config, revision=dataset_revision)
        _VARIANT_CACHE[key] = (image_split(ds["forget"]), image_split(ds["test"]), variant_config(config).eps)
    forget, test, eps = _VARIANT_CACHE[key]
    if len(forget) * null_draws > max_total_nulls:
        raise VerificationRefused(
            f"{len(forget):,} poisons x {null_draws} draws is over the {max_total_nulls:,} null draws allowed "
            "per record"
        )
    scores = gaussian_scores(model, forget, eps, null_draws=null_draws, seed=seed, batch_size=batch_size)
    return {
        "test_accuracy": accuracy(model, test),
        "forget_accuracy": accuracy(model, forget),
        **scores.record_metrics(),  # the record's own score keys (pipeline.score_to_record uses the same)
        "checkpoint_revision": fetched.revision,
        "weights_sha256": _sha256_file(fetched.weights_path),
    }


def _score_crafted(model: Any, dataset: str, config: str, task: str, attack: str, dataset_revision: str | None,
                   seed: int, batch_size: int) -> dict[str, Any]:
    """Test/forget accuracy and the attack's own metrics (``target_success``, ...) of a crafted-poison variant."""
    return _score_with_attack(model, dataset, config, task, attack, dataset_revision, seed, batch_size)


def _score_with_attack(model: Any, dataset: str, config: str, task: str, attack: str, dataset_revision: str | None,
                       seed: int, batch_size: int, *, null_draws: int | None = None,
                       max_total_nulls: int | None = None) -> dict[str, Any]:
    """``score_checkpoint``'s computation with an already checked model: the task's splits (``load_splits``),
    the attack's ``evaluate`` (its own metrics: GUS/TPR with ``null_draws`` per poison, ``target_success``, ...),
    then test and forget accuracy. ``max_total_nulls`` bounds ``len(forget) x null_draws`` before any drawing."""
    from hf_unlearn.attacks import as_evaluation, get_attack
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.tasks import get_task

    key = (dataset, config, dataset_revision)
    if key not in _VARIANT_CACHE:
        _VARIANT_CACHE[key] = load_splits(dataset, config, dataset_revision, task=task, attack=attack,
                                          needed=("forget", "test"))
    splits, spec = _VARIANT_CACHE[key], get_task(task)
    if null_draws is not None and max_total_nulls is not None and len(splits["forget"]) * null_draws > max_total_nulls:
        raise VerificationRefused(
            f"{len(splits['forget']):,} poisons x {null_draws} draws is over the {max_total_nulls:,} null draws "
            "allowed per record"
        )
    evaluation = as_evaluation(get_attack(attack, task).evaluate(
        model, splits, task=spec, config=config, null_draws=null_draws, seed=seed, batch_size=batch_size))
    return {"test_accuracy": spec.accuracy(model, splits["test"]),
            "forget_accuracy": spec.accuracy(model, splits["forget"]), **evaluation.metrics}


def _sha256_file(path: Path) -> str:
    from hf_unlearn.cards import sha256_file

    return sha256_file(path)


def _run_calls(conn: Any, score_fn: ScoreFn, calls: list[dict[str, Any]], cwd: str | None) -> None:
    """Score each call and send ``(index, ok, metrics-or-reason)``; the child process's whole life."""
    if cwd is not None:
        os.chdir(cwd)  # an empty folder: no relative id can resolve to a file of the server
    try:
        os.nice(10)  # scoring yields the CPU to the Space's web server
    except (AttributeError, OSError):
        pass
    for i, call in enumerate(calls):
        try:
            out = score_fn(call["checkpoint"], call["dataset"], call["config"], **call["kwargs"])
            if not isinstance(out, Mapping):
                raise TypeError(f"the scorer returned {type(out).__name__}, not a mapping of metrics")
            conn.send((i, True, dict(out)))
        except Exception as exc:  # noqa: BLE001 - an untrusted checkpoint may fail in any way; report why
            conn.send((i, False, public_reason(exc)))
    conn.close()


def run_isolated(score_fn: ScoreFn, calls: list[dict[str, Any]], timeout_s: float, cwd: str) -> list[tuple[bool, Any]]:
    """Run the calls in one ``spawn`` child process; kill it when ``timeout_s`` is spent.

    Returns one ``(ok, metrics-or-reason)`` per call; calls not finished in
    time fail with the time limit as the reason, calls lost to a crash with
    the exit code. ``score_fn`` must be picklable (a module-level function).
    """
    try:
        pickle.dumps(score_fn)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(
            f"score_fn {score_fn!r} cannot run in a child process (not picklable: {type(exc).__name__}); "
            "use a module-level function, or isolate=False in tests"
        ) from None
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_calls, args=(sender, score_fn, calls, cwd), name="hf-unlearn-verify", daemon=True)
    results: dict[int, tuple[bool, Any]] = {}
    deadline = time.monotonic() + timeout_s
    proc.start()
    sender.close()
    timed_out = False
    try:
        while len(results) < len(calls):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if receiver.poll(min(remaining, 0.5)):
                try:
                    i, ok, value = receiver.recv()
                except (EOFError, OSError):
                    break
                results[i] = (bool(ok), value)
            elif not proc.is_alive() and not receiver.poll(0):
                break
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        proc.join(5)
        receiver.close()
    for i in range(len(calls)):
        if i not in results:
            if timed_out:
                results[i] = (False, f"scoring did not finish within the verification time limit of {timeout_s:g} s")
            else:
                results[i] = (False, f"the scoring process ended unexpectedly (exit code {proc.exitcode})")
    return [results[i] for i in range(len(calls))]


def _run_in_process(score_fn: ScoreFn, calls: list[dict[str, Any]]) -> list[tuple[bool, Any]]:
    out = []
    for call in calls:
        try:
            out.append((True, dict(score_fn(call["checkpoint"], call["dataset"], call["config"], **call["kwargs"]))))
        except Exception as exc:  # noqa: BLE001
            out.append((False, public_reason(exc)))
    return out


# --------------------------------------------------------------------------------------------- verifying


def _env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _resolve_catalog(catalog: Any, public_datasets: Mapping[str, str] | None, allow_local: bool | None
                     ) -> tuple[Any, bool]:
    """The catalog to score on and the operator's local-path flag (explicit, else the catalog's, else the env)."""
    if allow_local is None:
        flag = getattr(catalog, "allow_local", None)
        allow_local = _env_flag(ENV_ALLOW_LOCAL) if flag is None else bool(flag)
    if catalog is None and public_datasets is not None:
        from leaderboard.catalog import Catalog

        catalog = Catalog.from_mapping(dict(public_datasets), allow_local=allow_local)
    if catalog is None:
        raise VerificationNotConfigured(
            "verification needs the public datasets to score on: set LEADERBOARD_DATASETS="
            "cifar10/gaussian=ORG/poisoned-cifar10-gaussian (or pass a Catalog); it never scores on the dataset a "
            "submission names"
        )
    return catalog, allow_local


def _check_checkpoint_id(checkpoint: str, revision: str | None, allow_local: bool) -> None:
    """Refuse, before any work, an id that is neither a Hub model id nor an allowed explicit local path."""
    check_revision(revision)
    if isinstance(checkpoint, str) and (is_hub_id(checkpoint) or (allow_local and is_explicit_local_path(checkpoint))):
        return
    if isinstance(checkpoint, str) and (is_explicit_local_path(checkpoint) or checkpoint.startswith("~")):
        raise CheckpointRefused(
            "local checkpoint paths are not accepted here (operator flag LEADERBOARD_ALLOW_LOCAL=1 is off); "
            "name a Hub model id ORG/NAME"
        )
    raise CheckpointRefused("the checkpoint is not a Hub model id ORG/NAME")


def _dataset_source(repo: str, allow_local: bool) -> tuple[str, bool, str]:
    """(what to load, is it a local folder, what to show). A Hub id is loaded from the Hub, never locally."""
    if allow_local and Path(repo).is_dir():
        return str(Path(repo).resolve()), True, f"local:{Path(repo).name}"
    if is_hub_id(repo):
        return repo, False, repo
    raise CheckpointRefused("the configured public dataset is neither a Hub dataset id nor an allowed folder")


def _overall(statuses: list[str]) -> str:
    if not statuses:
        return "unsupported"
    if all(s == "verified" for s in statuses):
        return "verified"
    for status in ("mismatch", "failed"):
        if status in statuses:
            return status
    return "unsupported"


def verify_submission(
    stored: StoredSubmission,
    *,
    catalog: Any = None,
    public_datasets: Mapping[str, str] | None = None,
    score_fn: ScoreFn | None = None,
    limits: VerifyLimits = DEFAULT_LIMITS,
    allow_local: bool | None = None,
    allow_local_checkpoints: bool = True,
    isolate: bool = True,
    scoring_seed: int = DEFAULT_SCORING_SEED,
    batch_size: int = 256,
    signing_key: bytes | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify every record of ``stored`` that names a checkpoint; return the verification document.

    ``catalog`` (a ``leaderboard.catalog.Catalog``) says where each public
    variant lives; ``public_datasets`` (``{"task/attack": "ORG/REPO"}``) builds
    one. Neither: ``VerificationNotConfigured``. ``allow_local`` is the
    operator flag (default: the catalog's ``allow_local`` attribute if it has
    one, else ``LEADERBOARD_ALLOW_LOCAL``); a local
    checkpoint folder also needs ``allow_local_checkpoints`` (the store's).
    ``score_fn(checkpoint, dataset, config, **kwargs)`` defaults to
    ``score_public_variant``; with ``isolate`` (the default) it runs in a
    child process killed after ``limits.timeout_s``; ``isolate=False`` is for
    tests with in-process fakes. ``signing_key``: sign with
    ``leaderboard.attest.sign``.
    """
    from leaderboard.catalog import UnknownVariantError

    catalog, allow_local = _resolve_catalog(catalog, public_datasets, allow_local)
    score_fn = score_fn or score_public_variant
    workdir = Path(tempfile.mkdtemp(prefix="hf-unlearn-verify-"))
    cwd = workdir / "cwd"
    cwd.mkdir()
    entries: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    try:
        for n, ref in enumerate(stored.submission.checkpoints):
            index = ref["record"]
            record = stored.submission.records[index]
            task, attack, variant_name = record["task"], record["attack"], record["dataset"].get("config")
            entry: dict[str, Any] = {
                "record": index,
                "status": "failed",
                "checkpoint": ref["id"],
                "revision": ref.get("revision"),  # replaced by the commit sha that was scored
                "requested_revision": ref.get("revision"),
                "dataset": None,
                "config": variant_name if isinstance(variant_name, str) else None,
                "dataset_revision": None,
                "recomputed": None,
                "diffs": {},
                "reason": "",
            }
            entries.append(entry)
            try:
                if n >= limits.max_checkpoints:
                    raise VerificationRefused(
                        f"at most {limits.max_checkpoints} checkpoints are re-scored per submission; "
                        "split the file into several submissions"
                    )
                _check_checkpoint_id(ref["id"], ref.get("revision"), bool(allow_local and allow_local_checkpoints))
                variant = catalog.get(task, attack, variant_name)
                source, local_dataset, shown = _dataset_source(variant.repo, allow_local)
                entry.update(dataset=shown, config=variant.config, dataset_revision=variant.revision)
                unsupported = unsupported_reason(task, attack)
                if unsupported:
                    entry.update(status="unsupported", reason=unsupported)
                    continue
                draws = null_draws_for(record["metrics"], variant.num_poisons, limits)
                entry["null_draws"] = draws
            except (UnknownVariantError, VerificationRefused, CheckpointRefused) as exc:
                entry["reason"] = public_reason(exc)
                continue
            checkpoint = ref["id"]
            if not is_hub_id(checkpoint):  # an allowed explicit path: absolute, since the child runs elsewhere
                checkpoint = str(Path(checkpoint).expanduser().resolve())
            calls.append({
                "checkpoint": checkpoint,
                "dataset": source,
                "config": variant.config,
                "kwargs": {
                    "null_draws": draws,
                    "seed": int(scoring_seed),
                    "batch_size": int(batch_size),
                    "revision": ref.get("revision"),
                    "dataset_revision": variant.revision,
                    "allow_local": bool(allow_local and allow_local_checkpoints),
                    "num_classes": TASK_NUM_CLASSES.get(task),  # None for IMDb: the variant's (text_expectation)
                    "max_total_nulls": limits.max_total_nulls,
                    "limits": limits.checkpoint,
                    "workdir": str(workdir),
                    "local_dataset": local_dataset,
                    "task": task,
                    "attack": attack,
                },
            })
            pending.append(entry)
        if calls:
            if isolate:
                outcomes = run_isolated(score_fn, calls, limits.timeout_s, str(cwd))
            else:
                outcomes = _run_in_process(score_fn, calls)
            for entry, (ok, value) in zip(pending, outcomes):
                _finish(entry, stored.submission.records[entry["record"]]["metrics"], ok, value)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for entry in entries:
        if entry["status"] in ("failed", "unsupported"):
            entry["error"] = entry["reason"]  # the field ranking.py shows
    verification = {
        "submission": stored.id,
        "status": _overall([e["status"] for e in entries]),
        "checked_at": (now or datetime.now(timezone.utc)).isoformat(timespec="microseconds"),
        "scoring_seed": int(scoring_seed),
        "limits": limits.as_dict(),
        "records": entries,
    }
    if signing_key:
        from leaderboard.attest import sign

        verification = sign(verification, stored.id, signing_key)
    return verification


def _finish(entry: dict[str, Any], claimed: Mapping[str, Any], ok: bool, value: Any) -> None:
    if not ok:
        entry.update(status="failed", reason=str(value))
        return
    recomputed = dict(value)
    revision = recomputed.pop("checkpoint_revision", None)
    if isinstance(revision, str):
        entry["revision"] = revision
    weights = recomputed.pop("weights_sha256", None)
    if isinstance(weights, str) and re.fullmatch(r"[0-9a-f]{64}", weights):
        entry["weights_sha256"] = weights  # the exact bytes scored, also for a local folder (no commit)
    recomputed = {k: v for k, v in recomputed.items() if k in TOLERANCES or k == "zero_gradients"}
    entry["recomputed"] = {k: (None if v is None else float(v)) for k, v in recomputed.items()
                           if v is None or isinstance(v, (int, float))}
    diffs = compare(claimed, recomputed)
    entry["diffs"] = diffs
    if not diffs:
        entry.update(status="failed", reason="the scorer returned none of the claimed metrics")
        return
    bad = sorted(m for m, d in diffs.items() if not d["ok"])
    if bad:
        entry.update(status="mismatch", reason=f"{len(bad)} metric(s) differ beyond tolerance: {', '.join(bad)}")
    else:
        entry.update(status="verified", reason="")


def verify_and_store(store: LocalStore, submission_id: str, **kwargs: Any) -> dict[str, Any]:
    """Verify a stored submission and add the (signed) verification document to the store.

    Without ``catalog``/``public_datasets`` the store's ``catalog`` is used,
    else the environment's (``Catalog.from_env``); ``limits`` default to
    ``VerifyLimits.from_env`` (``LEADERBOARD_VERIFY_TIMEOUT``). The store signs
    the document with its ``verifier_key`` (``leaderboard.attest``) when it
    adds it; without a key (a Hub store without ``LEADERBOARD_VERIFIER_KEY``)
    it raises ``VerificationNotConfigured`` before scoring anything.
    """
    stored = store.get(submission_id)
    if stored is None:
        raise KeyError(f"no submission {submission_id!r} in the store")
    if kwargs.get("catalog") is None and kwargs.get("public_datasets") is None:
        catalog = getattr(store, "catalog", None)
        if catalog is None:
            from leaderboard.catalog import Catalog

            catalog = Catalog.from_env(os.environ)
        kwargs["catalog"] = catalog
    # Both checked before scoring anything (the work would be wasted): the public datasets, then the key.
    kwargs["catalog"], allow_local = _resolve_catalog(kwargs.get("catalog"), kwargs.pop("public_datasets", None),
                                                      kwargs.get("allow_local"))
    kwargs["allow_local"] = allow_local
    signing_key = getattr(store, "_signing_key", None)
    if signing_key is not None and not signing_key():
        raise VerificationNotConfigured(
            "this leaderboard has no verifier key (LEADERBOARD_VERIFIER_KEY) to sign results with, so nothing is "
            "scored: set it (a secret only the verifier holds)"
        )
    kwargs.setdefault("allow_local_checkpoints", store.allow_local_checkpoints)
    kwargs.setdefault("limits", VerifyLimits.from_env(os.environ))
    verification = verify_submission(stored, **kwargs)
    store.add_verification(verification)
    return verification


def public_datasets_from_env(value: str | None = None) -> dict[str, str] | None:
    """``LEADERBOARD_DATASETS="cifar10/gaussian=ORG/poisoned-cifar10-gaussian,..."`` -> mapping, or None if unset."""
    value = os.environ.get("LEADERBOARD_DATASETS") if value is None else value
    if not value:
        return None
    out = {}
    for item in value.split(","):
        key, sep, repo = item.strip().partition("=")
        if not sep or key.count("/") != 1 or not repo:
            raise ValueError(f"LEADERBOARD_DATASETS item {item!r}: expected task/attack=REPO_OR_FOLDER")
        out[key] = repo
    return out


__all__ = [
    "DEFAULT_LIMITS", "TOLERANCES", "VerificationNotConfigured", "VerificationRefused", "VerifyLimits", "compare",
    "null_draws_for", "public_reason", "run_isolated", "score_public_variant", "scrub", "supported_tracks",
    "unsupported_reason", "verify_and_store", "verify_submission",
]
