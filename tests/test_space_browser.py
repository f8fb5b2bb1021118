"""The Space in headless Chromium at 1280 px: the ranked table (reference rows, verified badge and its tooltip,
the rank-deciding columns in view), filters, sorting, columns, an upload with a look-alike name refused and a
valid one accepted, markup in a method description shown as text and running nothing, the status view
following a verification, and the About tab.

Uses Debian's /usr/bin/chromium through Playwright's Python package (no browser download).
With UPDATE_SCREENSHOTS=1 the screenshots go to docs/img/ (the ones the docs show); otherwise to a temp folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import time
from pathlib import Path

import pytest

from leaderboard.demo import synthetic_record, write_demo
from leaderboard.store import LocalStore, RateLimit

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOSTILE_TEXT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> forgets & more'
LOOKALIKE_NAME = "hf-unlearn maintainers ✔ verified"
WIDTH = 1280

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

# Reads the virtualised grid of gr.Dataframe: header titles, then each rendered row's cell texts.
READ_TABLE = """(sel) => {
  const root = document.querySelector(sel);
  if (!root) return null;
  const heads = [...root.querySelectorAll('thead th')].map(th => th.innerText.trim());
  const rows = {};
  for (const c of root.querySelectorAll('[role=gridcell]')) {
    (rows[+c.dataset.row] ||= [])[+c.dataset.col] = c.innerText.trim();
  }
  return {heads, rows: Object.keys(rows).sort((a, b) => a - b).map(k => rows[k])};
}"""


def load_space_app():
    if "hf_unlearn_space_app" in sys.modules:
        return sys.modules["hf_unlearn_space_app"]
    spec = importlib.util.spec_from_file_location("hf_unlearn_space_app", REPO_ROOT / "space" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def verified_metrics(record):
    """The verifier's scorer in this test: the checkpoint gives exactly the claimed numbers."""
    return lambda *args, **kwargs: dict(record["metrics"])


@pytest.fixture(scope="module")
def running_space(tmp_path_factory):
    mod = load_space_app()
    root = tmp_path_factory.mktemp("space")
    store = LocalStore(root / "store", rate_limit=RateLimit(5, 3600), allow_local_checkpoints=False)
    demo = write_demo(root, 300, store=store)
    verified = synthetic_record(random.Random(11), "cifar10", "gaussian", "eps0.1-b2.5-s0", "ngd", 11, 0.05)
    fresh = synthetic_record(random.Random(77), "cifar10", "gaussian", "eps0.1-b1.5-s0", "fresh_method", 77, 0.05)
    scores = {"org/ngd-unlearned": verified, "org/fresh-unlearned": fresh}

    def score_fn(checkpoint, *args, **kwargs):
        return dict(scores[str(checkpoint).split("@")[0]]["metrics"])

    app = mod.App(demo.store, references=demo.references, catalog=demo.catalog, require_login=False,
                  verify=True, score_fn=score_fn, verify_options={"isolate": False},  # a closure: no child process
                  note="Synthetic example rows with made-up numbers (test fixture).")
    (root / "verified.jsonl").write_text(json.dumps(verified) + "\n")
    reply = app.submit(str(root / "verified.jsonl"), "scored lab", "", "", "", "", "0=org/ngd-unlearned")
    assert reply["ok"], reply
    assert app.wait_for_verification(120)
    space, url = mod.serve(app)
    try:
        yield url, root, fresh
    finally:
        space.close()


@pytest.fixture(scope="module")
def page(running_space):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": WIDTH, "height": 900})
        pg.set_default_timeout(45_000)  # generous: CI shares 2 cores
        pg.dialogs = []
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        try:
            yield pg
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        out = REPO_ROOT / "docs" / "img"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("shots")


def read_table(page, selector: str = "#leaderboard-table"):
    return page.evaluate(READ_TABLE, selector)


def column(table, label):
    i = table["heads"].index(label)
    return [row[i] for row in table["rows"]]


def wait_table(page, predicate, what: str, timeout: float = 60.0, selector: str = "#leaderboard-table"):
    """Poll the rendered grid until ``predicate`` holds (the server's reply has been drawn); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    table = None
    while time.monotonic() < deadline:
        table = read_table(page, selector)
        try:
            if table and table["rows"] and predicate(table):
                return table
        except (ValueError, IndexError):
            pass
        page.wait_for_timeout(200)
    raise AssertionError(f"table never showed {what}; last read: {table}")


def choose(page, elem_id: str, option: str):
    page.click(f"#{elem_id} input")
    page.locator("[role=option]", has_text=option).first.click()


def type_into(page, selector: str, text: str):
    box = page.locator(selector).first
    box.click()
    box.press("Control+a")
    box.press("Delete")
    if text:
        box.press_sequentially(text, delay=5)


def upload(page, path: Path) -> None:
    """Choose ``path`` in the Submit tab's gr.File and wait until the component shows it as uploaded.

    gr.File removes its (hidden) ``<input type=file>`` from the page while it shows a file, so a file still shown
    from an earlier choice is cleared first with the component's own Clear button. The input is located with
    ``state="attached"``: it is ``display: none`` by design. The file is chosen again only while the input is
    still there with no file shown (the component did not take the first choice); once the upload has started
    the input is gone and this just waits for the file name, however slow the server is.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator("#submit-file")
    box.wait_for()
    file_input = box.locator("input[type=file]")
    shown = box.locator(f'td.filename[aria-label="{path.name}"]')
    clear = box.get_by_role("button", name="Clear")
    if clear.count():
        clear.first.click()
    file_input.wait_for(state="attached")
    file_input.set_input_files(str(path))
    try:
        shown.wait_for(timeout=20_000)
        return
    except PlaywrightTimeout:
        if shown.count() == 0 and file_input.count() == 1 and clear.count() == 0:
            file_input.set_input_files(str(path))  # not taken (still empty, input still there): choose it again
    shown.wait_for(timeout=90_000)


def wait_until(page, check, what: str, timeout: float = 60.0):
    """Poll ``check`` (returns a truthy value once the page has reached the state) until it holds; fail naming
    ``what`` and the last value seen. For layout and rendering that settle after the server's reply."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        page.wait_for_timeout(200)
    raise AssertionError(f"the page never showed {what}; last check: {last!r}")


def submit_result(page, prefix: str) -> str:
    page.wait_for_function(
        f"() => document.querySelector('#submit-result textarea').value.startsWith({prefix!r})", timeout=45_000
    )
    return page.locator("#submit-result textarea").input_value()


RANK_DECIDING = ["Budget", "Rank", "Method", "Shortfall", "TPR@1%", "Test acc", "Verified"]
HEADER_EDGES = """() => [...document.querySelectorAll('#leaderboard-table thead th')].map(th => {
  const r = th.getBoundingClientRect();
  return [th.innerText.trim(), r.left, r.right, r.height];
})"""


def test_space_in_a_real_browser(running_space, page, shots):
    url, root, fresh = running_space
    page.goto(url, wait_until="networkidle")  # the page-load refresh has answered: no stale reply can follow

    # 1. the table: the rank-deciding columns first and in view at 1280 px, headers on one line,
    #    one reference row per variant shown as such, ranks (shared as T<n>), intervals in the cell
    table = wait_table(page, lambda t: "Retrain (reference)" in column(t, "Method"), "the Retrain reference")
    assert table["heads"][:7] == RANK_DECIDING

    layout = {}

    def layout_fits() -> bool:
        """False until the grid's column widths have settled (they are measured after the rows are drawn)."""
        layout["headers"] = {name: (left, right, height) for name, left, right, height in page.evaluate(HEADER_EDGES)}
        layout["page width"] = page.evaluate("document.documentElement.scrollWidth")
        edges = layout["headers"]
        return (all(name in edges and edges[name][1] <= WIDTH for name in RANK_DECIDING)  # in view at 1280 px
                and 0 < max(round(h) for _, _, h in edges.values()) < 60  # headers on one line
                and layout["page width"] <= WIDTH)  # the page does not scroll sideways

    try:
        wait_until(page, layout_fits, f"the rank-deciding columns within {WIDTH} px on one line")
    except AssertionError as err:
        raise AssertionError(f"{err}; last layout: {layout}") from None
    methods = column(table, "Method")
    assert methods[:2] == ["Retrain (reference)", "No unlearning (reference)"]
    assert methods.count("Retrain (reference)") == len(set(column(table, "Variant"))), "one reference per variant"
    assert {"NGD", "SCRUB", "GA"} <= set(methods)
    assert all(" ± " in c for c in column(table, "TPR@1%")), "intervals are shown in the cell"
    ranks = column(table, "Rank")
    assert ranks[:2] == ["–", "–"] and any(r.startswith("T") for r in ranks) and any(r.isdigit() for r in ranks)
    assert all(c == "reference" for c in column(table, "Verified")[:2])

    page.screenshot(path=str(shots / "leaderboard.png"))
    page.get_by_role("tab", name="Plots").click()
    page.wait_for_selector("#plot-bars img")
    page.wait_for_function(  # the plot images decoded, so the screenshot shows them
        "() => [...document.querySelectorAll('#plot-bars img')].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(shots / "plots.png"), full_page=True)
    page.get_by_role("tab", name="Leaderboard").click()

    # 2. filter: variant, then a search; the variant's references stay as context
    choose(page, "filter-variant", "eps0.1-b2.5-s0")
    wait_table(page, lambda t: set(column(t, "Variant")) == {"eps0.1-b2.5-s0"}, "only the chosen variant")
    type_into(page, "#filter-search textarea", "ngd")
    table = wait_table(page, lambda t: set(column(t, "Method")) == {"Retrain (reference)", "No unlearning (reference)",
                                                                      "NGD"}, "only NGD and the references")
    budgets = column(table, "Budget")
    assert budgets[:2] == ["—", "—"] and budgets[2:] == sorted(budgets[2:])
    group = [i for i, b in enumerate(budgets) if b == "0.05"]
    assert "✔ verified" in column(table, "Verified")[group[0]], "verified rows come first in their group"

    # 3. the verified badge has a tooltip naming what was checked and what was not
    badge = page.locator("#leaderboard-table [role=gridcell] span[title]", has_text="✔ verified").first
    title = badge.get_attribute("title")
    assert "checkpoint org/ngd-unlearned" in title and "TPR@1% (within 1/num_poisons)" in title
    assert "Not checked: the method and the budget" in title
    page.screenshot(path=str(shots / "leaderboard-filtered.png"))

    # 4. sort by test accuracy, descending; choose columns. Each control's reply is awaited before the next
    #    control is touched: every event carries all filter values as they were when it fired, so replies
    #    finishing out of order on a busy machine could otherwise leave an older view drawn last.
    type_into(page, "#filter-search textarea", "")
    wait_table(page, lambda t: len(set(column(t, "Method")) - {"Retrain (reference)", "No unlearning (reference)"})
               > 1, "more methods than NGD once the search is cleared")

    def sorted_by_acc(descending):
        def check(t):
            acc = [float(x.split(" ")[0]) for x in column(t, "Test acc")[2:] if x]
            return len(acc) > 5 and acc == sorted(acc, reverse=descending)
        return check

    choose(page, "sort-by", "Test acc")
    wait_table(page, sorted_by_acc(False), "methods sorted by test accuracy, lowest first")
    page.click("#sort-desc input")
    wait_table(page, sorted_by_acc(True), "methods sorted by test accuracy, highest first")
    page.get_by_text("Columns", exact=True).click()
    page.locator("#columns label", has_text="Seeds").first.click()
    wait_table(page, lambda t: "Seeds" not in t["heads"] and "Method" in t["heads"], "the Seeds column removed")
    page.get_by_text("Columns", exact=True).click()

    # 5. a look-alike submitter name is refused with the reason shown; nothing is stored
    n_before = len(LocalStore(root / "store").submissions())
    upload_path = root / "fresh.jsonl"
    upload_path.write_text(json.dumps(fresh) + "\n")
    page.get_by_role("tab", name="Submit").click()
    upload(page, upload_path)
    type_into(page, "#submit-name input, #submit-name textarea", LOOKALIKE_NAME)
    page.get_by_text("New method (only if", exact=False).click()
    type_into(page, "#submit-method input, #submit-method textarea", "fresh_method")
    type_into(page, "#submit-method-desc textarea", HOSTILE_TEXT)
    type_into(page, "#submit-checkpoints textarea", "0=org/fresh-unlearned")
    page.click("#submit-button")
    text = submit_result(page, "rejected")
    assert "submitter name" in text, text
    assert len(LocalStore(root / "store").submissions()) == n_before

    # 6. the same file under a plain name is accepted, with its checkpoint queued for verification
    type_into(page, "#submit-name input, #submit-name textarea", "fresh team")
    page.click("#submit-button")
    text = submit_result(page, "accepted")
    assert "1 records is on the leaderboard" in text and "verification queued" in text
    submission = text.split("submission ")[1][:12]
    page.screenshot(path=str(shots / "submit.png"), full_page=True)

    # 7. the status view finds it by id and follows it to "verified"
    page.get_by_role("tab", name="Status").click()
    type_into(page, "#status-search textarea, #status-search input", submission)
    deadline = time.monotonic() + 60
    while True:
        page.click("#status-refresh")
        page.wait_for_timeout(500)
        status = read_table(page, "#status-table")
        if status and status["rows"] and column(status, "Status") == ["verified"]:
            break
        assert time.monotonic() < deadline, f"status never became verified: {status}"
    assert column(status, "Submission")[0].startswith(submission)
    assert column(status, "Submitter") == ["fresh team"]
    page.screenshot(path=str(shots / "status.png"), full_page=True)

    # 8. the new row and its method description: markup shown as text, nothing ran
    page.get_by_role("tab", name="Leaderboard").click()
    choose(page, "filter-variant", "eps0.1-b1.5-s0")
    wait_table(page, lambda t: set(column(t, "Variant")) == {"eps0.1-b1.5-s0"}, "only the chosen variant")
    type_into(page, "#filter-search textarea", "fresh")
    table = wait_table(page, lambda t: "fresh_method (new) †" in column(t, "Method"), "the submitted row")
    described = page.locator("#leaderboard-table span[title]", has_text="fresh_method (new)").first
    assert HOSTILE_TEXT in described.get_attribute("title")
    page.locator("#methods").get_by_text("Methods (new methods", exact=False).click()
    methods_table = wait_table(page, lambda t: "fresh_method" in column(t, "Method"), "the declared method",
                               selector="#methods-table")
    assert HOSTILE_TEXT in column(methods_table, "Description")
    assert page.evaluate("window.__xss") is None, "markup from a submitter ran in the page"
    for where in ("#leaderboard-table", "#methods-table"):
        assert page.locator(f"{where} img").count() == 0 and page.locator(f"{where} script").count() == 0
    assert page.dialogs == []
    page.locator("#methods-table").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "markup-shown-as-text.png"), full_page=True)

    # 9. a rejected upload says why and adds nothing
    bad = root / "bad.jsonl"
    bad.write_text(json.dumps({**fresh, "metrics": {**fresh["metrics"], "test_accuracy": 1.5}}) + "\n")
    n_before = len(LocalStore(root / "store").submissions())
    page.get_by_role("tab", name="Submit").click()
    upload(page, bad)
    page.click("#submit-button")
    text = submit_result(page, "rejected")
    assert "metrics.test_accuracy" in text and "[0.0, 1.0]" in text
    assert len(LocalStore(root / "store").submissions()) == n_before

    # 10. plots and the About tab render; "TPR@0.1%" is text, not a mailto: link; the citation is there
    page.get_by_role("tab", name="Plots").click()
    page.wait_for_selector("#plot-bars img")
    page.get_by_role("tab", name="About").click()
    about = page.locator("#about")
    about.get_by_text("@inproceedings{pawelczyk2025machine,", exact=False).first.wait_for()  # the Markdown is rendered
    assert "Shortfall" in about.inner_text() and "TPR@0.1%" in about.inner_text()
    assert page.locator("#about a[href^='mailto:']").count() == 0
    assert "@inproceedings{pawelczyk2025machine," in about.inner_text() and "FAQ" in about.inner_text()
