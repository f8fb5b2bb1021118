"""IMDb rows on the leaderboard: the poisoned-imdb-* cards as public variants, targeted and Gaussian records
validated, stored and shown in their own task/attack views with their own columns, checkpoints sent to the
verifier with the catalog's task and attack (the GPT-2 scoring itself: tests/test_verify_text.py), and a track
the verifier cannot score shown with a clear "not available yet" status (an unverified claim, never ranked as
verified).

The public variants come from real dataset cards: both IMDb builders run on the shipped samples (a few
seconds; the offline GPT-2 tokenizer in ../shared is needed, else the module is skipped).
"""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path

import pytest

from leaderboard import display, ranking
from leaderboard.board import Board, render_board
from leaderboard.catalog import Catalog, CatalogError, UnknownVariantError
from leaderboard.demo import synthetic_record
from leaderboard.ranking import Filters
from leaderboard.references import References
from leaderboard.store import LocalStore
from leaderboard.submission import Submission, SubmissionError
from leaderboard.submit import submit_records, verification_messages
from leaderboard.verify import verify_and_store, verify_submission

TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "models" / "gpt2-tokenizer"
TARGETED = "disney-b20-s0"  # 13 trigger rows in the samples' train split, 20% flipped: 3 poisons; 7 test targets
GAUSSIAN = "gpt2-l128-d8-eps0.1-b5-s2-n300"  # 300 training rows, 5%: 15 poisons
KEY = b"test-verifier-key-0123456789"


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    """The two IMDb dataset folders (cards + parquet), built from the samples."""
    if not (TOKENIZER / "gpt2.tiktoken").is_file():
        pytest.skip(f"no offline GPT-2 tokenizer at {TOKENIZER}")
    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig
    from dataset_builders.poisoned_imdb_gaussian import build as build_gaussian
    from dataset_builders.poisoned_imdb_targeted import build as build_targeted
    from hf_unlearn.attacks.trigger import TriggerConfig
    from hf_unlearn.models.text import load_tokenizer

    tokenizer = load_tokenizer(str(TOKENIZER))
    root = tmp_path_factory.mktemp("imdb-cards")
    return {
        "imdb/targeted": build_targeted("samples", [TriggerConfig.from_name(TARGETED)], root / "poisoned-imdb-targeted",
                                        tokenizer=tokenizer, progress=False),
        "imdb/gaussian": build_gaussian("samples", [TextGaussianConfig.from_name(GAUSSIAN)],
                                        root / "poisoned-imdb-gaussian", tokenizer=tokenizer, progress=False),
    }


@pytest.fixture(scope="module")
def catalog(cards) -> Catalog:
    return Catalog.from_mapping({k: str(v) for k, v in cards.items()}, allow_local=True)


def targeted_record(method: str = "ngd", seed: int = 0, hits: int = 3, *, targets: int = 7,
                    variant: str = TARGETED, dataset: str | None = None) -> dict:
    """An IMDb trigger-attack record as ``score_to_record`` writes it: target_success = hits / num_targets."""
    budget = None if method in ("none", "retrain") else 0.05
    r = synthetic_record(random.Random(seed), "imdb", "targeted", variant, method, seed, budget)
    r["metrics"] = {"test_accuracy": 0.8, "retain_accuracy": 0.85, "forget_accuracy": 0.3,
                    "target_success": hits / targets, "num_targets": targets}
    r["scoring"] = {"seed": 0, "null_draws": 40}
    if dataset is not None:
        r["dataset"]["id"] = dataset
    return r


def gaussian_record(method: str = "ngd", seed: int = 0, tpr_hits: int = 2, *, dataset: str | None = None) -> dict:
    """An IMDb Gaussian record on the 15-poison variant (TPRs on the 1/15 grid, 20 null draws per poison)."""
    budget = None if method in ("none", "retrain") else 0.05
    r = synthetic_record(random.Random(seed), "imdb", "gaussian", GAUSSIAN, method, seed, budget)
    r["metrics"].update({"num_poisons": 15, "num_nulls": 300, "tpr_at_fpr_0.01": tpr_hits / 15,
                         "tpr_at_fpr_0.001": None, "gus_stderr": 0.25, "gus": 1.5})
    if dataset is not None:
        r["dataset"]["id"] = dataset
    return r


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def references(catalog: Catalog, cards) -> References:
    rows = [targeted_record("retrain", s, 1, dataset=str(cards["imdb/targeted"])) for s in range(2)]
    rows += [targeted_record("none", s, 5, dataset=str(cards["imdb/targeted"])) for s in range(2)]
    rows += [gaussian_record("retrain", s, 0, dataset=str(cards["imdb/gaussian"])) for s in range(2)]
    rows += [gaussian_record("none", s, 9, dataset=str(cards["imdb/gaussian"])) for s in range(2)]
    refs = References.from_records(rows, catalog=catalog)
    assert not refs.problems, refs.problems
    return refs


# --- the catalog reads the IMDb cards ------------------------------------------------------------------


def test_catalog_reads_the_imdb_cards_with_their_sizes(cards, catalog):
    assert catalog.tasks_attacks() == ["imdb/gaussian", "imdb/targeted"] and not catalog.problems
    targeted, gaussian = catalog.get("imdb", "targeted", TARGETED), catalog.get("imdb", "gaussian", GAUSSIAN)
    # Forget sizes from the parquet footers; the targets split (7 test reviews with "Disney") for the trigger.
    assert (targeted.num_poisons, targeted.num_targets) == (3, 7)
    assert (gaussian.num_poisons, gaussian.num_targets) == (15, None)
    # The card states hf_unlearn {task, attack}: configured under another key, it is the operator's error.
    with pytest.raises(CatalogError, match=r"states hf_unlearn task/attack 'imdb'/'targeted'.*imdb/gaussian"):
        Catalog.from_mapping({"imdb/gaussian": str(cards["imdb/targeted"])}, allow_local=True)
    with pytest.raises(CatalogError, match="configured as cifar10/gaussian"):
        Catalog.from_mapping({"cifar10/gaussian": str(cards["imdb/gaussian"])}, allow_local=True)


def test_catalog_skips_a_variant_whose_own_entry_names_another_attack(cards, tmp_path):
    folder = tmp_path / "poisoned-imdb-targeted"
    folder.mkdir()
    card = (cards["imdb/targeted"] / "README.md").read_text()
    assert card.count("      attack: targeted\n") == 1  # the variant's own entry (the top-level one is indented 2)
    (folder / "README.md").write_text(card.replace("      attack: targeted\n", "      attack: gaussian\n"))
    cat = Catalog.from_mapping({"imdb/targeted": str(folder)}, allow_local=True)
    assert cat.variants("imdb", "targeted") == []
    assert any(f"variant {TARGETED} states attack 'gaussian'" in p for p in cat.problems), cat.problems


# --- targeted rows: validated, stored, shown with target success ---------------------------------------


def test_imdb_targeted_record_is_stored_and_renders_with_target_success(cards, catalog, tmp_path):
    store = LocalStore(tmp_path / "store", catalog=catalog)
    ds = str(cards["imdb/targeted"])
    result = submit_records(jsonl(targeted_record("ngd", 1, 3, dataset=ds), targeted_record("ngd", 2, 3, dataset=ds)),
                            store, submitter="ada")
    gauss = submit_records(jsonl(gaussian_record(dataset=str(cards["imdb/gaussian"]))), store, submitter="bob")
    assert result.num_records == 2 and gauss.num_records == 1 and not store.problems
    board = Board(store, references=references(catalog, cards), catalog=catalog)
    assert board.tasks() == ["imdb"] and board.attacks("imdb") == ["gaussian", "targeted"]

    view = board.view(Filters(task="imdb", attack="targeted"), None)
    headers = view.value["headers"]
    assert {"Target success", "Δ target", "Test acc", "Shortfall"} <= set(headers)
    assert not {"GUS", "TPR@1%", "Δ TPR@1%", "Δ GUS", "AUC"} & set(headers), headers
    t = view.table
    assert list(t["Method"].str.replace("*", "", regex=False).str.split(" ").str[0]) == ["Retrain", "No", "NGD"]
    row = view.rows.iloc[2]
    assert set(view.rows["attack"]) == {"targeted"} and row["method"] == "ngd"
    assert row["target_success"] == pytest.approx(3 / 7) and row["d_target_success"] == pytest.approx(2 / 7)
    assert row["rank"] == 1 and row["status"] == "unverified"
    # Two seeds with the same 3 of 7 targets: the interval keeps the Wilson half-width of 3/7 over 7 rows,
    # z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) = 0.2957 (z = 1.96); the seeds' spread (0) cannot make it exact.
    assert row["target_success_ci"] == pytest.approx(0.2957, abs=1e-4)
    cell = t.loc[2, "Target success"]
    assert cell == "0.429 ± 0.296", cell

    text = render_board(store.root, task="imdb", attack="targeted", references=board.references, catalog=catalog)
    assert f"### imdb / targeted / {TARGETED} / budget 0.05" in text
    header = next(line for line in text.splitlines() if line.startswith("| Rank"))
    assert "Target success" in header and "GUS" not in header and "TPR" not in header
    assert "| 1 | NGD | 0.286 | 0.429 ± 0.296 |" in text


def test_imdb_gaussian_rows_show_the_cifar_columns(cards, catalog, tmp_path):
    store = LocalStore(tmp_path / "store", catalog=catalog)
    submit_records(jsonl(gaussian_record(dataset=str(cards["imdb/gaussian"]))), store, submitter="bob")
    board = Board(store, references=references(catalog, cards), catalog=catalog)
    view = board.view(Filters(task="imdb", attack="gaussian"), None)
    assert view.value["headers"] == display.default_columns("gaussian")
    assert {"GUS", "TPR@1%", "Δ TPR@1%"} <= set(view.value["headers"]) and "Target success" not in view.value["headers"]
    row = view.rows[view.rows["method"] == "ngd"].iloc[0]
    assert row["tpr1"] == pytest.approx(2 / 15) and row["gus"] == 1.5 and row["rank"] == 1


def test_space_filters_offer_imdb_tabs(cards, catalog, tmp_path):
    from test_space_app import load_space_app

    mod = load_space_app()
    store = LocalStore(tmp_path / "store", catalog=catalog)
    submit_records(jsonl(targeted_record(dataset=str(cards["imdb/targeted"]))), store, submitter="ada")
    app = mod.App(store, references=references(catalog, cards), catalog=catalog, require_login=False, verify=False)
    values, choices = app.scope("imdb", "targeted")
    assert values[:2] == ("imdb", "targeted") and choices[0] == ["imdb"] and "targeted" in choices[1]
    view = app.view("imdb", "targeted", ranking.ALL, ranking.ALL, False, "", None, "Rank", False)
    assert "Target success" in view.value["headers"] and "GUS" not in view.value["headers"]
    assert app.scope("imdb", "gaussian")[0][1] == "gaussian"


def test_targeted_claims_are_checked_against_the_targets_split(cards, catalog, tmp_path):
    store = LocalStore(tmp_path / "store", catalog=catalog)
    ds = str(cards["imdb/targeted"])
    cases = [
        (targeted_record(targets=8, hits=3, dataset=ds), r"num_targets = 8, but variant 'disney-b20-s0' has 7"),
        (targeted_record(dataset=ds), None),
    ]
    missing = targeted_record(dataset=ds)
    del missing["metrics"]["num_targets"]
    off_grid = targeted_record(dataset=ds)
    off_grid["metrics"]["target_success"] = 0.4
    cases += [(missing, "num_targets is missing; variant 'disney-b20-s0' has 7"),
              (off_grid, r"target_success = 0.4 is not a multiple of 1/num_targets = 1/7")]
    for record, message in cases:
        if message is None:
            submit_records(jsonl(record), store, submitter="ada")
        else:
            with pytest.raises(SubmissionError, match=message):
                submit_records(jsonl(record), store, submitter="eve")


# --- verification: IMDb checkpoints scored on the catalog's track, look-alike variants refused ---------------


def _never_called(*args, **kwargs):
    raise AssertionError("this checkpoint must never reach a scorer")


def _claims_back(checkpoint, dataset, config, **kwargs):
    """A scorer (run in the verifier's child process) that returns the claims, once it was asked for the catalog's
    IMDb track with no ResNet class count."""
    if kwargs.get("task") != "imdb" or kwargs.get("num_classes") is not None:
        raise AssertionError(f"an IMDb checkpoint was scored as {kwargs.get('task')}/{kwargs.get('attack')}")
    if config == TARGETED and kwargs.get("attack") == "targeted":
        return targeted_record("ngd", 1, 3)["metrics"]
    if config == GAUSSIAN and kwargs.get("attack") == "gaussian":
        return gaussian_record("ngd", 2)["metrics"]
    raise AssertionError(f"unexpected {kwargs.get('attack')} variant {config}")


def test_imdb_checkpoint_is_verified_on_the_catalog_track(cards, catalog, tmp_path):
    store = LocalStore(tmp_path / "store", catalog=catalog, verifier_key=KEY)
    result = submit_records(
        jsonl(targeted_record("ngd", 1, 3, dataset=str(cards["imdb/targeted"])),
              gaussian_record("ngd", 2, dataset=str(cards["imdb/gaussian"]))),
        store, submitter="ada", checkpoints=["0=ada/gpt2-imdb-ngd", "1=ada/gpt2-imdb-gauss"], score_fn=_claims_back)
    ver = result.verification
    assert [e["status"] for e in ver["records"]] == ["verified", "verified"], ver["records"]
    assert ver["records"][0]["recomputed"]["target_success"] == pytest.approx(3 / 7)
    assert [e["config"] for e in ver["records"]] == [TARGETED, GAUSSIAN]


def test_a_track_without_a_scorer_stays_an_unverified_claim(cards, catalog, tmp_path, monkeypatch):
    import leaderboard.verify

    monkeypatch.setattr(leaderboard.verify, "TEXT_TASKS", ())  # as before IMDb's GPT-2 had a pinned loader
    store = LocalStore(tmp_path / "store", catalog=catalog, verifier_key=KEY)
    refs = references(catalog, cards)
    result = submit_records(
        jsonl(targeted_record("ngd", 1, 3, dataset=str(cards["imdb/targeted"])),
              gaussian_record("ngd", 2, dataset=str(cards["imdb/gaussian"]))),
        store, submitter="ada", checkpoints=["0=ada/gpt2-imdb-ngd", "1=ada/gpt2-imdb-gauss"], score_fn=_never_called)
    ver = result.verification
    assert ver["status"] == "unsupported" and result.status == "unsupported"
    for entry, track in zip(ver["records"], ("imdb/targeted", "imdb/gaussian")):
        assert entry["status"] == "unsupported" and entry["recomputed"] is None and not entry["diffs"]
        assert entry["error"].startswith("checkpoint verification is not available for task imdb yet"), entry
        assert "supported: cifar10/gaussian" in entry["error"] and "unverified claim" in entry["error"]
        assert "imdb/" not in entry["error"]
        assert entry["config"] in (TARGETED, GAUSSIAN)
    assert any("unsupported - checkpoint verification is not available for task imdb" in m for m in result.messages)

    board = Board(store, references=refs, catalog=catalog)
    rows = board.rows(Filters(task="imdb"))
    mine = rows[~rows["is_reference"].astype(bool)]
    assert set(mine["status"]) == {"unsupported"} and list(mine["numbers"]) == ["claimed", "claimed"]
    assert list(mine["rank"]) == [1.0, 1.0]  # ranked on the claim, like any unverified row ...
    assert board.rows(Filters(task="imdb", verified_only=True))["is_reference"].all()  # ... never as verified
    assert set(mine["verified_text"]) == {display.UNSUPPORTED_TEXT}
    shown = board.view(Filters(task="imdb", attack="targeted"), None).table["Verified"].iloc[-1]
    assert ">unverified<" in shown and "not available for task imdb" in shown and "verified<" not in shown.replace(
        ">unverified<", "")
    assert any("not available for task imdb" in line for line in verification_messages(ver))


@pytest.mark.parametrize("variant", ["disney-b20-s1", "Disney-b20-s0", "disney-b2O-s0", "disney-b20-s0-n1000"])
def test_look_alike_imdb_variant_is_refused(cards, catalog, tmp_path, variant):
    store = LocalStore(tmp_path / "store", catalog=catalog, verifier_key=KEY)
    record = targeted_record(variant=variant, dataset=str(cards["imdb/targeted"]))
    with pytest.raises(UnknownVariantError, match=f"not a public variant of imdb/targeted .*known: {TARGETED}"):
        submit_records(jsonl(record), store, submitter="eve")
    # Planted past the upload checks: verification refuses it too (failed, naming the known variant), unscored.
    sub = Submission(submitter={"name": "eve", "link": None}, records=[record],
                     checkpoints=[{"record": 0, "id": "eve/gpt2-imdb", "revision": None}])
    stored = type("Stored", (), {"id": "0" * 64, "submission": sub})()
    ver = verify_submission(stored, catalog=catalog, score_fn=_never_called, isolate=False)
    assert ver["records"][0]["status"] == "failed"
    assert f"known: {TARGETED}" in ver["records"][0]["error"]
