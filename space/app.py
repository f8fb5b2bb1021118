"""hf-unlearn leaderboard: a Gradio Space that shows, compares, accepts and verifies results.

Run locally:   python space/app.py [--store FOLDER] [--hub-repo ORG/NAME] [--demo] [--port 7860]
On a Space:    the same file; configure with the variables below (README.md carries the Space YAML).

Environment (flags win over variables):
  LEADERBOARD_STORE     local store folder (default ./leaderboard-store)
  LEADERBOARD_REPO      Hub dataset repo id kept in sync with the store (needs HF_TOKEN with write access)
  LEADERBOARD_DATASETS  public variants for verification: "cifar10/gaussian=ORG/poisoned-cifar10-gaussian,..."
  LEADERBOARD_RATE      per-submitter limit "COUNT/SECONDS" (default 5/3600)
  LEADERBOARD_VERIFY    "0" to accept checkpoints without re-scoring them (entries stay "pending")

Everything a submitter sends is validated by ``leaderboard.submission`` before it
is stored; every submitter-controlled string is shown through ``gr.Dataframe``
cells of datatype "str" or a plain ``gr.Textbox``, i.e. as text, never as HTML.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import leaderboard  # noqa: F401  (installed with hf-unlearn)
except ImportError:  # running from a source checkout: python space/app.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradio as gr

from leaderboard import plots, ranking
from leaderboard.board import Board
from leaderboard.ranking import ALL, COLUMNS, SORT_CHOICES, Filters
from leaderboard.store import HubStore, LocalStore, RateLimit, StoreError
from leaderboard.submission import DEFAULT_LIMITS, SubmissionError
from leaderboard.submit import API_NAME, read_upload, submit_records, verification_messages
from leaderboard.verify import public_datasets_from_env, verify_and_store

TITLE = "hf-unlearn leaderboard"
INTRO = (
    "Does an unlearning method really remove poisoned training data? Each row is a method run on a public "
    "poisoned variant, compared with **Retrain** (training again without the poisons) on the same variant. "
    "Rows whose checkpoint was re-scored by this Space say *verified*; the others are the submitter's claim."
)
ABOUT_MD = """
## Metrics

All scores come from the result records (`hf_unlearn.results`); the leaderboard recomputes none of
them except when it verifies a checkpoint.

* **Test acc**: accuracy on the variant's clean test split (utility).
* **Forget acc / Retain acc**: accuracy on the poisons (forget split) and on the rest of the training set.
* **GUS** (Gaussian Unlearning Score): for each Gaussian poison *z* with stored noise *ξ*,
  `I_z = -<∇ₓ loss(x_z, y_z), ξ_z> / (ε ‖∇ₓ loss‖)`, the gradient taken at the clean input in eval mode;
  GUS is the mean over the poisons. With no dependence on the noise `I_z ~ N(0, 1)`, so GUS ≈ 0 is ideal
  and larger means the model still carries the poisons. Shown with its 95% interval.
* **TPR@1% / TPR@0.1%**: a membership test that calls a score a poison when it is above a threshold set on
  *null* scores (the same formula with fresh noise) so that the false-positive rate is at most 1% (0.1%);
  TPR is the share of poisons found. Chance is TPR = FPR (0.01); No-unlearning is typically far above it.
  With *n* null scores an FPR below 1/*n* cannot be resolved and is shown empty.
* **AUC**: area under that test's ROC curve (0.5 = chance).
* **Target success** (targeted poisons): share of attacked test inputs classified as the attacker's label.

## Comparison with Retrain

Retrain on the same variant (its seeds pooled over submissions; only verified ones if any are verified) is the
reference. **Δ ... vs Retrain** = method − Retrain. **Shortfall vs Retrain** =
`max(0, Δ removal) + max(0, −Δ test acc)`, where removal is TPR@1% (Gaussian), target success (targeted) or
nothing (indiscriminate): 0 means as good as Retrain on both. **Rank** orders methods by shortfall within each
task, attack, variant and compute budget. **Budget** is the unlearning compute as a fraction of training
compute (forward-equivalents). Retrain and No-unlearning rows are references and are not ranked.

Intervals are 95%: a t interval over seeds; with one seed, a Wilson interval from the number of poisons for TPR
and 1.96 × the standard error for GUS.

## Verification

A submission may name, per record, the unlearned checkpoint (a Hub model id, safetensors only). The Space
downloads it, recomputes the metrics on the public variant with the same number of null draws, and compares:
accuracies within 1e-6, GUS and its standard error within 1e-4, TPR within one poison (1/num_poisons),
AUC within 1e-3, counts exactly. **verified**: all within tolerance. **mismatch**: the column
*Verification detail* shows claimed and recomputed values. **pending**: not finished yet. **unverified**:
no checkpoint named. **failed**: the checkpoint could not be scored (the reason is shown).

## Submitting

Upload a JSONL file with one result record per line (written by `hf-unlearn` runs), or run
`hf-unlearn submit results.jsonl --leaderboard ORG/SPACE --submitter NAME`. Limits: 1 MB, 1,000 records,
finite numbers in range, known task/attack/method names (or a declared new method with a description),
no record already on the board, 5 submissions per submitter per hour. Names and links are shown as text.
"""


# --- application state ----------------------------------------------------------------------


class ClientLimiter:
    """In-memory sliding window per client address (the store also limits per submitter name)."""

    def __init__(self, max_requests: int = 20, window_s: float = 3600.0) -> None:
        self.max_requests, self.window_s = max_requests, window_s
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] > self.window_s:
                hits.popleft()
            if len(hits) >= self.max_requests:
                raise SubmissionError(
                    f"too many submissions from this address ({self.max_requests} per {self.window_s / 60:g} "
                    f"minutes); try again in {int(self.window_s - (now - hits[0])) + 1} s"
                )
            hits.append(now)


class App:
    """Store + board + verification worker; the Gradio callbacks are its methods."""

    def __init__(
        self,
        store: LocalStore,
        *,
        verify: bool = True,
        score_fn: Callable[..., dict] | None = None,
        public_datasets: dict[str, str] | None = None,
        client_limiter: ClientLimiter | None = None,
        note: str = "",
        max_rows: int = 500,
    ) -> None:
        self.store = store
        self.board = Board(store)
        self.verify = verify
        self.score_fn = score_fn
        self.public_datasets = public_datasets
        self.client_limiter = client_limiter or ClientLimiter()
        self.note = note
        self.max_rows = max_rows
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify")
        self.jobs: list[Any] = []
        self._plot_lock = threading.Lock()  # pyplot's figure registry is not thread-safe

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
        view = self.board.view(filters, columns or ranking.default_columns(attack), sort_by or "Rank",
                               bool(descending), self.max_rows)
        if not self.board.num_submissions:
            view.info = "No results yet: submit the first one in the Submit tab."
        return view

    def render(self, *view_args):
        view = self.view(*view_args)
        return gr.Dataframe(value=view.table, datatype=view.datatypes), view.info

    def render_plots(self, task, attack, variant, budget, verified, search, columns, sort_by, descending):
        filters = Filters(task=task, attack=attack, variant=variant or ALL, budget=budget or ALL,
                          verified_only=bool(verified), search=search or "")
        rows = ranking.filter_rows(self.board.table, filters)
        import matplotlib.pyplot as plt

        with self._plot_lock:
            figs = plots.tradeoff_figure(rows, attack), plots.figure2_bars(rows, attack)
            plt.close("all")  # the Figure objects stay usable for gr.Plot; pyplot forgets them
        return figs

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
        columns = ranking.default_columns(values[1])
        table, info = self.render(*values, verified, search, columns, sort_by, descending)
        return (*self.dropdowns(values, choices), gr.CheckboxGroup(value=columns), table, info)

    def on_refresh(self, task, attack, variant, budget, verified, search, columns, sort_by, descending,
                   mode: str = "force"):
        """Re-read the store. ``mode``: "force" (button), "load" (page load: re-read only if changed,
        always re-render), "tick" (timer: nothing at all unless the store changed)."""
        changed = self.board.refresh(force=mode == "force")
        if not changed and mode == "tick":
            return (gr.skip(),) * 6
        values, choices = self.scope(task, attack, (variant, budget))
        table, info = self.render(*values, verified, search, columns, sort_by, descending)
        # Values are only sent when they had to change, so a slow reply never undoes a newer choice.
        current = (task, attack, variant, budget)
        dropdowns = tuple(
            gr.Dropdown(choices=c) if v == old else gr.Dropdown(choices=c, value=v)
            for v, c, old in zip(values, choices, current, strict=True)
        )
        return (*dropdowns, table, info)

    def on_load(self, *args):
        return self.on_refresh(*args, mode="load")

    def on_tick(self, *args):
        return self.on_refresh(*args, mode="tick")

    # submission --------------------------------------------------------------------------

    def submit(self, file_path, name, link, method_name, method_description, method_link, checkpoints_text,
               client_key: str = "local") -> dict[str, Any]:
        """Validate and store one upload; never raises for bad input, returns {"ok": False, "error": ...}."""
        try:
            if not file_path:
                raise SubmissionError("no file uploaded; choose a .jsonl file of result records")
            self.client_limiter.check(client_key)
            data = read_upload(file_path, DEFAULT_LIMITS)
            new_methods = {}
            if method_name and method_name.strip():
                new_methods[method_name.strip()] = {"description": method_description, "link": method_link or None}
            checkpoints = [line for line in (checkpoints_text or "").splitlines() if line.strip()]
            result = submit_records(
                data, self.store, submitter=name, link=link or None, new_methods=new_methods,
                checkpoints=checkpoints, verify=False,
            )
        except SubmissionError as exc:
            return {"ok": False, "error": f"rejected: {exc}"}
        except StoreError as exc:
            return {"ok": False, "error": f"not stored, nothing was changed: {exc}; please try again"}
        messages = [m for m in result.messages if "verification skipped" not in m]
        sub = self.store.get(result.submission_id)
        if sub is not None and sub.submission.checkpoints:
            if self.verify:
                self.jobs.append(self.executor.submit(self._verify, result.submission_id))
                messages.append("checkpoints named: verification queued; the entry shows 'pending' until it ends")
            else:
                messages.append("checkpoints named; this Space does not re-score them, the entry shows 'pending'")
        self.board.refresh(force=True)
        return {"ok": True, "submission_id": result.submission_id, "num_records": result.num_records,
                "messages": messages, "verification": None}

    def _verify(self, submission_id: str) -> dict[str, Any]:
        verification = verify_and_store(
            self.store, submission_id, score_fn=self.score_fn, public_datasets=self.public_datasets,
            allow_local_checkpoints=self.store.allow_local_checkpoints,
        )
        self.board.refresh(force=True)
        return verification

    def on_submit(self, file_path, name, link, method_name, method_description, method_link, checkpoints_text,
                  task, attack, variant, budget, verified, search, columns, sort_by, descending,
                  request: gr.Request | None = None):
        reply = self.submit(file_path, name, link, method_name, method_description, method_link, checkpoints_text,
                            client_key=_client_key(request))
        if reply["ok"]:
            text = "\n".join([f"accepted: submission {reply['submission_id'][:12]} with {reply['num_records']} "
                              "records is on the leaderboard"] + reply["messages"])
        else:
            text = reply["error"]
        values, choices = self.scope(task, attack, (variant, budget))
        table, info = self.render(*values, verified, search, columns, sort_by, descending)
        cleared = gr.File(value=None) if reply["ok"] else gr.skip()  # an accepted file is not sent twice
        return (text, cleared, *self.dropdowns(values, choices), table, info)

    def api_submit(self, file, name, link, method_name, method_description, method_link, checkpoints_text,
                   request: gr.Request | None = None) -> dict:
        reply = self.submit(file, name, link, method_name, method_description, method_link, checkpoints_text,
                            client_key=_client_key(request))
        if reply["ok"] and reply.get("messages"):
            reply["messages"] = list(reply["messages"])
        return reply

    def verification_text(self, submission_id: str) -> str:
        ver = self.store.verifications().get(submission_id)
        return "\n".join(verification_messages(ver)) if ver else "no verification yet"


def _client_key(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "local"


# --- the UI ------------------------------------------------------------------------------------


def build_demo(app: App) -> gr.Blocks:
    task0, attack0 = app.default_scope()
    columns0 = ranking.default_columns(attack0)
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
                    columns = gr.CheckboxGroup([c.label for c in COLUMNS], value=columns0, label="Shown columns",
                                               elem_id="columns")
                info = gr.Markdown(view0.info, elem_id="table-info")
                table = gr.Dataframe(
                    value=view0.table, datatype=view0.datatypes, interactive=False, wrap=True,
                    max_height=640, elem_id="leaderboard-table", label="Leaderboard",
                )
            with gr.Tab("Plots", id="plots") as plots_tab:
                gr.Markdown("The plots follow the filters of the Leaderboard tab.")
                tradeoff = gr.Plot(label="Test accuracy against poison removal", elem_id="plot-tradeoff")
                bars = gr.Plot(label="Per-method bars (Figure 2 layout)", elem_id="plot-bars")
            with gr.Tab("Submit", id="submit"):
                gr.Markdown(
                    "Upload a `.jsonl` file with one result record per line (as written by `hf-unlearn`). "
                    "Name, links and descriptions are shown as plain text. To have the Space re-score your "
                    "unlearned checkpoints, list them as `INDEX=ORG/MODEL[@REVISION]` (record index from 0; "
                    "the index may be left out for a one-record file)."
                )
                upload = gr.File(label="Result records (.jsonl)", file_types=[".jsonl", ".json", ".txt"],
                                 type="filepath", elem_id="submit-file")
                with gr.Row():
                    name = gr.Textbox(label="Submitter name", max_length=DEFAULT_LIMITS.max_name_chars,
                                      elem_id="submit-name")
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
        for comp in (variant, budget, verified, search, columns, sort_by, descending):
            comp.input(app.render, view_inputs, [table, info], api_visibility="private", **quick)
        # The filters live on the Leaderboard tab, so the plots are drawn when their tab is opened.
        plots_tab.select(app.render_plots, view_inputs, [tradeoff, bars], api_visibility="private", **quick)
        refresh.click(app.on_refresh, view_inputs, scope_outputs + [table, info], api_visibility="private")
        timer = gr.Timer(30)
        timer.tick(app.on_tick, view_inputs, scope_outputs + [table, info], api_visibility="private",
                   show_progress="hidden")
        submit.click(
            app.on_submit,
            [upload, name, link, method_name, method_description, method_link, checkpoints] + view_inputs,
            [result, upload] + scope_outputs + [table, info],
            api_visibility="private",
            concurrency_limit=4,
        )
        demo.load(app.on_load, view_inputs, scope_outputs + [table, info], api_visibility="private",
                  show_progress="hidden")

        # The programmatic endpoint behind `hf-unlearn submit FILE --leaderboard ORG/SPACE`.
        api_file = gr.File(visible=False, type="filepath")
        api_texts = [gr.Textbox(visible=False) for _ in range(6)]
        api_reply = gr.JSON(visible=False)
        api_button = gr.Button(visible=False)
        api_button.click(app.api_submit, [api_file] + api_texts, api_reply, api_name=API_NAME,
                         concurrency_limit=4)
    return demo


LAUNCH_KWARGS = dict(max_file_size=2 * DEFAULT_LIMITS.max_bytes, show_error=False, footer_links=["api"], ssr_mode=False)


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


def parse_rate(text: str | None) -> RateLimit | None:
    if not text:
        return RateLimit()
    if text.strip().lower() in ("0", "none", "off"):
        return None
    count, _, seconds = text.partition("/")
    try:
        return RateLimit(int(count), float(seconds or 3600))
    except ValueError:
        raise SystemExit(f"LEADERBOARD_RATE={text!r}: expected COUNT/SECONDS, e.g. 5/3600, or 'off'") from None


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

    rate = parse_rate(os.environ.get("LEADERBOARD_RATE"))
    note = ""
    store_dir = args.store
    if args.demo:
        from leaderboard.demo import fill_store

        store_dir = store_dir or tempfile.mkdtemp(prefix="hf-unlearn-demo-store-")
        note = "Demo mode: the rows below are synthetic example records with made-up numbers."
    store = make_store(store_dir, None if args.demo else args.hub_repo, rate, args.allow_local_checkpoints)
    if args.demo and not store.submissions():
        fill_store(store, 300)
    app = App(
        store,
        verify=os.environ.get("LEADERBOARD_VERIFY", "1") != "0",
        public_datasets=public_datasets_from_env(),
        note=note,
    )
    demo = build_demo(app)
    demo.queue(default_concurrency_limit=8).launch(server_name=args.host, server_port=args.port, **LAUNCH_KWARGS)


if __name__ == "__main__":
    main()
