"""The result record: one JSON object per (task, attack, variant, model, method, seed).

The runner writes these and the leaderboard reads them, so both import this one
module; a record is validated when it is written and again when it is read, and
the leaderboard treats every record it receives as untrusted input. Validation
never evaluates anything: it checks types, names, ranges and finiteness, and
each error names the field, the value and what is accepted.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

SCHEMA_VERSION = 1

TASKS = ("cifar10", "imdb")
ATTACKS = ("gaussian", "targeted", "indiscriminate")
METHODS = ("none", "retrain", "gd", "ngd", "ga", "euk", "cfk", "scrub", "neggrad_plus", "ssd")
REFERENCE_METHODS = ("none", "retrain")
# Why an unlearning run stopped: its compute budget was spent, an optional early-stop
# rule fired (converged / collapsed), or the method is one-shot (SSD). None: not stated
# (references, and records written before the field existed).
STOPPED_BY = ("budget", "converged", "collapsed", "one_shot")
# Keys of the optional ``tuning`` object (a grid cell of the paper-style tuning).
TUNING_KEYS = ("grid", "setting", "selected", "tuning_compute")

# metric name -> (lowest, highest) accepted value; None means unbounded on that side.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    "test_accuracy": (0.0, 1.0),
    "retain_accuracy": (0.0, 1.0),
    "forget_accuracy": (0.0, 1.0),
    "validation_accuracy": (0.0, 1.0),  # tuning: accuracy on the retain slice held out from unlearning
    "gus": (-1e3, 1e3),
    "gus_stderr": (0.0, 1e3),
    "tpr_at_fpr_0.01": (0.0, 1.0),
    "tpr_at_fpr_0.001": (0.0, 1.0),
    # TPR at the exact N(0, 1) threshold Phi^-1(1 - a) (docs/statistics.md), and the 95% interval of
    # the empirical-threshold TPR that accounts for the finite null (None where a < 1/num_nulls).
    "tpr_at_fpr_0.01_exact": (0.0, 1.0),
    "tpr_at_fpr_0.001_exact": (0.0, 1.0),
    "tpr_at_fpr_0.01_ci95_lo": (0.0, 1.0),
    "tpr_at_fpr_0.01_ci95_hi": (0.0, 1.0),
    "tpr_at_fpr_0.001_ci95_lo": (0.0, 1.0),
    "tpr_at_fpr_0.001_ci95_hi": (0.0, 1.0),
    "zero_gradients": (0.0, None),  # poisons whose input gradient vanished (scored 0)
    "auc": (0.0, 1.0),
    "target_success": (0.0, 1.0),
    "accuracy_gap_to_retrain": (-1.0, 1.0),
    "num_poisons": (0.0, None),
    "num_nulls": (0.0, None),
    "num_targets": (0.0, None),  # targeted attacks: rows of the targets split target_success is measured on
}
# Metrics every Gaussian record must carry (others are per attack / optional).
REQUIRED_METRICS = {
    "gaussian": ("test_accuracy", "gus", "gus_stderr", "tpr_at_fpr_0.01", "auc"),
    "targeted": ("test_accuracy", "target_success"),
    "indiscriminate": ("test_accuracy",),
}
# Metrics that may be None: an FPR below 1/num_nulls cannot be resolved (the exact-threshold
# TPRs need no nulls and are never None).
NULLABLE_METRICS = (
    "tpr_at_fpr_0.001", "tpr_at_fpr_0.01",
    "tpr_at_fpr_0.01_ci95_lo", "tpr_at_fpr_0.01_ci95_hi", "tpr_at_fpr_0.001_ci95_lo", "tpr_at_fpr_0.001_ci95_hi",
)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MAX_STRING = 512
_MAX_CONFIG_KEYS = 64


class RecordError(ValueError):
    """A result record that does not follow the schema; the message says what to fix."""


@dataclass
class ResultRecord:
    """One scored model. Field meanings follow DESIGN.md's "Result record" section."""

    task: str
    attack: str
    dataset: dict[str, Any]  # {"id": repo id or path, "config": variant, "revision": str | None}
    model: dict[str, Any]  # {"id": checkpoint id or path, "revision": str | None}
    method: str
    metrics: dict[str, float | None]
    seed: int = 0
    method_config: dict[str, Any] = field(default_factory=dict)
    budget_fraction: float | None = None  # None for the references (none, retrain)
    compute_used: float = 0.0  # forward-equivalents per DESIGN.md's compute budget
    versions: dict[str, str] = field(default_factory=dict)
    scoring: dict[str, int] = field(default_factory=dict)  # {"seed": null-noise seed, "null_draws": per poison}
    stopped_by: str | None = None  # one of STOPPED_BY, or None (not stated / reference)
    # {"grid": name, "setting": {param: scalar}, "selected": bool, "tuning_compute": float >= 0}
    tuning: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.created_at:
            self.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        validate_record(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, allow_new_method: bool = False) -> "ResultRecord":
        validate_record(data, allow_new_method=allow_new_method)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _fail(field_name: str, value: Any, accepted: str) -> RecordError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return RecordError(f"result record field {field_name!r} = {shown}: expected {accepted}")


def _check_string(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or len(value) > _MAX_STRING:
        raise _fail(name, value, f"a non-empty string of at most {_MAX_STRING} characters")


def _check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(name, value, "a finite number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _fail(name, value, f"a number in [{lo}, {hi}]")


def _check_plain_json(name: str, value: Any, depth: int = 0) -> None:
    """Only JSON scalars, lists and string-keyed dicts, shallow and small."""
    if depth > 4:
        raise _fail(name, "...", "at most 4 levels of nesting")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > _MAX_STRING:
            raise _fail(name, value, f"strings of at most {_MAX_STRING} characters")
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(name, value, "finite numbers")
        return
    if isinstance(value, list):
        if len(value) > _MAX_CONFIG_KEYS:
            raise _fail(name, f"list of {len(value)}", f"at most {_MAX_CONFIG_KEYS} items")
        for item in value:
            _check_plain_json(name, item, depth + 1)
        return
    if isinstance(value, dict):
        if len(value) > _MAX_CONFIG_KEYS:
            raise _fail(name, f"dict of {len(value)}", f"at most {_MAX_CONFIG_KEYS} keys")
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > 64:
                raise _fail(name, key, "string keys of at most 64 characters")
            _check_plain_json(f"{name}.{key}", item, depth + 1)
        return
    raise _fail(name, value, "plain JSON (numbers, strings, lists, objects)")


def _check_tuning(tuning: Any) -> None:
    """The optional grid-cell description: small, flat and typed, so a reader can trust it."""
    if not isinstance(tuning, dict):
        raise _fail("tuning", tuning, f"an object with optional keys {list(TUNING_KEYS)}")
    unknown = sorted(set(tuning) - set(TUNING_KEYS))
    if unknown:
        raise _fail("tuning", tuning, f"only the keys {list(TUNING_KEYS)} (got unknown {unknown})")
    if "grid" in tuning:
        _check_string("tuning.grid", tuning["grid"])
    if "setting" in tuning:
        setting = tuning["setting"]
        if not isinstance(setting, dict) or len(setting) > _MAX_CONFIG_KEYS:
            raise _fail("tuning.setting", setting, f"an object of at most {_MAX_CONFIG_KEYS} parameter -> scalar")
        for key, value in setting.items():
            if not isinstance(key, str) or not key or len(key) > 64:
                raise _fail("tuning.setting", key, "non-empty string keys of at most 64 characters")
            if value is None or isinstance(value, bool):
                continue
            if isinstance(value, str):
                if len(value) > _MAX_STRING:
                    raise _fail(f"tuning.setting.{key}", value, f"a string of at most {_MAX_STRING} characters")
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _fail(f"tuning.setting.{key}", value, "a scalar (finite number, string, bool or null)")
    if "selected" in tuning and not isinstance(tuning["selected"], bool):
        raise _fail("tuning.selected", tuning["selected"], "true or false")
    if "tuning_compute" in tuning:
        _check_number("tuning.tuning_compute", tuning["tuning_compute"], 0.0, None)


def validate_record(data: Any, *, allow_new_method: bool = False) -> None:
    """Raise RecordError on the first problem; a valid record passes silently.

    ``allow_new_method`` lets a submitter declare a method outside METHODS (its
    name must still be a short lower-case identifier).
    """
    if not isinstance(data, dict):
        raise RecordError(f"a result record must be a JSON object, got {type(data).__name__}")
    required = ("schema_version", "task", "attack", "dataset", "model", "method", "metrics", "seed")
    missing = [k for k in required if k not in data]
    if missing:
        raise RecordError(f"result record is missing field(s) {missing}; required: {list(required)}")
    allowed = set(ResultRecord.__dataclass_fields__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RecordError(f"result record has unknown field(s) {unknown}; known fields: {sorted(allowed)}")
    if data["schema_version"] != SCHEMA_VERSION:
        raise _fail("schema_version", data["schema_version"], f"{SCHEMA_VERSION}")
    if data["task"] not in TASKS:
        raise _fail("task", data["task"], f"one of {list(TASKS)}")
    if data["attack"] not in ATTACKS:
        raise _fail("attack", data["attack"], f"one of {list(ATTACKS)}")
    method = data["method"]
    if method not in METHODS:
        if not (allow_new_method and isinstance(method, str) and _NAME_RE.match(method)):
            accepted = f"one of {list(METHODS)}"
            if allow_new_method:
                accepted += " or a declared new method name matching [a-z][a-z0-9_]{0,39}"
            raise _fail("method", method, accepted)
    for key in ("dataset", "model"):
        ref = data[key]
        if not isinstance(ref, dict) or "id" not in ref:
            raise _fail(key, ref, 'an object with "id" (repo id or path), and optional "config"/"revision"')
        extra = set(ref) - {"id", "config", "revision"}
        if extra:
            raise _fail(key, ref, f'only the keys "id", "config", "revision" (got {sorted(extra)})')
        _check_string(f"{key}.id", ref["id"])
        _check_string(f"{key}.config", ref.get("config"), optional=True)
        _check_string(f"{key}.revision", ref.get("revision"), optional=True)
    if data["dataset"].get("config") is None and data["attack"] == "gaussian":
        raise _fail("dataset.config", None, "the variant name, e.g. 'eps0.1-b1.5-s0'")
    seed = data["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise _fail("seed", seed, "an integer in [0, 2**32)")
    if data.get("budget_fraction") is not None:
        _check_number("budget_fraction", data["budget_fraction"], 0.0, 10.0)
    _check_number("compute_used", data.get("compute_used", 0.0), 0.0, None)
    _check_plain_json("method_config", data.get("method_config", {}))
    versions = data.get("versions", {})
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 64 for k, v in versions.items()
    ) or len(versions) > _MAX_CONFIG_KEYS:
        raise _fail("versions", versions, "an object of short strings, e.g. {'torch': '2.14.1'}")
    scoring = data.get("scoring", {})
    if not isinstance(scoring, dict) or set(scoring) - {"seed", "null_draws"}:
        raise _fail("scoring", scoring, 'an object with optional integer "seed" and "null_draws"')
    for key, value in scoring.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise _fail(f"scoring.{key}", value, "an integer in [0, 2**32)")
    stopped_by = data.get("stopped_by")
    if stopped_by is not None and stopped_by not in STOPPED_BY:
        raise _fail("stopped_by", stopped_by, f"one of {list(STOPPED_BY)} or null")
    _check_tuning(data.get("tuning", {}))
    created = data.get("created_at", "")
    if created:
        try:
            datetime.fromisoformat(created)
        except (TypeError, ValueError):
            raise _fail("created_at", created, "an ISO 8601 timestamp") from None
    metrics = data["metrics"]
    if not isinstance(metrics, dict):
        raise _fail("metrics", metrics, "an object of metric name -> number")
    missing_metrics = [m for m in REQUIRED_METRICS[data["attack"]] if m not in metrics]
    if missing_metrics:
        raise RecordError(
            f"result record metrics are missing {missing_metrics} (required for attack {data['attack']!r})"
        )
    for name, value in metrics.items():
        if name not in METRIC_RANGES:
            raise _fail(f"metrics.{name}", value, f"a known metric: {sorted(METRIC_RANGES)}")
        if value is None and name in NULLABLE_METRICS:
            continue
        lo, hi = METRIC_RANGES[name]
        _check_number(f"metrics.{name}", value, lo, hi)


def collect_versions() -> dict[str, str]:
    """Library versions that affect the numbers, recorded in every result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("hf-unlearn", "torch", "datasets", "accelerate", "transformers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def write_records(records: Iterable[ResultRecord | dict], path: str | os.PathLike) -> Path:
    """Write JSON lines atomically (temporary file + rename): a crash leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for rec in records:
        data = rec.to_dict() if isinstance(rec, ResultRecord) else rec
        validate_record(data, allow_new_method=True)
        lines.append(json.dumps(data, sort_keys=True))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + ("\n" if lines else ""))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def append_record(record: ResultRecord | dict, path: str | os.PathLike) -> None:
    """Append one record (used by resumable runners); the file keeps one record per line."""
    data = record.to_dict() if isinstance(record, ResultRecord) else record
    validate_record(data, allow_new_method=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(data, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: str | os.PathLike, *, allow_new_method: bool = True) -> list[ResultRecord]:
    """Read and validate JSON lines; errors name the line."""
    out = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            try:
                out.append(ResultRecord.from_dict(data, allow_new_method=allow_new_method))
            except RecordError as exc:
                raise RecordError(f"{path}:{lineno}: {exc}") from None
    return out
