"""Submission validation: what is accepted, and a seeded fuzz of hostile uploads that must all be rejected."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from leaderboard.demo import synthetic_record
from leaderboard.store import LocalStore, RateLimit
from leaderboard.submission import (
    DEFAULT_LIMITS,
    DuplicateSubmissionError,
    RateLimitError,
    SubmissionError,
    build_submission,
    parse_jsonl,
    submission_from_dict,
)
from leaderboard.submit import submit_records


def good_record(seed: int = 0, method: str = "ngd", **changes) -> dict:
    rec = synthetic_record(random.Random(seed), "cifar10", "gaussian", "eps0.1-b1.5-s0", method, seed, 0.05)
    rec.update(changes)
    return rec


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- accepted input ---------------------------------------------------------------------------


def test_valid_submission_round_trips_and_is_content_addressed():
    records = [good_record(1), good_record(2, method="scrub")]
    sub = build_submission(parse_jsonl(jsonl(*records)), submitter="Ada", link="https://example.org/paper")
    again = build_submission(parse_jsonl(jsonl(*records)), submitter="Ada", link="https://example.org/paper")
    assert sub.id == again.id and re.fullmatch(r"[0-9a-f]{64}", sub.id)
    assert submission_from_dict(sub.to_dict()).id == sub.id
    other = build_submission(parse_jsonl(jsonl(*records)), submitter="Grace")
    assert other.id != sub.id


def test_markup_in_names_is_refused_and_in_descriptions_kept_as_text():
    markup = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    with pytest.raises(SubmissionError, match="submitter name = .*ASCII letters, digits"):
        build_submission([good_record()], submitter=markup)
    rec = good_record(method="my_method")
    sub = build_submission([rec], submitter="Ada", new_methods={"my_method": markup})
    assert sub.new_methods["my_method"]["description"] == markup  # stored verbatim; the UI shows it as text


def test_new_method_must_be_declared_and_described():
    rec = good_record(method="my_method")
    with pytest.raises(SubmissionError, match="my_method.*declare it as a new method"):
        build_submission([rec], submitter="Ada")
    sub = build_submission([rec], submitter="Ada", new_methods={"my_method": "gradient ascent with a twist"})
    assert sub.new_methods["my_method"]["description"] == "gradient ascent with a twist"


def test_checkpoint_specs():
    recs = [good_record(1), good_record(2)]
    sub = build_submission(recs, submitter="Ada", checkpoints=["1=org/model@main", "0=org/other"])
    assert sub.checkpoints == [
        {"record": 0, "id": "org/other", "revision": None},
        {"record": 1, "id": "org/model", "revision": "main"},
    ]
    one = build_submission([recs[0]], submitter="Ada", checkpoints=["org/model"])
    assert one.checkpoints == [{"record": 0, "id": "org/model", "revision": None}]
    with pytest.raises(SubmissionError, match="local folder|Hub model id"):
        build_submission([recs[0]], submitter="Ada", checkpoints=["./ckpt"], allow_local_checkpoints=False)
    local = build_submission([recs[0]], submitter="Ada", checkpoints=["./ckpt"], allow_local_checkpoints=True)
    assert local.checkpoints[0]["id"] == "./ckpt"


def test_unresolvable_fpr_must_be_null():
    rec = good_record()
    rec["metrics"]["num_nulls"] = 750  # one draw per poison: 1/750 > 0.001, TPR@0.1% cannot be resolved
    with pytest.raises(SubmissionError, match=r"tpr_at_fpr_0\.001.*cannot be resolved.*send null"):
        build_submission([rec], submitter="Ada")
    rec["metrics"]["tpr_at_fpr_0.001"] = None
    build_submission([rec], submitter="Ada")


# --- the fuzz --------------------------------------------------------------------------------

# Each mutation returns (bytes of the upload, submit kwargs, regex the error message must match).
# The regexes are what a submitter needs to fix the file: the line/record and the field or limit.


def _record_mutation(rng: random.Random):
    rec = good_record(rng.randrange(10_000))
    m = rec["metrics"]
    choice = rng.randrange(26)
    if choice == 0:
        key = rng.choice(["task", "attack", "method", "dataset", "model", "metrics", "seed", "schema_version"])
        del rec[key]
        return rec, rf"missing field.*{key}"
    if choice == 1:
        rec[rng.choice(["evil", "__proto__", "pickle", "exec"])] = 1
        return rec, "unknown field"
    if choice == 2:
        rec["task"] = rng.choice(["CIFAR10", "mnist", "", "<b>cifar10</b>", 3, None])
        return rec, "'task'"
    if choice == 3:
        rec["attack"] = rng.choice(["Gaussian", "backdoor", "", 1.5, []])
        return rec, "'attack'"
    if choice == 4:
        rec["method"] = rng.choice(["NGD", "rm -rf", "<script>", "x" * 50, 7, None])
        return rec, "method"
    if choice == 5:
        rec["method"] = rng.choice(["secret_sauce", "ngd2", "my_method"])
        return rec, "declare it as a new method"
    if choice == 6:
        key = rng.choice(["test_accuracy", "forget_accuracy", "tpr_at_fpr_0.01", "auc"])
        m[key] = rng.choice([1.5, -0.01, 2, 1e9, -1e-300 - 1])
        return rec, rf"metrics\.{re.escape(key)}.*\[0\.0, 1\.0\]"
    if choice == 7:
        key = rng.choice(["test_accuracy", "gus", "auc", "gus_stderr"])
        m[key] = rng.choice(["0.9", [0.9], {"v": 1}, True, None])
        return rec, rf"metrics\.{re.escape(key)}.*finite number"
    if choice == 8:
        m[rng.choice(["gus", "test_accuracy"])] = rng.choice([1e308 * 10, -1e308 * 10])  # inf in the dump
        return rec, "Infinity is not allowed"
    if choice == 9:
        m["gus"] = rng.choice([1e4, -1e6, 1e300])
        return rec, r"metrics\.gus"
    if choice == 10:
        m["num_poisons"] = rng.choice([-1, -750])
        return rec, r"metrics\.num_poisons"
    if choice == 11:
        m["num_poisons"] = rng.choice([7.5, 0.1, 749.9])
        return rec, "num_poisons.*whole number"
    if choice == 12:
        m[rng.choice(["loss", "accuracy", "TPR", "gus "])] = 0.5
        return rec, "a known metric"
    if choice == 13:
        del m[rng.choice(["test_accuracy", "gus", "tpr_at_fpr_0.01", "auc", "gus_stderr"])]
        return rec, "metrics are missing"
    if choice == 14:
        rec["seed"] = rng.choice([-1, 2**40, 1.5, True, "0"])
        return rec, "'seed'"
    if choice == 15:
        rec["schema_version"] = rng.choice([0, 2, "1", None])
        return rec, "schema_version"
    if choice == 16:
        rec["dataset"] = rng.choice(["poisoned-cifar10-gaussian", None, {"config": "x"}, {"id": "a", "evil": 1}])
        return rec, "'dataset"
    if choice == 17:
        rec["model"]["id"] = "m" * rng.choice([513, 2000])
        return rec, r"model\.id.*512"
    if choice == 18:
        rec["dataset"]["config"] = None
        return rec, r"dataset\.config"
    if choice == 19:
        nested: dict = {}
        cur = nested
        for _ in range(rng.randrange(6, 30)):
            cur["k"] = {}
            cur = cur["k"]
        rec["method_config"] = nested
        return rec, "nesting"
    if choice == 20:
        rec["method_config"] = {"lrs": list(range(rng.randrange(65, 300)))}
        return rec, "at most 64 items"
    if choice == 21:
        rec["versions"] = rng.choice([{"torch": 2}, ["torch"], {"x" * 100: "1"}])
        return rec, "'versions'"
    if choice == 22:
        rec["created_at"] = rng.choice(["yesterday", "2025-13-45", "0"])
        return rec, "created_at"
    if choice == 23:
        rec["budget_fraction"] = rng.choice([-0.1, 11.0, "0.1"])
        return rec, "budget_fraction"
    if choice == 24:
        rec["compute_used"] = rng.choice([-5.0, "lots", None])
        return rec, "compute_used"
    m["num_nulls"] = rng.choice([10, 99, 500])
    m["tpr_at_fpr_0.001"] = 0.2
    return rec, "cannot be resolved"


def _bytes_mutation(rng: random.Random):
    good = json.dumps(good_record(rng.randrange(10_000)))
    choice = rng.randrange(16)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) + b"\xff\xfe", "UTF-8|JSON|NUL"
    if choice == 1:
        return b"", "no result records"
    if choice == 2:
        return b"\n \n\t\n", "no result records"
    if choice == 3:
        return good.encode()[: rng.randrange(1, len(good) - 1)], r"line 1: not valid JSON"
    if choice == 4:
        return (json.dumps([json.loads(good)]) + "\n").encode(), "line 1: expected a JSON object"
    if choice == 5:
        return rng.choice([b"1\n", b'"x"\n', b"null\n", b"true\n"]), "line 1: expected a JSON object"
    if choice == 6:
        token = rng.choice(["NaN", "Infinity", "-Infinity"])
        return good.replace('"gus": ', f'"gus": {token}, "x": ', 1).encode(), f"{re.escape(token)} is not allowed"
    if choice == 7:
        return good.replace('{"schema_version"', '{"task": "imdb", "schema_version"', 1).encode(), "appears twice"
    if choice == 8:
        depth = rng.randrange(2000, 20000)
        return ("[" * depth + "]" * depth).encode(), "line 1: (JSON nested too deeply|expected a JSON object|longer)"
    if choice == 9:
        return ('{"seed": ' + "9" * rng.randrange(5000, 6000) + "}").encode(), r"line 1: the integer 9+\.\.\. has \d+ digits; at most 19"
    if choice == 10:
        return b"x" * (DEFAULT_LIMITS.max_bytes + rng.randrange(1, 5000)), "limit is 1,000,000 bytes"
    if choice == 11:
        return (good + "\n") .encode() * (DEFAULT_LIMITS.max_records + 1), "(more than 1000 records|bytes)"
    if choice == 12:
        return ('{"pad": "' + "a" * (DEFAULT_LIMITS.max_line_bytes + 10) + '"}').encode(), "longer than 65,536 bytes"
    if choice == 13:
        return good.encode() + b"\x00\n", "NUL"
    if choice == 14:
        return b"\xc3\x28" + good.encode(), "not UTF-8"
    lines = [good, json.dumps(good_record(1)), "{oops"]
    return "\n".join(lines).encode(), "line 3: not valid JSON"


def _metadata_mutation(rng: random.Random):
    data = jsonl(good_record(rng.randrange(10_000)))
    kwargs = {"submitter": "Ada"}
    choice = rng.randrange(14)
    if choice == 0:
        kwargs["submitter"] = rng.choice(["", "   ", None])
        return data, kwargs, "submitter name is required"
    if choice == 1:
        kwargs["submitter"] = "A" * rng.randrange(81, 5000)
        return data, kwargs, "submitter name is .* characters long; the limit is 80"
    if choice == 2:
        kwargs["submitter"] = "A" + rng.choice(["\u202e", "\u200d", "\x00", "\x1b[31m", "\n", "\u2028", "\ufeff"]) + "da"
        return data, kwargs, r"submitter name contains the character U\+"
    if choice == 3:
        kwargs["link"] = rng.choice(["javascript:alert(1)", "data:text/html,<script>", "ftp://x", "http://",
                                     "https://a b", "//evil.example", "www.example.org"])
        return data, kwargs, "submitter link.*http:// or https://"
    if choice == 4:
        kwargs["link"] = "https://example.org/" + "a" * 400
        return data, kwargs, "submitter link is .* the limit is 300"
    if choice == 5:
        kwargs["new_methods"] = {rng.choice(["MyMethod", "<script>", "a-b", "1abc", "x" * 41]): "desc"}
        return data, kwargs, "new method name"
    if choice == 6:
        kwargs["new_methods"] = {rng.choice(["ngd", "scrub", "retrain"]): "mine"}
        return data, kwargs, "already a known method"
    if choice == 7:
        kwargs["new_methods"] = {"unused_method": "desc"}
        return data, kwargs, r"declared but no record uses them"
    if choice == 8:
        rec = good_record(7, method="fresh")
        kwargs["new_methods"] = {"fresh": rng.choice(["", None, "d" * 2001])}
        return jsonl(rec), kwargs, "description of new method 'fresh'"
    if choice == 9:
        kwargs["checkpoints"] = [rng.choice(["../../etc/passwd", "/etc", "a/b/c", "org/--x", "org/m@..", "http://x/y",
                                             "org/model@", "org/<img>"])]
        return data, kwargs, "checkpoint"
    if choice == 10:
        kwargs["checkpoints"] = [rng.choice(["5=org/model", "-1=org/model", "x=org/model", "99999999=org/m"])]
        return data, kwargs, "checkpoint record index"
    if choice == 11:
        kwargs["checkpoints"] = ["0=org/a", "0=org/b"]
        return data, kwargs, "checkpoints named for 1 records|two checkpoints"
    if choice == 12:
        two = jsonl(good_record(1), good_record(2))
        kwargs["checkpoints"] = ["org/model"]
        return two, kwargs, "names no record; with 2 records write INDEX=ID"
    rec = good_record(rng.randrange(10_000))
    return jsonl(rec, rec), kwargs, r"record 1 \(line 2\) repeats record 0 \(line 1\)"


# Invisible, reordering, control and look-alike characters (issue 7, attack 2).
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"]
CONTROL = ["\x00", "\x07", "\x1b", "\x1b[31m", "\x7f", "\x85", "\r", "\n", "\t", "\u2028", "\u2029"]
SPACES = ["\u00a0", "\u2003", "\u3000", "\u202f"]
LOOK_ALIKES = ["\u0430", "\u0435", "\u043e", "\u0440", "\u0441", "\u0445", "\u03bf", "\u0456", "\u0501", "\ue000"]
RESERVED = ["maintainers", "Maintainer", "hf-unlearn", "HF_Unlearn", "verified", "VER1FIED", "Official", "0fficial",
            "retrain", "Retrain", "none", "N0NE", "reference", "huggingface", "hf unlearn team"]


def _unicode_mutation(rng: random.Random):
    """A shown string with one hostile character, or a reserved name: refused, naming the field."""
    chars = INVISIBLE + BIDI + CONTROL + SPACES + LOOK_ALIKES
    ch = rng.choice(chars)

    def spliced(text: str) -> str:
        at = rng.randrange(1, len(text))  # inside: a character at either end may be stripped as whitespace
        return text[:at] + ch + text[at:]

    data = jsonl(good_record(rng.randrange(10_000)))
    choice = rng.randrange(7)
    if choice == 0:
        return data, {"submitter": spliced("Ada Lab")}, "submitter name"
    if choice == 1:
        return data, {"submitter": rng.choice(RESERVED) + rng.choice(["", " lab", ".", " 2"])}, "submitter name"
    if choice == 2:
        rec = good_record(rng.randrange(10_000))
        rec["dataset"]["config"] = spliced(rec["dataset"]["config"])
        return jsonl(rec), {"submitter": "Ada"}, r"dataset\.config|NUL"
    if choice == 3:
        rec = good_record(rng.randrange(10_000))
        rec["model"]["id"] = spliced("org/model-name")
        return jsonl(rec), {"submitter": "Ada"}, r"model\.id|NUL"
    if choice == 4:
        rec = good_record(7, method="fresh")
        description = "line one" + rng.choice(INVISIBLE + BIDI + ["\x00", "\x1b", "\u2028", "\u2029", "\ue000"]) + "two"
        return jsonl(rec), {"submitter": "Ada", "new_methods": {"fresh": description}}, "description of new method"
    if choice == 5:
        return data, {"submitter": "Ada", "checkpoints": [spliced("org/model")]}, "checkpoint"
    return data, {"submitter": "Ada", "link": spliced("https://example.org/x")}, "submitter link"


def hostile_cases(n: int, seed: int = 1234):
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        kind = i % 4
        if kind == 3:
            data, kwargs, pattern = _unicode_mutation(rng)
            cases.append((data, kwargs, [pattern]))
            continue
        if kind == 0:
            rec, pattern = _record_mutation(rng)
            # dump with allow_nan so infinities reach the parser as the tokens a hostile client would send
            data = jsonl(rec) if rng.random() < 0.5 else jsonl(good_record(99), rec)
            at = data.count(b"\n") - 1  # the hostile record is the last one
            cases.append((data, {"submitter": "Ada"}, [pattern, rf"^(record {at} \(line {at + 1}\)|line {at + 1}): "]))
        elif kind == 1:
            data, pattern = _bytes_mutation(rng)
            cases.append((data, {"submitter": "Ada"}, [pattern]))
        else:
            data, kwargs, pattern = _metadata_mutation(rng)
            cases.append((data, kwargs, [pattern]))
    return cases


def test_fuzz_hostile_submissions_are_rejected_and_store_unchanged(tmp_path):
    store = LocalStore(tmp_path / "store", rate_limit=RateLimit(1000, 3600), allow_local_checkpoints=False)
    existing = good_record(424242)
    submit_records(jsonl(existing), store, submitter="first")
    before = snapshot(store.root)

    cases = hostile_cases(320)
    # Duplicates of what is already stored are hostile too: same file again, same record under another name.
    cases.append((jsonl(existing), {"submitter": "first"}, ["already on the leaderboard"]))
    cases.append((jsonl(existing), {"submitter": "copycat"}, ["already on the leaderboard"]))
    assert len(cases) >= 200
    messages = []
    for data, kwargs, patterns in cases:
        with pytest.raises(SubmissionError) as info:
            submit_records(data, store, **kwargs)
        message = str(info.value)
        for pattern in patterns:
            assert re.search(pattern, message), (
                f"rejection message {message!r} does not say what was wrong (expected /{pattern}/)"
            )
        assert 10 < len(message) < 600 and "\n" not in message, f"unclear message: {message!r}"
        messages.append(message)
    assert snapshot(store.root) == before, "a rejected submission changed the store"
    assert len(store.submissions()) == 1
    # Messages quote hostile values shortened: none echoes a 1 MB payload.
    assert max(len(m) for m in messages) < 600


def test_rate_limit_per_submitter(tmp_path):
    store = LocalStore(tmp_path / "s", rate_limit=RateLimit(max_submissions=2, window_s=3600))
    submit_records(jsonl(good_record(1)), store, submitter="Ada")
    submit_records(jsonl(good_record(2)), store, submitter="ada ")  # same submitter: case and spaces ignored
    with pytest.raises(RateLimitError, match=r"'Ada' has sent 2 submissions .* the limit is 2; try again in \d+ s"):
        submit_records(jsonl(good_record(3)), store, submitter="Ada")
    submit_records(jsonl(good_record(4)), store, submitter="Grace")
    assert len(store.submissions()) == 3


def test_duplicates_are_rejected_with_the_original_named(tmp_path):
    store = LocalStore(tmp_path / "s")
    first = submit_records(jsonl(good_record(1), good_record(2)), store, submitter="Ada")
    with pytest.raises(DuplicateSubmissionError, match=f"already on the leaderboard as {first.submission_id[:12]}"):
        submit_records(jsonl(good_record(1), good_record(2)), store, submitter="Ada")
    later = copy.deepcopy(good_record(2))
    later["created_at"] = "2030-01-01T00:00:00+00:00"  # a new timestamp does not make a new result
    with pytest.raises(DuplicateSubmissionError, match=f"record 0 is already .*record 1 of submission {first.submission_id[:12]}"):
        submit_records(jsonl(later), store, submitter="Eve")


# --- the fuzz of hostile store files --------------------------------------------------------------------------


def _hostile_store_file(rng: random.Random, folder, name: str, good_bytes: bytes, tmp_path) -> None:
    """One planted file of a random hostile kind at ``folder/name`` (issue 7, attack 11)."""
    import os

    path = folder / name
    kind = rng.randrange(10)
    if kind == 0:
        os.mkfifo(path)
    elif kind == 1:
        path.symlink_to(rng.choice(["/dev/zero", "/dev/urandom", "/", str(tmp_path), "/etc/passwd", "missing"]))
    elif kind == 2:
        with open(path, "wb") as fh:
            fh.truncate(rng.choice([3 * 2**20, 2**31, 2**40]))
    elif kind == 3:
        path.mkdir()
    elif kind == 4:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    elif kind == 5:
        path.write_bytes(good_bytes[: rng.randrange(1, len(good_bytes))])
    elif kind == 6:
        path.write_text(json.dumps(rng.choice([[0], "x", 1, None, {"records": [0]}, {"format": 1, "records": {}}])))
    elif kind == 7:
        data = json.loads(good_bytes)
        data["submitter"]["name"] = "Ada" + rng.choice(INVISIBLE + BIDI + LOOK_ALIKES)
        path.write_text(json.dumps(data, ensure_ascii=False))
    elif kind == 8:
        path.write_bytes(good_bytes.replace(b'"Ada"', b'"Eve"'))  # edited: content no longer matches its name
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)


def test_fuzz_hostile_store_files_are_skipped_and_reported(tmp_path):
    import threading

    store = LocalStore(tmp_path / "store")
    good = submit_records(jsonl(good_record(1)), store, submitter="Ada")
    good_bytes = (store.root / "submissions" / f"{good.submission_id}.json").read_bytes()
    rng = random.Random(77)
    n = 60
    for i in range(n):
        name = hashlib.sha256(f"hostile {i}".encode()).hexdigest() + ".json"
        _hostile_store_file(rng, store.root / "submissions", name, good_bytes, tmp_path)
    result: dict = {}

    def read():
        fresh = LocalStore(tmp_path / "store")
        result["ids"] = [s.id for s in fresh.submissions()]
        result["problems"] = fresh.problems

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "reading a store of hostile files hung"
    assert result["ids"] == [good.submission_id]
    assert len(result["problems"]) == n, "every hostile file is reported once"
    assert all("\x1b" not in p and "\u202e" not in p and len(p) < 500 for p in result["problems"])


def _never_scores(*args, **kwargs):
    raise AssertionError("nothing may be scored without public datasets or a verifier key")


def test_checkpoints_without_public_datasets_are_stored_as_pending(tmp_path, monkeypatch):
    """verify_and_store raises VerificationNotConfigured after the submission is stored: submit_records (and
    submit_file, the CLI) reports the entry as pending with the fix, instead of a traceback."""
    from leaderboard import ranking
    from leaderboard.submit import submit_file
    from leaderboard.verify import VerificationNotConfigured, verify_and_store

    monkeypatch.delenv("LEADERBOARD_DATASETS", raising=False)
    store = LocalStore(tmp_path / "s")
    result = submit_records(jsonl(good_record(1)), store, submitter="Ada", checkpoints=["org/model"],
                            score_fn=_never_scores)
    assert result.verification is None and store.get(result.submission_id) is not None
    assert result.status == "pending" and not result.verified
    message = "\n".join(result.messages)
    assert "verification: pending" in message and "LEADERBOARD_DATASETS" in message and "Traceback" not in message
    assert not (store.root / "verifications").exists()
    with pytest.raises(VerificationNotConfigured, match="LEADERBOARD_DATASETS"):  # what submit_records caught
        verify_and_store(store, result.submission_id, score_fn=_never_scores)
    row = ranking.records_frame(store.submissions(), store.verifications()).iloc[0]
    assert row["status"] == "pending" and row["checkpoint"] == "org/model"

    # The same through submit_file, the library behind `hf-unlearn submit`, into an existing folder.
    (tmp_path / "board").mkdir()
    data = tmp_path / "r.jsonl"
    data.write_bytes(jsonl(good_record(2)))
    result = submit_file(data, tmp_path / "board", submitter="Ada", checkpoints=["org/model@v1"],
                         score_fn=_never_scores)
    assert result.status == "pending" and "verification: pending" in result.summary()
    # Without a checkpoint the entry is plainly unverified.
    plain = submit_records(jsonl(good_record(3)), store, submitter="Ada")
    assert plain.status == "unverified" and "unverified" in plain.summary()


def test_a_broken_public_dataset_setting_is_one_line_and_stores_nothing(tmp_path, monkeypatch):
    from leaderboard.submit import LeaderboardTargetError, submit_file

    monkeypatch.setenv("LEADERBOARD_DATASETS", "cifar10-gaussian")  # no '=': the operator's typo
    (tmp_path / "board").mkdir()
    data = tmp_path / "r.jsonl"
    data.write_bytes(jsonl(good_record(1)))
    with pytest.raises(LeaderboardTargetError, match=r"^cannot read the public datasets \(LEADERBOARD_DATASETS\): "
                                                     r"LEADERBOARD_DATASETS item 'cifar10-gaussian'"):
        submit_file(data, tmp_path / "board", submitter="Ada")
    assert list((tmp_path / "board").iterdir()) == []


def test_a_hub_store_without_verifier_key_leaves_checkpoints_pending_without_scoring(tmp_path, monkeypatch):
    """A Hub store trusts no verification without LEADERBOARD_VERIFIER_KEY, so scoring there would be wasted
    work ending in a StoreError traceback after the submission was committed: it is skipped, and said so."""
    from types import SimpleNamespace

    from leaderboard.store import HubStore

    monkeypatch.delenv("LEADERBOARD_VERIFIER_KEY", raising=False)
    commits = []
    api = SimpleNamespace(
        repo_info=lambda *a, **k: SimpleNamespace(sha="0" * 40), list_repo_files=lambda *a, **k: [],
        create_commit=lambda *a, **k: commits.append(k) or SimpleNamespace(oid="1" * 40),
    )
    from leaderboard.demo import demo_catalog

    store = HubStore("org/board", tmp_path / "mirror", api=api, catalog=demo_catalog())
    result = submit_records(jsonl(good_record(1)), store, submitter="Ada", checkpoints=["org/model"],
                            score_fn=_never_scores)
    assert len(commits) == 1 and result.status == "pending"
    assert "no verifier key (LEADERBOARD_VERIFIER_KEY)" in "\n".join(result.messages)


# --- the Space client and the submitter's names -------------------------------------------------


class FakeClient:
    """Stands in for gradio_client.Client: records how it was built and what was sent."""

    made: list[dict] = []
    reply: dict = {}

    def __init__(self, src, **kwargs):
        FakeClient.made.append({"src": src, **kwargs})

    def predict(self, *args, api_name):
        FakeClient.made[-1].update(args=args, api_name=api_name)
        return dict(FakeClient.reply)


@pytest.fixture
def fake_space(monkeypatch, tmp_path):
    import gradio_client
    import huggingface_hub

    FakeClient.made = []
    FakeClient.reply = {"ok": True, "submission_id": "ab" * 32, "num_records": 1, "messages": []}
    monkeypatch.setattr(gradio_client, "Client", FakeClient)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_saved")
    path = tmp_path / "r.jsonl"
    path.write_bytes(jsonl(good_record(1)))
    return path, monkeypatch


def test_space_submission_sends_the_hub_token_as_oauth_token(fake_space):
    from leaderboard.submit import submit_file

    path, monkeypatch = fake_space
    result = submit_file(path, "spaces/org/board", submitter="ada", display_name="Ada Lab")
    made = FakeClient.made[-1]
    assert made["src"] == "org/board" and made["oauth_token"] == "hf_saved" and made["verbose"] is False, \
        "a Space that requires login identifies the caller by the Hub token passed as oauth_token"
    assert made["api_name"] == "/submit_jsonl" and made["args"][1] == "Ada Lab", "the name box carries the display name"
    assert result.submission_id == "ab" * 32

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    submit_file(path, "spaces/org/board", submitter="ada")
    assert "oauth_token" not in FakeClient.made[-1] and FakeClient.made[-1]["args"][1] == "ada"
    FakeClient.reply = {"ok": False, "error": "rejected: sign in with Hugging Face first (the button above)"}
    with pytest.raises(SubmissionError, match=r"no Hub token here: run `hf auth login`"):
        submit_file(path, "spaces/org/board", submitter="ada")
    FakeClient.made = []
    with pytest.raises(SubmissionError, match="display name = .*reserved name 'verified'"):
        submit_file(path, "spaces/org/board", submitter="ada", display_name="verified lab")
    assert FakeClient.made == [], "a bad display name is refused before anything is sent"


def test_display_name_is_stored_and_shown_beside_the_submitter(tmp_path):
    from leaderboard.ranking import records_frame

    store = LocalStore(tmp_path / "board")
    result = submit_records(jsonl(good_record(3)), store, submitter="ada", display_name="Ada Lab", verify=False)
    stored = store.get(result.submission_id)
    assert stored.submission.submitter == {"name": "ada", "link": None, "display_name": "Ada Lab"}
    assert submission_from_dict(stored.submission.to_dict()).id == result.submission_id, "it survives a reload"
    assert set(records_frame(store.submissions(), store.verifications())["submitter"]) == {"Ada Lab (ada)"}
    plain = build_submission([good_record(3)], submitter="ada")
    assert plain.submitter == {"name": "ada", "link": None}, "no display name: the stored form (and id) is unchanged"
    for bad in ("@ada", "Ada\u200bLab", "hf-unlearn maintainers"):
        with pytest.raises(SubmissionError, match="^display name (=|contains)"):
            build_submission([good_record(3)], submitter="ada", display_name=bad)


def test_hub_accounts_are_identities_and_typed_names_follow_the_reserved_rules():
    for login in ("anonymous-dev", "admin-lab", "retrain"):
        sub = build_submission([good_record(4)], submitter=login, account=True)
        assert sub.submitter == {"name": login, "link": None, "account": True}
        assert submission_from_dict(sub.to_dict()).id == sub.id
        with pytest.raises(SubmissionError, match="submitter name = .*reserved name"):
            build_submission([good_record(4)], submitter=login)  # typed: still refused
    for bad in ("eve lab", "eve\u202egro", "@eve", "еve"):
        with pytest.raises(SubmissionError, match="Hub account name = "):
            build_submission([good_record(4)], submitter=bad, account=True)
    with pytest.raises(SubmissionError, match="leading '@' marks a signed-in Hub account"):
        build_submission([good_record(4)], submitter="@eve")
    planted = build_submission([good_record(4)], submitter="eve", account=True).to_dict()
    planted["submitter"]["account"] = "yes"
    with pytest.raises(SubmissionError, match="'account' must be true"):
        submission_from_dict(planted)
