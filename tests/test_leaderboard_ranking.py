"""Ranking against the trusted Retrain on the same variant, overlap ties, filters, search and the shown table."""

from __future__ import annotations

import math
import random

import pytest

from leaderboard import display, ranking
from leaderboard.board import Board
from leaderboard.demo import demo_catalog, fill_store, synthetic_record
from leaderboard.ranking import Filters
from leaderboard.references import References
from leaderboard.store import LocalStore
from leaderboard.submission import build_submission

VARIANT = "eps0.1-b1.5-s0"


def rec(method, seed, *, acc, tpr, gus=1.0, budget=0.05, variant=VARIANT, task="cifar10"):
    r = synthetic_record(random.Random(seed), task, "gaussian", variant, method, seed, budget)
    r["metrics"].update({"test_accuracy": acc, "tpr_at_fpr_0.01": tpr, "gus": gus})
    return r


def references() -> References:
    """The maintainers' runs: Retrain (two seeds: accuracy 0.91, TPR 0.02 pooled) and No unlearning."""
    refs = References.from_records([rec("retrain", 1, acc=0.90, tpr=0.012, gus=0.0),
                                    rec("retrain", 2, acc=0.92, tpr=0.028, gus=0.2),
                                    rec("none", 1, acc=0.93, tpr=0.60, gus=3.0)], catalog=demo_catalog())
    assert not refs.problems
    return refs


class Table:
    """The summarised table of a store with the trusted references (what the Board shows)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.board = Board(store, references=references(), catalog=demo_catalog())
        self.table = self.board.table

    def view(self, filters: Filters, labels, sort_by: str = "Rank", descending: bool = False):
        """(shown columns -> cell texts, datatypes): what the Space's table component receives."""
        view = self.board.view(filters, labels, sort_by, descending)
        headers, data = view.value["headers"], view.value["data"]
        return {h: [r[i] for r in data] for i, h in enumerate(headers)}, view.datatypes


@pytest.fixture
def board(tmp_path):
    store = LocalStore(tmp_path)
    # a: removes the poison, loses 5 points of accuracy; b: keeps accuracy, leaves half the poison
    store.add(build_submission([rec("ga", 1, acc=0.86, tpr=0.02), rec("ga", 2, acc=0.86, tpr=0.02)],
                               submitter="alice_b"))
    store.add(build_submission([rec("gd", 1, acc=0.95, tpr=0.52)], submitter="bob"))
    # the same method on another variant must not be compared with this variant's Retrain
    store.add(build_submission([rec("ngd", 3, acc=0.5, tpr=0.5, variant="eps0.1-b2.5-s0")], submitter="carol"))
    return Table(store)


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
    assert math.isnan(ngd["rank"]) and "no reference" in ngd["rank_note"]
    retrain = row(t, "retrain")
    assert math.isnan(retrain["rank"]) and retrain["kind"] == "reference" and retrain["n_seeds"] == 2
    assert retrain["submitter"] == "hf-unlearn maintainers" and retrain["status"] == "reference"


def test_without_references_nothing_ranks(tmp_path):
    store = LocalStore(tmp_path)
    store.add(build_submission([rec("ga", 1, acc=0.86, tpr=0.02)], submitter="alice"))
    t = ranking.build_table(store)
    assert t["rank"].isna().all() and t["shortfall"].isna().all()


def test_overlapping_intervals_share_a_rank(tmp_path):
    """Competition ranking on shortfall intervals: overlapping rows tie, a clearly worse row comes after both."""
    store = LocalStore(tmp_path)
    # one seed each: Wilson intervals of about +-0.036 around the TPR (750 poisons)
    store.add(build_submission([rec("ngd", 1, acc=0.95, tpr=0.10)], submitter="a"))
    store.add(build_submission([rec("scrub", 1, acc=0.95, tpr=0.12)], submitter="b"))  # overlaps ngd
    store.add(build_submission([rec("ssd", 1, acc=0.95, tpr=0.40)], submitter="c"))  # clearly worse
    t = Table(store).table
    assert (row(t, "ngd")["rank"], row(t, "scrub")["rank"], row(t, "ssd")["rank"]) == (1, 1, 3)
    assert row(t, "ngd")["shortfall_lo"] <= row(t, "ngd")["shortfall"] <= row(t, "ngd")["shortfall_hi"]
    # a checked guard: without the intervals the two would be strictly ordered
    assert row(t, "ngd")["shortfall"] < row(t, "scrub")["shortfall"]


def test_overlap_rank_is_competition_ranking():
    import numpy as np

    lo, hi = np.array([0.0, 0.05, 0.5, 0.52]), np.array([0.1, 0.2, 0.6, 0.7])
    assert list(ranking.overlap_rank(lo, hi)) == [1, 1, 3, 3]


def test_intervals(board):
    ga, gd = row(board.table, "ga"), row(board.table, "gd")
    # one seed: Wilson half-width from 750 poisons around 0.52
    assert 0.03 < gd["tpr1_ci"] < 0.04
    assert gd["gus_ci"] == pytest.approx(1.96 * gd["gus_stderr"])
    # two seeds with the same TPR: no spread between them, but both score the same 750 poisons, so the interval
    # is still one seed's Wilson half-width (around 0.02), not 0
    from hf_unlearn.stats import wilson_halfwidth

    assert ga["tpr1_ci"] == pytest.approx(float(wilson_halfwidth(0.02, 750))) and ga["tpr1_ci"] > 0.005
    assert ga["gus_ci"] == pytest.approx(1.96 * ga["gus_stderr"])  # both seeds claim GUS 1.0


def test_filters_keep_references_and_search_is_literal(board):
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", search="bob"))
    assert set(rows["method"]) == {"gd", "retrain", "none"}
    rows = ranking.filter_rows(board.table, Filters(task="cifar10", attack="gaussian", search="alice_"))
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
    labels = ["Rank", "Method", "Submitter", "TPR@1%", "Shortfall"]
    table, datatypes = board.view(Filters(task="cifar10", attack="gaussian", variant=VARIANT), labels)
    assert list(table) == labels
    assert [m.split(" (")[0].strip("*") for m in table["Method"]] == ["Retrain", "No unlearning", "GA", "GD"]
    assert datatypes == [display.COLUMN_BY_LABEL[lab].datatype for lab in labels]
    assert table["Rank"][2:] == ["1", "2"] and table["Shortfall"][:2] == ["", ""], "references are not ranked"
    assert table["Submitter"][2:] == ["alice\\_b", "bob"], "typed names are Markdown-escaped text, not links"
    assert " ± " in table["TPR@1%"][3], "the interval is in the cell"
    desc, _ = board.view(Filters(task="cifar10", attack="gaussian", variant=VARIANT), labels, "TPR@1%", True)
    assert [m.split(" (")[0].strip("*") for m in desc["Method"]] == ["Retrain", "No unlearning", "GD", "GA"], \
        "references stay on top"
    assert set(display.SORT_CHOICES) == set(ranking.SORT_KEYS), "every offered sort has a column to sort on"
    assert set(display.SORT_CHOICES) <= set(display.COLUMN_BY_LABEL), "and each is a shown column"


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
    gaussian, targeted = display.default_columns("gaussian"), display.default_columns("targeted")
    assert "TPR@1%" in gaussian and "Target success" not in gaussian
    assert "Target success" in targeted and "TPR@1%" not in targeted
    for attack in ("gaussian", "targeted"):  # what decides the rank is shown by default
        assert {"Rank", "Shortfall", "Verified"} <= set(display.default_columns(attack))


def test_an_empty_table_has_the_columns_of_a_full_one(board, tmp_path):
    empty = ranking.build_table(LocalStore(tmp_path / "empty"))
    assert empty.empty and set(empty.columns) <= set(board.table.columns), \
        "filters and the display read these columns from an empty board too"
    assert Board(LocalStore(tmp_path / "empty")).view(Filters(task="cifar10", attack="gaussian"), None).value["data"] == []
