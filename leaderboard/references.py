"""The reference rows (No unlearning, Retrain): trusted, never crowd-sourced.

Why: every rank is a gap to Retrain on the same variant, so whoever writes the
Retrain row writes the ranking. One anonymous file of fake Retrain seeds used
to make every method rank first. Reference rows therefore come only from a
file the maintainers publish: a JSONL of their own result records (method
``none`` or ``retrain``), read from a path or a Hub dataset repo given by the
operator (``LEADERBOARD_REFERENCES`` or the ``source`` argument). Submissions
cannot contain reference methods (``build_submission`` refuses them), so a
submitter can never add, change or outvote a reference. A maintainer who
re-verifies a reference checkpoint adds its record to this file.

Each record is validated like a submission's (schema, shown strings, claims
against the public variant when a catalog is given); a bad line is skipped and
reported in ``problems`` rather than stopping the leaderboard. The table
pools each variant's reference records over their seeds into one row per
(task, attack, variant, method), with their spread (``leaderboard.ranking``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from hf_unlearn.results import REFERENCE_METHODS, RecordError, validate_record
from leaderboard.submission import Limits, SubmissionError, check_claims, check_shown_strings, parse_jsonl

ENV_VAR = "LEADERBOARD_REFERENCES"
REFERENCES_FILE = "references.jsonl"  # the file's name inside a folder or Hub dataset repo
REFERENCE_SUBMITTER = "hf-unlearn maintainers"  # shown in the Submitter column; reserved for submitters
REFERENCE_STATUS = "reference"  # the Verification column of a reference row
REFERENCE_LIMITS = Limits(max_bytes=50_000_000, max_records=100_000, max_line_bytes=65_536)


@dataclass
class References:
    """Validated reference records and the problems met while reading them."""

    records: list[dict[str, Any]]
    source: str  # where the records were read from (operator-facing: may be a server path)
    problems: list[str] = field(default_factory=list)

    @property
    def public_name(self) -> str:
        """``source`` as it may be shown to anyone: the Hub address, or a file's name without its folder.

        Why: the reference rows' ``submission_id`` is exported (CSV, JSON, ``hf-unlearn board``); a path
        such as ``/srv/board/references.jsonl`` would tell the public where the server keeps its files.
        """
        return public_source_name(self.source)

    @classmethod
    def from_records(
        cls, records: Iterable[Any], *, source: str = "(in memory)", catalog: Any = None,
        lines: list[int] | None = None,
    ) -> "References":
        """Keep the valid reference records of ``records``; report the rest."""
        good, problems = [], []
        for i, record in enumerate(records):
            where = f"{source} line {lines[i]}" if lines and i < len(lines) else f"{source} record {i}"
            try:
                validate_record(record)
                if record["method"] not in REFERENCE_METHODS:
                    raise SubmissionError(
                        f"method {record['method']!r}: a references file holds only {list(REFERENCE_METHODS)}"
                    )
                check_shown_strings(where, record, allow_local=True)
                variant = None
                if catalog is not None:
                    variant = catalog.get(record["task"], record["attack"], record["dataset"].get("config"))
                check_claims(where, record, variant)
            except (RecordError, SubmissionError) as exc:
                problems.append(f"{where}: {str(exc)[:300]}")
                continue
            good.append(record)
        return cls(good, source, problems)

    @classmethod
    def load(cls, source: str | os.PathLike, *, catalog: Any = None, api: Any = None) -> "References":
        """From a JSONL file, a folder holding ``references.jsonl``, or ``hf://datasets/ORG/NAME[/FILE.jsonl]``.

        Raises ``FileNotFoundError`` / ``SubmissionError`` when the file itself
        cannot be read (a broken references file must be noticed, not ignored).
        """
        text = str(source)
        if text.startswith("hf://datasets/"):
            parts = text[len("hf://datasets/"):].strip("/").split("/")
            if len(parts) < 2:
                raise ValueError(f"{text!r}: expected hf://datasets/ORG/NAME[/FILE.jsonl]")
            repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or REFERENCES_FILE
            if api is None:
                from huggingface_hub import HfApi

                api = HfApi()
            # The Hub cache's snapshot entry is its own symlink into blobs/; read_bounded refuses symlinks (a user's
            # folder could point anywhere), so read the blob it names.
            path = Path(api.hf_hub_download(repo, filename, repo_type="dataset")).resolve()
        else:
            path = Path(text)
            if path.is_dir():
                path = path / REFERENCES_FILE
        from leaderboard.store import read_bounded

        try:
            data = read_bounded(path, REFERENCE_LIMITS.max_bytes)
        except FileNotFoundError:
            raise FileNotFoundError(f"no references file at {path} ({ENV_VAR} or --references)") from None
        except OSError as exc:
            raise SubmissionError(f"references file {path}: {exc}") from None
        parsed = parse_jsonl(data, REFERENCE_LIMITS)
        return cls.from_records(parsed, source=text, catalog=catalog, lines=parsed.lines)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, catalog: Any = None) -> "References | None":
        """``LEADERBOARD_REFERENCES`` (a path or ``hf://datasets/ORG/NAME``); None when unset."""
        value = environ.get(ENV_VAR, "").strip()
        return cls.load(value, catalog=catalog) if value else None

    def frame(self) -> pd.DataFrame:
        """One row per reference record, in the columns of ``ranking.records_frame``."""
        from leaderboard.ranking import records_frame_from_rows, record_row

        rows = []
        for i, record in enumerate(self.records):
            row = record_row(record)
            row.update({
                "submission": "reference", "submission_id": f"reference:{self.public_name}", "submitter": REFERENCE_SUBMITTER,
                "account": "", "link": "", "received_at": "", "status": REFERENCE_STATUS, "verify_note": "", "checkpoint": "",
            })
            rows.append(row)
        return records_frame_from_rows(rows)


def public_source_name(source: str | os.PathLike) -> str:
    """``hf://datasets/ORG/NAME[/FILE]`` as given; a local file or folder as its file name only."""
    text = str(source)
    if text.startswith("hf://"):
        return text
    if text.startswith("(") or not text:  # "(in memory)" and other labels that are not paths
        return text
    path = Path(text)
    return REFERENCES_FILE if path.is_dir() else (path.name or REFERENCES_FILE)


def write_references(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write reference records as JSONL (for the demo, tests and maintainers' tooling)."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(dict(r), sort_keys=True, allow_nan=False) + "\n" for r in records))
    return path
