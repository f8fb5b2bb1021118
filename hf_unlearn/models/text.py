"""GPT-2 tokenizer and text models for the IMDb track (issue 9; contract in the plug-in notes).

Why this module exists: the paper's IMDb experiments fine-tune GPT-2 (a classification head for the
Gaussian attack, the causal LM for the "Disney" trigger attack) and place Gaussian poisons on the token
EMBEDDINGS of the real tokens. Both wrappers therefore build the input embeddings themselves
(``wte(ids) + noise``) and pass ``inputs_embeds`` to transformers, with position ids computed from the
LEFT-padded attention mask so that a review gets the same logits whatever padding its batch needs.

Models save as plain transformers folders (``config.json`` + ``model.safetensors``, nothing pickled):
``GPT2ForSequenceClassification.from_pretrained(folder)`` / ``GPT2LMHeadModel.from_pretrained(folder)``
load them for users, and the wrapper's extras live in ``config.json`` under ``"hf_unlearn"``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEFAULT_TOKENIZER = "openai-community/gpt2"
TOKENIZER_ENV = "HF_UNLEARN_GPT2_TOKENIZER"
TIKTOKEN_FILE = "gpt2.tiktoken"
GPT2_EOS_ID = 50256
# GPT-2's pre-tokenizer regex (tiktoken "gpt2" encoding); with the ranks it rebuilds the exact tokenizer.
_GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# The offline copy of the ranks beside the repository (../shared/models/gpt2-tokenizer), used when the
# Hub cannot be reached and no folder was named.
_SHARED_TOKENIZER = Path(__file__).resolve().parents[3] / "shared" / "models" / "gpt2-tokenizer"


# ---------------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------------


def _read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file (one ``base64(token) rank`` per line) without needing ``tiktoken``."""
    ranks: dict[bytes, int] = {}
    for line_no, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{line_no}: expected 'base64token rank', got {line!r}")
        ranks[base64.b64decode(parts[0])] = int(parts[1])
    return ranks


def _tokenizer_from_tiktoken(path: Path):
    """Rebuild GPT-2's fast tokenizer from its BPE ranks with transformers' ``TikTokenConverter``."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class _Converter(TikTokenConverter):
        # transformers reads the ranks with the optional `tiktoken` package; the format is trivial, so
        # read it here and keep the dependency list short.
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return _read_tiktoken_ranks(Path(tiktoken_url))

    converted = _Converter(
        vocab_file=str(path), pattern=_GPT2_PATTERN, extra_special_tokens={"<|endoftext|>": GPT2_EOS_ID}
    ).converted()
    return PreTrainedTokenizerFast(tokenizer_object=converted, eos_token="<|endoftext|>")


@lru_cache(maxsize=4)
def _load_tokenizer_cached(source: str):
    from transformers import AutoTokenizer

    folder = Path(source)
    if folder.is_dir():
        if (folder / TIKTOKEN_FILE).is_file() and not (folder / "tokenizer.json").is_file():
            return _tokenizer_from_tiktoken(folder / TIKTOKEN_FILE)
        return AutoTokenizer.from_pretrained(str(folder))
    if folder.is_file() and folder.name.endswith(".tiktoken"):
        return _tokenizer_from_tiktoken(folder)
    return AutoTokenizer.from_pretrained(source)


def load_tokenizer(path_or_id: str | os.PathLike | None = None):
    """GPT-2's tokenizer, left-padded with pad = eos (50256), as every text split and model here expects.

    ``path_or_id``: a Hub id, a tokenizer folder (``tokenizer.json`` ...), or a folder / file holding
    ``gpt2.tiktoken`` (rebuilt offline, "Hello world" -> [15496, 995]). ``None`` means the environment
    variable ``HF_UNLEARN_GPT2_TOKENIZER`` if set, else the Hub id ``openai-community/gpt2``, falling back
    to the offline copy ``../shared/models/gpt2-tokenizer`` beside the repository when the Hub is
    unreachable. Left padding keeps every review's last real token at the last position, where both
    wrappers read their logits.
    """
    if path_or_id is None:
        path_or_id = os.environ.get(TOKENIZER_ENV) or None
    if path_or_id is not None:
        tokenizer = _load_tokenizer_cached(str(path_or_id))
    else:
        try:
            tokenizer = _load_tokenizer_cached(DEFAULT_TOKENIZER)
        except OSError as err:  # offline / unreachable Hub: use the local ranks if they are here
            if not (_SHARED_TOKENIZER / TIKTOKEN_FILE).is_file():
                raise OSError(
                    f"could not load the GPT-2 tokenizer {DEFAULT_TOKENIZER!r} from the Hub ({err}) and no "
                    f"local copy was found: set {TOKENIZER_ENV} to a folder holding {TIKTOKEN_FILE} or a "
                    "saved tokenizer, or pass load_tokenizer(path)."
                ) from err
            tokenizer = _load_tokenizer_cached(str(_SHARED_TOKENIZER))
    # The cached object is shared: set the padding contract on it every call (cheap and idempotent).
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "right"  # keep the FIRST max_length tokens
    if tokenizer.eos_token is None:
        raise ValueError(f"tokenizer {path_or_id!r} has no eos token; GPT-2's pads with eos (id {GPT2_EOS_ID})")
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# ---------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------

MODEL_KINDS = ("classifier", "prompt")
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "training_summary.json"
EXTRAS_KEY = "hf_unlearn"  # the wrapper's extras inside config.json


@dataclass
class TextModelConfig:
    """Which GPT-2 to build for the IMDb track.

    ``kind``: "classifier" (GPT2ForSequenceClassification, the Gaussian attack's model) or "prompt"
    (GPT2LMHeadModel read at the label words, the trigger attack's model). ``n_layer``/``n_embd``/``n_head``
    size a from-scratch model (random weights, the CPU presets); with ``pretrained`` (a Hub id such as
    "openai-community/gpt2-medium", the paper's model, or a local folder) the architecture comes from the
    checkpoint and they are ignored. ``max_length`` counts every token the model sees (review + suffix).
    """

    kind: str = "classifier"
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    max_length: int = 128  # tokens per input, left-padded; the first max_length tokens are kept
    pretrained: str | None = None
    num_labels: int = 2
    label_words: tuple[str, ...] = (" negative", " positive")  # prompt kind: one GPT-2 token each
    prompt_suffix: str = " The sentiment of the review is:"  # prompt kind: appended after the review

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {MODEL_KINDS}")
        if self.pretrained is None:
            sizes = {"n_layer": self.n_layer, "n_embd": self.n_embd, "n_head": self.n_head}
            missing = [k for k, v in sizes.items() if v is None]
            if missing:
                raise ValueError(f"a from-scratch text model needs {missing}; set them or name `pretrained`")
            if any(int(v) < 1 for v in sizes.values()) or self.n_embd % self.n_head:
                raise ValueError(f"{sizes}: sizes must be >= 1 and n_embd divisible by n_head")
        if self.max_length < 2:
            raise ValueError(f"max_length={self.max_length}: need at least 2 tokens")
        if self.num_labels < 2:
            raise ValueError(f"num_labels={self.num_labels}: need at least 2 classes")
        self.label_words = tuple(self.label_words)
        if self.kind == "prompt" and len(self.label_words) != self.num_labels:
            raise ValueError(f"label_words={self.label_words}: the prompt kind needs one word per label "
                             f"(num_labels={self.num_labels})")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TextModelConfig":
        """From a mapping (e.g. the text fields of a training config); unknown keys raise, naming the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} for TextModelConfig; valid keys: {valid}")
        return cls(**dict(data))


@dataclass
class TextInputs:
    """A batch of left-padded token ids, their mask (1 = real token) and optional embedding noise.

    ``noise`` (B, L, d) is added to the token embeddings; it is zero at pad positions, on clean rows and
    (prompt model) on the suffix. ``None`` means no noise at all. Built by ``TextSplit.inputs``
    (``hf_unlearn.tasks.imdb``); batches of different lengths join with ``TextSplit.cat_inputs``.
    """

    ids: torch.Tensor  # int64 (B, L)
    mask: torch.Tensor  # int64 (B, L)
    noise: torch.Tensor | None = None  # float32 (B, L, d)
    pad_id: int = GPT2_EOS_ID  # the id left-padding uses (when batches are concatenated)

    def __post_init__(self) -> None:
        if self.ids.dim() != 2 or self.ids.shape != self.mask.shape:
            raise ValueError(f"ids {tuple(self.ids.shape)} and mask {tuple(self.mask.shape)} must both be (B, L)")
        if self.noise is not None and (self.noise.dim() != 3 or self.noise.shape[:2] != self.ids.shape):
            raise ValueError(f"noise {tuple(self.noise.shape)} must be (B, L, d) with (B, L) = {tuple(self.ids.shape)}")

    def __len__(self) -> int:
        return self.ids.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TextInputs":
        noise = None if self.noise is None else self.noise.to(device, non_blocking=non_blocking)
        return TextInputs(self.ids.to(device, non_blocking=non_blocking),
                          self.mask.to(device, non_blocking=non_blocking), noise, self.pad_id)


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, ... over the real tokens of a LEFT-padded row (pads get 0): padding never shifts positions."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def _as_inputs(x: "TextInputs | torch.Tensor") -> TextInputs:
    if isinstance(x, TextInputs):
        return x
    if isinstance(x, torch.Tensor) and x.dim() == 2 and not x.is_floating_point():
        return TextInputs(x, torch.ones_like(x))  # bare ids: every token is real (no padding)
    raise TypeError(f"expected TextInputs or an int64 (B, L) tensor of token ids, got {type(x).__name__}"
                    f"{tuple(x.shape) if isinstance(x, torch.Tensor) else ''}")


class _Block(nn.Module):
    """A group of GPT-2 modules addressed as one block by EU-k / CF-k (``blocks()``).

    ``reset_parameters`` re-initialises the group the way GPT-2 initialises itself (normal(0, 0.02),
    residual projections scaled by 1/sqrt(2 n_layer), LayerNorm = identity, zero biases): transformers'
    ``Conv1D`` has no ``reset_parameters`` of its own. Built per ``blocks()`` call, never a submodule of
    the model, so the weights are not listed twice in its state dict.
    """

    def __init__(self, parts: list[nn.Module], config) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self._std = float(config.initializer_range)
        self._proj_std = self._std / math.sqrt(2 * config.n_layer)

    def forward(self, *args, **kwargs):  # pragma: no cover - a block is a handle, not a layer
        raise RuntimeError("a _Block groups modules for EU-k/CF-k; call the model, not its blocks")

    @torch.no_grad()
    def reset_parameters(self) -> None:
        from transformers.pytorch_utils import Conv1D

        for name, module in self.parts.named_modules():
            if isinstance(module, (Conv1D, nn.Linear)):
                std = self._proj_std if name.endswith("c_proj") else self._std
                nn.init.normal_(module.weight, 0.0, std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, self._std)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class _TextModel(nn.Module):
    """What both wrappers share: embeddings (+ noise), left-padding-safe positions, blocks, saving."""

    kind: str

    def __init__(self, net, extras: Mapping[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.extras = dict(extras)
        self.max_length = int(extras["max_length"])
        self.pad_token_id = int(extras["pad_token_id"])

    @property
    def transformer(self):
        return self.net.transformer

    @property
    def embed_dim(self) -> int:
        return int(self.net.config.n_embd)

    @property
    def num_labels(self) -> int:
        return int(self.extras["num_labels"])

    def embed(self, ids: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings ``wte(ids)`` (+ ``noise``), in float32: the space Gaussian poisons live in."""
        embeds = self.transformer.wte(ids)
        if noise is not None:
            if noise.shape != embeds.shape:
                raise ValueError(f"noise {tuple(noise.shape)} does not match the embeddings {tuple(embeds.shape)}: the "
                                 f"variant's noise was drawn for another embedding size than this model's {self.embed_dim}")
            embeds = embeds + noise.to(embeds.dtype)
        return embeds

    def _last_hidden(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.transformer(
            inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids(mask), use_cache=False
        )
        return out.last_hidden_state[:, -1]  # left padding: the last position is every row's last real token

    def forward_embeds(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_labels) from input embeddings (B, L, d) and their mask; used for input gradients."""
        raise NotImplementedError

    def forward(self, x: "TextInputs | torch.Tensor") -> torch.Tensor:
        """Logits (B, num_labels) of ``TextInputs`` (noise added to the embeddings) or of bare unpadded ids."""
        x = _as_inputs(x)
        if x.ids.shape[1] > self.max_length:
            raise ValueError(f"{x.ids.shape[1]} tokens exceed the model's max_length={self.max_length}; "
                             "tokenise with truncation to max_length")
        return self.forward_embeds(self.embed(x.ids, x.noise), x.mask)

    def _head(self) -> list[nn.Module]:
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        """Embeddings (wte, wpe), the transformer blocks h.0 .. h.{n-1}, then the head, input to output.

        "The last k blocks" in EU-k / CF-k means ``blocks()[-k:]``.
        """
        config = self.net.config
        t = self.transformer
        return [_Block([t.wte, t.wpe], config), *(_Block([h], config) for h in t.h), _Block(self._head(), config)]

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """A plain transformers folder (config.json with the extras under "hf_unlearn", model.safetensors)."""
        self.net.config.pad_token_id = self.pad_token_id
        setattr(self.net.config, EXTRAS_KEY, {**self.extras, "kind": self.kind})
        with _quiet():
            self.net.save_pretrained(str(folder), safe_serialization=True)


class GPT2Classifier(_TextModel):
    """GPT2ForSequenceClassification read at the last position (left padding): the Gaussian attack's model."""

    kind = "classifier"

    def forward_embeds(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net.score(self._last_hidden(embeds, mask))

    def _head(self) -> list[nn.Module]:
        return [self.transformer.ln_f, self.net.score]


class GPT2PromptClassifier(_TextModel):
    """GPT2LMHeadModel asked "review + suffix" and read at the label words: the trigger attack's model.

    The logits are the LM's next-token logits of the label words (" negative", " positive") at the last
    position, so cross-entropy over them is the causal-LM loss on the label token restricted to the two
    label words (a documented CPU simplification of the paper's full-vocabulary LM fine-tuning).
    The LM head is tied to the token embeddings (GPT-2), so ``blocks()``'s head is ``ln_f`` alone: the
    tied matrix belongs to the embeddings block, and EU-k/CF-k with k below all blocks never touch it.
    """

    kind = "prompt"

    def __init__(self, net, extras: Mapping[str, Any]) -> None:
        super().__init__(net, extras)
        ids = [int(i) for i in extras["label_token_ids"]]
        self.register_buffer("label_token_ids", torch.tensor(ids, dtype=torch.long), persistent=False)

    def forward_embeds(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self._last_hidden(embeds, mask)
        return hidden @ self.net.lm_head.weight[self.label_token_ids].T  # == lm_head(hidden)[:, labels]

    def _head(self) -> list[nn.Module]:
        return [self.transformer.ln_f]


@contextmanager
def _quiet():
    """No "Loading weights" / "Writing model shards" bars from transformers (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


_WRAPPERS = {"classifier": GPT2Classifier, "prompt": GPT2PromptClassifier}


def _transformers_class(kind: str):
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    return GPT2ForSequenceClassification if kind == "classifier" else GPT2LMHeadModel


def _single_token(tokenizer, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"label word {word!r} is {len(ids)} tokens {ids}; the prompt model needs one token per label")
    return int(ids[0])


def build_text_model(cfg: "TextModelConfig | Mapping[str, Any]", tokenizer=None) -> _TextModel:
    """A fresh wrapper for training: random GPT-2 of the given sizes, or ``cfg.pretrained``'s weights.

    ``tokenizer`` (default ``load_tokenizer()``) fixes the vocabulary, the pad id and, for the prompt kind,
    the label-word and suffix token ids (stored with the model so loading needs no tokenizer).
    """
    from transformers import GPT2Config

    if not isinstance(cfg, TextModelConfig):
        cfg = TextModelConfig.from_dict(cfg)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    pad = int(tokenizer.pad_token_id)
    extras: dict[str, Any] = {
        "kind": cfg.kind, "max_length": cfg.max_length, "pad_token_id": pad, "num_labels": cfg.num_labels,
    }
    if cfg.kind == "prompt":
        extras["label_words"] = list(cfg.label_words)
        extras["label_token_ids"] = [_single_token(tokenizer, w) for w in cfg.label_words]
        extras["prompt_suffix"] = cfg.prompt_suffix
        extras["prompt_suffix_ids"] = tokenizer.encode(cfg.prompt_suffix, add_special_tokens=False)
        if len(extras["prompt_suffix_ids"]) >= cfg.max_length:
            raise ValueError(f"the prompt suffix takes {len(extras['prompt_suffix_ids'])} tokens, leaving no room "
                             f"for the review in max_length={cfg.max_length}")
    cls = _transformers_class(cfg.kind)
    head = {"num_labels": cfg.num_labels} if cfg.kind == "classifier" else {}
    if cfg.pretrained is None:
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=cfg.max_length, n_layer=cfg.n_layer, n_embd=cfg.n_embd,
            n_head=cfg.n_head, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad, **head,
        )
        net = cls(config)
    else:
        with _quiet():
            net = cls.from_pretrained(cfg.pretrained, use_safetensors=True, pad_token_id=pad, **head)
        if net.config.n_positions < cfg.max_length:
            raise ValueError(f"{cfg.pretrained} has {net.config.n_positions} positions < max_length={cfg.max_length}")
        if net.config.vocab_size < len(tokenizer):
            raise ValueError(f"{cfg.pretrained}'s vocabulary ({net.config.vocab_size}) is smaller than the "
                             f"tokenizer's ({len(tokenizer)})")
    net.config.pad_token_id = pad
    return _WRAPPERS[cfg.kind](net, extras)


def save_text_model(model: _TextModel, folder: str | os.PathLike, summary: Mapping[str, Any] | None = None,
                    tokenizer=None) -> Path:
    """Write the model folder: config.json + model.safetensors (+ training_summary.json, + the tokenizer's
    files when given, so ``load_tokenizer(folder)`` and ``AutoTokenizer.from_pretrained(folder)`` work too)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if summary is not None:
        text = json.dumps(dict(summary), indent=2, sort_keys=True, default=str, allow_nan=False)
        (folder / SUMMARY_FILE).write_text(text)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    return folder


def _download(repo: str, revision: str | None) -> Path:
    """config.json + model.safetensors (+ the summary if present) of a Hub model repo; never pickles.

    The repo is listed first, so a missing file is named as such on every server (olah answers a
    missing file with 401 where the Hub answers 404); offline (HF_HUB_OFFLINE) the cache answers.
    """
    from huggingface_hub import HfApi, constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    from hf_unlearn.hub import HubAccessError, split_revision

    repo_id, rev = split_revision(repo)
    revision = revision or rev
    files: set[str] | None = None
    if not constants.HF_HUB_OFFLINE:
        try:
            files = set(HfApi().list_repo_files(repo_id, revision=revision))
        except HfHubHTTPError as exc:
            raise HubAccessError(f"could not list {repo_id!r}: log in with `hf auth login` or set HF_TOKEN, check the "
                                 f"repo id, or work offline from a local folder ({exc})") from exc
        missing = [f for f in (MODEL_FILE, CONFIG_FILE) if f not in files]
        if missing:
            held = ", ".join(sorted(files)[:8]) or "no files"
            raise FileNotFoundError(f"{repo_id} has no {' or '.join(missing)} (it holds {held}); only safetensors "
                                    "checkpoints saved by save_text_model are loaded, never pickled *.bin files")
    try:
        weights = Path(hf_hub_download(repo_id, MODEL_FILE, revision=revision))
        hf_hub_download(repo_id, CONFIG_FILE, revision=revision)
    except EntryNotFoundError as exc:
        raise FileNotFoundError(f"{repo_id} has no {MODEL_FILE} (or {CONFIG_FILE}); only safetensors "
                                "checkpoints are loaded, never pickled *.bin files") from exc
    except HfHubHTTPError as exc:
        raise HubAccessError(f"could not download {repo_id!r}: log in with `hf auth login` or set HF_TOKEN, "
                             f"check the repo id, or work offline from a local folder ({exc})") from exc
    if files is None or SUMMARY_FILE in files:
        try:
            hf_hub_download(repo_id, SUMMARY_FILE, revision=revision)
        except EntryNotFoundError:
            pass
    return weights.parent


def load_text_model(folder_or_repo: str | os.PathLike, revision: str | None = None) -> tuple[_TextModel, dict[str, Any]]:
    """A saved wrapper and its training summary from a folder or a Hub repo (``id[@revision]``), eval mode.

    Safetensors only: a folder without ``model.safetensors`` is refused, and from the Hub only
    config.json, model.safetensors and training_summary.json are fetched.
    """
    from hf_unlearn.hub import check_local_or_repo_id

    name = str(folder_or_repo)
    folder = Path(name).expanduser() if check_local_or_repo_id(name, "text model") else _download(name, revision)
    if not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {MODEL_FILE}; point at a folder written by save_text_model "
                                "(or `hf-unlearn train`) or a Hub model id; pickled *.bin weights are not loaded")
    config = json.loads((folder / CONFIG_FILE).read_text()) if (folder / CONFIG_FILE).is_file() else {}
    extras = config.get(EXTRAS_KEY)
    if not isinstance(extras, dict) or extras.get("kind") not in MODEL_KINDS:
        raise ValueError(f"{folder / CONFIG_FILE} lacks the {EXTRAS_KEY!r} entry (kind one of {MODEL_KINDS}) that "
                         "save_text_model writes; for a plain GPT-2 checkpoint use "
                         "build_text_model(TextModelConfig(pretrained=...))")
    with _quiet():
        net = _transformers_class(extras["kind"]).from_pretrained(str(folder), use_safetensors=True)
    model = _WRAPPERS[extras["kind"]](net, extras)
    model.eval()
    summary_path = folder / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return model, summary
