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
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from hf_unlearn.results import METHODS, METRIC_RANGES, RecordError, validate_record

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


DEFAULT_LIMITS = Limits()

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_METHOD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_LINK_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
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


def loads_strict(text: str) -> Any:
    """``json.loads`` without NaN/Infinity, duplicate keys or unbounded recursion."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
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
    for lineno, line in enumerate(text.splitlines(), 1):
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
    """A short piece of free text: stripped, printable, no control or bidi-format characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise SubmissionError(f"{name} is required (1 to {max_chars} characters)")
        return None
    if not isinstance(value, str):
        raise SubmissionError(f"{name} = {_shown(value)}: expected text")
    value = unicodedata.normalize("NFC", value.strip())
    if len(value) > max_chars:
        raise SubmissionError(f"{name} is {len(value)} characters long; the limit is {max_chars}")
    for ch in value:
        if multiline and ch in "\n\t":
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn") or category.startswith("Z") and ch != " ":
            raise SubmissionError(
                f"{name} contains the character U+{ord(ch):04X} ({category}); "
                "only printable characters and plain spaces are accepted"
            )
    return value


def clean_link(name: str, value: Any, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """An optional http(s) link, kept as text (it is never rendered as a link)."""
    value = clean_text(name, value, limits.max_link_chars, required=False)
    if value is not None and not _LINK_RE.match(value):
        raise SubmissionError(f"{name} = {_shown(value)}: expected an http:// or https:// address")
    return value


def clean_method_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _METHOD_NAME_RE.match(value):
        raise SubmissionError(f"{name} = {_shown(value)}: expected a name matching [a-z][a-z0-9_]{{0,39}}")
    return value


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
    if _HUB_ID_RE.match(ident) and ".." not in ident and "--" not in ident:
        return {"id": ident, "revision": revision}
    if allow_local and ident.startswith(("/", "./", "../")):
        clean_text(name, ident, 300)
        return {"id": ident, "revision": None}
    accepted = "a Hub model id like 'org/name[@revision]'"
    if allow_local:
        accepted += " or a local folder path starting with '/' or './'"
    raise SubmissionError(f"{name} = {_shown(value)}: expected {accepted}")


# --- the submission -------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_key(record: Mapping[str, Any]) -> str:
    """What makes two records the same claim (everything but timestamps and library versions)."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in record.items() if k not in _IDENTITY_EXCLUDE}).encode()
    ).hexdigest()


@dataclass
class Submission:
    """Result records plus submitter metadata; ``to_dict`` is the stored form."""

    submitter: dict[str, str | None]  # {"name": ..., "link": ... or None}
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


def _check_record_semantics(where: str, record: dict[str, Any]) -> None:
    """Checks beyond the shared schema that make a claim impossible rather than merely unusual."""
    metrics = record["metrics"]
    for count in ("num_poisons", "num_nulls"):
        value = metrics.get(count)
        if value is not None and float(value) != int(value):
            raise SubmissionError(f"{where}: metrics.{count} = {_shown(value)}: expected a whole number")
    nulls = metrics.get("num_nulls")
    for name in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
        fpr = float(name.rsplit("_", 1)[1])
        if nulls is not None and metrics.get(name) is not None and nulls < 1 / fpr:
            raise SubmissionError(
                f"{where}: metrics.{name} = {metrics[name]!r} with num_nulls = {nulls}: an FPR of {fpr} "
                f"cannot be resolved with fewer than {int(round(1 / fpr))} null scores; send null instead"
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
) -> Submission:
    """Validate untrusted pieces and assemble a ``Submission``; raise ``SubmissionError`` on the first problem.

    ``new_methods`` maps a declared method name to its description (text) or to
    ``{"description": ..., "link": ...}``. ``checkpoints`` is either a mapping
    record index -> ``ID[@REVISION]`` or an iterable of ``[INDEX=]ID[@REVISION]``
    strings (the index may be left out when there is one record).
    """
    lines = getattr(records, "lines", None)
    records = list(records)
    if not records:
        raise SubmissionError("a submission needs at least one result record")

    def where(i: int) -> str:
        return f"record {i} (line {lines[i]})" if lines and i < len(lines) else f"record {i}"

    if len(records) > limits.max_records:
        raise SubmissionError(f"{len(records)} records; the limit is {limits.max_records} per submission")
    name = clean_text("submitter name", submitter, limits.max_name_chars)
    link = clean_link("submitter link", link, limits)

    declared: dict[str, dict[str, str | None]] = {}
    new_methods = dict(new_methods or {})
    if len(new_methods) > limits.max_new_methods:
        raise SubmissionError(f"{len(new_methods)} new methods declared; the limit is {limits.max_new_methods}")
    for method, info in new_methods.items():
        method = clean_method_name("new method name", method)
        if method in METHODS:
            raise SubmissionError(f"new method name {method!r} is already a known method; use it without declaring it")
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
    clean_records = []
    for index, record in enumerate(records):
        try:
            validate_record(record, allow_new_method=True)
        except RecordError as exc:
            raise SubmissionError(f"{where(index)}: {exc}") from None
        if record["method"] not in METHODS and record["method"] not in declared:
            raise SubmissionError(
                f"{where(index)}: method {record['method']!r} is not a known method ({', '.join(METHODS)}); "
                "declare it as a new method with a description"
            )
        _check_record_semantics(where(index), record)
        key = record_key(record)
        if key in seen:
            raise DuplicateSubmissionError(f"{where(index)} repeats {where(seen[key])} of the same submission")
        seen[key] = index
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
    for index, ref in items:
        if index is None:
            if len(clean_records) != 1:
                raise SubmissionError(
                    f"checkpoint {_shown(ref)} names no record; with {len(clean_records)} records write INDEX=ID"
                )
            index = 0
        if isinstance(index, str):
            if not index.strip().isdigit() or len(index.strip()) > 6:
                raise SubmissionError(f"checkpoint record index {_shown(index)}: expected a whole number")
            index = int(index.strip())
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(clean_records):
            raise SubmissionError(
                f"checkpoint record index {_shown(index)}: expected 0 to {len(clean_records) - 1}"
            )
        if any(r["record"] == index for r in refs):
            raise SubmissionError(f"two checkpoints named for record {index}")
        parsed = parse_checkpoint_ref(f"checkpoint for record {index}", ref, allow_local=allow_local_checkpoints)
        refs.append({"record": index, **parsed})
    refs.sort(key=lambda r: r["record"])
    submission = Submission(
        submitter={"name": name, "link": link}, records=clean_records, new_methods=declared, checkpoints=refs
    )
    submission._record_keys = list(seen)  # insertion order = record order
    return submission


def submission_from_dict(data: Any, *, allow_local_checkpoints: bool = True, limits: Limits = DEFAULT_LIMITS) -> Submission:
    """Rebuild a stored submission, re-validating every field (stored files are untrusted too)."""
    if not isinstance(data, dict):
        raise SubmissionError(f"a stored submission must be a JSON object, got {type(data).__name__}")
    known = {"format", "submitter", "new_methods", "checkpoints", "records", "received_at", "id"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SubmissionError(f"stored submission has unknown field(s) {unknown}")
    if data.get("format") != SUBMISSION_FORMAT:
        raise SubmissionError(f"stored submission format {_shown(data.get('format'))}: expected {SUBMISSION_FORMAT}")
    submitter = data.get("submitter")
    if not isinstance(submitter, dict) or set(submitter) - {"name", "link"}:
        raise SubmissionError("stored submission: 'submitter' must be {'name': ..., 'link': ...}")
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
    )


KNOWN_METRICS = tuple(METRIC_RANGES)
