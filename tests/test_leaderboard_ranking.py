"""Ranking against Retrain on the same variant, filters, search and the shown table."""

from __future__ import annotations

import math
import random

import pytest

from leaderboard import ranking
from leaderboard.board import Board
from leaderboard.demo import fill_store, synthetic_record
from leaderboard.ranking import ALL, Filters
from leaderboard.store import LocalStore
from leaderboard.submission import build_submission

VARIANT = "eps0.1-b1.5-s0"


def rec(method, seed, *, acc, tpr, gus=1.0, budget=0.05, variant=VARIANT, task="cifar10"):
    r = synthetic_record(random.Random(seed), task, "gaussian", variant, method, seed, budget)
    r["metrics"].update({"test_accuracy": acc, "tpr_at_fpr_0.01": tpr, "gus": gus})
    return r


@pytest.fixture
def board(tmp_path):
    store = LocalStore(tmp_path)
    store.add(build_submission([rec("retrain", 1, acc=0.90, tpr=0.01, gus=0.0),
                                rec("retrain", 2, acc=0.92, tpr=0.03, gus=0.2)], submitter="ref"))
    store.add(build_submission([rec("none", 1, acc=0.93, tpr=0.60, gus=3.0)], submitter="ref"))
    # a: removes the poison, loses 5 points of accuracy; b: keeps accuracy, leaves half the poison
    store.add(build_submission([rec("ga", 1, acc=0.86, tpr=0.02), rec("ga", 2, acc=0.86, tpr=0.02)],
                               submitter="alice <b>"))
    store.add(build_submission([rec("gd", 1, acc=0.95, tpr=0.52)], submitter="bob"))
    # the same method on another variant must not be compared with this variant's Retrain
    store.add(build_submission([rec("ngd", 3, acc=0.5, tpr=0.5, variant="eps0.1-b2.5-s0")], submitter="carol"))
    return Board(store)


def row(table, method, variant=VARIANT):
    found = table[(table["method"] == method) & (table["variant"] == variant)]
    assert len(found) == 1
    return found.iloc[0]


def test_gaps_and_shortfall_are_against_retrain_on_the_same_variant(board):
    t = board.table
    ga, gd = row(t, "ga"), row(t, "gd")
    assert ga["n_seeds"] == 2 and gd["n_seeds"] == 1
    # Retrain pooled over its two seeds: accuracy 0.91, TPR 0.02
    assert ga["d_test_accuracy"] == pytest.approx(0.86 - 0.91)
    assert ga["d_tpr1"] == pytest.approx(0.0)
    assert ga["shortfall"] == pytest.approx(0.05)
    assert gd["d_test_accuracy"] == pytest.approx(0.04)  # better than Retrain: no utility shortfall
    assert gd["shortfall"] == pytest.approx(0.50)
    assert ga["rank"] == 1 and gd["rank"] == 2
    ngd = row(t, "ngd", "eps0.1-b2.5-s0")
    assert math.isnan(ngd["d_tpr1"]) and math.isnan(ngd["shortfall"]), "no Retrain on that variant: no gap"
    assert math.isnan(row(t, "retrain")["rank"]) and row(t, "retrain")["kind"] == "reference"


def test_intervals(board):
    ga, gd = row(board.table, "ga"), row(board.table, "gd")
    assert ga["tpr1_ci"] == pytest.approx(0.0)  # two identical seeds: t interval of width 0
    # one seed: Wilson half-width from 750 poisons around 0.52
    assert 0.03 < gd["tpr1_ci"] < 0.04
    assert gd["gus_ci"] == pytest.approx(1.96 * gd["gus_stderr"])


def test_filters_keep_references_and_search_is_literal(board):
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", search="bob"))
    assert set(rows["method"]) == {"gd", "retrain", "none"}
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", search="<b>"))
    assert set(rows["method"]) == {"ga", "retrain", "none"}
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", search=".*"))
    assert set(rows["method"]) == {"retrain", "none"}, "search text is not a regular expression"
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", variant="eps0.1-b2.5-s0"))
    assert list(rows["method"]) == ["ngd"]
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", verified_only=True))
    assert set(rows["method"]) == {"retrain", "none"}
    rows = ranking.filter_rows(board.table, Filters(task="imdb", attack="gaussian"))
    assert rows.empty


def test_view_sorting_columns_and_text(board):
    labels = ["Rank", "Method", "Submitter", "TPR@1%", "Shortfall vs Retrain"]
    view = board.view(Filters(task="cifar10", attack="gaussian", variant=VARIANT), labels)
    assert list(view.table.columns) == labels
    assert list(view.table["Method"]) == ["Retrain", "No unlearning", "GA", "GD"]
    assert view.datatypes == ["number", "str", "str", "number", "number"]
    assert "alice <b>" in list(view.table["Submitter"])  # verbatim text; the UI renders it as text
    desc = board.view(Filters(task="cifar10", attack="gaussian", variant=VARIANT), labels, "TPR@1%", True)
    assert list(desc.table["Method"]) == ["Retrain", "No unlearning", "GD", "GA"], "references stay on top"
    assert board.variants("cifar10", "gaussian") == [ALL, "eps0.1-b1.5-s0", "eps0.1-b2.5-s0"]
    assert board.budgets("cifar10", "gaussian") == [ALL, "0.05"]


def test_board_notices_new_submissions_without_restart(tmp_path):
    store = LocalStore(tmp_path)
    board = Board(store)
    assert board.table.empty and not board.refresh()
    other_writer = LocalStore(tmp_path)  # e.g. the CLI writing to the folder the Space reads
    fill_store(other_writer, 60)
    assert board.refresh()
    assert board.num_submissions == len(other_writer.submissions()) > 0
    assert not board.refresh()


def test_default_columns_follow_the_attack():
    gaussian, targeted = ranking.default_columns("gaussian"), ranking.default_columns("targeted")
    assert "TPR@1%" in gaussian and "Target success" not in gaussian
    assert "Target success" in targeted and "TPR@1%" not in targeted
