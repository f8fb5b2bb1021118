"""hf-unlearn leaderboard: a Gradio Space that shows, compares, accepts and verifies results.

Run locally:   python space/app.py [--store FOLDER] [--hub-repo ORG/NAME] [--demo] [--port 7860]
On a Space:    the same file; configure with the variables below (README.md carries the Space YAML).

Environment (flags win over variables):
  LEADERBOARD_STORE            local store folder (default ./leaderboard-store)
  LEADERBOARD_REPO             Hub dataset repo id kept in sync with the store (needs HF_TOKEN with write access)
  LEADERBOARD_DATASETS         public variants: "cifar10/gaussian=ORG/poisoned-cifar10-gaussian,imdb/targeted=...,..."
  LEADERBOARD_REFERENCES       the maintainers' reference results (a JSONL file, a folder, hf://datasets/ORG/NAME)
  LEADERBOARD_RATE             per-account limit "COUNT/SECONDS" (default 5/3600; "off" to disable)
  LEADERBOARD_ADDRESS_RATE     per-address limit "COUNT/SECONDS" (default 20/3600; "off" to disable)
  LEADERBOARD_TRUSTED_PROXIES  comma-separated proxy IPs whose X-Forwarded-For is believed (default: none)
  LEADERBOARD_VERIFY           "0" to accept checkpoints without re-scoring them (entries stay "pending")
  LEADERBOARD_VERIFIER_KEY     secret (>= 16 bytes) that signs verification results (a Space secret)
  LEADERBOARD_VERIFY_TIMEOUT   wall-time seconds per verified submission (default 900)
  LEADERBOARD_VERIFY_QUEUE     submissions that may wait for verification (default 20)
  LEADERBOARD_ALLOW_LOCAL      "1": public datasets and checkpoints may be local folders (never on a public Space)

Who submits: on a Space (``SPACE_ID`` is set) the submitter is the Hugging Face
account signed in with the login button (``hf_oauth: true`` in README.md), shown
as a linked ``@name``; the name box is only a display name, stored and shown beside
it. Locally the name box is the submitter.

Everything a submitter sends is validated by ``leaderboard.submission`` before it
is stored; every submitter-controlled string is shown through ``gr.Dataframe``
cells of datatype "str", Markdown cells whose text is HTML- and Markdown-escaped,
a plain ``gr.Textbox``, or HTML-escaped inside a tooltip (``leaderboard.display``):
never as live HTML or Markdown.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import leaderboard  # noqa: F401  (installed with hf-unlearn)
except ImportError:  # running from a source checkout: python space/app.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradio as gr

from leaderboard import display, plots, ranking
from leaderboard.board import BOARD_API_NAME, Board, board_records
from leaderboard.display import SORT_CHOICES
from leaderboard.names import check_account, check_submitter
from leaderboard.ranking import ALL, Filters
from leaderboard.store import HubStore, LocalStore, RateLimit, StoreError
from leaderboard.submission import DEFAULT_LIMITS, SubmissionError
from leaderboard.submit import API_NAME, read_upload, submit_records, verification_messages

TITLE = "hf-unlearn leaderboard"
INTRO = (
    "Does an unlearning method really remove poisoned training data? Each row is a method run on a public "
    "poisoned variant, compared with **Retrain** (training again without the poisons) on the same variant. "
    "Reference rows come from the maintainers' own runs. Rows whose checkpoint was re-scored by this Space say "
    "**✔ verified** (hover for what was checked) and come first; the others are the submitter's claim."
)

CITATION = """@inproceedings{pawelczyk2025machine,
  title={Machine Unlearning Fails to Remove Data Poisoning Attacks},
  author={Pawelczyk, Martin and Di, Jimmy Z. and Lu, Yiwei and Sekhari, Ayush and Kamath, Gautam and Neel, Seth},
  booktitle={The Thirteenth International Conference on Learning Representations},
  year={2025},
  url={https://arxiv.org/abs/2406.17216}
}"""

# Prose only: "@" is written &#64; so that "TPR@0.1%" is not turned into a mailto: link.
_ABOUT_PROSE = """
## Metrics

All scores come from the result records (`hf_unlearn.results`); the leaderboard recomputes none of
them except when it verifies a checkpoint. Intervals are 95% and shown in the cell: `0.197 ± 0.063`.

* **Test acc**: accuracy on the variant's clean test split (utility).
* **Forget acc / Retain acc**: accuracy on the poisons (forget split) and on the rest of the training set.
* **GUS** (Gaussian Unlearning Score): for each Gaussian poison *z* with stored noise *ξ*,
  `I_z = -<∇ₓ loss(x_z, y_z), ξ_z> / (ε ‖∇ₓ loss‖)`, the gradient taken at the clean input in eval mode;
  GUS is the mean over the poisons. With no dependence on the noise `I_z ~ N(0, 1)`, so GUS ≈ 0 is ideal
  and larger means the model still carries the poisons.
* **TPR@1% / TPR@0.1%**: a membership test that calls a score a poison when it is above a threshold set on
  *null* scores (the same formula with fresh noise) so that the false-positive rate is at most 1% (0.1%);
  TPR is the share of poisons found. Chance is TPR = FPR (0.01); No-unlearning is typically far above it.
  With *n* null scores an FPR below 1/*n* cannot be resolved and is shown empty.
* **AUC**: area under that test's ROC curve (0.5 = chance).
* **Target success** (targeted poisons: CIFAR-10 gradient matching, the IMDb "Disney" trigger): share of the
  attacked test inputs (the variant's `targets` split, `num_targets` rows) classified as the attacker's label;
  its interval is a Wilson interval over those rows. Targeted tabs show it instead of GUS and TPR.

## Ranking

The **Retrain** row of a variant is the reference; it and the **No unlearning** row come only from the
maintainers' published runs (pooled over their seeds), never from a submission. **Δ** columns are
method − Retrain; their interval combines the row's and the reference's half-widths in quadrature,
`sqrt(h_row² + h_ref²)`. **Shortfall** = `max(0, Δ removal) + max(0, −Δ test acc)`, where removal is
TPR@1% (Gaussian), target success (targeted) or nothing (indiscriminate): 0 means as good as Retrain on both.
**Rank** orders methods by shortfall within each task, attack, variant and **Budget** (the unlearning compute as
a fraction of training compute, in forward-equivalents); the table shows each budget as a group (a rule above
its first row, a bold budget, alternate shading). Rows whose intervals overlap share a rank, shown `T2`
("tied for 2nd"). Verified rows come first; a *mismatch* or *failed* row is shown but not ranked (`–`).

## Verification

A submission may name, per record, the unlearned checkpoint (a Hub model id, safetensors only). The Space
downloads it, recomputes the metrics on the configured public variant and compares: accuracies within 1e-6,
GUS and its standard error within 1e-4, TPR within one poison (1/num_poisons), target success within one target
(1/num_targets), AUC within 1e-3, counts exactly. **✔ verified**: all within tolerance; the Scored checkpoint column names what was scored, and the row
ranks on the recomputed numbers. **✘ mismatch**: the tooltip and *Verification detail* show claimed and
recomputed values. **failed**: the checkpoint could not be scored (the reason is shown). Only ResNet-18
checkpoints on CIFAR-10 variants (Gaussian, targeted, indiscriminate) can be re-scored so far: a checkpoint named
on IMDb (GPT-2) is never loaded, and its row stays **unverified**, ranked on its claimed numbers, with the reason
in the tooltip. The method name and
the budget are claims: verification cannot check how the checkpoint was made. The **Status** tab follows a
submission through queued → verifying → verified / mismatch / failed.
"""

FAQ_MD = """
## FAQ

**Why is my row not ranked?** Rows are ranked only against a trusted Retrain reference on the same public
variant, and only if their claim stands: a *mismatch* or *failed* verification is shown without a rank.

**Why do two rows share a rank (`T2`)?** Their shortfall intervals overlap, so the data cannot order them.

**What does ✔ verified guarantee?** That the named checkpoint, scored by this Space on the public variant, gives
the numbers shown (within the tolerances above). Not that it was produced by the named method or within the
stated budget.

**How do I submit?** Sign in with your Hugging Face account (Submit tab) and upload a JSONL file of result
records, or run `hf-unlearn submit results.jsonl --leaderboard spaces/ORG/SPACE` (it signs in with your saved
Hub token). The account is the submitter, shown as a link to its Hub page; the name box is a display name shown
beside it (ASCII letters, digits, `. _ / -`, spaces; names that imitate "maintainers", "verified", "official",
"admin", "anonymous" or the reference methods are refused; your account name itself is never refused for that).

**What are the limits?** 1 MB and 1,000 records per file; 5 accepted submissions per account per hour and 20 per
client address per hour (rejected uploads do not count); a full verification queue refuses new checkpoints until
it drains (the submission is still stored).

**Can I get the table as data?** `hf-unlearn board --leaderboard spaces/ORG/SPACE --format csv` (or `json`, `md`)
prints the rows and ranks shown here; *Download CSV* under the table does the same for the current filters.
CSV text cells that start with `= + - @` get a leading apostrophe so that spreadsheets do not run them.
"""

ABOUT_MD = (_ABOUT_PROSE + FAQ_MD).replace("@", "&#64;") + (
    "\n## Citation\n\nIf you use this leaderboard, please cite the paper that introduced the benchmark:\n\n"
    f"```bibtex\n{CITATION}\n```\n"
)

STATUS_HELP = (
    "Every submission, newest first. A submission that names checkpoints goes **queued → verifying → verified / "
    "mismatch / failed**; without checkpoints it stays the submitter's claim. Search by the start of the "
    "submission id (shown after submitting) or by submitter name."
)


# --- who is asking: addresses behind proxies, accounts ---------------------------------------


def trusted_proxies_from_env(value: str | None = None) -> frozenset[str]:
    """``LEADERBOARD_TRUSTED_PROXIES``: comma-separated IP addresses; anything else is a start-up error."""
    value = os.environ.get("LEADERBOARD_TRUSTED_PROXIES", "") if value is None else value
    out = set()
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.add(str(ipaddress.ip_address(item)))
        except ValueError:
            raise SystemExit(f"LEADERBOARD_TRUSTED_PROXIES item {item!r}: expected an IP address, "
                             "e.g. 10.0.0.1,10.0.0.2") from None
    return frozenset(out)


def client_address(request: Any, trusted_proxies: frozenset[str] = frozenset()) -> str:
    """The address a request came from, for the per-address limit.

    ``X-Forwarded-For`` is believed only when the direct peer is a configured
    proxy; then the right-most hop that is not itself a trusted proxy is the
    client (hops to its left were written by the client and prove nothing).
    """
    client = getattr(request, "client", None)
    peer = getattr(client, "host", None) or "local"
    if peer not in trusted_proxies:
        return peer
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    hops = [h.strip() for h in str(forwarded).split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return peer


# uvicorn rewrites request.client from X-Forwarded-For when the peer is in FORWARDED_ALLOW_IPS, which
# defaults to 127.0.0.1: anyone on the machine (or a local proxy) could pick their address. Only the
# proxies this app was told about are trusted, by uvicorn and by client_address alike.
os.environ["FORWARDED_ALLOW_IPS"] = ",".join(sorted(trusted_proxies_from_env()))


class SlidingLimiter:
    """In-memory sliding window per key (an address or an account).

    ``reserve`` takes a slot or raises ``SubmissionError``; ``release`` gives it back,
    so a rejected upload does not count: on a Space, where every request may come
    through one proxy address, junk requests must not lock out everyone.
    """

    def __init__(self, max_requests: int = 20, window_s: float = 3600.0, what: str = "address") -> None:
        self.max_requests, self.window_s, self.what = max_requests, window_s, what
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def reserve(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] > self.window_s:
                hits.popleft()
            if len(hits) >= self.max_requests:
                raise SubmissionError(
                    f"too many submissions from this {self.what} ({self.max_requests} per "
                    f"{self.window_s / 60:g} minutes); try again in {int(self.window_s - (now - hits[0])) + 1} s"
                )
            hits.append(now)
            return now

    def release(self, key: str, token: float) -> None:
        with self._lock:
            try:
                self._hits[key].remove(token)
            except ValueError:
                pass

    def check(self, key: str) -> None:
        """Reserve a slot and keep it (counted whatever happens next)."""
        self.reserve(key)


def parse_rate(text: str | None, default: RateLimit | None = None, name: str = "LEADERBOARD_RATE") -> RateLimit | None:
    if not text:
        return default if default is not None else RateLimit()
    if text.strip().lower() in ("0", "none", "off"):
        return None
    count, _, seconds = text.partition("/")
    try:
        return RateLimit(int(count), float(seconds or 3600))
    except ValueError:
        raise SystemExit(f"{name}={text!r}: expected COUNT/SECONDS, e.g. 5/3600, or 'off'") from None


def on_a_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


# --- application state ----------------------------------------------------------------------


class App:
    """Store + board + verification worker; the Gradio callbacks are its methods."""

    def __init__(
        self,
        store: LocalStore,
        *,
        verify: bool = True,
        score_fn: Callable[..., dict] | None = None,
        public_datasets: dict[str, str] | None = None,
        catalog: Any = None,
        references: Any = None,
        client_limiter: SlidingLimiter | None = None,
        account_limiter: SlidingLimiter | None = None,
        trusted_proxies: frozenset[str] = frozenset(),
        require_login: bool | None = None,
        note: str = "",
        max_rows: int = 500,
        max_queue: int | None = None,
        verify_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.verify = verify
        self.score_fn = score_fn
        self.public_datasets = public_datasets
        self.catalog = catalog
        self.client_limiter = client_limiter or SlidingLimiter(20, 3600.0, "address")
        self.account_limiter = account_limiter or SlidingLimiter(5, 3600.0, "account")
        self.trusted_proxies = trusted_proxies
        self.require_login = on_a_space() if require_login is None else require_login
        self.note = note
        self.max_rows = max_rows
        self.worker = None
        if verify:
            from leaderboard.verify_worker import VerifyWorker

            kwargs: dict[str, Any] = {"score_fn": score_fn, **dict(verify_options or {})}
            if catalog is not None:
                kwargs["catalog"] = catalog
            if public_datasets is not None:
                kwargs["public_datasets"] = public_datasets
            self.worker = VerifyWorker.for_store(store, max_queue=max_queue, on_done=self._verified, **kwargs)
        self.board = Board(store, references=references, catalog=catalog, job_status=self._job_status)
        self._plot_lock = threading.Lock()  # pyplot's figure registry is not thread-safe

    def _job_status(self, submission_id: str) -> Mapping[str, Any] | None:
        job = self.worker.status(submission_id) if self.worker is not None else None
        return None if job is None else job.to_dict()

    def _verified(self, submission_id: str, job: Any) -> None:
        self.board.refresh(force=True)

    def wait_for_verification(self, timeout: float = 60.0) -> bool:
        """Block until the verification queue is empty, then re-read the store (tests, scripts)."""
        done = True if self.worker is None else self.worker.join(timeout)
        self.board.refresh(force=True)
        return done

    # filters ---------------------------------------------------------------------------

    def default_scope(self) -> tuple[str | None, str | None]:
        tasks = self.board.tasks()
        task = "cifar10" if "cifar10" in tasks else (tasks[0] if tasks else None)
        attacks = self.board.attacks(task)
        attack = "gaussian" if "gaussian" in attacks else (attacks[0] if attacks else None)
        return task, attack

    def view(self, task, attack, variant, budget, verified, search, columns, sort_by, descending):
        filters = Filters(
            task=task, attack=attack, variant=variant or ALL, budget=budget or ALL,
            verified_only=bool(verified), search=search or "",
        )
        view = self.board.view(filters, columns or display.default_columns(attack), sort_by or "Rank",
                               bool(descending), self.max_rows)
        if not self.board.num_submissions:
            view.info = "No submitted results yet: submit the first one in the Submit tab."
        return view

    def render(self, *view_args):
        view = self.view(*view_args)
        return gr.Dataframe(value=view.value, datatype=view.datatypes, column_widths=view.widths), view.info

    def render_plots(self, task, attack, variant, budget, verified, search, columns, sort_by, descending):
        filters = Filters(task=task, attack=attack, variant=variant or ALL, budget=budget or ALL,
                          verified_only=bool(verified), search=search or "")
        rows = ranking.filter_rows(self.board.table, filters)
        import matplotlib.pyplot as plt

        with self._plot_lock:
            figs = plots.tradeoff_figure(rows, attack), plots.figure2_bars(rows, attack)
            plt.close("all")  # the Figure objects stay usable for gr.Plot; pyplot forgets them
        return figs

    def download_csv(self, task, attack, variant, budget, verified, search, columns, sort_by, descending) -> str:
        """The rows of the current view as a formula-escaped CSV file (all of them, not only the first 500)."""
        filters = Filters(task=task, attack=attack, variant=variant or ALL, budget=budget or ALL,
                          verified_only=bool(verified), search=search or "")
        rows = self.board.rows(filters, sort_by or "Rank", bool(descending))
        folder = Path(tempfile.mkdtemp(prefix="hf-unlearn-board-"))
        path = folder / "hf-unlearn-leaderboard.csv"
        path.write_text(display.to_csv(rows), encoding="utf-8")
        return str(path)

    def methods_rows(self) -> list[list[str]]:
        """Declared new methods and their descriptions (text cells, formula-escaped for the copy button)."""
        rows = [[display.formula_safe(name), display.formula_safe(desc)] for name, desc in sorted(self.board.methods.items())]
        return rows or [["", "no new methods declared yet"]]

    def methods_table(self):
        """An update of the Methods table (call outside a Blocks context: inside one it would add a table)."""
        return gr.Dataframe(value=self.methods_rows(), headers=["Method", "Description"])

    def scope(self, task, attack, keep: tuple[str, str] = (ALL, ALL)):
        """Valid (task, attack, variant, budget) values and the choices for each dropdown."""
        tasks = self.board.tasks()
        if task not in tasks:
            task = self.default_scope()[0]
        attacks = self.board.attacks(task)
        if attack not in attacks:
            attack = "gaussian" if "gaussian" in attacks else (attacks[0] if attacks else None)
        variants, budgets = self.board.variants(task, attack), self.board.budgets(task, attack)
        variant = keep[0] if keep[0] in variants else ALL
        budget = keep[1] if keep[1] in budgets else ALL
        return (task, attack, variant, budget), (tasks, attacks, variants, budgets)

    @staticmethod
    def dropdowns(values, choices):
        return tuple(gr.Dropdown(choices=c, value=v) for v, c in zip(values, choices, strict=True))

    def on_scope(self, task, attack, verified, search, sort_by, descending):
        """Task or attack changed: new choices, default columns for the attack, re-render."""
        values, choices = self.scope(task, attack)
        columns = display.default_columns(values[1])
        table, info = self.render(*values, verified, search, columns, sort_by, descending)
        return (*self.dropdowns(values, choices), gr.CheckboxGroup(value=columns), table, info)

    def on_refresh(self, task, attack, variant, budget, verified, search, columns, sort_by, descending,
                   mode: str = "force"):
        """Re-read the store. ``mode``: "force" (button), "load" (page load: re-read only if changed,
        always re-render), "tick" (timer: nothing at all unless the store changed)."""
        changed = self.board.refresh(force=mode == "force")
        if not changed and mode == "tick":
            return (gr.skip(),) * 7
        values, choices = self.scope(task, attack, (variant, budget))
        table, info = self.render(*values, verified, search, columns, sort_by, descending)
        # Values are only sent when they had to change, so a slow reply never undoes a newer choice.
        current = (task, attack, variant, budget)
        dropdowns = tuple(
            gr.Dropdown(choices=c) if v == old else gr.Dropdown(choices=c, value=v)
            for v, c, old in zip(values, choices, current, strict=True)
        )
        return (*dropdowns, table, info, self.methods_table())

    def on_load(self, *args):
        return self.on_refresh(*args, mode="load")

    def on_tick(self, *args):
        return self.on_refresh(*args, mode="tick")

    # status ------------------------------------------------------------------------------

    def status_view(self, query: str = "", status: str = ALL):
        self.board.refresh()
        rows = self.board.status_rows(query, status)
        info = f"{len(rows)} submissions" + (" (first 200)" if len(rows) >= 200 else "")
        if self.worker is not None:
            info += f"; {self.worker.queue_length} waiting for verification"
        return rows, info

    # submission --------------------------------------------------------------------------

    def identity(self, name: str | None, profile: Any, request: Any = None,
                 oauth_token: Any = None) -> tuple[str, str | None, bool]:
        """(submitter, display name, whether the submitter is a Hub account). On a Space the submitter is the
        signed-in account.

        The browser signs in with the login button (``gr.OAuthProfile``); a script
        (``hf-unlearn submit``) sends its Hub token (``Client(..., oauth_token=...)``,
        arriving as ``gr.OAuthToken``, or an ``Authorization: Bearer`` header), which is
        resolved to the account name with ``whoami``. The account name is the Hub's, not a claim, so it is
        checked for characters only (``names.check_account``: a login like ``anonymous-dev`` may submit)
        and shown as ``@name``; the name box is a free-text display name with every free-text rule.
        """
        if self.require_login:
            username = getattr(profile, "username", None) or (profile.get("preferred_username")
                                                              if isinstance(profile, Mapping) else None)
            if not username and getattr(oauth_token, "token", None):
                username = self.token_username_from(str(oauth_token.token))
            if not username:
                username = self.token_username(request)
            if not username:
                raise SubmissionError("sign in with Hugging Face first (the button above): on this Space the "
                                      "submitter is your Hub account")
            username = check_account(str(username))
            display_name = (name or "").strip() or None
            if display_name is not None and display_name.casefold() == username.casefold():
                display_name = None  # the CLI sends its login as the name: nothing to add to the account
            if display_name is not None:  # shown next to the account: the same rules as any typed name
                display_name = check_submitter(display_name, DEFAULT_LIMITS.max_name_chars, field="display name")
            return username, display_name, True
        return (name or "").strip(), None, False

    whoami: Callable[[str], Mapping[str, Any]] | None = None  # tests replace huggingface_hub.whoami

    def token_username(self, request: Any) -> str | None:
        """The Hub user name of a ``Authorization: Bearer hf_...`` header, or None."""
        headers = getattr(request, "headers", None)
        value = headers.get("authorization", "") if headers is not None and hasattr(headers, "get") else ""
        scheme, _, token = str(value).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.token_username_from(token.strip())

    def token_username_from(self, token: str) -> str | None:
        """The Hub user name a token belongs to (``huggingface_hub.whoami``), or None if it is not valid."""
        whoami = self.whoami
        if whoami is None:
            from huggingface_hub import whoami
        try:
            info = whoami(token)
        except Exception:  # noqa: BLE001 - an invalid or expired token is just "not signed in"
            return None
        name = info.get("name") if isinstance(info, Mapping) else None
        return name if isinstance(name, str) and name and info.get("type", "user") == "user" else None

    def submit(self, file_path, name, link, method_name, method_description, method_link, checkpoints_text,
               client_key: str = "local", profile: Any = None, request: Any = None,
               oauth_token: Any = None) -> dict[str, Any]:
        """Validate and store one upload; never raises for bad input, returns {"ok": False, "error": ...}.

        The address and account limits are reserved first and given back when the
        upload is rejected, so only stored submissions count.
        """
        reserved: list[tuple[SlidingLimiter, str, float]] = []
        try:
            if not file_path:
                raise SubmissionError("no file uploaded; choose a .jsonl file of result records")
            submitter, display_name, account = self.identity(name, profile, request, oauth_token)
            reserved.append((self.client_limiter, client_key, self.client_limiter.reserve(client_key)))
            if self.require_login:
                account_key = f"hf:{submitter.casefold()}"
                reserved.append((self.account_limiter, account_key, self.account_limiter.reserve(account_key)))
            data = read_upload(file_path, DEFAULT_LIMITS)
            new_methods = {}
            if method_name and method_name.strip():
                new_methods[method_name.strip()] = {"description": method_description, "link": method_link or None}
            checkpoints = [line for line in (checkpoints_text or "").splitlines() if line.strip()]
            result = submit_records(
                data, self.store, submitter=submitter, link=link or None, new_methods=new_methods,
                checkpoints=checkpoints, verify=False, display_name=display_name, account=account,
            )
        except SubmissionError as exc:
            for limiter, key, token in reserved:
                limiter.release(key, token)
            return {"ok": False, "error": f"rejected: {exc}"}
        except StoreError as exc:
            for limiter, key, token in reserved:
                limiter.release(key, token)
            return {"ok": False, "error": f"not stored, nothing was changed: {exc}; please try again"}
        messages = [m for m in result.messages if "verification skipped" not in m]
        sub = self.store.get(result.submission_id)
        if sub is not None and sub.submission.checkpoints:
            if self.worker is not None:
                from leaderboard.verify_worker import QueueFull

                try:
                    job = self.worker.submit(result.submission_id)
                    messages.append(f"checkpoints named: verification queued (position {job.position or 1}); "
                                    "follow it in the Status tab")
                except QueueFull as exc:
                    messages.append(str(exc))
            else:
                messages.append("checkpoints named; this Space does not re-score them, the entry shows 'pending'")
        self.board.refresh(force=True)
        return {"ok": True, "submission_id": result.submission_id, "num_records": result.num_records,
                "messages": messages, "verification": None}

    def on_submit(self, file_path, name, link, method_name, method_description, method_link, checkpoints_text,
                  task, attack, variant, budget, verified, search, columns, sort_by, descending,
                  profile: gr.OAuthProfile | None = None, request: gr.Request | None = None):
        reply = self.submit(file_path, name, link, method_name, method_description, method_link, checkpoints_text,
                            client_key=client_address(request, self.trusted_proxies), profile=profile,
                            request=request)
        if reply["ok"]:
            text = "\n".join([f"accepted: submission {reply['submission_id'][:12]} with {reply['num_records']} "
                              "records is on the leaderboard"] + reply["messages"])
        else:
            text = reply["error"]
        values, choices = self.scope(task, attack, (variant, budget))
        table, info = self.render(*values, verified, search, columns, sort_by, descending)
        cleared = gr.File(value=None) if reply["ok"] else gr.skip()  # an accepted file is not sent twice
        methods = self.methods_table() if reply["ok"] else gr.skip()
        return (text, cleared, *self.dropdowns(values, choices), table, info, methods)

    def api_submit(self, file, name, link, method_name, method_description, method_link, checkpoints_text,
                   oauth_token: gr.OAuthToken | None = None, request: gr.Request | None = None) -> dict:
        """The ``/submit_jsonl`` API; on a Space the caller identifies with ``Client(..., oauth_token=TOKEN)``."""
        reply = self.submit(file, name, link, method_name, method_description, method_link, checkpoints_text,
                            client_key=client_address(request, self.trusted_proxies), request=request,
                            oauth_token=oauth_token)
        if reply["ok"] and reply.get("messages"):
            reply["messages"] = list(reply["messages"])
        return reply

    def api_board(self, task: str, attack: str, variant: str, budget: str) -> dict:
        """The rows behind ``hf-unlearn board --leaderboard spaces/ORG/SPACE`` (all of them, in the shown order)."""
        self.board.refresh()
        rows = board_records(self.board, task=task or None, attack=attack or None, variant=variant or None,
                             budget=budget or None)
        return {"rows": display.export_records(rows)}

    def verification_text(self, submission_id: str) -> str:
        ver = self.store.verifications().get(submission_id)
        return "\n".join(verification_messages(ver)) if ver else "no verification yet"


# --- the UI ------------------------------------------------------------------------------------

CSS = """
#leaderboard-table th, #status-table th { white-space: nowrap; }
#leaderboard-table .md p { margin: 0; }
"""


def build_demo(app: App) -> gr.Blocks:
    task0, attack0 = app.default_scope()
    columns0 = display.default_columns(attack0)
    view0 = app.view(task0, attack0, ALL, ALL, False, "", columns0, "Rank", False)
    with gr.Blocks(title=TITLE, fill_width=True) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}" + (f"\n\n**{app.note}**" if app.note else ""))
        with gr.Tabs():
            with gr.Tab("Leaderboard", id="leaderboard"):
                with gr.Row():
                    task = gr.Dropdown(app.board.tasks(), value=task0, label="Task", elem_id="filter-task")
                    attack = gr.Dropdown(app.board.attacks(task0), value=attack0, label="Attack",
                                         elem_id="filter-attack")
                    variant = gr.Dropdown(app.board.variants(task0, attack0), value=ALL, label="Variant",
                                          elem_id="filter-variant")
                    budget = gr.Dropdown(app.board.budgets(task0, attack0), value=ALL, label="Budget",
                                         elem_id="filter-budget")
                    verified = gr.Checkbox(False, label="Verified only", elem_id="filter-verified")
                with gr.Row():
                    search = gr.Textbox(label="Search (method, submitter, model, submission id)",
                                        placeholder="e.g. scrub", elem_id="filter-search", scale=3)
                    sort_by = gr.Dropdown(list(SORT_CHOICES), value="Rank", label="Sort by", elem_id="sort-by")
                    descending = gr.Checkbox(False, label="Descending", elem_id="sort-desc")
                    refresh = gr.Button("Reload store", elem_id="refresh", scale=0)
                with gr.Accordion("Columns", open=False):
                    columns = gr.CheckboxGroup([c.label for c in display.COLUMNS], value=columns0,
                                               label="Shown columns", elem_id="columns")
                info = gr.Markdown(view0.info, elem_id="table-info")
                table = gr.Dataframe(
                    value=view0.value, datatype=view0.datatypes, column_widths=view0.widths, interactive=False,
                    wrap=False, max_height=640, elem_id="leaderboard-table", label="Leaderboard",
                    buttons=["fullscreen", "copy"],
                )
                with gr.Row():
                    download = gr.DownloadButton("Download CSV", elem_id="download-csv", size="sm", scale=0)
                with gr.Accordion("Methods (new methods and their descriptions)", open=False, elem_id="methods"):
                    methods = gr.Dataframe(value=app.methods_rows(), headers=["Method", "Description"],
                                           datatype=["str", "str"], interactive=False, wrap=True,
                                           column_widths=["200px", "800px"], elem_id="methods-table")
            with gr.Tab("Plots", id="plots") as plots_tab:
                gr.Markdown("The plots follow the filters of the Leaderboard tab.")
                tradeoff = gr.Plot(label="Test accuracy against poison removal", elem_id="plot-tradeoff")
                bars = gr.Plot(label="Per-method bars (Figure 2 layout)", elem_id="plot-bars")
            with gr.Tab("Status", id="status") as status_tab:
                gr.Markdown(STATUS_HELP)
                with gr.Row():
                    status_query = gr.Textbox(label="Submission id or submitter", elem_id="status-search", scale=3)
                    status_filter = gr.Dropdown([ALL, "queued", "verifying", "verified", "mismatch", "failed",
                                                 "no checkpoint"], value=ALL, label="Status", elem_id="status-filter")
                    status_refresh = gr.Button("Refresh", elem_id="status-refresh", scale=0)
                status_info = gr.Markdown("", elem_id="status-info")
                status_table = gr.Dataframe(
                    headers=["Submission", "Received", "Submitter", "Records", "Checkpoints", "Status", "Detail"],
                    datatype=["str", "str", "markdown", "number", "number", "str", "str"], interactive=False,
                    wrap=False, max_height=560, elem_id="status-table", label="Submissions",
                    column_widths=["200px", "180px", "180px", "90px", "120px", "120px", "420px"],
                )
            with gr.Tab("Submit", id="submit"):
                login_note = (
                    "Sign in with your Hugging Face account: it is recorded as the submitter (limits are per account). "
                    if app.require_login else
                    "Running outside a Space: the name below is the submitter. "
                )
                gr.Markdown(
                    login_note + "Upload a `.jsonl` file with one result record per line (as written by `hf-unlearn`). "
                    "Names, links and descriptions are shown as plain text. To have the Space re-score your "
                    "unlearned checkpoints, list them as `INDEX=ORG/MODEL[@REVISION]` (record index from 0; "
                    "the index may be left out for a one-record file)."
                )
                if app.require_login:  # off a Space gradio would mock the login with the machine's own token
                    gr.LoginButton(elem_id="login")
                upload = gr.File(label="Result records (.jsonl)", file_types=[".jsonl", ".json", ".txt"],
                                 type="filepath", elem_id="submit-file")
                with gr.Row():
                    name = gr.Textbox(label="Display name" if app.require_login else "Submitter name",
                                      max_length=DEFAULT_LIMITS.max_name_chars, elem_id="submit-name")
                    link = gr.Textbox(label="Link (paper or code, optional)", elem_id="submit-link")
                with gr.Accordion("New method (only if your records use a method not in the list)", open=False):
                    method_name = gr.Textbox(label="Method name ([a-z][a-z0-9_]*)", elem_id="submit-method")
                    method_description = gr.Textbox(label="Description", lines=3, elem_id="submit-method-desc")
                    method_link = gr.Textbox(label="Method link (optional)", elem_id="submit-method-link")
                checkpoints = gr.Textbox(label="Checkpoints to verify (one per line, optional)", lines=2,
                                         elem_id="submit-checkpoints")
                submit = gr.Button("Submit", variant="primary", elem_id="submit-button")
                result = gr.Textbox(label="Result", interactive=False, lines=4, elem_id="submit-result")
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT_MD, elem_id="about")

        view_inputs = [task, attack, variant, budget, verified, search, columns, sort_by, descending]
        scope_outputs = [task, attack, variant, budget]
        quick = dict(show_progress="hidden", trigger_mode="always_last")

        for comp in (task, attack):
            comp.input(app.on_scope, [task, attack, verified, search, sort_by, descending],
                       scope_outputs + [columns, table, info], api_visibility="private", **quick)
        for comp in (variant, budget, verified, columns, sort_by, descending):
            comp.input(app.render, view_inputs, [table, info], api_visibility="private", **quick)
        # .change, not .input: gradio 6.31 sends no input event when a text box is emptied (select all, Delete),
        # so a cleared search would leave the table filtered. Nothing sets these boxes from the server.
        search.change(app.render, view_inputs, [table, info], api_visibility="private", **quick)
        download.click(app.download_csv, view_inputs, download, api_visibility="private")
        # The filters live on the Leaderboard tab, so the plots are drawn when their tab is opened.
        plots_tab.select(app.render_plots, view_inputs, [tradeoff, bars], api_visibility="private", **quick)
        status_inputs = [status_query, status_filter]
        for trigger in (status_tab.select, status_refresh.click, status_query.change, status_filter.input):
            trigger(app.status_view, status_inputs, [status_table, status_info], api_visibility="private", **quick)
        refresh_outputs = scope_outputs + [table, info, methods]
        refresh.click(app.on_refresh, view_inputs, refresh_outputs, api_visibility="private")
        timer = gr.Timer(30)
        timer.tick(app.on_tick, view_inputs, refresh_outputs, api_visibility="private", show_progress="hidden")
        submit.click(
            app.on_submit,
            [upload, name, link, method_name, method_description, method_link, checkpoints] + view_inputs,
            [result, upload] + scope_outputs + [table, info, methods],
            api_visibility="private",
            concurrency_limit=4,
        )
        demo.load(app.on_load, view_inputs, refresh_outputs, api_visibility="private", show_progress="hidden")

        # The programmatic endpoints behind `hf-unlearn submit FILE --leaderboard spaces/ORG/SPACE` and
        # `hf-unlearn board --leaderboard spaces/ORG/SPACE`.
        api_file = gr.File(visible=False, type="filepath")
        api_texts = [gr.Textbox(visible=False) for _ in range(6)]
        api_reply = gr.JSON(visible=False)
        api_button = gr.Button(visible=False)
        api_button.click(app.api_submit, [api_file] + api_texts, api_reply, api_name=API_NAME,
                         concurrency_limit=4)
        board_inputs = [gr.Textbox(visible=False) for _ in range(4)]
        board_reply = gr.JSON(visible=False)
        board_button = gr.Button(visible=False)
        board_button.click(app.api_board, board_inputs, board_reply, api_name=BOARD_API_NAME, concurrency_limit=4)
    return demo


LAUNCH_KWARGS = dict(max_file_size=2 * DEFAULT_LIMITS.max_bytes, show_error=False, footer_links=["api"], ssr_mode=False,
                     css=CSS)


def serve(app: App, host: str = "127.0.0.1", port: int | None = None) -> tuple[gr.Blocks, str]:
    """Start the app without blocking (tests, screenshots); returns the Blocks (call .close()) and its URL."""
    demo = build_demo(app)
    demo.queue(default_concurrency_limit=8)
    _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                            **LAUNCH_KWARGS)
    return demo, url


def make_store(store_dir: str | None, hub_repo: str | None, rate: RateLimit | None,
               allow_local_checkpoints: bool) -> LocalStore:
    folder = store_dir or os.environ.get("LEADERBOARD_STORE") or "leaderboard-store"
    kwargs = dict(rate_limit=rate, allow_local_checkpoints=allow_local_checkpoints)
    if hub_repo:
        store = HubStore(hub_repo, folder, **kwargs)
        store.pull()
        return store
    return LocalStore(folder, **kwargs)


# What a public Space must be told before it may rank or verify anything (docs/leaderboard.md, "Configuration").
REQUIRED_ON_A_SPACE = {
    "LEADERBOARD_DATASETS": "the public dataset repos whose variants may rank (task/attack=ORG/REPO,...)",
    "LEADERBOARD_REFERENCES": "the maintainers' references file (hf://datasets/ORG/NAME[/FILE])",
    "LEADERBOARD_VERIFIER_KEY": "the secret that signs verification results (a Space secret, >= 16 bytes)",
}


def missing_space_settings(environ: Mapping[str, str] = os.environ) -> list[str]:
    """On a Space (``SPACE_ID`` set), the trust settings that are not set; empty elsewhere.

    Without them a public board would rank any variant, have no trusted references, or trust
    no verification: refuse to start rather than run a board whose ranking means nothing.
    """
    if not environ.get("SPACE_ID"):
        return []
    return [name for name in REQUIRED_ON_A_SPACE if not environ.get(name, "").strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=None, help="store folder (default $LEADERBOARD_STORE or ./leaderboard-store)")
    parser.add_argument("--hub-repo", default=os.environ.get("LEADERBOARD_REPO"),
                        help="Hub dataset repo kept in sync with the store (default $LEADERBOARD_REPO)")
    parser.add_argument("--demo", action="store_true",
                        help="fill an empty temporary store with synthetic example records (made-up numbers)")
    parser.add_argument("--allow-local-checkpoints", action="store_true",
                        help="let submissions name checkpoint folders on this machine (never on a public Space)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)

    missing = [] if args.demo else missing_space_settings()
    if missing:
        raise SystemExit("space/app.py: on a Space these settings are required: "
                         + "; ".join(f"{name} ({REQUIRED_ON_A_SPACE[name]})" for name in missing))
    rate = parse_rate(os.environ.get("LEADERBOARD_RATE"))
    address_rate = parse_rate(os.environ.get("LEADERBOARD_ADDRESS_RATE"), RateLimit(20, 3600),
                              "LEADERBOARD_ADDRESS_RATE")
    note = ""
    store_dir = args.store
    references = None
    if args.demo:
        store_dir = store_dir or tempfile.mkdtemp(prefix="hf-unlearn-demo-store-")
        note = "Demo mode: the rows below are synthetic example records with made-up numbers."
    store = make_store(store_dir, None if args.demo else args.hub_repo, rate, args.allow_local_checkpoints)
    if args.demo:
        from leaderboard import demo as demo_data

        if not store.submissions():
            demo_data.fill_store(store, 300)
        references = demo_data.demo_references()
    else:
        from leaderboard.references import References

        references = References.from_env(os.environ, catalog=getattr(store, "catalog", None))
    limiter = (SlidingLimiter(address_rate.max_submissions, address_rate.window_s, "address")
               if address_rate is not None else SlidingLimiter(10**9, 1.0, "address"))
    app = App(
        store,
        verify=os.environ.get("LEADERBOARD_VERIFY", "1") != "0",
        references=references,
        client_limiter=limiter,
        account_limiter=(SlidingLimiter(rate.max_submissions, rate.window_s, "account") if rate is not None
                         else SlidingLimiter(10**9, 1.0, "account")),
        trusted_proxies=trusted_proxies_from_env(),
        note=note,
    )
    demo = build_demo(app)
    demo.queue(default_concurrency_limit=8).launch(server_name=args.host, server_port=args.port, **LAUNCH_KWARGS)


if __name__ == "__main__":
    main()
