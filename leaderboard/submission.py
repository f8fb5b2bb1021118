"""A submission: a list of result records plus what the submitter says about them.

Everything here is untrusted input. ``parse_jsonl`` turns uploaded bytes into
plain JSON objects with hard limits (size, lines, nesting, no NaN, no duplicate
keys); ``build_submission`` checks each record against the shared schema in
``hf_unlearn.results`` and the submitter's metadata against its own rules.
Every rejection is a ``SubmissionError`` whose message names the line or field,
the offending value (shortened) and what is accepted.

A submission's address is the SHA-256 of its canonical JSON, so the same
submission sent twice has the same address and the store keeps it once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from hf_unlearn.results import METHODS, METRIC_RANGES, REFERENCE_METHODS, RecordError, validate_record

from leaderboard import names

if TYPE_CHECKING:  # catalog.py imports this module
    from leaderboard.catalog import Catalog

SUBMISSION_FORMAT = 1


@dataclass(frozen=True)
class Limits:
    """Hard limits on what one submission may contain."""

    max_bytes: int = 1_000_000  # the uploaded JSONL file, in bytes
    max_records: int = 1_000  # result records per submission
    max_line_bytes: int = 65_536  # one JSONL line
    max_name_chars: int = 80  # submitter name, method names
    max_link_chars: int = 300  # http(s) links
    max_description_chars: int = 2_000  # a declared method's description
    max_new_methods: int = 8  # declared new methods per submission
    max_variants: int = 32  # distinct (task, attack, variant) per submission
    max_seeds_per_row: int = 100  # records of one (task, attack, variant, method, budget): the seeds of a row
    max_checkpoints: int = 20  # checkpoints named per submission: what the verifier re-scores (VerifyLimits)


# Claims checked against the counts they come with (see check_claims).
MAX_NULLS_PER_POISON = 1_000  # num_nulls <= 1000 * num_poisons (the verifier draws that many)
MAX_NULLS = 1_000_000  # and at most a million null scores
MAX_POISONS = 100_000  # num_poisons when the variant's forget size is unknown (training sets here: <= 50,000 rows)
MAX_VERIFIED_NULL_DRAWS = 200  # null draws per poison the verifier re-draws (verify.VerifyLimits.max_null_draws)
STDERR_SPREAD_RANGE = (0.05, 20.0)  # gus_stderr * sqrt(num_poisons): the spread of per-poison scores
MAX_COMPUTE = 1e18  # compute_used, forward-equivalents
TPR_GRID_TOLERANCE = 1e-9  # a TPR is k / num_poisons up to this
BUDGET_DECIMALS = 4  # budget_fraction is a multiple of 0.0001: budgets that print alike are the same budget


DEFAULT_LIMITS = Limits()

_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
# http(s)://HOST[:PORT][/PATH]: no user-info ("https://huggingface.co@evil.example" reads as the Hub but goes to
# evil.example), no quotes, angle brackets, backslashes or back-ticks (nothing that could leave an HTML attribute).
_LINK_RE = re.compile(
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?::[0-9]{1,5})?(?:[/?#][^\s\"'<>\\`{}|^]*)?$"
)
# Keys that identify a record's claim; created_at and versions do not make a new result.
_IDENTITY_EXCLUDE = ("created_at", "versions")


class SubmissionError(ValueError):
    """A rejected submission; the message says exactly what was wrong."""


class DuplicateSubmissionError(SubmissionError):
    """The submission, or one of its records, is already on the leaderboard."""


class RateLimitError(SubmissionError):
    """The submitter sent too many submissions too quickly."""


def _shown(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# --- untrusted JSON -------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise SubmissionError(f"{name} is not allowed: every number must be finite")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SubmissionError(f"the key {_shown(key)} appears twice in one object")
        out[key] = value
    return out


MAX_INT_DIGITS = 19  # |integer| < 10**19: every count, seed and compute figure fits; float() of it cannot overflow


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise SubmissionError(
            f"the integer {text[:24]}... has {len(text.lstrip('-'))} digits; at most {MAX_INT_DIGITS} are accepted"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to inf without passing through parse_constant
        raise SubmissionError(f"the number {text[:40]} is out of range: every number must be finite")
    return value + 0.0  # -0.0 -> 0.0: one spelling per value (the content hash and duplicate checks see the same)


def loads_strict(text: str) -> Any:
    """``json.loads`` without NaN/Infinity (also as overflowing literals), integers over ``MAX_INT_DIGITS``
    digits, duplicate keys or unbounded recursion; ``-0.0`` reads as ``0.0``."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys,
                          parse_int=_parse_int, parse_float=_parse_float)
    except SubmissionError:
        raise
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise SubmissionError("JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise SubmissionError(f"not valid JSON ({exc})") from None


class ParsedRecords(list):
    """The JSON objects of a JSONL file, with ``lines[i]`` = the line record ``i`` came from."""

    lines: list[int]


def parse_jsonl(data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> ParsedRecords:
    """Split an uploaded JSONL file into JSON objects, enforcing size limits first."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if not isinstance(data, (bytes, bytearray)):
        raise SubmissionError(f"expected the bytes of a JSONL file, got {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise SubmissionError(f"file is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"file is not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise SubmissionError("file contains a NUL character; expected JSON lines text")
    objects = ParsedRecords()
    objects.lines = []
    # Split on "\n" only: str.splitlines() also splits on U+2028, U+0085 and others, which may sit inside a
    # JSON string and would then be reported as an "Unterminated string".
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if len(line.encode("utf-8", errors="surrogatepass")) > limits.max_line_bytes:
            raise SubmissionError(f"line {lineno}: longer than {limits.max_line_bytes:,} bytes")
        if len(objects) >= limits.max_records:
            raise SubmissionError(f"more than {limits.max_records} records; split the submission")
        try:
            obj = loads_strict(line)
        except SubmissionError as exc:
            raise SubmissionError(f"line {lineno}: {exc}") from None
        if not isinstance(obj, dict):
            raise SubmissionError(f"line {lineno}: expected a JSON object (one result record), got {type(obj).__name__}")
        objects.append(obj)
        objects.lines.append(lineno)
    if not objects:
        raise SubmissionError("file holds no result records; expected one JSON object per line")
    return objects


# --- submitter metadata ---------------------------------------------------------------------


def clean_text(name: str, value: Any, max_chars: int, *, required: bool = True, multiline: bool = False) -> str | None:
    """A short piece of shown free text: NFKC, stripped, no control, format, bidi or zero-width characters."""
    return names.check_text(name, value, max_chars, required=required, multiline=multiline)


def clean_link(name: str, value: Any, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """An optional http(s) link, kept as text (it is never rendered as a link)."""
    value = clean_text(name, value, limits.max_link_chars, required=False)
    if value is not None and not value.isascii():
        raise SubmissionError(
            f"{name} = {_shown(value)}: use an ASCII address (write an international domain in its xn-- form), "
            "so look-alike letters cannot imitate another site"
        )
    if value is not None and not _LINK_RE.match(value):
        raise SubmissionError(
            f"{name} = {_shown(value)}: expected an http:// or https:// address: a host name, an optional port and "
            "path, without user@ before the host and without quotes, <, >, backslashes or spaces"
        )
    return value


def clean_method_name(name: str, value: Any) -> str:
    """A declared method name: ``[a-z][a-z0-9_]{0,39}``, not reserved, not a look-alike of a known method."""
    return names.check_method_name(name, value, METHODS)


def parse_checkpoint_ref(name: str, value: Any, *, allow_local: bool) -> dict[str, str | None]:
    """``ID`` or ``ID@REVISION``: a Hub model id, or (only if ``allow_local``) a local folder."""
    if not isinstance(value, str) or not value.strip():
        raise SubmissionError(f"{name} = {_shown(value)}: expected a Hub model id like 'org/name[@revision]'")
    value = value.strip()
    if len(value) > 300:
        raise SubmissionError(f"{name} is {len(value)} characters long; the limit is 300")
    ident, revision = value, None
    if "@" in value and not value.startswith(("/", ".")):
        ident, revision = value.rsplit("@", 1)
        if not _REVISION_RE.match(revision) or ".." in revision:
            raise SubmissionError(f"{name}: revision {_shown(revision)} is not a branch, tag or commit name")
    if names.is_hub_id(ident):
        return {"id": ident, "revision": revision}
    if allow_local and ident.startswith(("/", "./", "../")) and names.LOCAL_PATH_RE.match(ident):
        return {"id": ident, "revision": None}
    accepted = "a Hub model id like 'org/name[@revision]'"
    if allow_local:
        accepted += " or a local folder path starting with '/' or './'"
    raise SubmissionError(f"{name} = {_shown(value)}: expected {accepted}")


# --- the submission -------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _same_numbers(value: Any) -> Any:
    """``value`` with every number as a float (``750`` and ``750.0``, ``-0.0`` and ``0.0`` are one claim)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value) + 0.0
    if isinstance(value, dict):
        return {k: _same_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_same_numbers(v) for v in value]
    return value


def record_key(record: Mapping[str, Any]) -> str:
    """What makes two records the same claim (everything but timestamps and library versions; numbers compared
    by value, so re-spelling ``750`` as ``750.0`` or ``0.0`` as ``-0.0`` does not make a new result)."""
    # An absent optional field and an empty one (None, {}, []) are the same claim: adding "stopped_by": null
    # or "tuning": {} must not turn a duplicate into a new result.
    kept = {k: v for k, v in record.items() if k not in _IDENTITY_EXCLUDE and v not in (None, {}, [])}
    return hashlib.sha256(canonical_json(_same_numbers(kept)).encode()).hexdigest()


@dataclass
class Submission:
    """Result records plus submitter metadata; ``to_dict`` is the stored form."""

    # {"name": ..., "link": ... or None} and, only when set (so older stored ids do not change),
    # "display_name": free text shown beside the name, "account": True when the name is a Hub login the Space
    # verified (OAuth); see ``names.check_account`` for why such a name skips the reserved-word check.
    submitter: dict[str, Any]
    records: list[dict[str, Any]]
    new_methods: dict[str, dict[str, str | None]] = field(default_factory=dict)  # name -> {description, link}
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # [{"record": i, "id": ..., "revision": ...}]
    format: int = SUBMISSION_FORMAT

    def __post_init__(self) -> None:
        self._id: str | None = None
        self._record_keys: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "submitter": dict(self.submitter),
            "new_methods": {k: dict(v) for k, v in sorted(self.new_methods.items())},
            "checkpoints": [dict(c) for c in self.checkpoints],
            "records": [dict(r) for r in self.records],
        }

    @property
    def id(self) -> str:
        """SHA-256 of the canonical JSON: the submission's address in the store (computed once)."""
        if self._id is None:
            self._id = hashlib.sha256(canonical_json(self.to_dict()).encode("utf-8")).hexdigest()
        return self._id

    @property
    def record_keys(self) -> list[str]:
        """``record_key`` of each record, computed once."""
        if self._record_keys is None:
            self._record_keys = [record_key(r) for r in self.records]
        return self._record_keys

    def checkpoint_for(self, index: int) -> dict[str, Any] | None:
        for ref in self.checkpoints:
            if ref["record"] == index:
                return ref
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_shown_strings(where: str, record: Mapping[str, Any], *, allow_local: bool) -> None:
    """Every string of a record that the table shows: variant, model id, revisions (see ``leaderboard.names``)."""
    config = record["dataset"].get("config")
    if config is not None:
        names.check_variant_name(f"{where}: dataset.config", config)
    names.check_model_id(f"{where}: model.id", record["model"]["id"], allow_local=allow_local)
    for key in ("model", "dataset"):
        revision = record[key].get("revision")
        if revision is not None and (not _REVISION_RE.match(revision) or ".." in revision):
            raise SubmissionError(f"{where}: {key}.revision = {names.shown(revision)}: expected a branch, tag or commit")
    names.check_text(f"{where}: dataset.id", record["dataset"]["id"], 512)


def check_verifiable(where: str, record: Mapping[str, Any]) -> None:
    """A record that names a checkpoint must ask for no more null draws per poison than the verifier draws.

    Why: claims may use up to ``MAX_NULLS_PER_POISON`` draws, but the verifier re-draws at most
    ``MAX_VERIFIED_NULL_DRAWS`` and would fail such a record, which then does not rank at all: better to say so
    before storing it.
    """
    metrics = record["metrics"]
    poisons, nulls = metrics.get("num_poisons"), metrics.get("num_nulls")
    if _is_number(poisons) and _is_number(nulls) and poisons >= 1 and nulls / poisons > MAX_VERIFIED_NULL_DRAWS:
        raise SubmissionError(
            f"{where}: the record claims {nulls / poisons:g} null draws per poison (num_nulls / num_poisons); "
            f"verification re-draws at most {MAX_VERIFIED_NULL_DRAWS}: rescore with --null-draws "
            f"{MAX_VERIFIED_NULL_DRAWS} or fewer, or submit the record without a checkpoint"
        )


def check_dataset_id(where: str, record: Mapping[str, Any], variant: Any) -> None:
    """A record on a public variant that names a Hub dataset must name the variant's public repo.

    Why: the row is listed under the public variant; a record that says it was scored on another Hub dataset
    (``evil/poisoned-cifar10-gaussian`` with the public config name) is a result on something else. A local
    path (a copy of the public repo on the submitter's disk) is accepted: verification never reads it anyway.
    """
    ident, repo = record["dataset"]["id"], getattr(variant, "repo", None)
    if not isinstance(repo, str) or not names.HUB_ID_RE.match(repo) or not isinstance(ident, str):
        return
    if names.HUB_ID_RE.match(ident) and ident.casefold() != repo.casefold():
        raise SubmissionError(
            f"{where}: dataset.id = {names.shown(ident)}, but variant {variant.config!r} of "
            f"{record['task']}/{record['attack']} is public in {repo}; score on {repo} (or a local copy of it)"
        )


def _check_targets(where: str, metrics: Mapping[str, Any], variant: Any) -> None:
    """``num_targets`` against the public variant, and ``target_success`` on its grid (see ``check_claims``)."""
    targets, expected = metrics.get("num_targets"), getattr(variant, "num_targets", None)
    if targets is not None:
        if float(targets) != int(targets) or targets < 1:
            raise SubmissionError(f"{where}: metrics.num_targets = {_shown(targets)}: expected a whole number >= 1")
        targets = int(targets)
        if expected is not None and targets != expected:
            raise SubmissionError(
                f"{where}: metrics.num_targets = {targets}, but variant {variant.config!r} has {expected} targets "
                "(its targets split); score on the public variant"
            )
    elif expected is not None and metrics.get("target_success") is not None:
        # Its interval (and the grid below) come from it: a public-variant claim gives it.
        raise SubmissionError(f"{where}: metrics.num_targets is missing; variant {variant.config!r} has {expected}")
    n = targets if targets is not None else expected
    success = metrics.get("target_success")
    if n is not None and success is not None and abs(success * n - round(success * n)) > TPR_GRID_TOLERANCE * n:
        raise SubmissionError(
            f"{where}: metrics.target_success = {_shown(success)} is not a multiple of 1/num_targets = 1/{n}: "
            "it is the share of the targets split classified as the attacker wanted"
        )


def check_claims(where: str, record: Mapping[str, Any], variant: Any = None) -> None:
    """Checks that make a claim impossible rather than merely unusual, against the counts and the variant.

    * ``num_poisons`` and ``num_nulls`` are whole numbers, ``num_poisons`` >= 1 and, when the public
      variant's forget size is known, equal to it (else at most ``MAX_POISONS``);
    * every TPR is a multiple of 1/num_poisons (within ``TPR_GRID_TOLERANCE``): it is a share of poisons;
    * ``num_targets`` (targeted attacks, e.g. IMDb's trigger) is a whole number >= 1, equal to the public
      variant's ``targets`` split size when the catalog knows it, and ``target_success`` is a multiple of
      1/num_targets: it is the share of those rows classified as the attacker wanted;
    * ``num_nulls`` is a multiple of num_poisons (null draws per poison) in [num_poisons,
      MAX_NULLS_PER_POISON * num_poisons] and at most ``MAX_NULLS``;
    * a TPR at an FPR below 1/num_nulls is null (that FPR cannot be resolved);
    * ``gus_stderr`` > 0 and ``gus_stderr * sqrt(num_poisons)`` (the spread of the per-poison scores,
      about 1 for unit-variance scores) in ``STDERR_SPREAD_RANGE``, so an interval cannot be made up;
    * ``compute_used`` at most ``MAX_COMPUTE``;
    * ``budget_fraction`` a multiple of 10**-``BUDGET_DECIMALS`` (ranks are per budget: ``0.0500001`` would make
      a group of its own that prints as 0.05).
    """
    metrics = record["metrics"]
    for count in ("num_poisons", "num_nulls"):
        value = metrics.get(count)
        if value is not None and float(value) != int(value):
            raise SubmissionError(f"{where}: metrics.{count} = {_shown(value)}: expected a whole number")
    poisons, nulls = metrics.get("num_poisons"), metrics.get("num_nulls")
    expected = getattr(variant, "num_poisons", None)
    if poisons is not None:
        poisons = int(poisons)
        if poisons < 1:
            raise SubmissionError(f"{where}: metrics.num_poisons = {poisons}: expected at least 1 poison")
        if poisons > MAX_POISONS and expected is None:
            # Without the public size a huge count would make the Wilson interval of a TPR as narrow as wished.
            raise SubmissionError(
                f"{where}: metrics.num_poisons = {poisons}: expected at most {MAX_POISONS:,} (the poisons of a "
                "variant's forget split)"
            )
        if expected is not None and poisons != expected:
            raise SubmissionError(
                f"{where}: metrics.num_poisons = {poisons}, but variant {variant.config!r} has {expected} poisons "
                "(its forget split); score on the public variant"
            )
    elif expected is not None and record["attack"] == "gaussian":
        raise SubmissionError(f"{where}: metrics.num_poisons is missing; variant {variant.config!r} has {expected}")
    if nulls is None and variant is not None and record["attack"] == "gaussian":
        # The TPRs' resolution (and what verification re-draws) depends on it: a public-variant claim gives it.
        raise SubmissionError(f"{where}: metrics.num_nulls is missing (the null scores the TPRs were measured with)")
    if poisons is not None:
        for name in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01_exact", "tpr_at_fpr_0.001_exact"):
            value = metrics.get(name)
            if value is not None and abs(value * poisons - round(value * poisons)) > TPR_GRID_TOLERANCE * poisons:
                raise SubmissionError(
                    f"{where}: metrics.{name} = {_shown(value)} is not a multiple of 1/num_poisons = 1/{poisons}: "
                    "a TPR is the share of poisons above the threshold"
                )
    for name in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
        fpr = float(name.rsplit("_", 1)[1])
        if nulls is not None and metrics.get(name) is not None and nulls < 1 / fpr:
            raise SubmissionError(
                f"{where}: metrics.{name} = {metrics[name]!r} with num_nulls = {nulls}: an FPR of {fpr} "
                f"cannot be resolved with fewer than {int(round(1 / fpr))} null scores; send null instead"
            )
    if nulls is not None:
        nulls = int(nulls)
        if poisons is not None:
            high = min(MAX_NULLS, MAX_NULLS_PER_POISON * poisons)
            if not poisons <= nulls <= high or nulls % poisons:
                raise SubmissionError(
                    f"{where}: metrics.num_nulls = {nulls}: expected a multiple of num_poisons = {poisons} "
                    f"(null draws per poison) from {poisons} to {high:,}"
                )
        elif nulls > MAX_NULLS or nulls < 1:
            raise SubmissionError(f"{where}: metrics.num_nulls = {nulls}: expected 1 to {MAX_NULLS:,}")
        draws = record.get("scoring", {}).get("null_draws")
        if poisons is not None and isinstance(draws, int) and draws * poisons != nulls:
            raise SubmissionError(
                f"{where}: scoring.null_draws = {draws} but metrics.num_nulls / num_poisons = {nulls / poisons:g}"
            )
    _check_targets(where, metrics, variant)
    stderr = metrics.get("gus_stderr")
    if stderr is not None:
        if poisons is None:
            raise SubmissionError(f"{where}: metrics.gus_stderr needs metrics.num_poisons (the count it comes from)")
        low, high = STDERR_SPREAD_RANGE
        if poisons >= 2 and not (stderr > 0 and low <= stderr * math.sqrt(poisons) <= high):
            raise SubmissionError(
                f"{where}: metrics.gus_stderr = {_shown(stderr)} with {poisons} poisons implies a score spread of "
                f"{stderr * math.sqrt(poisons):.3g}; expected gus_stderr > 0 and gus_stderr * sqrt(num_poisons) "
                f"in [{low}, {high}]"
            )
    budget = record.get("budget_fraction")
    if _is_number(budget):
        steps = budget * 10**BUDGET_DECIMALS
        if abs(steps - round(steps)) > 1e-9:  # float error of 0.07 * 10**4 is ~1e-13; 0.05000000001 is 1e-7 off
            raise SubmissionError(
                f"{where}: budget_fraction = {_shown(budget)}: give at most {BUDGET_DECIMALS} decimals (e.g. 0.05); "
                "ranks are per budget, and budgets that print alike must be the same budget"
            )
    compute = record.get("compute_used", 0.0)
    if _is_number(compute) and not compute <= MAX_COMPUTE:
        raise SubmissionError(
            f"{where}: compute_used = {_shown(compute)}: expected at most {MAX_COMPUTE:g} forward-equivalents"
        )


def build_submission(
    records: Iterable[Any],
    *,
    submitter: Any,
    link: Any = None,
    new_methods: Mapping[str, Any] | None = None,
    checkpoints: Iterable[str] | Mapping[int, str] | None = None,
    allow_local_checkpoints: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    catalog: "Catalog | None" = None,
    on_upload: bool = True,
    display_name: Any = None,
    account: bool = False,
) -> Submission:
    """Validate untrusted pieces and assemble a ``Submission``; raise ``SubmissionError`` on the first problem.

    ``new_methods`` maps a declared method name to its description (text) or to
    ``{"description": ..., "link": ...}``. ``checkpoints`` is either a mapping
    record index -> ``ID[@REVISION]`` or an iterable of ``[INDEX=]ID[@REVISION]``
    strings (the index may be left out when there is one record).

    With a ``catalog`` every record must be on one of its public variants and
    match that variant's forget size. Records of the reference methods (none,
    retrain) are refused: references come only from the maintainers
    (``leaderboard.references``). A record that names a checkpoint must be
    verifiable: at most ``MAX_VERIFIED_NULL_DRAWS`` null draws per poison.

    ``on_upload=False`` (reading a stored submission back) keeps records on
    variants the catalog does not list (the table shows them unranked) but
    still checks those it lists against them, and leaves the null-draw cap to
    the verifier (it reports the record as failed).

    ``display_name`` is free text shown beside the submitter (checked like any
    free-text name: ``names.check_submitter``). ``account=True`` says the
    submitter is a Hub account name the caller verified (the Space's OAuth
    login): it is checked for the Hub's characters only (``names.check_account``)
    and shown as ``@name``.
    """
    lines = getattr(records, "lines", None)
    records = list(records)
    if not records:
        raise SubmissionError("a submission needs at least one result record")

    def where(i: int) -> str:
        return f"record {i} (line {lines[i]})" if lines and i < len(lines) else f"record {i}"

    if len(records) > limits.max_records:
        raise SubmissionError(f"{len(records)} records; the limit is {limits.max_records} per submission")
    if account:
        name = names.check_account(submitter)
    else:
        name = names.check_submitter(submitter, limits.max_name_chars)
    shown_as = None
    if display_name is not None and not (isinstance(display_name, str) and not display_name.strip()):
        shown_as = names.check_submitter(display_name, limits.max_name_chars, field="display name")
        if shown_as.casefold() == name.casefold():
            shown_as = None  # the same as the name: nothing to add
    link = clean_link("submitter link", link, limits)

    declared: dict[str, dict[str, str | None]] = {}
    new_methods = dict(new_methods or {})
    if len(new_methods) > limits.max_new_methods:
        raise SubmissionError(f"{len(new_methods)} new methods declared; the limit is {limits.max_new_methods}")
    for method, info in new_methods.items():
        method = clean_method_name("new method name", method)
        if isinstance(info, str) or info is None:
            info = {"description": info}
        if not isinstance(info, Mapping) or set(info) - {"description", "link"}:
            raise SubmissionError(f"new method {method!r}: expected a description and an optional link")
        declared[method] = {
            "description": clean_text(
                f"description of new method {method!r}", info.get("description"), limits.max_description_chars,
                multiline=True,
            ),
            "link": clean_link(f"link of new method {method!r}", info.get("link"), limits),
        }

    seen: dict[str, int] = {}
    variants_seen: set[tuple[str, str, Any]] = set()
    seeds_per_row: dict[tuple[Any, ...], int] = {}
    clean_records = []
    for index, record in enumerate(records):
        try:
            validate_record(record, allow_new_method=True)
        except RecordError as exc:
            raise SubmissionError(f"{where(index)}: {exc}") from None
        if record["method"] in REFERENCE_METHODS:
            raise SubmissionError(
                f"{where(index)}: method {record['method']!r} is a reference method; the No-unlearning and "
                "Retrain rows come only from the maintainers' references, so submit unlearning methods only"
            )
        if record["method"] not in METHODS and record["method"] not in declared:
            raise SubmissionError(
                f"{where(index)}: method {record['method']!r} is not a known method ({', '.join(METHODS)}); "
                "declare it as a new method with a description"
            )
        check_shown_strings(where(index), record, allow_local=allow_local_checkpoints)
        variant = None
        if catalog is not None:
            from leaderboard.catalog import UnknownVariantError

            try:
                variant = catalog.get(record["task"], record["attack"], record["dataset"].get("config"))
            except UnknownVariantError as exc:
                if on_upload:
                    raise UnknownVariantError(f"{where(index)}: {exc}") from None
            if variant is not None:
                check_dataset_id(where(index), record, variant)
        check_claims(where(index), record, variant)
        group = (record["task"], record["attack"], record["dataset"].get("config"))
        variants_seen.add(group)
        if len(variants_seen) > limits.max_variants:
            raise SubmissionError(
                f"{where(index)}: more than {limits.max_variants} variants in one submission; split the submission"
            )
        key = record_key(record)
        if key in seen:
            raise DuplicateSubmissionError(f"{where(index)} repeats {where(seen[key])} of the same submission")
        seen[key] = index
        row = (*group, record["method"], record.get("budget_fraction"))
        seeds_per_row[row] = seeds_per_row.get(row, 0) + 1
        if seeds_per_row[row] > limits.max_seeds_per_row:
            raise SubmissionError(
                f"{where(index)}: more than {limits.max_seeds_per_row} records of {record['method']} on "
                f"{group[2]} at budget {record.get('budget_fraction')}; the limit is {limits.max_seeds_per_row} seeds a row"
            )
        clean_records.append(record)
    unused = sorted(set(declared) - {r["method"] for r in clean_records})
    if unused:
        raise SubmissionError(f"new method(s) {unused} are declared but no record uses them")

    refs = []
    items: list[tuple[Any, Any]]
    if checkpoints is None:
        items = []
    elif isinstance(checkpoints, Mapping):
        items = list(checkpoints.items())
    else:
        items = []
        for spec in checkpoints:
            if not isinstance(spec, str):
                raise SubmissionError(f"checkpoint {_shown(spec)}: expected text '[INDEX=]ID[@REVISION]'")
            if not spec.strip():
                continue
            index_text, sep, ref = spec.strip().partition("=")
            items.append((index_text, ref) if sep else (None, spec))
    if len(items) > len(clean_records):
        raise SubmissionError(f"{len(items)} checkpoints named for {len(clean_records)} records")
    if on_upload and len(items) > limits.max_checkpoints:
        # The verifier re-scores at most this many per submission and fails the rest, which then do not rank.
        raise SubmissionError(
            f"{len(items)} checkpoints named; at most {limits.max_checkpoints} per submission are re-scored: split "
            "the file into several submissions"
        )
    for index, ref in items:
        if index is None:
            if len(clean_records) != 1:
                raise SubmissionError(
                    f"checkpoint {_shown(ref)} names no record; with {len(clean_records)} records write INDEX=ID"
                )
            index = 0
        if isinstance(index, str):
            if not re.fullmatch(r"[0-9]{1,6}", index.strip()):  # ASCII digits: "²" or "٣" are digits to str.isdigit
                raise SubmissionError(f"checkpoint record index {_shown(index)}: expected a whole number")
            index = int(index.strip())
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(clean_records):
            raise SubmissionError(
                f"checkpoint record index {_shown(index)}: expected 0 to {len(clean_records) - 1}"
            )
        if any(r["record"] == index for r in refs):
            raise SubmissionError(f"two checkpoints named for record {index}")
        parsed = parse_checkpoint_ref(f"checkpoint for record {index}", ref, allow_local=allow_local_checkpoints)
        if on_upload:
            check_verifiable(f"checkpoint for record {index}", clean_records[index])
        refs.append({"record": index, **parsed})
    refs.sort(key=lambda r: r["record"])
    submitter_meta: dict[str, Any] = {"name": name, "link": link}
    if shown_as is not None:
        submitter_meta["display_name"] = shown_as
    if account:
        submitter_meta["account"] = True
    submission = Submission(
        submitter=submitter_meta, records=clean_records, new_methods=declared, checkpoints=refs
    )
    submission._record_keys = list(seen)  # insertion order = record order
    return submission


def submission_from_dict(
    data: Any, *, allow_local_checkpoints: bool = True, limits: Limits = DEFAULT_LIMITS, catalog: Any = None
) -> Submission:
    """Rebuild a stored submission, re-validating every field (stored files are untrusted too).

    With a ``catalog``, records on its public variants are checked against them (forget size, public repo) as on
    upload, so a file planted in the store cannot skip those checks; records on variants it does not list are kept
    (shown unranked).
    """
    if not isinstance(data, dict):
        raise SubmissionError(f"a stored submission must be a JSON object, got {type(data).__name__}")
    known = {"format", "submitter", "new_methods", "checkpoints", "records", "received_at", "id"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SubmissionError(f"stored submission has unknown field(s) {unknown}")
    if data.get("format") != SUBMISSION_FORMAT:
        raise SubmissionError(f"stored submission format {_shown(data.get('format'))}: expected {SUBMISSION_FORMAT}")
    submitter = data.get("submitter")
    if not isinstance(submitter, dict) or set(submitter) - {"name", "link", "display_name", "account"}:
        raise SubmissionError("stored submission: 'submitter' must be {'name': ..., 'link': ...} with an optional "
                              "'display_name' and 'account'")
    if submitter.get("account", True) is not True:
        raise SubmissionError("stored submission: submitter 'account' must be true when present")
    checkpoints = data.get("checkpoints") or []
    if not isinstance(checkpoints, list) or not all(isinstance(c, dict) for c in checkpoints):
        raise SubmissionError("stored submission: 'checkpoints' must be a list of objects")
    specs = {}
    for ref in checkpoints:
        if set(ref) - {"record", "id", "revision"}:
            raise SubmissionError("stored submission: a checkpoint has unknown keys")
        rev = ref.get("revision")
        specs[ref.get("record")] = ref.get("id", "") + (f"@{rev}" if rev else "")
    records = data.get("records")
    if not isinstance(records, list):
        raise SubmissionError("stored submission: 'records' must be a list")
    new_methods = data.get("new_methods") or {}
    if not isinstance(new_methods, dict):
        raise SubmissionError("stored submission: 'new_methods' must be an object")
    return build_submission(
        records,
        submitter=submitter.get("name"),
        link=submitter.get("link"),
        new_methods=new_methods,
        checkpoints=specs,
        allow_local_checkpoints=allow_local_checkpoints,
        limits=limits,
        catalog=catalog,
        on_upload=False,
        display_name=submitter.get("display_name"),
        account=submitter.get("account") is True,
    )


KNOWN_METRICS = tuple(METRIC_RANGES)
