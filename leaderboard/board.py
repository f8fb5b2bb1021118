"""The Space's state without the UI: a store, its summarised table, and views of it.

The table is rebuilt only when the store changes (new submission or
verification files), so a filter change costs a filter, a sort and a copy of
at most ``max_rows`` rows; ``benchmarks/bench_leaderboard.py`` times exactly
these calls.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from leaderboard import ranking
from leaderboard.ranking import ALL, Filters
from leaderboard.store import HubStore, LocalStore


@dataclass
class View:
    table: pd.DataFrame  # what the Dataframe component shows (labels as headers)
    datatypes: list[str]
    rows: pd.DataFrame  # the filtered, sorted rows with every column (for the plots)
    info: str  # one line of counts, our own text only


class Board:
    def __init__(self, store: LocalStore, *, pull_interval_s: float = 60.0) -> None:
        self.store = store
        self.pull_interval_s = pull_interval_s
        self._lock = threading.Lock()
        self._fingerprint: object = None
        self._last_pull = 0.0
        self.table = ranking.summarize(ranking.records_frame([]))
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
            frame = ranking.records_frame(stored, self.store.verifications())
            self.table = ranking.summarize(frame)
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

    def view(
        self,
        filters: Filters,
        columns: Sequence[str],
        sort_by: str = "Rank",
        descending: bool = False,
        max_rows: int = 500,
    ) -> View:
        rows = ranking.sort_rows(ranking.filter_rows(self.table, filters), sort_by, descending)
        shown, dtypes = ranking.display_frame(rows, columns, max_rows)
        n_methods = int((~rows["is_reference"]).sum()) if not rows.empty else 0
        info = (
            f"{len(rows):,} rows ({len(rows) - n_methods} reference, {n_methods} method) from "
            f"{self.num_submissions:,} submissions"
        )
        if len(rows) > max_rows:
            info += f"; showing the first {max_rows:,}: narrow the filters to see the rest"
        if self.store.problems:
            info += f"; {len(self.store.problems)} stored files failed validation and are not shown"
        return View(shown, dtypes, rows, info)
