"""Issue 7's attacks on the leaderboard's trust core, one test each: reproduce the attack, show it refused or harmless.

Attacks 3, 5, 7 and 10 against verification itself (scoring on a submitter's dataset, a Hub id read from a local
folder, resource caps, pickles, server paths) live in tests/test_leaderboard_verify_attacks.py; here attack 3 is
only what the table shows. The per-address limit of attack 8 lives in tests/test_space_app.py.

The tests after attack 12 (``test_review_*``) are a second, adversarial pass over the same surfaces (the CLI's
``submit_file`` into a local store, and the library calls the Space makes): variations of the twelve attacks,
each a hole found and fixed, or a variation shown refused.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from leaderboard import attest, display, names, ranking
from leaderboard.catalog import Catalog, CatalogError, PublicVariant, UnknownVariantError
from leaderboard.demo import NUM_POISONS, demo_catalog, synthetic_record, synthetic_references
from leaderboard.references import References, write_references
from leaderboard.store import LocalStore, RateLimit, StoreError, submission_bytes
from leaderboard.submission import (
    RateLimitError,
    Submission,
    SubmissionError,
    build_submission,
    parse_jsonl,
)
from leaderboard.submit import LeaderboardTargetError, default_submitter, resolve_target, submit_records

VARIANT = "eps0.1-b1.5-s0"
KEY = b"k" * 32


def rec(method: str = "ngd", seed: int = 1, *, variant: str = VARIANT, budget: float | None = 0.05, **metrics):
    r = synthetic_record(random.Random(seed), "cifar10", "gaussian", variant, method, seed, budget)
    r["metrics"].update(metrics)
    return r


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def refs() -> References:
    out = References.from_records(synthetic_references(), catalog=demo_catalog())
    assert not out.problems
    return out


def table(store: LocalStore) -> "ranking.pd.DataFrame":
    return ranking.build_table(store, references=refs(), catalog=demo_catalog())


def the_row(t, method: str, variant: str = VARIANT):
    found = t[(t["method"] == method) & (t["variant"] == variant)]
    assert len(found) == 1, found
    return found.iloc[0]


def plant_submission(store: LocalStore, sub: Submission, received: str = "2025-01-01T00:00:00+00:00") -> Path:
    """Write a submission file directly, as someone with write access to the store could (no validation)."""
    path = store.root / "submissions" / f"{sub.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(submission_bytes(sub, received))
    return path


# --- 1: one anonymous upload rewrote every rank -----------------------------------------------------


def test_attack_01_fake_retrain_rows_cannot_change_the_reference(tmp_path):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    submit_records(jsonl(rec("scrub", 1, **{"tpr_at_fpr_0.01": 0.4})), store, submitter="honest")
    before = table(store)
    # The attack: ~1,000 fake Retrain seeds (accuracy 0, TPR@1% = 1) in one anonymous upload.
    fake = [rec("retrain", s, budget=None, test_accuracy=0.0, **{"tpr_at_fpr_0.01": 1.0}) for s in range(1000)]
    with pytest.raises(SubmissionError, match=r"record 0 \(line 1\): method 'retrain' is a reference method.*maintainers"):
        submit_records(jsonl(*fake), store, submitter="anon")
    with pytest.raises(SubmissionError, match="method 'none' is a reference method"):
        submit_records(jsonl(rec("none", 5, budget=None)), store, submitter="anon")
    # Someone with write access plants one anyway: it is skipped on reading, and reported.
    planted = Submission(submitter={"name": "anon", "link": None}, records=fake[:50])
    plant_submission(store, planted)
    fresh = LocalStore(tmp_path / "s")
    after = table(fresh)
    assert any("reference method" in p for p in fresh.problems)
    scrub_before, scrub_after = the_row(before, "scrub"), the_row(after, "scrub")
    assert scrub_after["shortfall"] == pytest.approx(scrub_before["shortfall"]) and scrub_after["shortfall"] > 0.3
    retrain = after[(after["method"] == "retrain") & (after["variant"] == VARIANT)]
    assert len(retrain) == 1 and retrain.iloc[0]["submitter"] == "hf-unlearn maintainers"
    assert retrain.iloc[0]["n_seeds"] == 3, "the maintainers' three seeds, pooled; nothing added"


# --- 2: look-alike variants, names and model ids ----------------------------------------------------


@pytest.mark.parametrize("variant", [
    "eps0.1-b1.5-s0\u200b", "eps0.1-b1.5-\u202es0", "eps0.1-b1.5-s\u041e", "eps0.1-b1.5-s0\x00", "\x1b[31meps0.1-b1.5-s0",
    "ｅｐｓ0.1-b1.5-s0",
])
def test_attack_02_look_alike_variants_are_refused(tmp_path, variant):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    with pytest.raises(SubmissionError, match=r"dataset\.config|NUL|not a public variant") as info:
        submit_records(jsonl(rec(variant=variant)), store, submitter="eve")
    assert "\x1b" not in str(info.value) and "\u202e" not in str(info.value), "the message escapes what it quotes"
    # An ASCII-clean variant that is not in the public cards: refused, naming the known ones.
    with pytest.raises(UnknownVariantError, match=r"'eps0.1-b9-s0' is not a public variant .*known: eps0.1-b1.5-s0, eps0.1-b2.5-s0"):
        submit_records(jsonl(rec(variant="eps0.1-b9-s0")), store, submitter="eve")
    assert not store.submissions()


@pytest.mark.parametrize("name", [
    "hf-unlearn maintainers \u2714 verified", "HF Unlearn", "Maintainers", "the official board", "VERIFIED", "Ver1fied",
    "verif\u0456ed", "retrain", "N0NE", "Eve\u200b", "Eve\u202e", "Evе",  # Cyrillic е
])
def test_attack_02_reserved_and_look_alike_submitter_names_are_refused(name):
    with pytest.raises(SubmissionError, match="submitter name"):
        build_submission([rec()], submitter=name)


def test_attack_02_method_names_and_model_ids_are_checked():
    r = rec(method="n_gd")
    with pytest.raises(SubmissionError, match="reads like the known method 'ngd'"):
        build_submission([r], submitter="eve", new_methods={"n_gd": "looks like NGD"})
    for bad in ("evil\u200borg/model", "org/m\u043edel", "not a hub id", "org/../x"):
        r = rec()
        r["model"]["id"] = bad
        with pytest.raises(SubmissionError, match=r"model\.id"):
            build_submission([r], submitter="eve")
    ok = build_submission([rec()], submitter="eve_lab")
    assert ok.records[0]["model"]["id"].count("/") == 1


# --- 3: the table showed the claimed model, not the scored checkpoint ---------------------------------


def test_attack_03_table_shows_the_scored_checkpoint_and_revision(tmp_path):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog(), verifier_key=KEY)
    r = rec("ngd", 3)
    r["model"]["id"] = "famous-lab/strong-model"  # what the submitter claims
    result = submit_records(jsonl(r), store, submitter="eve", checkpoints=["eve/untrained@0123abc"], verify=False)
    store.add_verification({
        "submission": result.submission_id, "status": "verified", "checked_at": "2025-01-02T00:00:00+00:00",
        "records": [{"record": 0, "status": "verified", "checkpoint": "eve/untrained", "revision": "0123abc",
                     "recomputed": dict(r["metrics"])}],
    })
    row = the_row(table(store), "ngd")
    assert row["checkpoint"] == "eve/untrained@0123abc" and row["status"] == "verified"
    assert "Scored checkpoint" in display.COLUMN_BY_LABEL


# --- 4: disproven claims ranked -----------------------------------------------------------------------


def test_attack_04_refuted_claims_do_not_rank_and_verified_rows_rank_on_recomputed_numbers(tmp_path):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog(), verifier_key=KEY)
    liar = rec("ngd", 1, test_accuracy=0.935, **{"tpr_at_fpr_0.01": 0.02})  # would rank first on its claim
    broken = rec("scrub", 2, test_accuracy=0.935, **{"tpr_at_fpr_0.01": 0.02})
    honest = rec("ga", 3, test_accuracy=0.90, **{"tpr_at_fpr_0.01": 0.2})
    optimist = rec("ssd", 4, test_accuracy=0.93, **{"tpr_at_fpr_0.01": 0.02})  # verified, but better on paper
    ids = {}
    for r, who in ((liar, "liar"), (broken, "broken"), (honest, "honest"), (optimist, "optimist")):
        ids[who] = submit_records(jsonl(r), store, submitter=who, checkpoints=[f"{who}/ckpt"], verify=False).submission_id

    def verification(who, status, recomputed=None, error=None):
        entry = {"record": 0, "status": status, "checkpoint": f"{who}/ckpt"}
        if recomputed is not None:
            entry["recomputed"] = recomputed
        if error:
            entry["error"] = error
        return {"submission": ids[who], "status": status, "checked_at": "2025-01-02T00:00:00+00:00", "records": [entry]}

    store.add_verification(verification("liar", "mismatch", {**liar["metrics"], "test_accuracy": 0.127}))
    store.add_verification(verification("broken", "failed", error="could not score"))
    store.add_verification(verification("honest", "verified", dict(honest["metrics"])))
    recomputed = {**optimist["metrics"], "tpr_at_fpr_0.01": 0.4}
    store.add_verification(verification("optimist", "verified", recomputed))
    t = table(store)
    assert math.isnan(the_row(t, "ngd")["rank"]) and "refuted" in the_row(t, "ngd")["rank_note"]
    assert math.isnan(the_row(t, "scrub")["rank"])
    ssd = the_row(t, "ssd")
    assert ssd["tpr1"] == pytest.approx(0.4) and ssd["numbers"] == "recomputed", "ranked on the recomputed TPR"
    assert the_row(t, "ga")["rank"] == 1 and ssd["rank"] == 2


def test_attack_04_verified_rows_first_within_a_shared_rank(tmp_path):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog(), verifier_key=KEY)
    a = rec("ngd", 1, **{"tpr_at_fpr_0.01": 0.1})
    b = rec("scrub", 2, **{"tpr_at_fpr_0.01": 0.12})
    submit_records(jsonl(a), store, submitter="a")
    sb = submit_records(jsonl(b), store, submitter="b", checkpoints=["b/ckpt"], verify=False).submission_id
    store.add_verification({"submission": sb, "status": "verified", "checked_at": "2025-01-02T00:00:00+00:00",
                            "records": [{"record": 0, "status": "verified", "recomputed": dict(b["metrics"])}]})
    rows = ranking.sort_rows(ranking.filter_rows(table(store), ranking.Filters("cifar10", "gaussian", VARIANT)))
    methods = [m for m in rows["method"] if m not in ("retrain", "none")]
    assert methods == ["scrub", "ngd"] and set(rows["rank"].dropna()) == {1.0}


# --- 6: a flood of reference rows ---------------------------------------------------------------------


def test_attack_06_reference_flood_is_impossible_and_rows_are_capped(tmp_path):
    store = LocalStore(tmp_path / "s")  # even without a catalog
    flood = [rec("retrain", s, variant=f"v{s}", budget=None) for s in range(1000)]
    with pytest.raises(SubmissionError, match="reference method"):
        submit_records(jsonl(*flood), store, submitter="flood")
    many_variants = [rec("ngd", s, variant=f"v{s}") for s in range(40)]
    with pytest.raises(SubmissionError, match="more than 32 variants"):
        submit_records(jsonl(*many_variants), store, submitter="flood")
    many_seeds = [rec("ngd", s) for s in range(101)]
    with pytest.raises(SubmissionError, match="the limit is 100 seeds a row"):
        submit_records(jsonl(*many_seeds), store, submitter="flood")
    # Search and "verified only" keep exactly one pooled reference row per method and variant.
    submit_records(jsonl(rec("scrub", 1)), store, submitter="x")
    t = table(store)
    for f in (ranking.Filters("cifar10", "gaussian", search="scrub"), ranking.Filters("cifar10", "gaussian", verified_only=True)):
        rows = ranking.filter_rows(t, f)
        refs_ = rows[rows["is_reference"]]
        assert len(refs_) == 2 * len(set(rows["variant"])) and refs_.groupby(["variant", "method"]).size().max() == 1


# --- 8: rate limits bypassed by changed names -----------------------------------------------------------


def test_attack_08_rate_limit_per_account_by_skeleton_and_rejections_do_not_count(tmp_path):
    store = LocalStore(tmp_path / "s", rate_limit=RateLimit(max_submissions=2, window_s=3600))
    for _ in range(5):  # junk uploads are rejected and must not use up Eve's limit
        with pytest.raises(SubmissionError):
            submit_records(b"{not json", store, submitter="Eve")
    submit_records(jsonl(rec(seed=1)), store, submitter="Eve")
    submit_records(jsonl(rec(seed=2)), store, submitter="eve.")
    for alias in ("Eve.", "E-V-E", "eve_"):
        with pytest.raises(RateLimitError, match="the limit is 2"):
            submit_records(jsonl(rec(seed=3)), store, submitter=alias)
    with pytest.raises(SubmissionError, match="submitter name"):  # a Cyrillic look-alike is refused outright
        submit_records(jsonl(rec(seed=3)), store, submitter="Ev\u0435")
    assert names.skeleton("Ev\u0435") == names.skeleton("Eve.") == "eve"
    submit_records(jsonl(rec(seed=4)), store, submitter="Grace")


# --- 9: made-up precision --------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"num_poisons": 10**15, "gus_stderr": 0.0}, "num_poisons = 1000000000000000, but variant .* has 750"),
    ({"num_poisons": 0}, "num_poisons"),
    ({"gus_stderr": 0.0}, r"gus_stderr = 0\.0 .* expected gus_stderr > 0"),
    ({"gus_stderr": 1e-6}, "gus_stderr"),
    ({"gus_stderr": 5.0}, "gus_stderr"),
    ({"tpr_at_fpr_0.01": 0.5001}, r"not a multiple of 1/num_poisons = 1/750"),
    ({"num_nulls": 10**9}, "num_nulls"),
    ({"num_nulls": 751 * 20}, "num_nulls"),
])
def test_attack_09_claims_are_checked_against_the_variant(tmp_path, change, message):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    with pytest.raises(SubmissionError, match=message):
        submit_records(jsonl(rec(**change)), store, submitter="eve")


def test_attack_09_tpr_of_a_half_with_three_poisons(tmp_path):
    three = Catalog([PublicVariant("cifar10", "gaussian", "hf-unlearn/poisoned-cifar10-gaussian", "tiny", 3, None)])
    r = rec(variant="tiny", num_poisons=3, num_nulls=300, gus_stderr=0.5, **{"tpr_at_fpr_0.01": 0.5,
                                                                            "tpr_at_fpr_0.001": None})
    with pytest.raises(SubmissionError, match=r"0\.5 is not a multiple of 1/num_poisons = 1/3"):
        build_submission([r], submitter="eve", catalog=three)
    r["metrics"]["tpr_at_fpr_0.01"] = 2 / 3
    build_submission([r], submitter="eve", catalog=three)


# --- 11: hostile files in the store ------------------------------------------------------------------------


def test_attack_11_hostile_store_files_are_skipped_and_reported(tmp_path):
    store = LocalStore(tmp_path / "s", verifier_key=KEY)
    good = submit_records(jsonl(rec(seed=1)), store, submitter="good", checkpoints=["good/ckpt"], verify=False)
    other = submit_records(jsonl(rec(seed=2)), store, submitter="other").submission_id
    store.add_verification({"submission": good.submission_id, "status": "verified",
                            "checked_at": "2025-01-02T00:00:00+00:00",
                            "records": [{"record": 0, "status": "verified", "recomputed": {"gus": 0.1}}]})
    subs, vers = store.root / "submissions", store.root / "verifications"
    os.mkfifo(subs / f"{'1' * 64}.json")  # a FIFO named like a submission: used to hang start-up
    (subs / f"{'2' * 64}.json").symlink_to("/dev/zero")  # used to exhaust memory
    (subs / f"{'3' * 64}.json").symlink_to(tmp_path)  # points outside
    with open(subs / f"{'4' * 64}.json", "wb") as fh:  # a huge (sparse) file
        fh.truncate(10 * 2**30)
    (subs / f"{'5' * 64}.json").mkdir()  # a folder named like a submission
    (subs / f"{'6' * 64}.json").write_bytes(b"{not json")
    (subs / f"{'7' * 64}.json").write_text('{"records": [0]}')
    # Verifications: wrong shapes (schema), forged (no / foreign signature), moved to another submission.
    real = next((vers / good.submission_id).iterdir())
    signed = json.loads(real.read_text())

    def plant_verification(sub_id: str, doc: dict) -> None:
        data = (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()
        folder = vers / sub_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{__import__('hashlib').sha256(data).hexdigest()}.json").write_bytes(data)

    base = {"submission": other, "status": "verified", "checked_at": "2030-01-01T00:00:00+00:00"}
    plant_verification(other, {**base, "records": [{"record": [0], "status": "verified"}]})
    plant_verification(other, {**base, "records": [{"record": 0, "status": "verified", "diffs": [1, 2]}]})
    plant_verification(other, {**base, "records": [{"record": 0, "status": "verified"}]})  # unsigned forgery
    plant_verification(other, attest.sign({**base, "records": [{"record": 0, "status": "verified"}]}, other, b"x" * 32))
    plant_verification(other, {**signed, "submission": other})  # moved: signed for the other submission
    os.mkfifo(vers / other / f"{'8' * 64}.json")
    (vers / f"{'9' * 64}").symlink_to("/")

    done: dict = {}

    def read():
        fresh = LocalStore(tmp_path / "s", verifier_key=KEY)
        done["subs"] = fresh.submissions()
        done["vers"] = fresh.verifications()
        done["problems"] = fresh.problems
        done["table"] = table(fresh)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "reading the store hung on a hostile file"
    assert sorted(s.id for s in done["subs"]) == sorted([good.submission_id, other])
    assert set(done["vers"]) == {good.submission_id}, "only the genuine verification is trusted"
    problems = "\n".join(done["problems"])
    for expected in ("special file", "symlink", "over the limit", "folder", "not valid JSON", "stored submission format",
                     "names no record", "'diffs' is not an object", "not signed by this leaderboard's verifier",
                     "not a submission folder"):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
    assert len(done["problems"]) >= 13
    t = done["table"]
    assert set(t.loc[t["submission_id"] == good.submission_id, "status"]) == {"verified"}
    assert set(t.loc[t["submission_id"] == other, "status"]) == {"unverified"}


def test_attack_11_verifications_need_the_key_and_are_bound_to_the_content():
    v = {"submission": "a" * 64, "status": "verified", "records": []}
    signed = attest.sign(v, "a" * 64, KEY)
    assert attest.is_authentic(signed, "a" * 64, KEY)
    assert not attest.is_authentic(signed, "b" * 64, KEY), "moved to another submission"
    assert not attest.is_authentic(signed, "a" * 64, b"z" * 32), "another key"
    assert not attest.is_authentic(signed, "a" * 64, None), "no key configured: nothing is trusted"
    assert not attest.is_authentic({**signed, "status": "mismatch"}, "a" * 64, KEY), "edited"
    assert not attest.is_authentic({**signed, "attestation": [1]}, "a" * 64, KEY)
    assert not attest.is_authentic({"x": float("nan"), "attestation": signed["attestation"]}, "a" * 64, KEY)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        attest.sign(v, "a" * 64, b"short")
    assert attest.verifier_key_from_env({"LEADERBOARD_VERIFIER_KEY": "s" * 20}) == b"s" * 20
    assert attest.verifier_key_from_env({}) is None


def test_attack_11_hub_store_trusts_no_verification_without_the_secret(tmp_path, monkeypatch):
    from leaderboard.store import HubStore

    monkeypatch.delenv("LEADERBOARD_VERIFIER_KEY", raising=False)
    hub = HubStore("org/board", tmp_path / "mirror", api=SimpleNamespace())
    assert hub.verifier_key is None
    with pytest.raises(StoreError, match="LEADERBOARD_VERIFIER_KEY"):
        hub._signed({"submission": "a" * 64, "status": "verified", "checked_at": "x", "records": []})
    assert not (tmp_path / "mirror" / attest.LOCAL_KEY_FILE).exists()


# --- 12: smaller ---------------------------------------------------------------------------------------------


def test_attack_12_leaderboard_target_is_never_guessed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LeaderboardTargetError, match=r"'results/board': no such folder.*mkdir -p results/board.*spaces/ORG/NAME"):
        resolve_target("results/board")
    with pytest.raises(LeaderboardTargetError, match="no such folder"):
        resolve_target("org/name")  # a bare ORG/NAME that is not a folder is not taken for a Space
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert resolve_target("org/name") == ("local", "org/name")
    assert resolve_target("spaces/org/board") == ("space", "org/board")
    assert resolve_target("hf://spaces/org/board") == ("space", "org/board")
    assert resolve_target("https://org-board.hf.space") == ("space", "https://org-board.hf.space")
    assert resolve_target("hf://datasets/org/store") == ("hub", "hf://datasets/org/store")


def _submit_while_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, patched: str,
                              error: Exception, expected: type[Exception]) -> str:
    """Submit one record to ``target`` while ``leaderboard.submit.<patched>`` raises ``error``.

    ``error`` stands for a transport failure with a multi-line message (what requests and huggingface_hub
    raise); returns the message of the ``expected`` error, the one line the user sees.
    """
    from leaderboard import submit

    data = tmp_path / "r.jsonl"
    data.write_bytes(jsonl(rec()))

    def unreachable(*args, **kwargs):
        raise error

    monkeypatch.setattr(submit, patched, unreachable)
    with pytest.raises(expected) as info:
        submit.submit_file(data, target, submitter="eve")
    return str(info.value)


def test_attack_12_space_offline_is_one_clear_line(tmp_path, monkeypatch):
    message = _submit_while_unreachable(
        tmp_path, monkeypatch, "spaces/org/board", "_submit_to_space",
        ConnectionError("Max retries exceeded with url: /config\n(Caused by NewConnectionError...)"), SubmissionError)
    assert "\n" not in message and "cannot reach the Space org/board: ConnectionError" in message


def test_attack_12_unreachable_hub_store_is_one_clear_line(tmp_path, monkeypatch):
    message = _submit_while_unreachable(
        tmp_path, monkeypatch, "hf://datasets/org/store", "open_store",
        OSError("We couldn't connect to 'https://huggingface.co'\nCheck your connection"), LeaderboardTargetError)
    assert message == "cannot open hf://datasets/org/store: OSError: We couldn't connect to 'https://huggingface.co'"


def test_attack_12_default_submitter_is_the_hub_login(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "whoami", lambda: {"name": "eve-lab", "type": "user"})
    assert default_submitter() == "eve-lab"

    def logged_out():
        raise OSError("You are not logged in")

    monkeypatch.setattr(huggingface_hub, "whoami", logged_out)
    with pytest.raises(SubmissionError, match=r"not logged in to the Hub .*hf auth login.*--submitter NAME"):
        default_submitter()


def test_attack_12_u2028_inside_a_json_string_gets_the_right_error():
    r = rec()
    r["model"]["id"] = "org/na\u2028me"
    line = json.dumps(r, ensure_ascii=False).encode()
    parsed = parse_jsonl(line)  # no longer split inside the string ("Unterminated string")
    with pytest.raises(SubmissionError, match=r"record 0 \(line 1\): model\.id = 'org/na\\u2028me'"):
        build_submission(parsed, submitter="eve")
    r["model"]["id"] = "org/name"
    r["method_config"] = {"note": "a\u2028b"}  # harmless where it is not shown
    assert len(parse_jsonl(json.dumps(r, ensure_ascii=False).encode())) == 1


def test_attack_12_huge_compute_is_refused():
    with pytest.raises(SubmissionError, match=r"compute_used = 1e\+308: expected at most 1e\+18"):
        build_submission([{**rec(), "compute_used": 1e308}], submitter="eve")


# --- building blocks: catalog, references -----------------------------------------------------------------


def _card_folder(tmp_path: Path, *, dataset_info: bool, configs=("eps0.1-b1.5-s0", "eps0.1-b2.5-s0")) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "poisoned-cifar10-gaussian"
    lines = ["---", "configs:"]
    for i, name in enumerate(configs):
        lines += [f"- config_name: {json.dumps(name)}", "  data_files:",
                  "  - split: forget", f"    path: data/{name}/forget-*.parquet"]
        (folder / "data" / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"index": list(range(5 + i))}), folder / "data" / name / "forget-00000.parquet")
    if dataset_info:
        lines += ["dataset_info:"]
        for name in configs:
            lines += [f"- config_name: {json.dumps(name)}", "  splits:", "  - name: forget", "    num_examples: 750"]
    lines += ["---", "# card"]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
    return folder


def test_catalog_reads_variants_and_forget_sizes_from_the_card(tmp_path):
    folder = _card_folder(tmp_path, dataset_info=False, configs=("eps0.1-b1.5-s0", "eps0.1-b2.5-s0", "bad\u200bname"))
    cat = Catalog.from_mapping({"cifar10/gaussian": str(folder)}, allow_local=True)
    assert cat.variants("cifar10", "gaussian") == ["eps0.1-b1.5-s0", "eps0.1-b2.5-s0"]
    assert cat.get("cifar10", "gaussian", "eps0.1-b2.5-s0").num_poisons == 6  # parquet footer row count
    assert any("bad" in p for p in cat.problems)
    sized = Catalog.from_mapping({"cifar10/gaussian": str(_card_folder(tmp_path / "b", dataset_info=True))},
                                 allow_local=True)
    assert sized.get("cifar10", "gaussian", VARIANT).num_poisons == 750  # dataset_info wins
    with pytest.raises(UnknownVariantError, match="known: cifar10/gaussian"):
        cat.get("imdb", "gaussian", VARIANT)
    # A folder without the operator flag, or a Hub-shaped id that happens to exist as a folder: never read locally.
    with pytest.raises(CatalogError, match="LEADERBOARD_ALLOW_LOCAL=1"):
        Catalog.from_mapping({"cifar10/gaussian": str(folder)})
    env = {"LEADERBOARD_DATASETS": f"cifar10/gaussian={folder}", "LEADERBOARD_ALLOW_LOCAL": "1"}
    assert Catalog.from_env(env).variants("cifar10", "gaussian") == cat.variants("cifar10", "gaussian")
    assert Catalog.from_env({}) is None


def test_catalog_from_the_hub_reads_the_card_at_a_pinned_revision(tmp_path):
    folder = _card_folder(tmp_path, dataset_info=False)
    calls = []

    class FakeApi:
        def repo_info(self, repo, repo_type=None, revision=None):
            calls.append((repo, "repo_info", revision))
            return SimpleNamespace(sha="c" * 40)

        def hf_hub_download(self, repo, filename, repo_type=None, revision=None):
            calls.append((repo, filename, revision))
            return str(folder / filename)

        def list_repo_files(self, repo, repo_type=None, revision=None):
            return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]

    cat = Catalog.from_mapping({"cifar10/gaussian": "org/poisoned-cifar10-gaussian"}, api=FakeApi())
    v = cat.get("cifar10", "gaussian", VARIANT)
    assert (v.repo, v.revision, v.num_poisons) == ("org/poisoned-cifar10-gaussian", "c" * 40, 5)
    # Asked at "main" (olah answers a repo_info without a revision with 401), then pinned to its commit.
    assert calls[:2] == [("org/poisoned-cifar10-gaussian", "repo_info", "main"),
                         ("org/poisoned-cifar10-gaussian", "README.md", "c" * 40)]
    calls.clear()
    pinned = Catalog.from_mapping({"cifar10/gaussian": "org/poisoned-cifar10-gaussian@v1.0"}, api=FakeApi())
    assert calls[0] == ("org/poisoned-cifar10-gaussian", "repo_info", "v1.0")
    assert pinned.get("cifar10", "gaussian", VARIANT).revision == "c" * 40
    for bad in ("@../main", "@v1 x", "@-rf"):
        with pytest.raises(CatalogError, match="is not a branch, tag or commit"):
            Catalog.from_mapping({"cifar10/gaussian": "org/poisoned-cifar10-gaussian" + bad}, api=FakeApi())


def test_references_file_keeps_only_valid_reference_records(tmp_path):
    good = synthetic_references()
    bad_method = rec("ngd", 1)
    off_grid = copy.deepcopy(good[0])
    off_grid["metrics"]["tpr_at_fpr_0.01"] = 0.0101
    unknown = rec("retrain", 2, variant="eps9-b9-s9", budget=None)
    path = write_references(tmp_path / "references.jsonl", [*good, bad_method, off_grid, unknown])
    loaded = References.load(path, catalog=demo_catalog())
    assert len(loaded.records) == len(good) and len(loaded.problems) == 3
    assert References.load(tmp_path, catalog=demo_catalog()).records == loaded.records  # a folder works too
    with pytest.raises(FileNotFoundError, match="no references file"):
        References.load(tmp_path / "missing.jsonl")
    env = References.from_env({"LEADERBOARD_REFERENCES": str(path)})
    assert env is not None and len(env.records) == len(good) + 1  # without a catalog the unknown variant stays


def test_ranked_table_is_the_board_as_data(tmp_path, monkeypatch):
    from leaderboard.demo import write_demo

    demo = write_demo(tmp_path, 120)
    monkeypatch.setenv("LEADERBOARD_REFERENCES", str(demo.references_path))
    monkeypatch.delenv("LEADERBOARD_DATASETS", raising=False)
    t = ranking.ranked_table(tmp_path / "store", task="cifar10", attack="gaussian", variant=VARIANT, budget=0.05)
    assert list(t.columns) == ranking.TABLE_KEYS
    assert list(t["method"][:2]) == ["retrain", "none"] and t["rank"].iloc[2] == 1
    assert set(t["budget"].dropna()) == {0.05} and set(t["variant"]) == {VARIANT}
    assert t["rank"].dropna().is_monotonic_increasing
    with pytest.raises(FileNotFoundError, match="no leaderboard store folder"):
        ranking.ranked_table(tmp_path / "nope")


def test_demo_numbers_satisfy_the_claim_checks():
    r = synthetic_record(random.Random(0), "cifar10", "gaussian", VARIANT, "scrub", 0, 0.05)
    assert r["metrics"]["num_poisons"] == NUM_POISONS
    build_submission([r], submitter="synthetic example 0", catalog=demo_catalog())


# --- second pass (review): variations of the twelve attacks ------------------------------------------------
#
# Each test names the hole it closes ("was: ...") or the variation it shows refused. Holes were reproduced
# against the code before the fix (the test failed), then fixed.


def _line(record: dict) -> str:
    return json.dumps(record)


@pytest.mark.parametrize("field, old, new", [
    ("num_poisons", '"num_poisons": 750', '"num_poisons": 1' + "0" * 400),
    ("compute_used", '"compute_used": 50000.0', '"compute_used": 1' + "0" * 400),
    ("budget_fraction", '"budget_fraction": 0.05', '"budget_fraction": 1' + "0" * 400),
])
def test_review_huge_integers_are_a_clear_rejection_not_a_crash(tmp_path, field, old, new):
    """Was: a 401-digit integer passed the JSON parser and crashed validation with OverflowError (a traceback
    on the CLI, a server error on the Space)."""
    text = _line(rec())
    assert old in text
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    with pytest.raises(SubmissionError, match=r"line 1: the integer 1000.* has 401 digits; at most 19"):
        submit_records(text.replace(old, new).encode(), store, submitter="eve")
    assert not store.submissions()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_review_non_finite_numbers_are_refused(tmp_path, literal):
    text = _line(rec(gus=12345.5)).replace("12345.5", literal)
    with pytest.raises(SubmissionError, match=r"line 1: .*(not allowed|out of range): every number must be finite"):
        submit_records(text.encode(), LocalStore(tmp_path / "s", catalog=demo_catalog()), submitter="eve")


@pytest.mark.parametrize("respell", [
    lambda t: t.replace('"tpr_at_fpr_0.001": 0.0', '"tpr_at_fpr_0.001": -0.0'),
    lambda t: t.replace('"num_poisons": 750', '"num_poisons": 750.0'),
    lambda t: t.replace('"seed": 3', '"seed": 3').replace('"compute_used": 50000.0', '"compute_used": 5e4'),
    # optional record fields added empty ("stopped_by": null, "tuning": {}) are the same claim
    lambda t: t[:-1] + ', "stopped_by": null, "tuning": {}}' if t.endswith("}") else t + "!",
])
def test_review_the_same_claim_respelled_is_still_a_duplicate(tmp_path, respell):
    """Was: "-0.0" for "0.0" or "750.0" for "750" made a new record key, so the same result was stored twice."""
    r = rec(seed=3, **{"tpr_at_fpr_0.001": 0.0})
    r["seed"] = 3
    text = _line(r)
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    submit_records(text.encode(), store, submitter="eve")
    again = respell(text)
    assert again != text
    with pytest.raises(SubmissionError, match="is already on the leaderboard"):
        submit_records(again.encode(), store, submitter="mallory")
    # -0.0 is read as 0.0: nothing shows "-0".
    assert "-0.0" not in json.dumps(parse_jsonl(b'{"x": -0.0}')[0])


def test_review_a_record_scored_on_another_hub_dataset_does_not_list_under_the_public_variant(tmp_path):
    """Was: with the public config name, any dataset.id was accepted: "evil/poisoned-cifar10-gaussian" (scored on
    the attacker's own data) was listed and ranked under the public variant eps0.1-b1.5-s0."""
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    for other in ("evil/poisoned-cifar10-gaussian", "hf-unlearn/poisoned-cifar10-targeted"):
        r = rec()
        r["dataset"]["id"] = other
        with pytest.raises(SubmissionError, match=r"dataset\.id = .* public in hf-unlearn/poisoned-cifar10-gaussian"):
            submit_records(jsonl(r), store, submitter="eve")
    # The public repo (any case) or a local copy of it is fine.
    for fine in ("HF-Unlearn/poisoned-cifar10-gaussian", "/data/poisoned-cifar10-gaussian"):
        r = rec(seed=len(fine))
        r["dataset"]["id"] = fine
        submit_records(jsonl(r), store, submitter="eve")
    # Task/attack of one catalog entry with the variant of another: refused, naming the known variants.
    r = rec()
    r.update(attack="targeted", metrics={"test_accuracy": 0.9, "target_success": 0.1})
    with pytest.raises(UnknownVariantError, match="not a public variant of cifar10/targeted .*known: b1.0-t10-s0"):
        submit_records(jsonl(r), store, submitter="eve")


def test_review_a_look_alike_budget_cannot_make_a_rank_group_of_its_own(tmp_path):
    """Was: budget 0.0500001 prints as 0.05 (4 decimals) but was its own rank group, so a mediocre row showed as
    rank 1 "at 0.05" next to the real rank 1."""
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    submit_records(jsonl(rec("ngd", 1, **{"tpr_at_fpr_0.01": 0.02})), store, submitter="honest")
    for budget in (0.0500001, 0.05000000001, 1 / 30):
        with pytest.raises(SubmissionError, match=r"budget_fraction = .*at most 4 decimals"):
            submit_records(jsonl(rec("scrub", 2, budget=budget, **{"tpr_at_fpr_0.01": 0.4})), store, submitter="eve")
    submit_records(jsonl(rec("scrub", 3, budget=0.0025)), store, submitter="eve")  # 4 decimals are fine
    # Planted (or older) files: ranked within the budget they print as.
    planted = build_submission([rec("scrub", 2, budget=0.05, **{"tpr_at_fpr_0.01": 0.4})], submitter="eve")
    planted.records[0]["budget_fraction"] = 0.0500001
    frame = ranking.records_frame([SimpleNamespace(id="f" * 64, submission=planted, received_at="2025-01-01")])
    honest = ranking.records_frame(store.submissions())
    t = ranking.summarize(ranking.pd.concat([honest, frame], ignore_index=True), references=refs(),
                          catalog=demo_catalog())
    assert the_row(t, "ngd")["rank"] == 1
    scrub = t[(t["method"] == "scrub") & (t["budget"].round(4) == 0.05)].iloc[0]
    assert scrub["rank"] == 2, "ranked in the 0.05 group it prints in, behind the honest row"


def test_review_copied_seeds_cannot_make_a_zero_width_interval(tmp_path):
    """Was: 20 records with one result's metrics under seed numbers 0..19 had a seed spread of 0, so a t interval
    of 0: made-up precision that outranked an honest single-seed row whose interval overlapped."""
    from hf_unlearn.stats import wilson_halfwidth

    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    base = rec("ssd", 5, **{"tpr_at_fpr_0.01": 0.1})
    copies = [{**copy.deepcopy(base), "seed": s} for s in range(20)]
    submit_records(jsonl(*copies), store, submitter="eve")
    honest = rec("ssd", 6, **{"tpr_at_fpr_0.01": 0.12})
    honest["metrics"]["test_accuracy"] = base["metrics"]["test_accuracy"]
    submit_records(jsonl(honest), store, submitter="honest")
    t = table(store)
    copied, single = (t[t["submitter"] == who].iloc[0] for who in ("eve", "honest"))
    assert copied["n_seeds"] == 20
    assert copied["tpr1_ci"] == pytest.approx(float(wilson_halfwidth(0.1, NUM_POISONS)))  # one seed's, not 0
    assert copied["shortfall_hi"] - copied["shortfall_lo"] > 0.03
    assert copied["rank"] == single["rank"] == 1, "overlapping intervals share the rank"


@pytest.mark.parametrize("spec, message", [
    ("\u00b2=org/model", "checkpoint record index '.': expected a whole number"),  # was: ValueError traceback
    ("\u0663=org/model", "expected a whole number"),  # Arabic-Indic 3: a digit to str.isdigit
    ("0=org/model@", "revision '' is not a branch"),
    ("0=org/model@../main", "revision '../main' is not a branch"),
    ("0=org/model@v1@v2", "expected a Hub model id"),
    ("0=org/model@\u200bv1", "is not a branch, tag or commit name"),
    ("0=org/../model", "expected a Hub model id"),
    ("0=https://huggingface.co/org/model", "expected a Hub model id"),
    ("0=hf://org/model", "expected a Hub model id"),
    ("0=org/model@%2e%2e", "is not a branch"),
])
def test_review_checkpoint_references_of_odd_shapes_are_refused(tmp_path, spec, message):
    store = LocalStore(tmp_path / "s", catalog=demo_catalog(), allow_local_checkpoints=False)
    with pytest.raises(SubmissionError, match=message):
        submit_records(jsonl(rec()), store, submitter="eve", checkpoints=[spec], verify=False)
    assert not store.submissions()


@pytest.mark.parametrize("model_id", ["ORG/NAME@", "ORG/NAME@v1", "org/../x", "org/na me", "org/x\u0430", "-rf/x"])
def test_review_model_ids_with_revisions_or_odd_characters_are_refused(model_id):
    r = rec()
    r["model"]["id"] = model_id
    with pytest.raises(SubmissionError, match=r"model\.id = "):
        build_submission([r], submitter="eve")


@pytest.mark.parametrize("link", [
    "https://huggingface.co@evil.example/paper",  # reads as the Hub, goes to evil.example
    "https://user:pw@example.org/",
    'https://example.org/"><script>alert(1)</script>',
    "https://example.org/a'b", "https://example.org/a\\b", "https://exa mple.org", "https://.example.org",
])
def test_review_links_with_user_info_or_markup_are_refused(link):
    """Was: a link's authority could carry user-info ("huggingface.co@evil.example") and the path quotes and
    angle brackets, so the shown text imitated another site or could leave an HTML attribute."""
    with pytest.raises(SubmissionError, match="submitter link = .*expected an http:// or https:// address"):
        build_submission([rec()], submitter="eve", link=link)


def test_review_ordinary_links_are_accepted():
    for link in ("https://huggingface.co/papers/2401.00001", "http://localhost:8080/x?y=1&z=2#s",
                 "https://xn--bcher-kva.example/page_(1)"):
        assert build_submission([rec()], submitter="eve", link=link).submitter["link"] == link


@pytest.mark.parametrize("variant", [
    "\uff45\uff50\uff530.1-b1.5-s0",  # full-width: NFKC folds it to the public name
    "eps\uff10.1-b1.5-s0", "eps0.1\u2010b1.5-s0", "eps0.1-b1.5-s\u2070", "eps0.1-b1.5-s0\u00a0", "eps0.1-b1.5-s0 ",
])
def test_review_nfkc_equivalent_variant_names_are_refused_not_folded(tmp_path, variant):
    """A variant that NFKC-normalises to a public name is refused (not silently folded): the stored record
    keeps what was sent, so it must already be the plain ASCII name."""
    with pytest.raises(SubmissionError, match=r"dataset\.config = .*ASCII letters"):
        submit_records(jsonl(rec(variant=variant)), LocalStore(tmp_path / "s", catalog=demo_catalog()),
                       submitter="eve")


@pytest.mark.parametrize("text, message", [
    ("{\"a\": " + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ('{"schema_version": 1, "schema_version": 1}', "the key 'schema_version' appears twice"),
    ('{"metrics": {"gus": 1, "gus": 2}}', "the key 'gus' appears twice"),
    ("{" + '"x": "' + "a" * 70_000 + '"}', "longer than 65,536 bytes"),
])
def test_review_hostile_json_shapes_are_refused(text, message):
    with pytest.raises(SubmissionError, match=message):
        parse_jsonl(text.encode())


@pytest.mark.parametrize("change, message", [
    ({"num_nulls": 750 * 20 + 1}, "expected a multiple of num_poisons = 750"),
    ({"num_nulls": 375, "tpr_at_fpr_0.001": None}, "expected a multiple of num_poisons = 750"),
    ({"num_poisons": 750.5}, "expected a whole number"),
    ({"num_nulls": True}, "expected a finite number"),
])
def test_review_null_counts_are_checked(tmp_path, change, message):
    with pytest.raises(SubmissionError, match=message):
        submit_records(jsonl(rec(**change)), LocalStore(tmp_path / "s", catalog=demo_catalog()), submitter="eve")


def test_review_a_checkpointed_record_must_be_verifiable(tmp_path):
    """Was: 1,000 null draws per poison passed the upload checks, but the verifier draws at most 200, so a record
    naming its checkpoint ended 'failed' and unranked: naming a checkpoint was worse than not naming one."""
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    many = rec(num_nulls=750 * 1000)
    with pytest.raises(SubmissionError, match=r"1000 null draws per poison .*at most 200.*--null-draws 200"):
        submit_records(jsonl(many), store, submitter="eve", checkpoints=["eve/ckpt"], verify=False)
    submit_records(jsonl(many), store, submitter="eve")  # without a checkpoint it is a claim like any other
    from leaderboard.verify import DEFAULT_LIMITS

    assert DEFAULT_LIMITS.max_null_draws == 200


def test_review_planted_submissions_are_checked_against_the_public_variant(tmp_path):
    """Was: a file planted in the store skipped the catalog's checks (they ran only on upload): 3 poisons on a
    750-poison variant, or another Hub dataset, were shown and ranked. Variants no longer public stay visible,
    unranked."""
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    few = rec(num_poisons=3, num_nulls=300, gus_stderr=0.5, **{"tpr_at_fpr_0.01": 0.0, "tpr_at_fpr_0.001": None})
    elsewhere = rec(seed=2)
    elsewhere["dataset"]["id"] = "evil/poisoned-cifar10-gaussian"
    retired = rec(seed=3, variant="eps0.1-b9-s0")
    for r in (few, elsewhere, retired):
        plant_submission(store, Submission(submitter={"name": "eve", "link": None}, records=[r]))
    fresh = LocalStore(tmp_path / "s", catalog=demo_catalog())
    kept = fresh.submissions()
    assert [s.submission.records[0]["dataset"]["config"] for s in kept] == ["eps0.1-b9-s0"]
    problems = "\n".join(fresh.problems)
    assert "num_poisons = 3, but variant 'eps0.1-b1.5-s0' has 750" in problems and "is public in" in problems
    row = the_row(table(fresh), "ngd", "eps0.1-b9-s0")
    assert math.isnan(row["rank"]) and row["rank_note"] == "not ranked: not a public variant"


def test_review_a_store_opened_without_a_catalog_still_enforces_the_public_variants(tmp_path, monkeypatch):
    """Was: the Space builds its store and board without a catalog (space/app.py), so with LEADERBOARD_DATASETS
    set a look-alike variant was stored and ranked anyway. A store now reads LEADERBOARD_DATASETS itself unless
    told catalog=None, and the table uses the store's catalog."""
    folder = _card_folder(tmp_path, dataset_info=True)
    monkeypatch.setenv("LEADERBOARD_DATASETS", f"cifar10/gaussian={folder}")
    monkeypatch.setenv("LEADERBOARD_ALLOW_LOCAL", "1")
    store = LocalStore(tmp_path / "s")  # as space/app.py's make_store does
    r = rec(variant="eps0.1-b1.5-s0")
    r["dataset"]["id"] = str(folder)
    submit_records(jsonl(r), store, submitter="eve")
    with pytest.raises(UnknownVariantError, match="'eps0.1-b9-s0' is not a public variant"):
        submit_records(jsonl(rec(variant="eps0.1-b9-s0")), store, submitter="eve")
    bad = rec(seed=4, num_poisons=3, num_nulls=300, gus_stderr=0.5, **{"tpr_at_fpr_0.01": 0.0,
                                                                        "tpr_at_fpr_0.001": None})
    with pytest.raises(SubmissionError, match="has 750 poisons"):
        submit_records(jsonl(bad), store, submitter="eve")
    planted = Submission(submitter={"name": "eve", "link": None}, records=[rec(seed=5, variant="eps0.1-b9-s0")])
    plant_submission(store, planted)
    t = ranking.build_table(LocalStore(tmp_path / "s"), references=refs())  # no catalog passed: the store's
    assert t.loc[t["variant"] == "eps0.1-b9-s0", "rank_note"].tolist() == ["not ranked: not a public variant"]
    assert LocalStore(tmp_path / "s", catalog=None).catalog is None
    # A broken setting: nothing is stored (StoreError), and reading still works, reporting it.
    monkeypatch.setenv("LEADERBOARD_DATASETS", "cifar10/gaussian=/no/such/folder")
    broken = LocalStore(tmp_path / "s")
    with pytest.raises(StoreError, match="cannot read the public datasets"):
        submit_records(jsonl(rec(seed=6)), broken, submitter="eve")
    assert len(broken.submissions()) == 2 and any("LEADERBOARD_DATASETS" in p for p in broken.problems)


def _in_thread(fn, timeout: float = 20.0):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "hung on a hostile file"
    return out


def test_review_a_fifo_as_the_lock_or_key_file_does_not_hang_the_store(tmp_path, monkeypatch):
    """Was: open(".lock", "a") on a planted FIFO blocked every write forever, and a FIFO as the local
    .verifier-key blocked reading any verification (Space start-up)."""
    monkeypatch.delenv("LEADERBOARD_VERIFIER_KEY", raising=False)
    root = tmp_path / "s"
    store = LocalStore(root, catalog=None)
    ok = submit_records(jsonl(rec()), store, submitter="eve", checkpoints=["eve/ckpt"], verify=False)
    store.add_verification({"submission": ok.submission_id, "status": "failed",
                            "checked_at": "2025-01-02T00:00:00+00:00", "records": []})
    (root / ".lock").unlink()
    os.mkfifo(root / ".lock")
    out = _in_thread(lambda: submit_records(jsonl(rec(seed=2)), LocalStore(root, catalog=None), submitter="eve"))
    assert isinstance(out.get("error"), StoreError) and ".lock is not a regular file" in str(out["error"])
    (root / ".lock").unlink()
    (root / ".lock").symlink_to(tmp_path / "elsewhere.lock")
    out = _in_thread(lambda: submit_records(jsonl(rec(seed=2)), LocalStore(root, catalog=None), submitter="eve"))
    assert isinstance(out.get("error"), StoreError) and not (tmp_path / "elsewhere.lock").exists()
    (root / ".lock").unlink()
    key = root / attest.LOCAL_KEY_FILE
    key.unlink()
    os.mkfifo(key)
    fresh = LocalStore(root, catalog=None)
    out = _in_thread(fresh.verifications)
    assert out.get("value") == {}, "nothing is trusted without a readable key"
    assert any(".verifier-key: not a regular file" in p for p in fresh.problems)
    key.unlink()
    key.symlink_to("/dev/zero")
    assert _in_thread(lambda: LocalStore(root, catalog=None).verifier_key).get("value") is None


def test_review_symlinked_store_folders_are_not_written_through(tmp_path, monkeypatch):
    """Was: a planted symlink submissions -> /elsewhere (or verifications -> ...) sent new files outside the store,
    where no reader looks (the submission was 'accepted' and never shown)."""
    monkeypatch.delenv("LEADERBOARD_VERIFIER_KEY", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "s"
    root.mkdir()
    (root / "submissions").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="submissions in the store is not a folder"):
        submit_records(jsonl(rec()), LocalStore(root, catalog=None), submitter="eve")
    (root / "submissions").unlink()
    store = LocalStore(root, catalog=None, verifier_key=KEY)
    ok = submit_records(jsonl(rec()), store, submitter="eve", checkpoints=["eve/ckpt"], verify=False)
    (root / "verifications").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="verifications in the store is not a folder"):
        store.add_verification({"submission": ok.submission_id, "status": "failed",
                                "checked_at": "2025-01-02T00:00:00+00:00", "records": []})
    assert list(elsewhere.iterdir()) == []


def test_review_moved_and_re_signed_verifications_are_not_trusted(tmp_path):
    """Variations of attack 11: a genuine signed verification copied to another submission's folder (as is, or
    with its 'submission' field edited), or with its status edited and re-hashed, is skipped."""
    import hashlib

    store = LocalStore(tmp_path / "s", catalog=None, verifier_key=KEY)
    a = submit_records(jsonl(rec(seed=1)), store, submitter="eve", checkpoints=["eve/a"], verify=False).submission_id
    b = submit_records(jsonl(rec(seed=2)), store, submitter="eve", checkpoints=["eve/b"], verify=False).submission_id
    store.add_verification({"submission": a, "status": "mismatch", "checked_at": "2025-01-02T00:00:00+00:00",
                            "records": [{"record": 0, "status": "mismatch"}]})
    genuine = json.loads(next((store.root / "verifications" / a).iterdir()).read_text())

    def plant(sub_id: str, doc: dict) -> None:
        data = (json.dumps(doc) + "\n").encode()
        folder = store.root / "verifications" / sub_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{hashlib.sha256(data).hexdigest()}.json").write_bytes(data)

    plant(b, genuine)  # copied as is
    plant(b, {**genuine, "submission": b})  # copied and re-addressed
    plant(a, {**genuine, "status": "verified", "checked_at": "2030-01-01T00:00:00+00:00",
              "records": [{"record": 0, "status": "verified"}]})  # edited to win as the latest
    plant(a, {**attest.sign({**genuine, "status": "verified"}, b, KEY), "submission": a})  # signed for b's hash
    fresh = LocalStore(tmp_path / "s", catalog=None, verifier_key=KEY)
    vers = fresh.verifications()
    assert set(vers) == {a} and vers[a]["status"] == "mismatch"
    problems = "\n".join(fresh.problems)
    assert problems.count("not signed by this leaderboard's verifier") == 3 and "names another submission" in problems


def test_review_reference_rows_come_only_from_the_operators_file(tmp_path, monkeypatch):
    """A submitter has no way to name a references file: no submission field or API argument takes one, and a
    record pointing its dataset.id (or anything else) at a references file changes nothing."""
    import inspect

    from leaderboard import submit

    for fn in (submit.submit_file, submit.submit_records, build_submission):
        assert not any("reference" in p for p in inspect.signature(fn).parameters), fn
    evil_refs = write_references(tmp_path / "evil" / "references.jsonl",
                                 [rec("retrain", s, budget=None, test_accuracy=0.0, **{"tpr_at_fpr_0.01": 1.0})
                                  for s in range(3)])
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    r = rec("scrub", 1, **{"tpr_at_fpr_0.01": 0.4})
    r["dataset"]["id"] = str(evil_refs)
    r["method_config"] = {"references": str(evil_refs)}
    submit_records(jsonl(r), store, submitter="eve")
    retrain = the_row(table(store), "retrain")
    assert retrain["submitter"] == "hf-unlearn maintainers" and retrain["tpr1"] < 0.05


def test_review_leaderboard_folder_named_like_a_remote_form_is_ambiguous(tmp_path, monkeypatch):
    """Was: an existing folder ./datasets/org/board was taken for the Hub store hf://datasets/org/board (the file
    would be committed to the Hub). Now the user is asked to say which."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets" / "org" / "board").mkdir(parents=True)
    with pytest.raises(LeaderboardTargetError, match=r"ambiguous.*\./datasets/org/board.*hf://datasets/org/board"):
        resolve_target("datasets/org/board")
    assert resolve_target("./datasets/org/board") == ("local", "./datasets/org/board")
    assert resolve_target("hf://datasets/org/board") == ("hub", "hf://datasets/org/board")
    assert resolve_target("spaces/org/board") == ("space", "org/board")  # no such folder: the Space


def test_review_more_checkpoints_than_the_verifier_scores_are_refused_on_upload(tmp_path):
    """Was: 30 checkpoints were accepted, the verifier scored 20 and failed the other 10, whose rows then did not
    rank: refused on upload instead, with the fix."""
    records = [rec(seed=s) for s in range(30)]
    store = LocalStore(tmp_path / "s", catalog=demo_catalog())
    with pytest.raises(SubmissionError, match="30 checkpoints named; at most 20 per submission .* split the file"):
        submit_records(jsonl(*records), store, submitter="eve", checkpoints=[f"{i}=eve/c{i}" for i in range(30)],
                       verify=False)
    submit_records(jsonl(*records), store, submitter="eve", checkpoints=[f"{i}=eve/c{i}" for i in range(20)],
                   verify=False)


def test_review_verification_messages_survive_a_malformed_document():
    """The CLI prints what a (remote) Space returns: a malformed verification is printed, not a traceback."""
    from leaderboard.submit import verification_messages

    for doc in ({"records": [0, {"diffs": [1]}, {"record": 1, "diffs": {"gus": {"ok": False, "diff": "x"}}}]},
                {"status": "mismatch", "records": "x"}, {"status": "verified"}):
        assert verification_messages(doc)[0].startswith("verification: ")


def test_review_planted_future_timestamps_cannot_lock_an_account_out(tmp_path):
    """Was: files planted with the victim's name and received_at in 2999 counted against the victim's rate limit
    for ever (and sorted as the newest)."""
    store = LocalStore(tmp_path / "s", catalog=None, rate_limit=RateLimit(max_submissions=2, window_s=3600))
    for seed in (1, 2, 3):
        plant_submission(store, build_submission([rec(seed=seed)], submitter="victim"),
                         received="2999-01-01T00:00:00+00:00")
    fresh = LocalStore(tmp_path / "s", catalog=None, rate_limit=RateLimit(max_submissions=2, window_s=3600))
    submit_records(jsonl(rec(seed=9)), fresh, submitter="victim")
    assert sum("is in the future" in p for p in fresh.problems) == 3


def test_review_a_huge_poison_count_cannot_narrow_the_interval_when_the_size_is_unknown():
    """Was: on a public variant whose forget size the card does not give (or without a catalog), num_poisons=1e15
    with no num_nulls passed every check, and the Wilson interval of its TPR was about 0."""
    unknown = Catalog([PublicVariant("cifar10", "gaussian", "hf-unlearn/poisoned-cifar10-gaussian", VARIANT, None,
                                     None)])
    huge = rec(num_poisons=10**15, gus_stderr=3e-8, **{"tpr_at_fpr_0.01": 0.1, "tpr_at_fpr_0.001": None})
    del huge["metrics"]["num_nulls"]
    for catalog in (unknown, None):
        with pytest.raises(SubmissionError, match=r"num_poisons = 1000000000000000: expected at most 100,000"):
            build_submission([huge], submitter="eve", catalog=catalog)
    build_submission([rec()], submitter="eve", catalog=unknown)  # 750 is fine
    # On a public variant the null count the TPRs were measured with must be given too.
    no_nulls = rec()
    del no_nulls["metrics"]["num_nulls"]
    with pytest.raises(SubmissionError, match="metrics.num_nulls is missing"):
        build_submission([no_nulls], submitter="eve", catalog=unknown)


def test_review_local_key_never_blocks_on_a_fifo_or_follows_a_symlink(tmp_path):
    """attest.local_key read the key with open(): a planted FIFO blocked the reader forever."""
    key = tmp_path / attest.LOCAL_KEY_FILE
    os.mkfifo(key)
    assert _in_thread(lambda: attest.local_key(tmp_path, create=False)).get("value") is None
    key.unlink()
    key.symlink_to("/dev/zero")
    assert _in_thread(lambda: attest.local_key(tmp_path, create=False)).get("value") is None
