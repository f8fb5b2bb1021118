"""`render_board`, the library behind `hf-unlearn board`: the Space's rows and ranks as Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
import sys
from pathlib import Path

import pytest

from leaderboard.board import Board, BoardError, render_board
from leaderboard.demo import synthetic_record, write_demo
from leaderboard.ranking import Filters
from leaderboard.submission import build_submission

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANT = "eps0.1-b1.5-s0"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    demo = write_demo(root, 120)
    # a submitter name a spreadsheet would run as a formula ("@..." is refused: it marks Hub accounts)
    rec = synthetic_record(random.Random(5), "cifar10", "gaussian", VARIANT, "scrub", 5, 0.05)
    demo.store.add(build_submission([rec], submitter="-cmd x", catalog=demo.catalog))
    return demo


def board_kwargs(demo):
    return {"references": demo.references, "catalog": demo.catalog}


def shown_rows(demo, **filters):
    board = Board(demo.store, **board_kwargs(demo))
    return board.rows(Filters(task=filters.get("task"), attack=filters.get("attack"),
                              variant=filters.get("variant", "all"), budget=filters.get("budget", "all")))


def test_json_has_the_spaces_rows_ranks_and_order(demo):
    rows = json.loads(render_board(demo.store.root, task="cifar10", attack="gaussian", variant=VARIANT,
                                   fmt="json", **board_kwargs(demo)))
    expected = shown_rows(demo, task="cifar10", attack="gaussian", variant=VARIANT)
    assert [r["submission_id"] for r in rows] == list(expected["submission_id"])
    assert [r["rank"] for r in rows] == [None if r != r else r for r in expected["rank"]]
    assert [r["method"] for r in rows[:2]] == ["retrain", "none"] and all(r["is_reference"] for r in rows[:2])
    ranked = [r for r in rows if r["rank"] is not None]
    assert ranked and all(isinstance(r["tpr1"], float) and isinstance(r["tpr1_ci"], float) for r in ranked)
    shared = [r for r in ranked if r["rank_shared"]]
    assert shared and all(r["rank_text"] == f"T{int(r['rank'])}" for r in shared)
    assert {r["variant"] for r in rows} == {VARIANT}


def test_csv_escapes_formulas_and_keeps_numbers(demo):
    text = render_board(demo.store.root, task="cifar10", attack="gaussian", fmt="csv", **board_kwargs(demo))
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(shown_rows(demo, task="cifar10", attack="gaussian"))
    assert "'-cmd x" in {r["submitter"] for r in table}, "a cell starting with - must get a leading apostrophe"
    assert not any(v.startswith(("=", "+", "@", "\t", "\r")) for r in table for v in r.values())
    negative = [r["d_test_accuracy"] for r in table if r["d_test_accuracy"].startswith("-")]
    assert negative and all(float(v) < 0 for v in negative), "plain numbers are not escaped"


def test_markdown_groups_by_budget_with_references_first(demo):
    text = render_board(demo.store.root, task="cifar10", attack="gaussian", variant=VARIANT, fmt="md",
                        **board_kwargs(demo))
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings == [
        f"### cifar10 / gaussian / {VARIANT} / references",
        f"### cifar10 / gaussian / {VARIANT} / budget 0.02",
        f"### cifar10 / gaussian / {VARIANT} / budget 0.05",
        f"### cifar10 / gaussian / {VARIANT} / budget 0.1",
    ]
    lines = text.splitlines()
    assert lines[1].startswith("| Rank | Method | Shortfall | TPR@1% | Test acc | Verified |")
    assert lines[3].startswith("| – | Retrain (reference) |")
    assert " ± " in lines[3] and "'-cmd x" in text


def test_no_server_path_is_exported(demo):
    """The references file's folder is the operator's business: exports name the file, not its path."""
    assert demo.references.source.startswith("/"), "the demo reads its references from an absolute path"
    folder = str(demo.references_path.parent)
    for fmt in ("json", "csv", "md"):
        text = render_board(demo.store.root, task="cifar10", attack="gaussian", fmt=fmt, **board_kwargs(demo))
        assert folder not in text and str(demo.store.root) not in text, fmt
    rows = json.loads(render_board(demo.store.root, task="cifar10", attack="gaussian", fmt="json",
                                   **board_kwargs(demo)))
    refs = {r["submission_id"] for r in rows if r["is_reference"]}
    assert refs == {"reference:references.jsonl"}
    assert not any(isinstance(v, str) and v.startswith("/") for r in rows for v in r.values())


def test_filters_and_budget_as_number(demo):
    rows = json.loads(render_board(demo.store.root, task="cifar10", attack="gaussian", budget=0.05, fmt="json",
                                   **board_kwargs(demo)))
    methods = [r for r in rows if not r["is_reference"]]
    assert methods and {r["budget"] for r in methods} == {0.05}


def test_bad_arguments_say_what_to_do(tmp_path, demo):
    with pytest.raises(BoardError, match="no such folder"):
        render_board(tmp_path / "missing", fmt="md")
    with pytest.raises(BoardError, match="not a leaderboard store"):
        render_board(tmp_path, fmt="md")
    with pytest.raises(BoardError, match=r"format 'xml': expected one of md, csv, json"):
        render_board(demo.store.root, fmt="xml")


def test_a_running_space_gives_the_same_rows(demo):
    spec = importlib.util.spec_from_file_location("hf_unlearn_space_app", REPO_ROOT / "space" / "app.py")
    mod = sys.modules.get(spec.name)
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    app = mod.App(demo.store, verify=False, require_login=False, **board_kwargs(demo))
    space, url = mod.serve(app)
    try:
        remote = json.loads(render_board(url, task="cifar10", attack="gaussian", variant=VARIANT, fmt="json"))
        local = json.loads(render_board(demo.store.root, task="cifar10", attack="gaussian", variant=VARIANT,
                                        fmt="json", **board_kwargs(demo)))
        assert remote == local
        md = render_board(url, task="cifar10", attack="gaussian", variant=VARIANT, fmt="md")
        assert md == render_board(demo.store.root, task="cifar10", attack="gaussian", variant=VARIANT, fmt="md",
                                  **board_kwargs(demo))
    finally:
        space.close()
