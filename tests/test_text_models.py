"""GPT-2 tokenizer and wrappers (hf_unlearn.models.text): known token ids, padding invariance, the
inputs_embeds path against plain transformers, safetensors round trips, blocks for EU-k/CF-k.

Models are tiny (2 layers, 32 dims, random weights) with GPT-2's real 50,257-token vocabulary; the
tokenizer is rebuilt offline from ../shared/models/gpt2-tokenizer (skipped where that copy is absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_unlearn.models import text as text_models
from hf_unlearn.models.text import (
    GPT2Classifier,
    GPT2PromptClassifier,
    TextInputs,
    TextModelConfig,
    build_text_model,
    load_text_model,
    load_tokenizer,
    save_text_model,
)

SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "models" / "gpt2-tokenizer"
KINDS = ("classifier", "prompt")
SHORT = "A fine film."
LONG = "Terrible. A boring plot, wooden acting and an ending that goes on and on and on for ever."


@pytest.fixture(scope="module")
def tokenizer():
    if not (SHARED_TOKENIZER / "gpt2.tiktoken").is_file():
        pytest.skip(f"no offline GPT-2 tokenizer at {SHARED_TOKENIZER}")
    return load_tokenizer(SHARED_TOKENIZER)


def tiny(kind: str, tokenizer, seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = TextModelConfig(kind=kind, n_layer=2, n_embd=32, n_head=2, max_length=kw.pop("max_length", 64), **kw)
    return build_text_model(cfg, tokenizer).eval()


def batch(tokenizer, texts: list[str]) -> TextInputs:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return TextInputs(enc["input_ids"], enc["attention_mask"])


# ----------------------------------------------------------------------------- tokenizer
def test_tokenizer_known_ids_and_left_padding(tokenizer):
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer("The movie wasn't great")["input_ids"] == [464, 3807, 2492, 470, 1049]
    assert (tokenizer.padding_side, tokenizer.pad_token_id, tokenizer.eos_token_id) == ("left", 50256, 50256)
    enc = tokenizer(["a b c", "hi"], padding=True)
    assert enc["input_ids"][1][:2] == [50256, 50256] and enc["attention_mask"][1] == [0, 0, 1]


def test_tokenizer_env_override_and_offline_error(tokenizer, monkeypatch, tmp_path):
    monkeypatch.setenv(text_models.TOKENIZER_ENV, str(SHARED_TOKENIZER / "gpt2.tiktoken"))
    assert load_tokenizer()("Hello world")["input_ids"] == [15496, 995]
    # Offline, no env variable, no local copy: the error names the variable to set.
    monkeypatch.delenv(text_models.TOKENIZER_ENV)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(text_models, "_SHARED_TOKENIZER", tmp_path / "nothing-here")
    with pytest.raises(OSError, match=text_models.TOKENIZER_ENV):
        load_tokenizer()


def test_saved_tokenizer_folder_loads(tokenizer, tmp_path):
    tokenizer.save_pretrained(str(tmp_path))
    again = load_tokenizer(tmp_path)
    assert again("Hello world")["input_ids"] == [15496, 995] and again.padding_side == "left"


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("kind", KINDS)
def test_same_logits_alone_and_left_padded_in_a_batch(tokenizer, kind):
    model = tiny(kind, tokenizer)
    with torch.no_grad():
        both = model(batch(tokenizer, [SHORT, LONG]))
        alone = model(batch(tokenizer, [SHORT]))
        long_alone = model(batch(tokenizer, [LONG]))
    assert batch(tokenizer, [SHORT, LONG]).mask[0, 0] == 0, "the short review must be left-padded in the batch"
    assert both.shape == (2, 2)
    torch.testing.assert_close(both[0], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(both[1], long_alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_embeds_path_equals_plain_transformers(tokenizer, kind):
    model = tiny(kind, tokenizer)
    ids = torch.tensor([tokenizer.encode(LONG)])
    with torch.no_grad():
        ours = model(ids)
        bare = model.net(input_ids=ids).logits
        if kind == "prompt":
            bare = bare[:, -1, model.label_token_ids]
    torch.testing.assert_close(ours, bare, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_noise_is_added_to_the_token_embeddings(tokenizer, kind):
    model = tiny(kind, tokenizer)
    x = batch(tokenizer, [SHORT, LONG])
    noise = torch.randn(*x.ids.shape, model.embed_dim, generator=torch.Generator().manual_seed(1)) * x.mask[..., None]
    with torch.no_grad():
        noisy = model(TextInputs(x.ids, x.mask, noise))
        by_hand = model.forward_embeds(model.transformer.wte(x.ids) + noise, x.mask)
        clean = model(x)
    torch.testing.assert_close(noisy, by_hand)
    assert not torch.allclose(noisy, clean, atol=1e-4), "noise of std 1 must change the logits"


def test_prompt_model_reads_the_label_words(tokenizer):
    model = tiny("prompt", tokenizer)
    assert model.label_token_ids.tolist() == [tokenizer.encode(" negative")[0], tokenizer.encode(" positive")[0]]
    assert model.extras["prompt_suffix_ids"] == tokenizer.encode(" The sentiment of the review is:")


def test_too_long_input_is_refused(tokenizer):
    model = tiny("classifier", tokenizer, max_length=8)
    with pytest.raises(ValueError, match="max_length=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


# ----------------------------------------------------------------------------- saving and loading
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_and_plain_transformers_load(tokenizer, kind, tmp_path):
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    model = tiny(kind, tokenizer)
    save_text_model(model, tmp_path, {"role": "poisoned", "epochs": 1}, tokenizer=tokenizer)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["hf_unlearn"]["kind"] == kind and config["pad_token_id"] == 50256

    again, summary = load_text_model(tmp_path)
    assert isinstance(again, GPT2Classifier if kind == "classifier" else GPT2PromptClassifier)
    assert summary == {"role": "poisoned", "epochs": 1} and not again.training
    x = batch(tokenizer, [SHORT, LONG])
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)

    ids = torch.tensor([tokenizer.encode(LONG)])
    plain_cls = GPT2ForSequenceClassification if kind == "classifier" else GPT2LMHeadModel
    plain = plain_cls.from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        logits = plain(input_ids=ids).logits
        logits = logits if kind == "classifier" else logits[:, -1, model.label_token_ids]
        torch.testing.assert_close(logits, model(ids), atol=1e-5, rtol=0)
    assert load_tokenizer(tmp_path)("Hello world")["input_ids"] == [15496, 995]


def test_load_refuses_pickles_and_foreign_folders(tokenizer, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_text_model(pickled)
    plain = tmp_path / "plain"
    model = tiny("classifier", tokenizer)
    model.net.save_pretrained(str(plain))  # a transformers folder without the wrapper's extras
    with pytest.raises(ValueError, match="hf_unlearn"):
        load_text_model(plain)
    with pytest.raises(FileNotFoundError, match="no such folder, and not a Hub repo id"):
        load_text_model(str(tmp_path / "missing"))


# ----------------------------------------------------------------------------- config and blocks
def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="kind="):
        TextModelConfig(kind="regressor", n_layer=1, n_embd=8, n_head=2)
    with pytest.raises(ValueError, match="n_layer"):
        TextModelConfig(kind="classifier", n_embd=8, n_head=2)
    with pytest.raises(ValueError, match="valid keys"):
        TextModelConfig.from_dict({"kind": "classifier", "layers": 2})
    assert TextModelConfig.from_dict({"kind": "prompt", "pretrained": "openai-community/gpt2-medium"}).n_layer is None


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_cover_the_model_once_and_reset_like_gpt2(tokenizer, kind):
    from hf_unlearn.unlearn.base import freeze_all_but_last

    model = tiny(kind, tokenizer)
    blocks = model.blocks()
    assert len(blocks) == 2 + 2  # embeddings, h.0, h.1, head
    owned = [id(p) for b in blocks for p in b.parameters()]
    assert sorted(owned) == sorted({id(p) for p in model.parameters()}), "every parameter in exactly one block"
    assert len(model.state_dict()) == len(model.net.state_dict()), "blocks must not add state"

    trainable = freeze_all_but_last(model, 2)
    assert {id(p) for p in model.parameters() if p.requires_grad} == {id(p) for b in trainable for p in b.parameters()}
    assert not any(p.requires_grad for p in model.transformer.wte.parameters())

    attn = model.transformer.h[1].attn.c_attn.weight
    with torch.no_grad():
        attn.fill_(1.0)
    torch.manual_seed(0)
    blocks[2].reset_parameters()
    assert 0.015 < float(attn.detach().std()) < 0.025, "Conv1D weights re-drawn from N(0, 0.02)"
    assert float(model.transformer.h[1].ln_1.weight.detach().sum()) == model.embed_dim
