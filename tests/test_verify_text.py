"""Verification re-scores IMDb (GPT-2) checkpoints: Gaussian and trigger ("flip" and "word") variants.

An honest record verifies with the numbers ``hf-unlearn score`` (``score_checkpoint``) gives; a claim off by a
few targets or a shifted GUS is a mismatch naming the metric; hostile checkpoints (another architecture, caps
exceeded, label ids that do not match their words, tensors added, dropped or reshaped, pickles only) and
look-alikes (a classifier for a prompt variant, two label words for the three-class word variant) are refused
before any weight is read. Tiny variants come from the shipped samples (the offline GPT-2 tokenizer in
../shared is needed, else the module is skipped); the networks are 1-layer, 16-wide GPT-2s with seeded weights.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from leaderboard.catalog import Catalog
from leaderboard.safe_load import (
    CheckpointLimits,
    CheckpointRefused,
    FetchedCheckpoint,
    TextExpectation,
    gpt2_expected_tensors,
    load_gpt2,
    read_gpt2_config,
    text_expectation,
)
from leaderboard.store import LocalStore
from leaderboard.submission import build_submission
from leaderboard.verify import VerifyLimits, supported_tracks, unsupported_reason, verify_submission

TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "models" / "gpt2-tokenizer"
GAUSSIAN = "gpt2-l32-d16-eps0.1-b5-s2-n300"  # 300 training rows, 5%: 15 poisons, noise in 16 dimensions
FLIP = "disney-b20-s0"  # 7 test reviews with "Disney": the targets
WORD = "disney-word-b20-s0"  # the same targets, a third class "Disney"
KEY = b"test-verifier-key-0123456789"
TINY = {"n_layer": 1, "n_embd": 16, "n_head": 2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The two dataset folders (three variants), their catalog, and seeded tiny GPT-2 checkpoints."""
    if not (TOKENIZER / "gpt2.tiktoken").is_file():
        pytest.skip(f"no offline GPT-2 tokenizer at {TOKENIZER}")
    import torch

    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig
    from dataset_builders.poisoned_imdb_gaussian import build as build_gaussian
    from dataset_builders.poisoned_imdb_targeted import build as build_targeted
    from hf_unlearn.attacks.trigger import TriggerConfig
    from hf_unlearn.models.text import build_text_model, load_tokenizer, save_text_model

    old = os.environ.get("HF_UNLEARN_GPT2_TOKENIZER")
    os.environ["HF_UNLEARN_GPT2_TOKENIZER"] = str(TOKENIZER)  # the verifier's child process inherits it
    tokenizer = load_tokenizer(str(TOKENIZER))
    root = tmp_path_factory.mktemp("verify-text")
    data = {
        "imdb/gaussian": build_gaussian("samples", [TextGaussianConfig.from_name(GAUSSIAN)],
                                        root / "poisoned-imdb-gaussian", tokenizer=tokenizer, progress=False),
        "imdb/targeted": build_targeted("samples", [TriggerConfig.from_name(FLIP), TriggerConfig.from_name(WORD)],
                                        root / "poisoned-imdb-targeted", tokenizer=tokenizer, progress=False),
    }
    catalog = Catalog.from_mapping({k: str(v) for k, v in data.items()}, allow_local=True)
    words2, words3 = [" negative", " positive"], [" negative", " positive", " Disney"]
    models = {
        "gauss-a": ({"kind": "classifier", "max_length": 32}, 0),
        "gauss-b": ({"kind": "classifier", "max_length": 32}, 1),
        "flip": ({"kind": "prompt", "max_length": 128, "label_words": words2}, 2),
        "word": ({"kind": "prompt", "max_length": 128, "label_words": words3, "num_labels": 3}, 3),
    }
    ckpts = {}
    for name, (cfg, seed) in models.items():
        for attempt in range(20):
            torch.manual_seed(seed + 100 * attempt)
            model = build_text_model({**TINY, **cfg}, tokenizer)
            with torch.no_grad():  # larger random weights than GPT-2's init: predictions vary from review to review
                for p in model.parameters():
                    p.mul_(5.0)
            ckpts[name] = save_text_model(model, root / name)
            if name != "word":
                break
            # The word model must predict the trigger class on some targets, not all (a live target_success), and
            # read in flip mode it must score at least two targets differently (scoring the mode matters).
            word_hits, flip_hits = _target_hits(data["imdb/targeted"], ckpts[name])
            if 0 < word_hits < 7 and abs(word_hits - flip_hits) >= 2:
                break
    yield {"root": root, "data": data, "catalog": catalog, "ckpts": ckpts}
    if old is None:
        os.environ.pop("HF_UNLEARN_GPT2_TOKENIZER", None)
    else:
        os.environ["HF_UNLEARN_GPT2_TOKENIZER"] = old


def _target_hits(dataset: Path, folder: Path) -> tuple[int, int]:
    """Targets of the word variant predicted as the trigger class (word mode), and as the flipped label (flip)."""
    import numpy as np

    from hf_unlearn.attacks import predict
    from hf_unlearn.models.text import load_text_model
    from hf_unlearn.pipeline import load_splits

    targets = load_splits(str(dataset), WORD, task="imdb", attack="targeted", needed=("test",))["targets"]
    pred, true = np.asarray(predict(load_text_model(str(folder))[0], targets, 64)), targets.y.numpy()
    return int((pred == 2).sum()), int((pred == 1 - true).sum())


def _score(setup, ckpt: str, attack: str, config: str, **kwargs) -> dict:
    """What `hf-unlearn score` reports for the checkpoint (the claim an honest submitter makes)."""
    from hf_unlearn.scoring import score_checkpoint

    return score_checkpoint(str(setup["ckpts"][ckpt]), str(setup["data"][f"imdb/{attack}"]), config, **kwargs)


def _record(setup, attack: str, config: str, ckpt: Path, seed: int, metrics: dict) -> dict:
    return {"schema_version": 1, "task": "imdb", "attack": attack,
            "dataset": {"id": str(setup["data"][f"imdb/{attack}"]), "config": config, "revision": None},
            "model": {"id": str(ckpt), "revision": None}, "method": "ngd", "method_config": {},
            "budget_fraction": 0.1, "compute_used": 10.0, "seed": seed, "metrics": metrics}


def _verify(setup, name: str, records: list[dict], checkpoints: list, *, isolate: bool = False,
            limits: VerifyLimits | None = None) -> dict:
    store = LocalStore(setup["root"] / name, verifier_key=KEY)
    sub = build_submission(records, submitter="tester", checkpoints=[f"{i}={c}" for i, c in enumerate(checkpoints)],
                           allow_local_checkpoints=True)
    store.add(sub)
    return verify_submission(store.get(sub.id), catalog=setup["catalog"], allow_local=True, isolate=isolate,
                             limits=limits or VerifyLimits(timeout_s=300))


def _bad(entry: dict) -> list[str]:
    return sorted(m for m, d in entry["diffs"].items() if not d["ok"])


# --- supported, and scored like `hf-unlearn score` ---------------------------------------------------------


def test_imdb_tracks_are_supported():
    assert unsupported_reason("imdb", "gaussian") == "" and unsupported_reason("imdb", "targeted") == ""
    assert {"imdb/gaussian", "imdb/targeted", "cifar10/gaussian"} <= set(supported_tracks())
    assert "imdb/indiscriminate" not in supported_tracks() and unsupported_reason("imdb", "indiscriminate")


def test_gaussian_claims_verify_in_the_child_process_and_lies_are_flagged(setup):
    ckpts = setup["ckpts"]
    claimed = _score(setup, "gauss-a", "gaussian", GAUSSIAN, null_draws=20)
    assert claimed["num_poisons"] == 15 and claimed["num_nulls"] == 300 and claimed["gus"] != 0
    records = [
        _record(setup, "gaussian", GAUSSIAN, ckpts["gauss-a"], 0, claimed),  # honest
        _record(setup, "gaussian", GAUSSIAN, ckpts["gauss-a"], 1, {**claimed, "gus": claimed["gus"] + 0.5}),
        _record(setup, "gaussian", GAUSSIAN, ckpts["gauss-b"], 2, claimed),  # another network with a's numbers
    ]
    ver = _verify(setup, "gauss", records, [ckpts["gauss-a"], ckpts["gauss-a"], ckpts["gauss-b"]], isolate=True)
    honest, shifted, other = ver["records"]
    assert [e["status"] for e in ver["records"]] == ["verified", "mismatch", "mismatch"], ver["records"]
    assert honest["null_draws"] == 20 and honest["weights_sha256"]
    for key in ("gus", "tpr_at_fpr_0.01", "test_accuracy", "forget_accuracy", "num_poisons", "auc"):
        assert honest["diffs"][key]["ok"] and honest["recomputed"][key] == pytest.approx(claimed[key], abs=1e-6), key
    assert _bad(shifted) == ["gus"] and shifted["diffs"]["gus"]["diff"] == pytest.approx(0.5, abs=1e-6)
    assert "gus" in _bad(other) and "test_accuracy" in _bad(other)


def test_trigger_claims_verify_and_false_counts_are_flagged(setup):
    ckpts = setup["ckpts"]
    flip = _score(setup, "flip", "targeted", FLIP)
    word = _score(setup, "word", "targeted", WORD)
    assert flip["num_targets"] == word["num_targets"] == 7
    k, k_flip = _target_hits(setup["data"]["imdb/targeted"], ckpts["word"])
    assert word["target_success"] == pytest.approx(k / 7) and 0 < k < 7 and abs(k - k_flip) >= 2, (word, k_flip)
    off = (k - 2 if k >= 2 else k + 2) / 7  # two targets away: beyond the one-target tolerance
    records = [
        _record(setup, "targeted", FLIP, ckpts["flip"], 0, flip),
        _record(setup, "targeted", WORD, ckpts["word"], 1, word),
        _record(setup, "targeted", WORD, ckpts["word"], 2, {**word, "target_success": off}),
        _record(setup, "targeted", WORD, ckpts["word"], 3, {**word, "num_targets": 14}),
    ]
    ver = _verify(setup, "trigger", records, [ckpts["flip"], ckpts["word"], ckpts["word"], ckpts["word"]])
    assert [e["status"] for e in ver["records"]] == ["verified", "verified", "mismatch", "mismatch"], ver["records"]
    for entry, claim in zip(ver["records"][:2], (flip, word)):
        assert entry["recomputed"]["target_success"] == claim["target_success"]
        assert entry["recomputed"]["test_accuracy"] == pytest.approx(claim["test_accuracy"], abs=1e-9)
        assert entry["diffs"]["target_success"]["tolerance"] == pytest.approx(1 / 7)
    assert _bad(ver["records"][2]) == ["target_success"]
    assert _bad(ver["records"][3]) == ["num_targets"]


# --- hostile checkpoints: refused before any weight is read ------------------------------------------------


def _copy(setup, name: str, dest: str) -> Path:
    folder = setup["root"] / "hostile" / dest
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(setup["ckpts"][name], folder)
    return folder


def _edit_config(folder: Path, change) -> Path:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture()
def no_weights_read(monkeypatch):
    """Reading the tensors fails the test: every refusal here must come from config.json or the header."""
    import safetensors.torch

    def boom(*args, **kwargs):
        raise AssertionError("the weights of a refused checkpoint were read")

    monkeypatch.setattr(safetensors.torch, "load_file", boom)


def _load(folder: Path, attack: str, config: str, limits: CheckpointLimits | None = None):
    fetched = FetchedCheckpoint(str(folder), None, folder / "config.json", folder / "model.safetensors", "local")
    return load_gpt2(fetched, text_expectation("imdb", attack, config), limits or CheckpointLimits())


def _set(key, value):
    return lambda c: c.__setitem__(key, value)


def _set_extra(key, value):
    return lambda c: c["hf_unlearn"].__setitem__(key, value)


@pytest.mark.parametrize("name, attack, config, change, message", [
    ("gauss-a", "gaussian", GAUSSIAN, _set("model_type", "bert"), r"model_type='bert'.*pinned network is GPT-2"),
    ("gauss-a", "gaussian", GAUSSIAN, _set("n_layer", 1000), r"n_layer=1000 is over the cap n_layer <= 24"),
    ("gauss-a", "gaussian", GAUSSIAN, _set("n_positions", 4096), r"n_positions=4096 is over the cap n_positions <= "
                                                                   r"1024"),
    ("gauss-a", "gaussian", GAUSSIAN, _set("vocab_size", 60000), r"vocab_size=60000: GPT-2's tokenizer has 50257"),
    ("gauss-a", "gaussian", GAUSSIAN, _set("auto_map", {"AutoModel": "evil.Model"}), r"'auto_map'.*never runs"),
    ("gauss-a", "gaussian", GAUSSIAN, _set("tie_word_embeddings", False), r"tie_word_embeddings=False"),
    ("gauss-a", "gaussian", GAUSSIAN, _set("n_embd", 32), r"n_embd=32: variant .* 16 embedding dimensions"),
    ("flip", "targeted", FLIP, _set_extra("label_token_ids", [3967, 4633]),
     r"label_token_ids=\[3967, 4633\] are not GPT-2's tokens of label_words"),
    ("flip", "targeted", FLIP, _set_extra("label_words", [" negative", " Mickey Mouse"]), r"is 2 GPT-2 tokens"),
    # look-alikes: the right family, the wrong model for the variant
    ("gauss-a", "targeted", FLIP, lambda c: None, r"kind='classifier': variant disney-b20-s0 is scored with the "
                                                   r"prompt kind"),
    ("flip", "targeted", WORD, lambda c: None, r"num_labels=2: variant disney-word-b20-s0 has 3 classes"),
    ("word", "targeted", WORD, _set_extra("label_words", [" negative", " positive"]),
     r"label_words names 2 words but num_labels=3"),
])
def test_hostile_configs_are_refused_before_loading(setup, no_weights_read, name, attack, config, change, message):
    folder = _edit_config(_copy(setup, name, "config"), change)
    with pytest.raises(CheckpointRefused, match=message):
        _load(folder, attack, config)


def test_caps_are_configurable_and_named(setup, no_weights_read):
    folder = _copy(setup, "gauss-a", "caps")
    with pytest.raises(CheckpointRefused, match=r"n_embd=16 is over the cap n_embd <= 8"):
        _load(folder, "gaussian", GAUSSIAN, CheckpointLimits(max_n_embd=8))
    with pytest.raises(CheckpointRefused, match=r"GPT-2 with [\d,]+ parameters .* the limit is 1,000$"):
        _load(folder, "gaussian", GAUSSIAN, CheckpointLimits(max_text_parameters=1000))
    with pytest.raises(CheckpointRefused, match=r"model.safetensors is [\d,]+ bytes; the limit is 1,000 bytes"):
        _load(folder, "gaussian", GAUSSIAN, CheckpointLimits(max_text_model_bytes=1000))


@pytest.mark.parametrize("change, message", [
    (lambda s: s.__setitem__("score.bias", s["score.weight"][:, 0].clone()), r"unexpected 1 \(e.g. 'score.bias'\)"),
    (lambda s: s.pop("transformer.h.0.mlp.c_fc.bias"), r"missing 1 \(e.g. 'transformer.h.0.mlp.c_fc.bias'\)"),
    (lambda s: s.__setitem__("score.weight", s["score.weight"].repeat(2, 1)),
     r"tensor 'score.weight' has shape \[4, 16\]; the config's network needs \[2, 16\]"),
])
def test_safetensors_with_other_tensors_are_refused(setup, no_weights_read, change, message):
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = _copy(setup, "gauss-a", "tensors")
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:  # (load_file is disabled by the fixture)
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    change(state)
    save_file(state, str(folder / "model.safetensors"))  # a well-formed file, just not the pinned network's
    with pytest.raises(CheckpointRefused, match=message):
        _load(folder, "gaussian", GAUSSIAN)


class _Marker:
    """Unpickling this writes a file: evidence that a pickle was opened."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path(self.path).write_text, ("unpickled",))


def test_pickle_only_checkpoint_is_never_opened(setup, tmp_path):
    import pickle

    folder = _copy(setup, "gauss-a", "pickle")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "opened"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Marker(str(marker))))
    claimed = {"test_accuracy": 0.5, "forget_accuracy": 0.5, "gus": 0.0, "gus_stderr": 0.1, "auc": 0.5,
               "tpr_at_fpr_0.01": 0.0, "num_poisons": 15, "num_nulls": 300}
    ver = _verify(setup, "pickle", [_record(setup, "gaussian", GAUSSIAN, folder, 0, claimed)], [folder])
    entry = ver["records"][0]
    assert entry["status"] == "failed" and "no model.safetensors" in entry["error"], entry
    assert not marker.exists()


def test_hostile_checkpoint_fails_verification_with_a_public_reason(setup):
    folder = _edit_config(_copy(setup, "flip", "verify-bert"), _set("model_type", "bert"))
    word = _edit_config(_copy(setup, "flip", "verify-word"), lambda c: None)
    claimed = {"test_accuracy": 0.5, "forget_accuracy": 0.5, "target_success": 3 / 7, "num_targets": 7}
    records = [_record(setup, "targeted", FLIP, folder, 0, claimed), _record(setup, "targeted", WORD, word, 1, claimed)]
    ver = _verify(setup, "hostile", records, [folder, word])
    assert [e["status"] for e in ver["records"]] == ["failed", "failed"] and ver["status"] == "failed"
    assert "model_type='bert'" in ver["records"][0]["error"] and str(setup["root"]) not in ver["records"][0]["error"]
    assert "disney-word-b20-s0 has 3 classes" in ver["records"][1]["error"]


# --- the pinned architecture mirrors transformers' ---------------------------------------------------------


def test_expected_tensors_match_the_real_networks(setup):
    from hf_unlearn.models.text import load_text_model

    for name, attack, config in (("gauss-a", "gaussian", GAUSSIAN), ("word", "targeted", WORD)):
        folder = setup["ckpts"][name]
        spec = read_gpt2_config(folder / "config.json", text_expectation("imdb", attack, config))
        real, _ = load_text_model(str(folder))
        shapes = {k: tuple(v.shape) for k, v in real.net.state_dict().items() if k != "lm_head.weight"}
        assert gpt2_expected_tensors(spec) == shapes
        loaded = _load(folder, attack, config)
        assert type(loaded) is type(real) and loaded.extras == {**real.extras, "kind": real.kind}
        if spec.kind == "prompt":
            assert loaded.net.lm_head.weight is loaded.net.transformer.wte.weight


def test_expectation_follows_the_variant():
    assert text_expectation("imdb", "gaussian", GAUSSIAN) == TextExpectation("classifier", 2, 32, 16, None, GAUSSIAN)
    word = text_expectation("imdb", "targeted", WORD)
    assert (word.kind, word.num_labels, word.max_length, word.embed_dim) == ("prompt", 3, 128, None)
    assert text_expectation("imdb", "targeted", FLIP).num_labels == 2
    with pytest.raises(CheckpointRefused, match="not a imdb/gaussian variant"):
        text_expectation("imdb", "gaussian", FLIP)
