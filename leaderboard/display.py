"""The readable leaderboard: the ranked table turned into the cells people (and scripts) read.

``leaderboard.ranking`` decides the numbers, the ranks and the order; this module only
formats them, the same way for the Space (``gr.Dataframe`` cells plus per-cell styling),
for ``hf-unlearn board`` (Markdown, CSV, JSON) and for the Space's CSV download:

* **Columns**: the rank-deciding ones come first and have fixed widths (``Budget``,
  ``Rank``, ``Method``, ``Shortfall``, ``TPR@1%``, ``Test acc``, ``Verified``: 888
  px, so they are visible at 1280 px without scrolling); headers are short so
  they never wrap letter by letter.
* **Intervals in the cell**: ``"0.197 ± 0.063"`` for accuracy, GUS and TPR (the
  95% half-widths from ``ranking``). A gap to Retrain gets the half-widths of the row
  and of the reference row combined in quadrature, ``sqrt(h_row² + h_ref²)``: the
  95% half-width of a difference of two independent estimates with normal errors.
  Negative numbers use the minus sign U+2212, so no shown cell starts with ``-``.
* **Ranks**: ``"2"``; a rank shared with another row of the same group (tied, e.g.
  overlapping intervals as ``ranking`` decides) is shown ``"T2"`` ("tied for 2nd";
  not ``"=2"``, which a spreadsheet would read as a formula). Rows that are not
  ranked (references, refuted or failed claims, rows without a reference) show
  ``"–"`` and references say so in the Method cell (``"Retrain (reference)"``).
* **Groups**: a rank is only comparable within (task, attack, variant, budget); in the
  rank order the first row of each group gets a rule above it and a bold Budget cell,
  and the Budget column is shaded for every other group; reference rows are italic on
  an amber tint.
* **Verified badge**: ``✔ verified`` with a tooltip (an HTML ``title``) listing what
  was re-scored and with which tolerances, and what was not (method, budget);
  ``✘ mismatch`` / ``✘ failed`` show the reason in the tooltip.
* **Untrusted text**: submitter strings go into ``str`` cells (rendered as text by the
  browser) or, inside a tooltip, through ``html.escape``; the few Markdown cells
  (Rank, Method, Verified, Scored checkpoint, Model) hold only our own text, method
  names (``[a-z0-9_]``) and Hub ids that pass the Hub-id check, all escaped. Every text cell that could reach a spreadsheet
  (the Space's copy button, CSV) is formula-escaped: a cell starting with
  ``= + - @ TAB CR`` gets a leading apostrophe (OWASP, "CSV injection"), except
  plain numbers.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from leaderboard.names import is_hub_id  # noqa: F401 - re-exported: the rule for a linkable Hub id
from leaderboard.ranking import ALL, SORT_KEYS

MINUS = "\u2212"
NOT_RANKED = "–"
HUB_URL = "https://huggingface.co/"

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- escaping -------------------------------------------------------------------------------


def formula_safe(value: Any) -> Any:
    """Prefix an apostrophe to text a spreadsheet would run as a formula (OWASP CSV injection).

    Numbers (and text that is a plain number, like ``-0.25``) are left alone: a
    spreadsheet reads them as numbers, not formulas.
    """
    if not isinstance(value, str) or not value or not value.startswith(_FORMULA_START):
        return value
    if _NUMBER.match(value):
        return value
    return "'" + value


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_text(text: str) -> str:
    """Text for the inside of a Markdown cell: no HTML, no Markdown syntax, no autolinks."""
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))
    return escaped.replace("@", "&#64;").replace(":", "&#58;")


def attr_text(text: str) -> str:
    """Text for an HTML attribute value in double quotes (a tooltip); newlines kept as line breaks."""
    return html.escape(str(text), quote=True).replace("\r", "").replace("\n", "&#10;")


def tooltip(label_md: str, title: str) -> str:
    return f'<span title="{attr_text(title)}">{label_md}</span>'


# --- numbers --------------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) and \
        math.isfinite(float(value))


def number_text(value: Any, digits: int = 3) -> str:
    """A rounded number with a real minus sign; empty for a missing value; ``> 1e15`` in scientific form."""
    if not _finite(value):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    value = float(value)
    text = f"{value:.{digits}g}" if abs(value) >= 1e15 else f"{value:.{digits}f}"
    if text.startswith("-"):
        text = MINUS + text[1:]
    if text in (f"{MINUS}0.{'0' * digits}",):  # -0.000 -> 0.000
        text = text[1:]
    return text


def interval_text(value: Any, halfwidth: Any, digits: int = 3) -> str:
    """``"0.197 ± 0.063"``; the value alone when there is no interval; empty when there is no value."""
    if not _finite(value):
        return ""
    if not _finite(halfwidth):
        return number_text(value, digits)
    return f"{number_text(value, digits)} ± {number_text(abs(float(halfwidth)), digits)}"


def combined_halfwidth(row_halfwidth: Any, ref_halfwidth: Any) -> float:
    """95% half-width of (row − reference): the two half-widths added in quadrature (independent errors).

    A missing half-width counts as 0 when the other is known, so a single-seed
    reference without an interval does not hide the row's own uncertainty.
    """
    known = [float(h) for h in (row_halfwidth, ref_halfwidth) if _finite(h)]
    return math.sqrt(sum(h * h for h in known)) if known else math.nan


def rank_text(rank: Any, shared: bool) -> str:
    if not _finite(rank):
        return NOT_RANKED
    return f"T{int(rank)}" if shared else str(int(rank))


def budget_text(value: Any) -> str:
    return f"{float(value):g}" if _finite(value) else "—"


# --- verification badge ---------------------------------------------------------------------


def _checked_text() -> str:
    from leaderboard.verify import TOLERANCES  # light: verify imports torch only when it scores
    names = {"test_accuracy": "test accuracy", "forget_accuracy": "forget accuracy",
             "retain_accuracy": "retain accuracy", "gus": "GUS", "gus_stderr": "GUS standard error",
             "tpr_at_fpr_0.01": "TPR@1%", "tpr_at_fpr_0.001": "TPR@0.1%", "auc": "AUC",
             "num_poisons": "number of poisons", "num_nulls": "number of null scores"}
    parts = []
    for metric, tol in TOLERANCES.items():
        tol_text = "exact" if tol == 0 else (f"within {tol}" if isinstance(tol, str) else f"within {tol:g}")
        parts.append(f"{names.get(metric, metric)} ({tol_text})")
    return ", ".join(parts)


CHECKED = _checked_text()
UNSUPPORTED_TEXT = "unverified (verification not available)"  # plain text of the badge of an "unsupported" row
NOT_CHECKED = "Not checked: the method and the budget (claims of the submitter)."


def badge(status: str, *, note: str = "", scored: str = "", variant: str = "", is_reference: bool = False,
          n_seeds: Any = None) -> tuple[str, str]:
    """(Markdown cell, plain text) of the Verified column for one row."""
    status = str(status or "unverified")
    if is_reference:
        seeds = f" over {int(n_seeds)} seeds" if _finite(n_seeds) else ""
        return tooltip("reference", f"Trusted reference published by the maintainers{seeds}; submissions "
                                    "cannot add or change it."), "reference"
    if status == "verified":
        what = f"checkpoint {scored}" if scored else "the named checkpoint"
        title = (f"Re-scored by this leaderboard: {what} on the public variant {variant}.\n"
                 f"Compared: {CHECKED}.\n{NOT_CHECKED}")
        return tooltip("✔ verified", title), "verified"
    if status.startswith(("mismatch", "failed")):
        kind = "mismatch" if status.startswith("mismatch") else "failed"
        reason = note or ("claimed and recomputed numbers differ" if kind == "mismatch" else "not scored")
        title = (f"{status}: {reason}\nA refuted or failed claim is not ranked." if kind == "mismatch"
                 else f"{status}: the checkpoint could not be scored: {reason}")
        return tooltip(f"✘ {md_text(status)}", title), status
    if status in ("pending", "queued", "verifying"):
        return tooltip(f"⏳ {status}", f"A checkpoint was named; verification is {status}. "
                                      "See the Status tab."), status
    if status == "unsupported":
        # A checkpoint was named on a task/attack the verifier cannot score yet (supported_tracks lists those it can):
        # the row is an unverified claim, not a refuted one, and must not read as verified.
        reason = note or "checkpoint verification is not available for this task/attack yet"
        return tooltip("unverified", f"{reason}. The numbers are the submitter's claim."), UNSUPPORTED_TEXT
    if status.startswith("partly verified"):
        return tooltip(md_text(status), f"{status}: only some seeds were re-scored; {note}"), status
    # No tooltip: "unverified" is the common case (explained in the About tab), and 500 tooltips weigh ~40 kB.
    return md_text(status), status


# --- columns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One shown column: header, cell datatype for gr.Dataframe, width, and whether shown by default."""

    label: str
    datatype: str  # "str" | "markdown" | "number"
    width: int  # px
    default: bool
    attacks: tuple[str, ...] = ("gaussian", "targeted", "indiscriminate")
    help: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("Budget", "str", 76, True, help="unlearning compute / training compute; ranks compare rows of one budget"),
    Column("Rank", "markdown", 64, True, help="by shortfall within task, attack, variant and budget; T2: tied for 2nd"),
    Column("Method", "markdown", 232, True),
    Column("Shortfall", "str", 100, True, help="max(0, Δ removal) + max(0, −Δ test acc); 0 = as good as Retrain"),
    Column("TPR@1%", "str", 144, True, ("gaussian",)),
    Column("Target success", "str", 144, True, ("targeted",)),
    Column("Test acc", "str", 144, True),
    Column("Verified", "markdown", 128, True),
    Column("Submitter", "markdown", 190, True, help="@name: a Hub account the Space signed in; other names are typed"),
    Column("Variant", "str", 150, True),
    Column("Seeds", "number", 64, True),
    Column("Δ TPR@1%", "str", 152, True, ("gaussian",)),
    Column("Δ target", "str", 152, True, ("targeted",)),
    Column("Δ test acc", "str", 152, True),
    Column("GUS", "str", 144, True, ("gaussian",)),
    Column("Δ GUS", "str", 152, False, ("gaussian",)),
    Column("TPR@0.1%", "str", 110, False, ("gaussian",)),
    Column("AUC", "str", 72, False, ("gaussian",)),
    Column("Forget acc", "str", 96, False),
    Column("Retain acc", "str", 96, False),
    Column("Compute", "str", 100, False),
    Column("Scored checkpoint", "markdown", 260, True),  # what verification scored (id@revision), linked
    Column("Model", "markdown", 240, False),
    Column("Link", "str", 200, False),
    Column("Submission", "str", 120, False),
    Column("Received", "str", 160, False),
    Column("Verification detail", "str", 320, False),
)
COLUMN_BY_LABEL = {c.label: c for c in COLUMNS}
SORT_CHOICES = tuple(SORT_KEYS)  # the ranking sorts by these labels (``ranking.sort_rows``)


def default_columns(attack: str | None) -> list[str]:
    """Labels of the columns shown by default for one attack."""
    return [c.label for c in COLUMNS if c.default and (attack in (None, ALL) or attack in c.attacks)]


# --- preparing the table (once per store change) ----------------------------------------------


def _col(table: pd.DataFrame, key: str, default: Any = np.nan) -> pd.Series:
    return table[key] if key in table.columns else pd.Series(default, index=table.index)


def _reference_halfwidths(table: pd.DataFrame, metric: str) -> pd.Series:
    """Per row: the 95% half-width of its variant's Retrain reference for ``metric``.

    Uses ``ref_<metric>_ci`` from the ranking when present; otherwise the interval of
    the variant's Retrain row (the largest, if the ranking shows several).
    """
    key = f"ref_{metric}_ci"
    if key in table.columns:
        return table[key]
    ci = f"{metric}_ci"
    if ci not in table.columns or table.empty:
        return pd.Series(np.nan, index=table.index)
    keys = ["task", "attack", "variant"]
    ref = table[table["method"] == "retrain"].groupby(keys)[ci].max().rename("_ref_ci")
    return table[keys].join(ref, on=keys)["_ref_ci"]


def _shared_ranks(table: pd.DataFrame) -> pd.Series:
    """True where a row's rank number is held by another row of the same (task, attack, variant, budget)."""
    if "rank_shared" in table.columns:  # the ranking says so itself
        return table["rank_shared"].fillna(False).astype(bool)
    rank = _col(table, "rank")
    keys = pd.DataFrame({"task": table["task"], "attack": table["attack"], "variant": table["variant"],
                         "budget": _col(table, "budget").fillna(-1.0), "rank": rank})
    counts = keys.groupby(["task", "attack", "variant", "budget", "rank"], dropna=True)["rank"].transform("size")
    return (counts > 1) & rank.notna()


def _method_cell(method: str, label: str, is_reference: bool, descriptions: Mapping[str, str]) -> str:
    if is_reference:
        return f"**{md_text(label)}** (reference)"
    text = md_text(label)
    desc = descriptions.get(method)
    return tooltip(text + " †", f"{method}: {desc}") if desc else text


def _rank_cell(rank: Any, shared: bool, note: str) -> str:
    text = rank_text(rank, shared)
    if text == NOT_RANKED:
        return tooltip(NOT_RANKED, note or "not ranked")
    if shared:
        return tooltip(text, "tied: shortfall intervals overlap")
    return text


def submitter_cell(label: str, account: str) -> str:
    """The shown submitter: a Hub account as ``@name`` linked to its Hub page, typed names as plain text.

    ``label`` is ``names.submitter_label``'s text ("Display (@name)" or "@name" for an account); only the
    account part is linked, and only when the row's ``account`` says the Hub verified it.
    """
    if not account or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", account):
        return md_text(formula_safe(label))
    link = f"[{md_text('@' + account)}]({HUB_URL}{account})"
    suffix = f" (@{account})"
    if label.endswith(suffix):
        return f"{md_text(formula_safe(label[: -len(suffix)]))} ({link})"
    return link


def _model_cell(model_id: Any, revision: Any = None) -> str:
    if not isinstance(model_id, str) or not model_id:
        return ""
    if is_hub_id(model_id):
        url = HUB_URL + model_id
        if isinstance(revision, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", revision):
            url += "/tree/" + revision
            return f"[{md_text(model_id)}@{md_text(revision)}]({url})"
        return f"[{md_text(model_id)}]({url})"
    return md_text(model_id)


def prepare(table: pd.DataFrame, descriptions: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Add the shown text of every column (``"cell:<label>"``) and the plain values for export.

    Called once per store change; a filter change then only selects rows and columns.
    """
    descriptions = descriptions or {}
    out = table.copy()
    if out.empty:
        for c in COLUMNS:
            out[f"cell:{c.label}"] = pd.Series(dtype=object)
        for key in ("rank_shared", "ref_tpr1_halfwidth", "budget_key"):
            out[key] = pd.Series(dtype=object)
        return out
    is_ref = _col(out, "is_reference", False).fillna(False).astype(bool).to_numpy()
    out["rank_shared"] = _shared_ranks(out).to_numpy()
    out["budget_key"] = _col(out, "budget").fillna(-1.0)
    method, label = out["method"].astype(str).tolist(), _col(out, "method_label", "").astype(str).tolist()
    status = _col(out, "status", "unverified").fillna("unverified").astype(str).tolist()
    note = _col(out, "verify_note", "").fillna("").astype(str).tolist()
    scored, scored_rev = [], []
    for text in _col(out, "checkpoint", "").fillna("").astype(str).tolist():  # "id@revision (+n more)"
        ident, _, rev = text.split(" (+")[0].partition("@")
        scored.append(ident)
        scored_rev.append(rev)
    variant = out["variant"].astype(str).tolist()
    n_seeds = _col(out, "n_seeds").tolist()

    def numbers(key: str, ci: str | None = None, digits: int = 3) -> list[str]:
        values = _col(out, key).tolist()
        if ci is None:
            return [number_text(v, digits) for v in values]
        return [interval_text(v, h, digits) for v, h in zip(values, _col(out, ci).tolist())]

    def deltas(key: str, metric: str) -> list[str]:
        row_ci = _col(out, f"{metric}_ci").tolist()
        ref_ci = _reference_halfwidths(out, metric).tolist()
        return [
            "" if ref else interval_text(d, combined_halfwidth(a, b))
            for d, a, b, ref in zip(_col(out, key).tolist(), row_ci, ref_ci, is_ref)
        ]

    badges = [badge(s, note=n, scored=(f"{m}@{r}" if r else m), variant=v, is_reference=ref, n_seeds=k)
              for s, n, m, r, v, ref, k in zip(status, note, scored, scored_rev, variant, is_ref, n_seeds)]
    cells = {
        "Budget": [budget_text(b) for b in _col(out, "budget").tolist()],
        "Rank": [_rank_cell(r, s, n) for r, s, n in zip(_col(out, "rank").tolist(), out["rank_shared"].tolist(),
                                                         _col(out, "rank_note", "").fillna("").astype(str).tolist())],
        "Method": [_method_cell(m, lab, ref, descriptions) for m, lab, ref in zip(method, label, is_ref)],
        "Shortfall": ["" if ref else number_text(v) for v, ref in zip(_col(out, "shortfall").tolist(), is_ref)],
        "TPR@1%": numbers("tpr1", "tpr1_ci"),
        "Target success": numbers("target_success", "target_success_ci"),
        "Test acc": numbers("test_accuracy", "test_accuracy_ci"),
        "Verified": [b[0] for b in badges],
        "Submitter": [submitter_cell(s, a) for s, a in zip(_col(out, "submitter", "").fillna("").astype(str),
                                                              _col(out, "account", "").fillna("").astype(str))],
        "Variant": [formula_safe(v) for v in variant],
        "Seeds": _col(out, "n_seeds").tolist(),
        "Δ TPR@1%": deltas("d_tpr1", "tpr1"),
        "Δ target": deltas("d_target_success", "target_success"),
        "Δ test acc": deltas("d_test_accuracy", "test_accuracy"),
        "GUS": numbers("gus", "gus_ci"),
        "Δ GUS": deltas("d_gus", "gus"),
        "TPR@0.1%": numbers("tpr01"),
        "AUC": numbers("auc"),
        "Forget acc": numbers("forget_accuracy"),
        "Retain acc": numbers("retain_accuracy"),
        "Compute": [number_text(v, 4) if _finite(v) and abs(v) >= 1e15 else
                    (f"{v:,.0f}" if _finite(v) else "") for v in _col(out, "compute").tolist()],
        "Model": [_model_cell(m, r) for m, r in zip(_col(out, "model", "").tolist(),
                                                    _col(out, "model_revision", None).tolist())],
        "Scored checkpoint": [_model_cell(m, r) if m else "" for m, r in zip(scored, scored_rev)],
        "Link": [formula_safe(s) for s in _col(out, "link", "").fillna("").astype(str)],
        "Submission": _col(out, "submission", "").fillna("").astype(str).tolist(),
        "Received": _col(out, "received_at", "").fillna("").astype(str).tolist(),
        "Verification detail": [formula_safe(s) for s in note],
    }
    out["verified_text"] = [b[1] for b in badges]
    for lab, values in cells.items():
        out[f"cell:{lab}"] = values
    return out


# --- the Space's table payload ---------------------------------------------------------------

# Short CSS: the styling travels once per cell with every filter change.
_GROUP_RULE = "border-top:2px solid #6b7280e6"
_GROUP_SHADE = "background:#7f7f7f14"
_REFERENCE = "font-style:italic;background:#f59e0b24"


def chosen_columns(labels: Iterable[str] | None, attack: str | None = None) -> list[Column]:
    labels = list(labels) if labels else default_columns(attack)
    chosen = [COLUMN_BY_LABEL[lab] for lab in labels if lab in COLUMN_BY_LABEL]
    return chosen or [COLUMN_BY_LABEL["Method"]]


def group_starts(rows: pd.DataFrame) -> np.ndarray:
    """True on the first row of each (task, attack, variant, budget) run in the shown order."""
    if rows.empty:
        return np.zeros(0, dtype=bool)
    keys = rows[["task", "attack", "variant"]].astype(str).agg("\x1f".join, axis=1) + "\x1f" + \
        rows["budget_key"].astype(str)
    k = keys.to_numpy()
    starts = np.ones(len(k), dtype=bool)
    starts[1:] = k[1:] != k[:-1]
    return starts


def table_payload(rows: pd.DataFrame, labels: Sequence[str] | None, *, grouped: bool,
                  max_rows: int = 500) -> tuple[dict[str, Any], list[str], list[str]]:
    """(value for gr.Dataframe with per-cell styling, datatypes, column widths) for the shown rows."""
    chosen = chosen_columns(labels)
    shown = rows.head(max_rows)
    headers = [c.label for c in chosen]
    if shown.empty:
        return {"headers": headers, "data": []}, [c.datatype for c in chosen], [f"{c.width}px" for c in chosen]
    columns = [shown[f"cell:{c.label}"].tolist() for c in chosen]
    data = [list(r) for r in zip(*columns)]
    data = [[None if isinstance(v, float) and math.isnan(v) else v for v in r] for r in data]
    is_ref = shown["is_reference"].fillna(False).astype(bool).to_numpy()
    starts = group_starts(shown) if grouped else np.zeros(len(shown), dtype=bool)
    group_index = np.cumsum(starts)
    budget_col = headers.index("Budget") if "Budget" in headers else -1
    styling = []
    for i in range(len(shown)):
        parts = []
        if is_ref[i]:
            parts.append(_REFERENCE)
        if starts[i]:
            parts.append(_GROUP_RULE)
        style = ";".join(parts)
        row = [style] * len(headers)
        if budget_col >= 0:
            extra = []
            if not is_ref[i] and grouped and group_index[i] % 2 == 0:
                extra.append(_GROUP_SHADE)  # alternate groups: a shaded band down the Budget column
            if starts[i]:
                extra.append("font-weight:bold")
            row[budget_col] = ";".join([p for p in (style, *extra) if p])
        styling.append(row)
    # No "display_value": the cells are already the shown text, and it would double the payload.
    value = {"headers": headers, "data": data, "metadata": {"styling": styling}}
    return value, [c.datatype for c in chosen], [f"{c.width}px" for c in chosen]


# --- export (CLI and the Space's download) ------------------------------------------------------

EXPORT_FIELDS: tuple[tuple[str, str], ...] = (
    # (field in the export, column of the prepared table)
    ("task", "task"), ("attack", "attack"), ("variant", "variant"), ("budget", "budget"),
    ("rank", "rank"), ("rank_shared", "rank_shared"), ("method", "method"), ("method_label", "method_label"),
    ("is_reference", "is_reference"), ("verification", "verified_text"), ("shortfall", "shortfall"),
    ("tpr1", "tpr1"), ("tpr1_ci", "tpr1_ci"), ("test_accuracy", "test_accuracy"),
    ("test_accuracy_ci", "test_accuracy_ci"), ("gus", "gus"), ("gus_ci", "gus_ci"),
    ("target_success", "target_success"), ("d_test_accuracy", "d_test_accuracy"), ("d_tpr1", "d_tpr1"),
    ("d_gus", "d_gus"), ("d_target_success", "d_target_success"), ("tpr01", "tpr01"), ("auc", "auc"),
    ("forget_accuracy", "forget_accuracy"), ("retain_accuracy", "retain_accuracy"), ("n_seeds", "n_seeds"),
    ("compute", "compute"), ("submitter", "submitter"), ("submitter_account", "account"), ("model", "model"), ("scored_checkpoint", "checkpoint"),
    ("numbers", "numbers"), ("rank_note", "rank_note"), ("link", "link"), ("submission_id", "submission_id"),
    ("received_at", "received_at"), ("verification_detail", "verify_note"),
)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if math.isfinite(float(value)) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def export_records(rows: pd.DataFrame, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The shown rows as plain JSON-able dicts (numbers as numbers, missing as None), in shown order."""
    shown = rows if max_rows is None else rows.head(max_rows)
    fields = [(name, key) for name, key in EXPORT_FIELDS]
    records = []
    columns = {key: (shown[key].tolist() if key in shown.columns else [None] * len(shown)) for _, key in fields}
    for i in range(len(shown)):
        rec = {name: _plain(columns[key][i]) for name, key in fields}
        rec["rank_text"] = rank_text(rec["rank"], bool(rec["rank_shared"]))
        records.append(rec)
    return records


def to_json(rows: pd.DataFrame) -> str:
    return json.dumps(export_records(rows), indent=1, ensure_ascii=False, allow_nan=False)


def to_csv(rows: pd.DataFrame) -> str:
    """CSV of the shown rows; every text cell formula-escaped (numbers stay numbers)."""
    records = export_records(rows)
    buf = io.StringIO()
    names = [name for name, _ in EXPORT_FIELDS] + ["rank_text"]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for rec in records:
        writer.writerow(["" if rec[n] is None else formula_safe(rec[n]) if isinstance(rec[n], str) else rec[n]
                         for n in names])
    return buf.getvalue()


_MD_TABLE_ESCAPE = str.maketrans({"|": "\\|", "\n": " ", "\r": " ", "`": "\\`", "<": "&lt;", ">": "&gt;"})
MD_COLUMNS = ("Rank", "Method", "Shortfall", "TPR@1%", "Target success", "Test acc", "Verified", "Submitter",
              "Seeds", "Δ TPR@1%", "Δ target", "Δ test acc", "GUS")


def _md_plain(rows: pd.DataFrame, label: str) -> list[str]:
    """Text of a column for a Markdown file (our Markdown cells reduced to their text)."""
    if label == "Verified":
        return rows["verified_text"].astype(str).tolist()
    if label == "Rank":
        return [rank_text(r, s) for r, s in zip(rows["rank"], rows["rank_shared"])]
    if label == "Submitter":
        return [formula_safe(v) for v in rows["submitter"].fillna("").astype(str)]
    if label == "Method":
        return [f"{lab} (reference)" if ref else lab
                for lab, ref in zip(rows["method_label"].astype(str), rows["is_reference"].astype(bool))]
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in rows[f"cell:{label}"].tolist()]


def to_markdown(rows: pd.DataFrame, attack: str | None = None) -> str:
    """One Markdown table per (task, attack, variant, budget) group, under a heading naming the group."""
    if rows.empty:
        return "No rows match.\n"
    out = []
    starts = group_starts(rows)
    bounds = list(np.flatnonzero(starts)) + [len(rows)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        part = rows.iloc[a:b]
        first = part.iloc[0]
        budget = "references" if bool(first["is_reference"]) else f"budget {budget_text(first['budget'])}"
        heading = f"### {first['task']} / {first['attack']} / {first['variant']} / {budget}"
        out.append(heading.translate(_MD_TABLE_ESCAPE))
        labels = [lab for lab in MD_COLUMNS if lab in COLUMN_BY_LABEL and
                  (attack in (None, ALL) and first["attack"] in COLUMN_BY_LABEL[lab].attacks
                   or attack in COLUMN_BY_LABEL[lab].attacks)]
        out.append("| " + " | ".join(labels) + " |")
        out.append("|" + "|".join("---" for _ in labels) + "|")
        cols = [_md_plain(part, lab) for lab in labels]
        for r in zip(*cols):
            out.append("| " + " | ".join(str(formula_safe(v)).translate(_MD_TABLE_ESCAPE) for v in r) + " |")
        out.append("")
    return "\n".join(out)
