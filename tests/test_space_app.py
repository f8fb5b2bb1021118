"""The Space without a browser: callbacks, the submit API used by `hf-unlearn submit`, the Space card."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from pathlib import Path

import pytest
import yaml

from leaderboard.demo import synthetic_record, write_demo
from leaderboard.ranking import ALL
from leaderboard.store import LocalStore, RateLimit
from leaderboard.submission import SubmissionError
from leaderboard.submit import submit_file

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_space_app():
    if "hf_unlearn_space_app" in sys.modules:
        return sys.modules["hf_unlearn_space_app"]
    spec = importlib.util.spec_from_file_location("hf_unlearn_space_app", REPO_ROOT / "space" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_jsonl(path: Path, *records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def record(seed: int, method: str = "scrub", variant: str = "eps0.1-b1.5-s0") -> dict:
    return synthetic_record(random.Random(seed), "cifar10", "gaussian", variant, method, seed, 0.05)


def make_app(mod, root: Path, n_records: int = 120, **kwargs):
    store = LocalStore(root / "store", rate_limit=RateLimit(5, 3600), allow_local_checkpoints=False)
    demo = write_demo(root, n_records, store=store)
    kwargs.setdefault("verify", False)
    return mod.App(demo.store, references=demo.references, catalog=demo.catalog, require_login=False, **kwargs)


@pytest.fixture
def space(tmp_path):
    mod = load_space_app()
    return mod, make_app(mod, tmp_path)


VIEW = ("cifar10", "gaussian", ALL, ALL, False, "", None, "Rank", False)


def test_callbacks_render_filter_and_accept(space, tmp_path):
    mod, app = space
    view = app.view(*VIEW)
    methods = list(view.table["Method"])
    assert methods[:2] == ["**Retrain** (reference)", "**No unlearning** (reference)"]
    assert view.info.endswith("submissions")
    outputs = app.on_scope("cifar10", "targeted", False, "", "Rank", False)
    assert outputs[1].value == "targeted" and "Target success" in outputs[4].value
    path = write_jsonl(tmp_path / "mine.jsonl", record(10_001))
    text, cleared, *_, table, info, methods = app.on_submit(str(path), "bold team", "", "", "", "", "", *VIEW)
    assert text.startswith("accepted: submission ") and "unverified" in text
    assert cleared.value is None
    shown = app.view("cifar10", "gaussian", ALL, ALL, False, "bold", ["Submitter"], "Rank", False).table
    assert "bold team" in list(shown["Submitter"])
    text, *_ = app.on_submit(str(path), "someone else", "", "", "", "", "", *VIEW)
    assert text.startswith("rejected: record 0 is already on the leaderboard")


def test_rank_deciding_columns_come_first_and_fit_1280px(space):
    _, app = space
    view = app.view(*VIEW)
    headers = view.value["headers"]
    assert headers[:8] == ["Budget", "Rank", "Method", "Shortfall", "TPR@1%", "Test acc", "Verified", "Submitter"]
    widths = [int(w[:-2]) for w in view.widths[:7]]
    assert sum(widths) < 1280 - 100, "Budget..Verified must fit a 1280 px window with its margins"
    cells = view.table
    # intervals in the cell, deltas with a real minus sign, ranks shared as T<n>
    assert all(" ± " in c for c in cells["TPR@1%"] if c)
    assert any(c.startswith("\u2212") for c in cells["Δ test acc"])
    assert not any(str(c).startswith(("-", "=", "+", "@")) for col in cells for c in cells[col])
    ranks = [re.sub(r"<[^>]+>", "", r) for r in cells["Rank"]]
    assert ranks[:2] == ["–", "–"] and any(r.startswith("T") for r in ranks)


def test_budget_groups_are_styled_and_references_distinct(space):
    _, app = space
    view = app.view(*VIEW)
    styling = view.value["metadata"]["styling"]
    budgets = list(view.table["Budget"])
    starts = [i for i, row in enumerate(styling) if "border-top" in row[0]]
    # a rule above the first row of every (variant, budget) group, including the references
    assert len(starts) == len({(v, b) for v, b in zip(view.table["Variant"], budgets)})
    assert all("font-weight:bold" in styling[i][0] for i in starts)
    assert "italic" in styling[0][2] and "italic" not in styling[starts[1] if starts[1] > 1 else 2][2]


def test_verified_badge_tooltip_says_what_was_checked_and_escapes(space):
    from leaderboard import display

    cell, text = display.badge("verified", scored="org/ckpt@abc", variant="eps0.1-b1.5-s0")
    assert text == "verified" and cell.startswith('<span title="Re-scored by this leaderboard: checkpoint org/ckpt@abc')
    assert "TPR@1% (within 1/num_poisons)" in cell and "Not checked: the method and the budget" in cell
    cell, _ = display.badge("mismatch", note='gus: claimed 0.1 <img src=x onerror="alert(1)">')
    assert "<img" not in cell and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in cell
    assert display.md_text("a_b*c <b>[x](javascript:y)</b> me@x.org") == (
        "a\\_b\\*c &lt;b&gt;\\[x\\]\\(javascript&#58;y\\)&lt;/b&gt; me&#64;x\\.org")


def test_formula_escaping_and_intervals():
    from leaderboard import display

    assert display.formula_safe('=HYPERLINK("http://x")') == "'=HYPERLINK(\"http://x\")"
    for text in ("+1+2", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert display.formula_safe(text) == "'" + text
    assert display.formula_safe("-0.25") == "-0.25" and display.formula_safe("team") == "team"
    assert display.interval_text(0.1974, 0.0631) == "0.197 ± 0.063"
    assert display.interval_text(-0.0123, None) == "\u22120.012"
    assert display.combined_halfwidth(0.03, 0.04) == pytest.approx(0.05)
    assert display.number_text(1e308) == "1e+308" and display.number_text(float("inf")) == "inf"
    assert display.rank_text(2.0, True) == "T2" and display.rank_text(float("nan"), False) == "–"


def test_model_links_only_for_hub_ids():
    from leaderboard import display

    assert display._model_cell("org/model_x") == "[org/model\\_x](https://huggingface.co/org/model_x)"
    assert not display._model_cell("../etc/passwd").startswith("[")
    assert not display._model_cell("org/x](javascript:alert(1))").startswith("[")


def test_status_view_lists_submissions_searchable_by_id(space, tmp_path):
    _, app = space
    path = write_jsonl(tmp_path / "c.jsonl", record(42))
    reply = app.submit(str(path), "Ada", "", "", "", "", "0=org/unlearned-model")
    assert reply["ok"], reply
    rows, info = app.status_view(reply["submission_id"][:10])
    assert list(rows["Submission"]) == [reply["submission_id"]]
    assert list(rows["Status"]) == ["queued"] and list(rows["Checkpoints"]) == [1]
    rows, _ = app.status_view("", "no checkpoint")
    assert len(rows) == app.board.num_submissions - 1 and set(rows["Status"]) == {"no checkpoint"}


def test_about_tab_has_citation_faq_and_no_mailto(space):
    mod, _ = space
    assert "@inproceedings{pawelczyk2025machine," in mod.ABOUT_MD
    assert "## FAQ" in mod.ABOUT_MD
    prose = mod.ABOUT_MD.split("```bibtex")[0]
    assert "@" not in prose and "TPR&#64;0.1%" in prose, "an @ in prose becomes a mailto: link"


def test_csv_download_escapes_formulas(space, tmp_path):
    _, app = space
    path = app.download_csv(*VIEW)
    text = Path(path).read_text()
    header = text.splitlines()[0].split(",")
    assert header[:6] == ["task", "attack", "variant", "budget", "rank", "rank_shared"]
    assert len(text.splitlines()) == 1 + len(app.board.rows(mod_filters(VIEW)))


def mod_filters(view):
    from leaderboard.ranking import Filters

    task, attack, variant, budget, verified, search, *_ = view
    return Filters(task=task, attack=attack, variant=variant, budget=budget, verified_only=verified, search=search)


def test_oauth_identity_on_a_space(tmp_path):
    mod = load_space_app()
    app = make_app(mod, tmp_path, 30)
    app.require_login = True
    path = write_jsonl(tmp_path / "r.jsonl", record(7))
    reply = app.submit(str(path), "my team", "", "", "", "", "")
    assert reply["error"].startswith("rejected: sign in with Hugging Face first")

    class Profile:
        username = "ada-lovelace"

    reply = app.submit(str(path), "hf-unlearn maintainers ✔ verified", "", "", "", "", "", profile=Profile())
    assert reply["error"].startswith("rejected: display name = "), "a display name follows the same rules as a submitter name"
    reply = app.submit(str(path), "", "", "", "", "", "", profile=Profile())
    assert reply["ok"], reply
    assert app.store.get(reply["submission_id"]).submission.submitter["name"] == "ada-lovelace"

    class Request:
        headers = {"authorization": "Bearer hf_token"}
        client = None

    app.whoami = lambda token: {"name": "grace", "type": "user"} if token == "hf_token" else {}
    reply = app.submit(str(write_jsonl(tmp_path / "s.jsonl", record(8))), "", "", "", "", "", "", request=Request())
    assert reply["ok"] and app.store.get(reply["submission_id"]).submission.submitter["name"] == "grace"

    class Token:  # what gradio injects for Client(..., oauth_token=...)
        token = "hf_token"

    reply = app.api_submit(str(write_jsonl(tmp_path / "t.jsonl", record(9))), "", "", "", "", "", "", Token())
    assert reply["ok"] and app.store.get(reply["submission_id"]).submission.submitter["name"] == "grace"
    Token.token = "stolen"
    reply = app.api_submit(str(write_jsonl(tmp_path / "u.jsonl", record(10))), "", "", "", "", "", "", Token())
    assert reply["error"].startswith("rejected: sign in with Hugging Face first")


def test_oauth_account_is_an_identity_and_the_display_name_is_stored(tmp_path):
    """A real Hub login containing a reserved word signs in; the name box is stored as its display name."""
    mod = load_space_app()
    app = make_app(mod, tmp_path, 30)
    app.require_login = True

    class Profile:
        username = "anonymous-dev"

    reply = app.submit(str(write_jsonl(tmp_path / "a.jsonl", record(11))), "Ada Lab", "", "", "", "", "",
                       profile=Profile())
    assert reply["ok"], reply
    assert not any("not stored" in m for m in reply["messages"])
    stored = app.store.get(reply["submission_id"]).submission.submitter
    assert stored == {"name": "anonymous-dev", "link": None, "display_name": "Ada Lab", "account": True}
    table = app.board.rows(mod_filters(VIEW[:6] + (None,) * 3))
    assert "Ada Lab (@anonymous-dev)" in set(table["submitter"]), "the account is shown as @name"
    cells = set(table["cell:Submitter"])
    assert "Ada Lab ([&#64;anonymous\\-dev](https://huggingface.co/anonymous-dev))" in cells, \
        "the account part is linked to its Hub page"
    assert not any("](" in c for c in cells if "anonymous" not in c), "typed names are never links"
    status, _ = app.status_view(reply["submission_id"][:12])
    assert list(status["Submitter"]) == ["Ada Lab ([&#64;anonymous\\-dev](https://huggingface.co/anonymous-dev))"], \
        "the status view shows the account the same way"

    Profile.username = "admin-lab"
    reply = app.submit(str(write_jsonl(tmp_path / "b.jsonl", record(12))), "admin-lab", "", "", "", "", "",
                       profile=Profile())
    assert reply["ok"], reply
    assert "display_name" not in app.store.get(reply["submission_id"]).submission.submitter, \
        "a name box equal to the account (what the CLI sends) adds nothing"
    for typed in ("@grace", "anonymous admin"):  # free text: reserved words and a fake account are refused
        reply = app.submit(str(write_jsonl(tmp_path / "c.jsonl", record(13))), typed, "", "", "", "", "",
                           profile=Profile())
        assert reply["error"].startswith("rejected: display name = "), reply
    Profile.username = "eve\u202egro"  # not a name the Hub issues: refused, not shown
    reply = app.submit(str(write_jsonl(tmp_path / "d.jsonl", record(14))), "", "", "", "", "", "", profile=Profile())
    assert reply["error"].startswith("rejected: Hub account name = "), reply


def test_forwarded_for_trusted_only_from_configured_proxies():
    mod = load_space_app()

    class Client:
        def __init__(self, host):
            self.host = host

    class Request:
        def __init__(self, peer, xff):
            self.client, self.headers = Client(peer), {"x-forwarded-for": xff}

    spoof = Request("127.0.0.1", "9.9.9.9")
    assert mod.client_address(spoof) == "127.0.0.1", "X-Forwarded-For from an unconfigured peer is ignored"
    proxies = mod.trusted_proxies_from_env("10.0.0.1, 10.0.0.2")
    assert mod.client_address(Request("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2"), proxies) == "1.2.3.4"
    assert mod.client_address(Request("5.5.5.5", "1.2.3.4"), proxies) == "5.5.5.5"
    with pytest.raises(SystemExit, match="expected an IP address"):
        mod.trusted_proxies_from_env("proxy.example")


def test_rejected_uploads_do_not_count_against_the_address_limit(tmp_path):
    mod = load_space_app()
    app = make_app(mod, tmp_path, 30, client_limiter=mod.SlidingLimiter(2, 3600, "address"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "cifar10"}\n')
    for _ in range(10):
        assert not app.submit(str(bad), "Eve", "", "", "", "", "", client_key="1.2.3.4")["ok"]
    for seed in (1, 2):
        reply = app.submit(str(write_jsonl(tmp_path / f"{seed}.jsonl", record(100 + seed))), f"team{seed}",
                           "", "", "", "", "", client_key="1.2.3.4")
        assert reply["ok"], reply
    reply = app.submit(str(write_jsonl(tmp_path / "3.jsonl", record(103))), "team3", "", "", "", "", "",
                       client_key="1.2.3.4")
    assert "too many submissions from this address (2 per 60 minutes)" in reply["error"]


def test_submit_rejections_are_plain_messages(space, tmp_path):
    _, app = space
    assert app.submit(None, "x", "", "", "", "", "")["error"] == (
        "rejected: no file uploaded; choose a .jsonl file of result records"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "cifar10"}\n')
    reply = app.submit(str(bad), "Ada", "", "", "", "", "")
    assert not reply["ok"] and re.match(r"rejected: record 0 \(line 1\): result record is missing field", reply["error"])
    reply = app.submit(str(write_jsonl(tmp_path / "c.jsonl", record(5))), "Ada", "", "", "", "", "0=./local/ckpt")
    assert "expected a Hub model id" in reply["error"], "a public Space must not read local checkpoint folders"


def test_client_limiter(space, tmp_path):
    mod, _ = space
    limiter = mod.SlidingLimiter(max_requests=2, window_s=60)
    limiter.check("1.2.3.4")
    limiter.check("1.2.3.4")
    with pytest.raises(SubmissionError, match=r"too many submissions from this address \(2 per 1 minutes\)"):
        limiter.check("1.2.3.4")
    limiter.check("5.6.7.8")


def test_verification_runs_in_the_background(tmp_path):
    mod = load_space_app()
    rec = record(3)

    def score_fn(checkpoint, dataset, config, **kwargs):
        return dict(rec["metrics"])

    # isolate=False: the test's score_fn is a closure, which cannot run in the verifier's child process
    app = make_app(mod, tmp_path, 30, verify=True, score_fn=score_fn, verify_options={"isolate": False})
    reply = app.submit(str(write_jsonl(tmp_path / "r.jsonl", rec)), "Ada", "", "", "", "", "org/unlearned-model")
    assert reply["ok"] and any("verification queued" in m for m in reply["messages"])
    assert app.wait_for_verification(120)
    view = app.view("cifar10", "gaussian", ALL, ALL, True, "", ["Method", "Verified"], "Rank", False)
    verified = [v for v in view.table["Verified"] if "✔ verified" in v]
    assert len(verified) == 1 and "checkpoint org/unlearned-model" in verified[0]
    assert "verification: verified" in app.verification_text(reply["submission_id"])
    rows, _ = app.status_view(reply["submission_id"][:12])
    assert list(rows["Status"]) == ["verified"]


def test_cli_path_submits_through_the_running_space(tmp_path):
    """`hf-unlearn submit FILE --leaderboard URL` talks to the Space's API; rejections come back as errors."""
    mod = load_space_app()
    store = LocalStore(tmp_path / "store", allow_local_checkpoints=False)
    demo, url = mod.serve(mod.App(store, verify=False))
    try:
        path = write_jsonl(tmp_path / "ok.jsonl", record(1), record(2, "ngd"))
        result = submit_file(path, url, submitter="remote team", link="https://example.org")
        assert result.num_records == 2 and len(result.submission_id) == 64
        assert [s.id for s in store.submissions()] == [result.submission_id]
        with pytest.raises(SubmissionError, match="already on the leaderboard"):
            submit_file(path, url, submitter="remote team", link="https://example.org")
        bad = write_jsonl(tmp_path / "bad.jsonl", {**record(3), "task": "mnist"})
        with pytest.raises(SubmissionError, match=r"field 'task' = 'mnist'"):
            submit_file(bad, url, submitter="remote team")
        assert len(store.submissions()) == 1
    finally:
        demo.close()


def test_cli_signs_in_to_a_login_space_with_the_saved_hub_token(tmp_path, monkeypatch):
    """The real gradio_client sends the saved token as oauth_token; the Space resolves it to the account."""
    import huggingface_hub

    mod = load_space_app()
    store = LocalStore(tmp_path / "store", allow_local_checkpoints=False)
    app = mod.App(store, verify=False, require_login=False)  # served without gradio's local mock login,
    app.whoami = lambda token: {"name": "admin-lab", "type": "user"} if token == "hf_cli_token" else {}
    demo, url = mod.serve(app)
    app.require_login = True  # which needs a real Hub login; the API still requires one from here on
    try:
        path = write_jsonl(tmp_path / "ok.jsonl", record(21))
        monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
        with pytest.raises(SubmissionError, match="sign in with Hugging Face first.*no Hub token here"):
            submit_file(path, url, submitter="admin-lab")
        monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_cli_token")
        result = submit_file(path, url, submitter="admin-lab", display_name="Ada Lab")
        stored = store.get(result.submission_id).submission.submitter
        assert stored == {"name": "admin-lab", "link": None, "display_name": "Ada Lab", "account": True}
    finally:
        demo.close()


def test_local_folder_submission_and_store_reload(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", record(1))
    (tmp_path / "board").mkdir()
    result = submit_file(path, tmp_path / "board", submitter="Ada")
    assert "unverified" in result.summary()
    assert len(LocalStore(tmp_path / "board").submissions()) == 1


def test_space_card_and_requirements_agree():
    import gradio

    text = (REPO_ROOT / "space" / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    pins = dict(
        re.sub(r"\[.*?\]", "", line.split("#")[0]).strip().split("==")
        for line in (REPO_ROOT / "space" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["gradio"] == meta["sdk_version"] == gradio.__version__
    assert meta.get("hf_oauth") is True, "the Space identifies submitters by their Hub account"
    assert "gradio[oauth]" in (REPO_ROOT / "space" / "requirements.txt").read_text()


def test_deploy_folder_runs_without_installing_the_packages(tmp_path):
    spec = importlib.util.spec_from_file_location("space_deploy", REPO_ROOT / "space" / "deploy.py")
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    out = deploy.build(tmp_path / "space")
    assert {p.name for p in out.iterdir()} >= {"app.py", "README.md", "requirements.txt", "leaderboard", "hf_unlearn"}
    assert not (out / "hf_unlearn" / "samples").exists()
    import subprocess

    code = "import app, leaderboard, hf_unlearn; print(app.TITLE); print(leaderboard.__file__, hf_unlearn.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    title, files = done.stdout.strip().splitlines()
    assert title == "hf-unlearn leaderboard"
    assert all(f.startswith(str(out)) for f in files.split()), "the Space must use the copied packages"


def test_per_account_limit_on_a_space_counts_accepted_uploads_only(tmp_path):
    mod = load_space_app()
    app = make_app(mod, tmp_path, 30, account_limiter=mod.SlidingLimiter(1, 3600, "account"))
    app.require_login = True

    class Profile:
        username = "eve"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "cifar10"}\n')
    assert not app.submit(str(bad), "", "", "", "", "", "", profile=Profile())["ok"]
    assert app.submit(str(write_jsonl(tmp_path / "a.jsonl", record(201))), "Eve", "", "", "", "", "",
                      profile=Profile())["ok"]
    reply = app.submit(str(write_jsonl(tmp_path / "b.jsonl", record(202))), "Eve.", "", "", "", "", "",
                       profile=Profile())
    assert "too many submissions from this account (1 per 60 minutes)" in reply["error"], \
        "a new display name must not reset the account's limit"


def test_a_public_space_refuses_to_start_without_its_trust_settings(monkeypatch, tmp_path):
    """On a Space a board without public datasets, references or a verifier key would rank anything:
    main() stops with one line naming each missing setting; off a Space nothing is required."""
    app_module = load_space_app()
    for name in app_module.REQUIRED_ON_A_SPACE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert app_module.missing_space_settings() == []
    monkeypatch.setenv("SPACE_ID", "org/board")
    monkeypatch.setenv("LEADERBOARD_DATASETS", "cifar10/gaussian=org/poisoned-cifar10-gaussian")
    assert app_module.missing_space_settings() == ["LEADERBOARD_REFERENCES", "LEADERBOARD_VERIFIER_KEY"]
    with pytest.raises(SystemExit) as stop:
        app_module.main(["--store", str(tmp_path / "store")])
    assert "LEADERBOARD_REFERENCES" in str(stop.value) and "LEADERBOARD_VERIFIER_KEY" in str(stop.value)
    assert not (tmp_path / "store").exists(), "nothing is created before the settings are checked"
