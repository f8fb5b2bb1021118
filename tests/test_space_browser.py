"""The Space in headless Chromium: read the table, filter, choose columns, sort, upload, see the new row,
and see that markup in a submitter's name is shown as text and runs nothing.

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

from leaderboard.demo import fill_store, synthetic_record
from leaderboard.store import LocalStore, RateLimit

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOSTILE_NAME = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> team'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

# Reads the virtualised grid of gr.Dataframe: header titles, then each rendered row's cell texts.
READ_TABLE = """(sel) => {
  const root = document.querySelector(sel);
  if (!root) return null;
  const heads = [...root.querySelectorAll('thead th')].map(th => th.getAttribute('title') || th.innerText.trim());
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


@pytest.fixture(scope="module")
def running_space(tmp_path_factory):
    mod = load_space_app()
    root = tmp_path_factory.mktemp("space")
    store = LocalStore(root / "store", rate_limit=RateLimit(5, 3600), allow_local_checkpoints=False)
    fill_store(store, 300)
    app = mod.App(store, verify=False, note="Synthetic example rows with made-up numbers (test fixture).")
    demo, url = mod.serve(app)
    try:
        yield url, root
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(running_space):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1500, "height": 1000})
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


def read_table(page):
    return page.evaluate(READ_TABLE, "#leaderboard-table")


def column(table, label):
    i = table["heads"].index(label)
    return [row[i] for row in table["rows"]]


def wait_table(page, predicate, what: str, timeout: float = 45.0):
    deadline = time.monotonic() + timeout
    table = None
    while time.monotonic() < deadline:
        table = read_table(page)
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


def test_space_in_a_real_browser(running_space, page, shots):
    url, root = running_space
    page.goto(url, wait_until="networkidle")  # the page-load refresh has answered: no stale reply can follow

    # 1. read the table: references first, then ranked methods, every column from the default set
    table = wait_table(page, lambda t: "Retrain" in column(t, "Method"), "the Retrain reference")
    assert table["heads"][:4] == ["Rank", "Method", "Row", "Submitter"]
    methods = column(table, "Method")
    assert methods[:2] == ["Retrain", "No unlearning"]
    assert {"NGD", "SCRUB", "GA"} <= set(methods)
    assert set(column(table, "Row")) == {"reference", "method"}
    page.screenshot(path=str(shots / "leaderboard.png"))
    page.get_by_role("tab", name="Plots").click()
    page.wait_for_selector("#plot-bars img")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "plots.png"), full_page=True)
    page.get_by_role("tab", name="Leaderboard").click()

    # 2. filter: variant, then a search; references stay as context
    choose(page, "filter-variant", "eps0.1-b2.5-s0")
    wait_table(page, lambda t: set(column(t, "Variant")) == {"eps0.1-b2.5-s0"}, "only the chosen variant")
    type_into(page, "#filter-search textarea", "scrub")
    table = wait_table(page, lambda t: set(column(t, "Method")) == {"Retrain", "No unlearning", "SCRUB"},
                       "only SCRUB and the references")
    assert len(column(table, "Method")) == 2 + 3  # three budgets
    assert column(table, "Budget")[2:] == ["0.02", "0.05", "0.1"]
    page.screenshot(path=str(shots / "leaderboard-filtered.png"))

    # 3. sort by test accuracy, descending; choose columns
    type_into(page, "#filter-search textarea", "")
    choose(page, "sort-by", "Test acc")
    page.click("#sort-desc input")

    def sorted_desc(t):
        acc = [float(x) for x in column(t, "Test acc")[2:] if x]
        return len(acc) > 5 and acc == sorted(acc, reverse=True)

    wait_table(page, sorted_desc, "methods sorted by test accuracy, highest first")
    page.get_by_text("Columns", exact=True).click()
    page.locator("#columns label", has_text="Row").first.click()
    wait_table(page, lambda t: "Row" not in t["heads"] and "Method" in t["heads"], "the Row column removed")

    # 4. upload a submission whose submitter name carries markup, with a declared new method
    record = synthetic_record(random.Random(77), "cifar10", "gaussian", "eps0.1-b1.5-s0", "fresh_method", 77, 0.05)
    upload = root / "fresh.jsonl"
    upload.write_text(json.dumps(record) + "\n")
    page.get_by_role("tab", name="Submit").click()
    page.set_input_files("#submit-file input[type=file]", str(upload))
    page.wait_for_selector("#submit-file >> text=fresh.jsonl")
    type_into(page, "#submit-name input, #submit-name textarea", HOSTILE_NAME)
    page.get_by_text("New method (only if", exact=False).click()
    type_into(page, "#submit-method input, #submit-method textarea", "fresh_method")
    type_into(page, "#submit-method-desc textarea", "Forgets <b>everything</b> & more")
    page.click("#submit-button")
    result = page.locator("#submit-result textarea")
    page.wait_for_function(
        "() => document.querySelector('#submit-result textarea').value.startsWith('accepted')", timeout=45_000
    )
    assert "1 records is on the leaderboard" in result.input_value()
    page.screenshot(path=str(shots / "submit.png"), full_page=True)

    # 5. the new row is there, its name shown as text, and nothing ran
    page.get_by_role("tab", name="Leaderboard").click()
    choose(page, "filter-variant", "eps0.1-b1.5-s0")
    type_into(page, "#filter-search textarea", "fresh")
    table = wait_table(page, lambda t: set(column(t, "Method")) == {"Retrain", "No unlearning", "fresh_method (new)"},
                       "the submitted row and the references")
    row = table["rows"][column(table, "Method").index("fresh_method (new)")]
    assert row[table["heads"].index("Submitter")] == HOSTILE_NAME.strip()
    assert row[table["heads"].index("Verification")] == "unverified"
    assert page.evaluate("window.__xss") is None, "markup from a submitter ran in the page"
    assert page.locator("#leaderboard-table img").count() == 0
    assert page.locator("#leaderboard-table script").count() == 0
    assert page.dialogs == []
    page.get_by_text("Columns", exact=True).click()  # fold the column chooser so the table is in view
    page.locator("#leaderboard-table").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "markup-shown-as-text.png"), full_page=True)

    # 6. a rejected upload says why and adds nothing
    bad = root / "bad.jsonl"
    bad.write_text(json.dumps({**record, "metrics": {**record["metrics"], "test_accuracy": 1.5}}) + "\n")
    page.get_by_role("tab", name="Submit").click()
    page.set_input_files("#submit-file input[type=file]", str(bad))
    page.wait_for_selector("#submit-file >> text=bad.jsonl")
    page.click("#submit-button")
    page.wait_for_function(
        "() => document.querySelector('#submit-result textarea').value.startsWith('rejected')", timeout=45_000
    )
    assert "metrics.test_accuracy" in result.input_value() and "[0.0, 1.0]" in result.input_value()
    assert len(LocalStore(root / "store").submissions()) == 35

    # 7. plots and the About tab render
    page.get_by_role("tab", name="Plots").click()
    page.wait_for_selector("#plot-bars img")
    page.get_by_role("tab", name="About").click()
    assert "Shortfall vs Retrain" in page.locator("#about").inner_text()
