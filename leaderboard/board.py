"""The Space's state without the UI: a store, its ranked table, views of it, and ``render_board``.

The ranked table (``leaderboard.ranking``) and its shown text (``leaderboard.display``)
are rebuilt only when the store changes (new submission or verification files), so
a filter change costs a filter, a sort and a copy of at most ``max_rows`` rows;
``benchmarks/bench_leaderboard.py`` times exactly these calls.

``render_board`` is the same view for scripts (``hf-unlearn board``): the rows and
ranks the Space shows, as Markdown, CSV (formula-escaped) or JSON.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from leaderboard import display, names, ranking
from leaderboard.ranking import ALL, Filters
from leaderboard.store import HubStore, LocalStore

FORMATS = ("md", "csv", "json")
STATUSES = ("queued", "verifying", "verified", "mismatch", "failed")


@dataclass
class View:
    value: dict[str, Any]  # what the Dataframe component shows: headers, cells, per-cell styling
    datatypes: list[str]
    widths: list[str]
    rows: pd.DataFrame  # the filtered, sorted rows with every column (for the plots and the export)
    info: str  # one line of counts, our own text only

    @property
    def table(self) -> pd.DataFrame:
        """The shown cells as a DataFrame (headers as columns): handy in tests and scripts."""
        return pd.DataFrame(self.value["data"], columns=self.value["headers"])


def _ranked(store: LocalStore, stored: list[Any], references: Any = None, catalog: Any = None) -> pd.DataFrame:
    """The ranking's whole table (every row, ranked against the trusted references)."""
    build: Callable[..., pd.DataFrame] | None = getattr(ranking, "build_table", None)
    if build is not None:
        return build(store, references=references, catalog=catalog)
    return ranking.summarize(ranking.records_frame(stored, store.verifications()))


def method_descriptions(stored: Sequence[Any]) -> dict[str, str]:
    """Declared new methods -> their description (the first submission that declared one wins)."""
    out: dict[str, str] = {}
    for s in stored:
        for name, info in (getattr(s.submission, "new_methods", None) or {}).items():
            desc = info.get("description") if isinstance(info, Mapping) else info
            if isinstance(desc, str) and desc and name not in out:
                out[name] = desc
    return out


class Board:
    def __init__(self, store: LocalStore, *, pull_interval_s: float = 60.0, references: Any = None,
                 catalog: Any = None, job_status: Callable[[str], Mapping[str, Any] | None] | None = None) -> None:
        self.store = store
        self.references = references  # leaderboard.references.References: the trusted reference rows
        self.catalog = catalog  # leaderboard.catalog.Catalog: the public variants (others are shown, not ranked)
        self.pull_interval_s = pull_interval_s
        self.job_status = job_status  # submission id -> the verification worker's job (queued/verifying)
        self._lock = threading.Lock()
        self._fingerprint: object = None
        self._last_pull = 0.0
        self.table = display.prepare(ranking.summarize(ranking.records_frame([])))
        self.methods: dict[str, str] = {}
        self.submissions: list[Any] = []
        self.num_submissions = 0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> bool:
        """Re-read the store if it changed (pulling from the Hub first when due); True if the table changed."""
        with self._lock:
            if isinstance(self.store, HubStore) and (force or time.monotonic() - self._last_pull > self.pull_interval_s):
                self.store.pull()
                self._last_pull = time.monotonic()
            fingerprint = self.store.fingerprint()
            if not force and fingerprint == self._fingerprint:
                return False
            stored = self.store.submissions()
            self.methods = method_descriptions(stored)
            self.table = display.prepare(_ranked(self.store, stored, self.references, self.catalog), self.methods)
            self.submissions = stored
            self.num_submissions = len(stored)
            self._fingerprint = fingerprint
            return True

    # --- choices for the filter widgets ----------------------------------------------------

    def tasks(self) -> list[str]:
        return sorted(self.table["task"].unique()) if not self.table.empty else []

    def attacks(self, task: str | None) -> list[str]:
        t = self.table
        if t.empty:
            return []
        if task and task != ALL:
            t = t[t["task"] == task]
        return sorted(t["attack"].unique())

    def variants(self, task: str | None, attack: str | None) -> list[str]:
        t = self._slice(task, attack)
        return [ALL] + sorted(t["variant"].unique()) if not t.empty else [ALL]

    def budgets(self, task: str | None, attack: str | None) -> list[str]:
        t = self._slice(task, attack)
        if t.empty:
            return [ALL]
        values = sorted(v for v in t["budget"].dropna().unique())
        return [ALL] + [ranking.budget_text(v) for v in values]

    def _slice(self, task: str | None, attack: str | None) -> pd.DataFrame:
        t = self.table
        if t.empty:
            return t
        if task and task != ALL:
            t = t[t["task"] == task]
        if attack and attack != ALL:
            t = t[t["attack"] == attack]
        return t

    # --- the view -----------------------------------------------------------------------

    def rows(self, filters: Filters, sort_by: str = "Rank", descending: bool = False) -> pd.DataFrame:
        """The filtered rows in the ranking's order (references first, then each budget group by rank)."""
        return ranking.sort_rows(ranking.filter_rows(self.table, filters), sort_by, descending)

    def view(
        self,
        filters: Filters,
        columns: Sequence[str] | None,
        sort_by: str = "Rank",
        descending: bool = False,
        max_rows: int = 500,
    ) -> View:
        rows = self.rows(filters, sort_by, descending)
        value, datatypes, widths = display.table_payload(
            rows, columns or display.default_columns(filters.attack), grouped=sort_by == "Rank", max_rows=max_rows
        )
        n_methods = int((~rows["is_reference"].astype(bool)).sum()) if not rows.empty else 0
        info = (
            f"{len(rows):,} rows ({len(rows) - n_methods} reference, {n_methods} method) from "
            f"{self.num_submissions:,} submissions"
        )
        if len(rows) > max_rows:
            info += f"; showing the first {max_rows:,}: narrow the filters to see the rest"
        if self.store.problems:
            info += f"; {len(self.store.problems)} stored files failed validation and are not shown"
        return View(value, datatypes, widths, rows, info)

    # --- submission status ---------------------------------------------------------------

    def status_rows(self, query: str = "", status: str = ALL, limit: int = 200) -> pd.DataFrame:
        """One row per submission, newest first: id, received, submitter, records, checkpoints, status.

        Status: the worker's job state while it is ``queued`` or ``verifying``; else the
        stored verification (``verified`` / ``mismatch`` / ``failed`` / ``unsupported``);
        else ``queued`` when checkpoints were named but no worker has them (e.g. after a
        restart), ``no checkpoint`` otherwise. ``query`` matches the start of the
        submission id or, as plain text, the submitter name; ``status`` keeps one status.
        """
        verifications = self.store.verifications()
        query = (query or "").strip().casefold()
        rows = []
        for s in reversed(self.submissions):
            sub = s.submission
            name = names.submitter_label(sub.submitter)
            if query and not (s.id.startswith(query) or query in name.casefold()):
                continue
            n_ckpt = len(sub.checkpoints)
            ver = verifications.get(s.id)
            job = self.job_status(s.id) if self.job_status else None
            job_state = str(job.get("state") or job.get("status") or "") if job else ""
            if job_state in ("queued", "verifying"):
                state = job_state
                detail = (f"position {job['position']} in the queue" if job_state == "queued" and job.get("position")
                          else f"started {str(job.get('started_at') or '')[:19]}")
            elif ver is not None:
                state = str(ver.get("status"))
                detail = f"checked {str(ver.get('checked_at', ''))[:19]}"
                bad = [e for e in ver.get("records", []) if isinstance(e, dict) and e.get("status") != "verified"]
                if bad:
                    first = bad[0]
                    detail += f"; record {first.get('record')}: {first.get('status')} {str(first.get('error') or '')}"
            elif job_state:
                state, detail = job_state, str(job.get("message") or "")
            elif n_ckpt:
                state, detail = "queued", "checkpoints named; waiting for the verification worker"
            else:
                state, detail = "no checkpoint", "nothing to verify: the rows are the submitter's claim"
            if status not in (None, "", ALL) and state != status:
                continue
            rows.append({
                "Submission": s.id, "Received": s.received_at[:19], "Submitter": display.submitter_cell(name, names.hub_account(sub.submitter)),
                "Records": len(sub.records), "Checkpoints": n_ckpt, "Status": state,
                "Detail": display.formula_safe(detail[:300]),
            })
            if len(rows) >= limit:
                break
        return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))


STATUS_COLUMNS = ("Submission", "Received", "Submitter", "Records", "Checkpoints", "Status", "Detail")


# --- the CLI view -----------------------------------------------------------------------------

BOARD_API_NAME = "board_json"


class BoardError(ValueError):
    """A bad ``render_board`` argument or an unreachable leaderboard; the message says what to do."""


def _filters(task: str | None, attack: str | None, variant: str | None, budget: str | float | None) -> Filters:
    budget_text = ALL if budget in (None, "", ALL) else (
        ranking.budget_text(float(budget)) if not isinstance(budget, str) else budget)
    return Filters(task=task or ALL, attack=attack or ALL, variant=variant or ALL, budget=budget_text)


def board_records(board: Board, *, task: str | None = None, attack: str | None = None, variant: str | None = None,
                  budget: str | float | None = None) -> pd.DataFrame:
    """The rows a user sees for these filters, in the Space's order (all rows, not only the first 500)."""
    return board.rows(_filters(task, attack, variant, budget))


def format_rows(rows: pd.DataFrame, fmt: str, attack: str | None = None) -> str:
    if fmt == "md":
        return display.to_markdown(rows, attack)
    if fmt == "csv":
        return display.to_csv(rows)
    if fmt == "json":
        return display.to_json(rows) + "\n"
    raise BoardError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def render_board(target: str | os.PathLike, *, task: str | None = None, attack: str | None = None,
                 variant: str | None = None, budget: str | float | None = None, fmt: str = "md",
                 references: Any = None, catalog: Any = None) -> str:
    """The ranked table of a leaderboard as text: the same rows, order and ranks the Space shows.

    ``target``, read as ``hf-unlearn submit`` reads it: a store folder that exists
    here, ``hf://datasets/ORG/NAME`` (the Hub store, mirrored under ~/.cache), or a
    running Space (``spaces/ORG/NAME`` or its ``https://`` address; asked through its
    ``/board_json`` API). ``fmt``: ``md`` (one
    table per task / attack / variant / budget group), ``csv`` (one row per table
    row, text cells formula-escaped) or ``json`` (a list of objects). For a store,
    the trusted references and public variants come from ``references`` / ``catalog``
    or, as in the Space, from ``LEADERBOARD_REFERENCES`` / ``LEADERBOARD_DATASETS``.
    """
    if fmt not in FORMATS:
        raise BoardError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    from leaderboard.submit import LeaderboardTargetError, resolve_target

    try:
        kind, text = resolve_target(target)  # the same reading of --leaderboard as `hf-unlearn submit`
    except LeaderboardTargetError as exc:
        raise BoardError(str(exc)) from None
    if kind == "space":
        return _render_space(text, task=task, attack=attack, variant=variant, budget=budget, fmt=fmt)
    if kind == "local" and not (Path(text) / "submissions").is_dir():
        raise BoardError(f"--leaderboard {text}: not a leaderboard store (it has no submissions/ folder)")
    from leaderboard.catalog import Catalog
    from leaderboard.references import References
    from leaderboard.store import open_store

    catalog = Catalog.from_env() if catalog is None else catalog
    references = References.from_env(catalog=catalog) if references is None else references
    board = Board(open_store(text), references=references, catalog=catalog)
    rows = board_records(board, task=task, attack=attack, variant=variant, budget=budget)
    return format_rows(rows, fmt, attack)


def _render_space(target: str, *, fmt: str, **filters: Any) -> str:
    """Ask a running Space for its rows (``/board_json``) and format them here."""
    try:
        from gradio_client import Client
    except ImportError:  # pragma: no cover - gradio_client comes with gradio
        raise BoardError("reading a Space needs gradio_client: pip install gradio_client") from None
    try:
        client = Client(target, verbose=False)
        reply = client.predict(filters.get("task") or "", filters.get("attack") or "", filters.get("variant") or "",
                               "" if filters.get("budget") is None else str(filters["budget"]),
                               api_name=f"/{BOARD_API_NAME}")
    except Exception as exc:  # noqa: BLE001 - network and Space errors of any kind: one clear line
        raise BoardError(f"--leaderboard {target}: could not read the Space ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    if isinstance(reply, str):
        import json

        reply = json.loads(reply)
    rows = pd.DataFrame(reply.get("rows", []))
    if fmt == "json":
        import json

        return json.dumps(reply.get("rows", []), indent=1, ensure_ascii=False) + "\n"
    prepared = _rows_from_export(rows)
    return format_rows(prepared, fmt, filters.get("attack"))


def _rows_from_export(rows: pd.DataFrame) -> pd.DataFrame:
    """Rebuild the prepared table from exported records (the Space's JSON) to format it here."""
    if rows.empty:
        return display.prepare(ranking.summarize(ranking.records_frame([])))
    table = rows.rename(columns={"verification": "status", "verification_detail": "verify_note",
                                 "scored_checkpoint": "checkpoint"})
    table["status"] = table["status"].fillna("unverified")
    for key in ("rank_shared", "is_reference"):
        table[key] = table[key].fillna(False).astype(bool)
    prepared = display.prepare(table)
    prepared["rank_shared"] = table["rank_shared"].to_numpy()
    prepared["cell:Rank"] = [display.rank_text(r, s) for r, s in zip(prepared["rank"], prepared["rank_shared"])]
    return prepared
