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

from leaderboard.demo import fill_store, synthetic_record
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


@pytest.fixture
def space(tmp_path):
    mod = load_space_app()
    store = LocalStore(tmp_path / "store", rate_limit=RateLimit(5, 3600), allow_local_checkpoints=False)
    fill_store(store, 120)
    return mod, mod.App(store, verify=False)


VIEW = ("cifar10", "gaussian", ALL, ALL, False, "", None, "Rank", False)


def test_callbacks_render_filter_and_accept(space, tmp_path):
    mod, app = space
    view = app.view(*VIEW)
    assert "Retrain" in set(view.table["Method"]) and view.info.endswith("submissions")
    outputs = app.on_scope("cifar10", "targeted", False, "", "Rank", False)
    assert outputs[1].value == "targeted" and "Target success" in outputs[4].value
    path = write_jsonl(tmp_path / "mine.jsonl", record(10_001))
    name = "<b>bold</b> team"
    text, cleared, *_, table, info = app.on_submit(str(path), name, "", "", "", "", "", *VIEW)
    assert text.startswith("accepted: submission ") and "unverified" in text
    assert cleared.value is None
    shown = app.view("cifar10", "gaussian", ALL, ALL, False, "bold", ["Submitter"], "Rank", False).table
    assert name in list(shown["Submitter"])
    text, *_ = app.on_submit(str(path), "someone else", "", "", "", "", "", *VIEW)
    assert text.startswith("rejected: record 0 is already on the leaderboard")


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
    limiter = mod.ClientLimiter(max_requests=2, window_s=60)
    limiter.check("1.2.3.4")
    limiter.check("1.2.3.4")
    with pytest.raises(SubmissionError, match=r"too many submissions from this address \(2 per 1 minutes\)"):
        limiter.check("1.2.3.4")
    limiter.check("5.6.7.8")


def test_verification_runs_in_the_background(tmp_path):
    mod = load_space_app()
    store = LocalStore(tmp_path / "store", allow_local_checkpoints=False)
    rec = record(3)

    def score_fn(checkpoint, dataset, config, **kwargs):
        return dict(rec["metrics"])

    app = mod.App(store, verify=True, score_fn=score_fn)
    reply = app.submit(str(write_jsonl(tmp_path / "r.jsonl", rec)), "Ada", "", "", "", "", "org/unlearned-model")
    assert reply["ok"] and any("verification queued" in m for m in reply["messages"])
    for job in app.jobs:
        job.result(timeout=60)
    view = app.view("cifar10", "gaussian", ALL, ALL, True, "", ["Method", "Verification"], "Rank", False)
    assert list(view.table["Verification"]) == ["verified"]
    assert "verification: verified" in app.verification_text(reply["submission_id"])


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


def test_local_folder_submission_and_store_reload(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", record(1))
    result = submit_file(path, tmp_path / "board", submitter="Ada")
    assert "unverified" in result.summary()
    assert len(LocalStore(tmp_path / "board").submissions()) == 1


def test_space_card_and_requirements_agree():
    import gradio

    text = (REPO_ROOT / "space" / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    pins = dict(
        line.split("==") for line in (REPO_ROOT / "space" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["gradio"] == meta["sdk_version"] == gradio.__version__


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
