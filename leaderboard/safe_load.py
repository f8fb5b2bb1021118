"""Fetch and load a submitted checkpoint without trusting it: safetensors only, pinned architecture, capped size.

Why: a checkpoint named in a submission is the attacker's file. The generic
loaders are too generous for that: ``PyTorchModelHubMixin.from_pretrained``
falls back to ``pytorch_model.bin`` (``torch.load``, a pickle) when a repo has
no ``model.safetensors``, builds whatever network ``config.json`` describes (a
50 KB checkpoint asked for 102 GB), and a Hub-shaped id such as ``evilorg/ckpt``
is read from a local folder of that name when one exists under the working
directory. Here, in order, before any tensor is allocated:

1. the id is a Hub model id (``ORG/NAME``, the Hub's own rules) fetched from
   the Hub, never looked up as a local path; a local folder only when the
   operator allowed it *and* the id is an explicit path (``/...``, ``./...``);
2. the repo's file list is read first (``HfApi.list_repo_tree`` at the
   resolved commit); a repo without ``model.safetensors`` is refused, and only
   ``config.json`` and ``model.safetensors`` are downloaded, each within its
   size cap, into a folder of the caller's (deleted after the job);
3. ``config.json`` (at most ``max_config_bytes``) may hold only the keys and
   values ``hf_unlearn.models.resnet.ResNet18`` takes, ``num_classes`` must be
   the task's, and the parameter count of that network, computed from the
   config with integer arithmetic, must be at most ``max_parameters``;
4. the safetensors header (at most ``max_header_bytes``) is parsed by hand:
   tensor names, shapes and dtypes must be exactly those of the pinned
   network, offsets contiguous and the file size exact;
5. only then are the weights read (``safetensors.torch.load_file``) and loaded
   with ``strict=True`` into a ``ResNet18`` built from the checked config.

IMDb checkpoints are GPT-2s (``load_gpt2``): the same fetch, then ``config.json``
is read as JSON (never ``AutoModel``, never remote code) and checked against caps
(``max_n_layer`` ... ``max_text_parameters``) and against what the public variant
needs (``text_expectation``: kind, classes, embedding size, row length; label
token ids equal to the GPT-2 tokenizer's ids of the label words); the
safetensors header must name exactly ``gpt2_expected_tensors``; the network is
built from the checked values only.

Every refusal raises ``CheckpointRefused`` whose message names the problem and
the fix and never contains a path of this machine (it is shown publicly).
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_REVISION = "main"  # the Hub's default branch, as hf_hub_download assumes

# ORG/NAME as the Hub spells repo ids: letters, digits, '-', '_', '.'; no '..' or '--'; at most 96 a part.
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# A branch, tag or commit sha: no spaces, no '..', no leading '/' or '-'.
REVISION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,127}$")

# Number of classes of each task's network (a task without an entry has no pinned architecture yet).
TASK_NUM_CLASSES: dict[str, int] = {"cifar10": 10}
# Tasks whose checkpoints are pinned GPT-2s (``load_gpt2``); their classes depend on the variant (``text_expectation``).
TEXT_TASKS: tuple[str, ...] = ("imdb",)

_FLOAT_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}
_COUNT_DTYPES = {"I64": 8}  # BatchNorm's num_batches_tracked


class CheckpointRefused(ValueError):
    """The checkpoint is not one the leaderboard will load; the message is safe to show publicly."""


@dataclass(frozen=True)
class CheckpointLimits:
    """Caps on what one submitted checkpoint may make the verifier read or allocate."""

    max_parameters: int = 50_000_000  # elements in the state dict; full-width ResNet-18 has 11.2M, width 128 44.7M
    max_model_bytes: int = 500_000_000  # model.safetensors on disk (50M float32 elements = 200 MB)
    max_config_bytes: int = 65_536  # config.json
    max_header_bytes: int = 1_000_000  # the safetensors JSON header (ResNet-18's is about 15 KB)
    max_repo_files: int = 10_000  # entries listed in the model repo before giving up
    # GPT-2 (IMDb): defaults admit GPT-2 medium (24 layers, 1024 wide, 1024 positions, 355M parameters, 1.42 GB)
    max_text_parameters: int = 400_000_000  # elements of the GPT-2's state dict, computed from config.json
    max_text_model_bytes: int = 1_600_000_000  # a GPT-2's model.safetensors on disk
    max_n_layer: int = 24
    max_n_embd: int = 1024
    max_n_head: int = 64
    max_n_positions: int = 1024

    def as_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in self.__dataclass_fields__}


DEFAULT_CHECKPOINT_LIMITS = CheckpointLimits()


@dataclass(frozen=True)
class FetchedCheckpoint:
    """The two files of a checkpoint on this machine, and where they came from."""

    id: str  # as submitted (a Hub id, or an explicit local path the operator allowed)
    revision: str | None  # the commit sha the files were read at (None for a local folder)
    config_path: Path
    weights_path: Path
    source: str  # "hub" or "local"


# --------------------------------------------------------------------------------------------- ids


def is_hub_id(value: str) -> bool:
    """True for ``ORG/NAME`` as the Hub accepts it."""
    return bool(HUB_ID_RE.match(value)) and ".." not in value and "--" not in value


def is_explicit_local_path(value: str) -> bool:
    """A path nobody could mistake for a Hub id: absolute, or starting with ``./`` or ``../``."""
    return value.startswith(("/", "./", "../"))


def check_revision(revision: str | None) -> str | None:
    if revision is None:
        return None
    if not isinstance(revision, str) or not REVISION_RE.match(revision) or ".." in revision:
        raise CheckpointRefused(f"revision {_short(revision)!r} is not a branch, tag or commit sha")
    return revision


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------------------------- fetch


def fetch_checkpoint(
    checkpoint: str,
    revision: str | None,
    dest: str | os.PathLike,
    *,
    allow_local: bool = False,
    limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS,
) -> FetchedCheckpoint:
    """``config.json`` + ``model.safetensors`` of ``checkpoint`` at ``revision``, downloaded under ``dest``.

    A Hub-shaped id always goes to the Hub (``HF_ENDPOINT``), whatever exists
    locally under that name. ``allow_local`` (the operator's flag) admits an
    explicit path (``/...``, ``./...``, ``../...``) to a folder; anything else is
    refused. Raises ``CheckpointRefused`` (or a Hub error, which the caller
    turns into a public message).
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise CheckpointRefused("the checkpoint id is empty; name a Hub model id ORG/NAME")
    revision = check_revision(revision)
    if is_hub_id(checkpoint):
        return _fetch_from_hub(checkpoint, revision, Path(dest), limits)
    if allow_local and is_explicit_local_path(checkpoint):
        return _local_checkpoint(checkpoint, limits)
    if allow_local:
        raise CheckpointRefused(
            f"checkpoint {_short(checkpoint)!r} is neither a Hub model id ORG/NAME nor an explicit folder path "
            "(/..., ./...)"
        )
    raise CheckpointRefused(
        f"checkpoint {_short(checkpoint)!r} is not a Hub model id ORG/NAME; this leaderboard scores Hub models only"
    )


def _local_checkpoint(checkpoint: str, limits: CheckpointLimits) -> FetchedCheckpoint:
    folder = Path(checkpoint).expanduser()
    config, weights = folder / CONFIG_FILE, folder / MODEL_FILE
    if not weights.is_file():
        raise CheckpointRefused(
            f"the checkpoint folder has no {MODEL_FILE}; only safetensors checkpoints are scored "
            "(save with `hf-unlearn train`/`save_pretrained`)"
        )
    if not config.is_file():
        raise CheckpointRefused(f"the checkpoint folder has no {CONFIG_FILE}")
    _check_file_size(weights, MODEL_FILE, limits.max_model_bytes)
    _check_file_size(config, CONFIG_FILE, limits.max_config_bytes)
    return FetchedCheckpoint(checkpoint, None, config, weights, "local")


def _check_file_size(path: Path, name: str, cap: int) -> int:
    if not path.is_file():  # a FIFO, a device or a folder planted under the expected name
        raise CheckpointRefused(f"{name} is not a regular file")
    size = path.stat().st_size
    if size > cap:
        raise CheckpointRefused(f"{name} is {size:,} bytes; the limit is {cap:,} bytes")
    return size


def _fetch_from_hub(repo_id: str, revision: str | None, dest: Path, limits: CheckpointLimits) -> FetchedCheckpoint:
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    info = api.model_info(repo_id, revision=revision or DEFAULT_REVISION)  # resolved to a commit sha below
    sha = getattr(info, "sha", None)
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise CheckpointRefused(f"the Hub did not resolve {repo_id}@{revision or 'main'} to a commit")
    sizes: dict[str, int | None] = {}
    for n, entry in enumerate(api.list_repo_tree(repo_id, revision=sha, recursive=False)):
        if n >= limits.max_repo_files:
            break
        path = getattr(entry, "path", None)
        if isinstance(path, str) and path in (MODEL_FILE, CONFIG_FILE) and hasattr(entry, "size"):
            sizes[path] = getattr(entry, "size", None)
    if MODEL_FILE not in sizes:
        raise CheckpointRefused(
            f"{repo_id}@{sha[:12]} has no {MODEL_FILE}: only safetensors checkpoints are scored, never "
            "pytorch_model.bin or other pickles; upload with `save_pretrained` (safetensors) or `hf-unlearn train`"
        )
    if CONFIG_FILE not in sizes:
        raise CheckpointRefused(f"{repo_id}@{sha[:12]} has no {CONFIG_FILE} describing the network")
    for name, cap in ((CONFIG_FILE, limits.max_config_bytes), (MODEL_FILE, limits.max_model_bytes)):
        size = sizes[name]
        if not isinstance(size, int) or size < 0:
            raise CheckpointRefused(f"the Hub listed no size for {name} in {repo_id}; cannot bound the download")
        if size > cap:
            raise CheckpointRefused(f"{name} in {repo_id} is {size:,} bytes; the limit is {cap:,} bytes")
    paths = {}
    for name in (CONFIG_FILE, MODEL_FILE):
        local = Path(hf_hub_download(repo_id, name, revision=sha, cache_dir=str(dest / "hub")))
        got = _check_file_size(local, name, limits.max_config_bytes if name == CONFIG_FILE else limits.max_model_bytes)
        if got != sizes[name]:
            raise CheckpointRefused(f"{name} in {repo_id}: {got:,} bytes downloaded, {sizes[name]:,} listed")
        paths[name] = local
    return FetchedCheckpoint(repo_id, sha, paths[CONFIG_FILE], paths[MODEL_FILE], "hub")


# --------------------------------------------------------------------------------------------- config


def _read_config_object(path: str | os.PathLike, limits: "CheckpointLimits", what: str) -> dict:
    """``config.json`` as a strict-JSON object, read with a size cap (one reader for every pinned network)."""
    path = Path(path)
    _check_file_size(path, CONFIG_FILE, limits.max_config_bytes)
    with open(path, "rb") as fh:
        raw = fh.read(limits.max_config_bytes + 1)
    if len(raw) > limits.max_config_bytes:
        raise CheckpointRefused(f"config.json is over {limits.max_config_bytes:,} bytes")
    data = _strict_json(raw, "config.json")
    if not isinstance(data, dict):
        raise CheckpointRefused(f"config.json must be {what}")
    return data


def _strict_json(raw: bytes, what: str) -> Any:
    """The leaderboard's one strict JSON reader (``submission.loads_strict``: no NaN/Infinity, duplicate keys,
    huge integers or deep nesting), its refusal raised as ``CheckpointRefused`` naming ``what``."""
    from leaderboard.submission import SubmissionError, loads_strict

    try:
        return loads_strict(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointRefused(f"{what} is not valid JSON (not UTF-8)") from None
    except SubmissionError as exc:
        raise CheckpointRefused(f"{what} is not JSON we accept: {exc}") from None


def _finite_triple(key: str, value: Any, lo: float, hi: float) -> tuple[float, float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        or not all(lo <= v <= hi for v in value)
    ):
        raise CheckpointRefused(f"config.json {key!r} must be three numbers in [{lo}, {hi}] (one per RGB channel)")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def read_config(path: str | os.PathLike, num_classes: int, limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS
                ) -> dict[str, Any]:
    """The checked ``ResNet18`` constructor arguments from ``config.json``; refuses anything else.

    Only ``num_classes`` (must equal the task's), ``width`` (a whole number
    >= 1), ``mean`` and ``std`` (three numbers each) are accepted, and the
    network they describe must have at most ``limits.max_parameters``
    elements: computed here, before anything is allocated.
    """
    data = _read_config_object(path, limits, "a JSON object of ResNet18 arguments")
    allowed = {"num_classes", "width", "mean", "std"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CheckpointRefused(
            f"config.json has keys {[_short(k, 30) for k in unknown[:5]]} that the pinned ResNet-18 does not take; "
            f"allowed: {sorted(allowed)}"
        )
    classes = data.get("num_classes", 10)
    if type(classes) is not int or classes != num_classes:
        raise CheckpointRefused(f"config.json num_classes={_short(classes, 20)}: this task's network has {num_classes}")
    width = data.get("width", 64)
    if type(width) is not int or width < 1:
        raise CheckpointRefused(f"config.json width={_short(width, 20)}: expected a whole number >= 1")
    config: dict[str, Any] = {"num_classes": classes, "width": width}
    if "mean" in data:
        config["mean"] = _finite_triple("mean", data["mean"], 0.0, 1.0)
    if "std" in data:
        config["std"] = _finite_triple("std", data["std"], 1e-3, 10.0)
    count = parameter_count(width, classes)
    if count > limits.max_parameters:
        raise CheckpointRefused(
            f"config.json describes a ResNet-18 of width {width} with {count:,} parameters "
            f"({count * 4 / 1e9:,.1f} GB as float32); the limit is {limits.max_parameters:,}"
        )
    return config


# --------------------------------------------------------------------------------------------- architecture


def expected_tensors(width: int, num_classes: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in ``ResNet18(num_classes, width).state_dict()``, without building it.

    Mirrors ``hf_unlearn.models.resnet`` (tested against the real module);
    ``num_batches_tracked`` entries have shape ``()``.
    """
    out: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, planes: int) -> None:
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{leaf}"] = (planes,)
        out[f"{prefix}.num_batches_tracked"] = ()

    out["conv1.weight"] = (width, 3, 3, 3)
    bn("bn1", width)
    in_planes = width
    for i, stride in enumerate((1, 2, 2, 2)):
        planes = width * 2**i
        for j, s in enumerate((stride, 1)):
            p = f"layer{i + 1}.{j}"
            out[f"{p}.conv1.weight"] = (planes, in_planes, 3, 3)
            bn(f"{p}.bn1", planes)
            out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            if s != 1 or in_planes != planes:
                out[f"{p}.shortcut.0.weight"] = (planes, in_planes, 1, 1)
                bn(f"{p}.shortcut.1", planes)
            in_planes = planes
    out["linear.weight"] = (num_classes, in_planes)
    out["linear.bias"] = (num_classes,)
    return out


def parameter_count(width: int, num_classes: int) -> int:
    """Elements in the state dict of ``ResNet18(num_classes, width)`` (exact integer arithmetic, no allocation)."""
    return sum(math.prod(shape) for shape in expected_tensors(width, num_classes).values())


def check_safetensors(path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]],
                      limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS, *, network: str = "ResNet-18",
                      max_bytes: int | None = None) -> None:
    """Refuse a ``model.safetensors`` whose header is not exactly the pinned network's, before reading tensors.

    The format: 8 bytes little-endian header length N, N bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
    then the data. Names and shapes must equal ``expected``; dtypes are F32,
    F16 or BF16 (I64 for ``num_batches_tracked``); each tensor's byte range
    must fit its shape and the ranges must tile the data exactly. ``network`` names the pinned network in
    messages; ``max_bytes`` replaces ``limits.max_model_bytes`` (a GPT-2's cap is ``max_text_model_bytes``).
    """
    path = Path(path)
    size = _check_file_size(path, MODEL_FILE, limits.max_model_bytes if max_bytes is None else max_bytes)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointRefused("model.safetensors is truncated (no header)")
        (n,) = struct.unpack("<Q", head)
        if n > limits.max_header_bytes or n > size - 8:
            raise CheckpointRefused(
                f"model.safetensors declares a {n:,}-byte header; the limit is {limits.max_header_bytes:,} bytes"
            )
        header = _strict_json(fh.read(n), "the safetensors header")
    if not isinstance(header, dict):
        raise CheckpointRefused("the safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    names = set(header)
    missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
    if missing or extra:
        raise CheckpointRefused(
            f"model.safetensors does not hold the pinned {network}'s tensors"
            + (f"; missing {len(missing)} (e.g. {_short(missing[0], 50)!r})" if missing else "")
            + (f"; unexpected {len(extra)} (e.g. {_short(extra[0], 50)!r})" if extra else "")
        )
    spans = []
    for name, shape in expected.items():
        entry = header[name]
        if not isinstance(entry, dict):
            raise CheckpointRefused(f"safetensors entry {name!r} is not an object")
        dtype, got, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        allowed = _COUNT_DTYPES if name.endswith("num_batches_tracked") else _FLOAT_DTYPES
        if dtype not in allowed:
            raise CheckpointRefused(
                f"tensor {name!r} has dtype {_short(dtype, 10)!r}; expected one of {sorted(allowed)}")
        if not isinstance(got, list) or [v if type(v) is int else None for v in got] != list(shape):
            raise CheckpointRefused(
                f"tensor {name!r} has shape {_short(got, 40)}; the config's network needs {list(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(v) is int for v in offsets)
                or offsets[0] < 0 or offsets[1] - offsets[0] != math.prod(shape) * allowed[dtype]):
            raise CheckpointRefused(f"tensor {name!r} has data offsets {_short(offsets, 40)} that do not fit its shape")
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise CheckpointRefused("model.safetensors tensor data overlap or leave gaps")
        position = end
    if 8 + n + position != size:
        raise CheckpointRefused(f"model.safetensors is {size:,} bytes; its header accounts for {8 + n + position:,}")


def load_resnet(fetched: FetchedCheckpoint, num_classes: int,
                limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS) -> "Any":
    """A ``ResNet18`` in eval mode from checked files (config, header, then weights; ``strict=True``)."""
    import torch
    from safetensors.torch import load_file

    from hf_unlearn.models.resnet import ResNet18

    config = read_config(fetched.config_path, num_classes, limits)
    check_safetensors(fetched.weights_path, expected_tensors(config["width"], num_classes), limits)
    state = load_file(str(fetched.weights_path), device="cpu")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointRefused(f"tensor {name!r} holds NaN or infinite values")
    model = ResNet18(**config)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


# --------------------------------------------------------------------------------------------- GPT-2 (IMDb)
#
# The IMDb track's networks are GPT-2s saved by ``hf_unlearn.models.text.save_text_model``: a transformers
# config.json (with the wrapper's extras under "hf_unlearn") and model.safetensors. ``AutoModel``/
# ``from_pretrained`` would build whatever config.json describes (and, with ``auto_map``, run the repo's code),
# so here config.json is read as JSON, every key that shapes the network is checked against caps, the
# architecture is rebuilt from the checked values only, and the safetensors header must name exactly its tensors.

GPT2_VOCAB_SIZE = 50257  # GPT-2's tokenizer: the token ids a variant's splits hold
GPT2_PAD_ID = 50256  # eos, the pad every split and model uses
TEXT_KINDS = ("classifier", "prompt")  # GPT2ForSequenceClassification, GPT2LMHeadModel read at the label words
_GPT2_ACTIVATIONS = ("gelu_new", "gelu", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "silu", "swish",
                     "tanh")
# Keys that change the network or run code, and the only value accepted for each (absent = that value).
_GPT2_FIXED = {"add_cross_attention": False, "tie_word_embeddings": True, "is_encoder_decoder": False,
               "pruned_heads": {}}
_GPT2_FORBIDDEN = ("auto_map", "quantization_config", "custom_pipelines")
# Keys read and checked here (the rest of the accepted keys are metadata the pinned network never reads).
_GPT2_CHECKED = ("model_type", "vocab_size", "n_layer", "n_embd", "n_head", "n_positions", "n_inner",
                 "activation_function", "layer_norm_epsilon", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
                 "reorder_and_upcast_attn", "pad_token_id", "id2label", "label2id", "num_labels", "hf_unlearn")
# Metadata save_pretrained writes (training-only dropouts and init, the sequence-summary head that neither
# wrapper has, generation ids, versions): accepted, never passed to the network.
_GPT2_METADATA = ("architectures", "transformers_version", "dtype", "torch_dtype", "bos_token_id", "eos_token_id",
                  "use_cache", "attn_pdrop", "embd_pdrop", "resid_pdrop", "initializer_range", "summary_activation",
                  "summary_first_dropout", "summary_proj_to_labels", "summary_type", "summary_use_proj",
                  "problem_type", "task_specific_params", "_name_or_path", "n_ctx", "output_past", "return_dict",
                  "output_hidden_states", "output_attentions", "torchscript", "chunk_size_feed_forward", "is_decoder",
                  "tie_encoder_decoder", "gradient_checkpointing", "finetuning_task", "tokenizer_class", "prefix",
                  "sep_token_id", "decoder_start_token_id", "cross_attention_hidden_size", "_attn_implementation",
                  "_attn_implementation_autoset", "use_return_dict")
_PROMPT_EXTRAS = ("label_words", "label_token_ids", "prompt_suffix", "prompt_suffix_ids")  # the prompt kind's only
_EXTRAS_KEYS = ("kind", "max_length", "pad_token_id", "num_labels", *_PROMPT_EXTRAS)


@dataclass(frozen=True)
class TextExpectation:
    """What a public IMDb variant needs of a GPT-2, from the catalog's (task, attack, config), never the submission."""

    kind: str  # "classifier" (Gaussian variants) or "prompt" (trigger variants)
    num_labels: int  # the variant's classes: 2, or 3 for a trigger variant in word mode
    max_length: int  # tokens per row of the variant's splits (model max_length and n_positions at least this)
    embed_dim: int | None  # a Gaussian variant's noise lives in this many embedding dimensions (None: no noise)
    prompt_suffix: str | None  # the suffix the variant's splits carry (prompt kind)
    variant: str  # the config name, for messages


@dataclass(frozen=True)
class GPT2Spec:
    """The checked architecture and wrapper extras of a submitted GPT-2."""

    kind: str
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int
    n_inner: int | None
    activation_function: str
    layer_norm_epsilon: float
    scale_attn_weights: bool
    scale_attn_by_inverse_layer_idx: bool
    reorder_and_upcast_attn: bool
    extras: Mapping[str, Any]

    @property
    def num_labels(self) -> int:
        return int(self.extras["num_labels"])


def text_expectation(task: str, attack: str, config: str) -> TextExpectation:
    """The model a public IMDb variant is scored with: a classifier for Gaussian variants (its noise is in
    ``d`` embedding dimensions), a prompt model with one label word per class for trigger variants."""
    from hf_unlearn.tasks.imdb import split_layout

    if task not in TEXT_TASKS:
        raise CheckpointRefused(f"task {task!r} has no pinned GPT-2; text tasks: {list(TEXT_TASKS)}")
    max_length, embed_dim, suffix = split_layout(config)
    if attack == "gaussian" and suffix is None:
        return TextExpectation("classifier", 2, max_length, embed_dim, None, config)
    if attack == "targeted" and suffix is not None:
        from hf_unlearn.attacks.trigger import TriggerConfig

        classes = len(TriggerConfig.from_name(config).label_names)
        return TextExpectation("prompt", classes, max_length, None, suffix, config)
    raise CheckpointRefused(f"variant {_short(config)!r} is not a {task}/{attack} variant this verifier can score")


def _whole(data: Mapping[str, Any], key: str, lo: int, hi: int, *, where: str = "config.json") -> int:
    value = data.get(key)
    if type(value) is not int:
        raise CheckpointRefused(f"{where} {key}={_short(value, 20)}: expected a whole number")
    if value < lo:
        raise CheckpointRefused(f"{where} {key}={value}: must be at least {lo}")
    if value > hi:
        raise CheckpointRefused(f"{where} {key}={value} is over the cap {key} <= {hi} of this leaderboard")
    return value


def _flag(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if type(value) is not bool:
        raise CheckpointRefused(f"config.json {key}={_short(value, 20)}: expected true or false")
    return value


def read_gpt2_config(path: str | os.PathLike, expect: TextExpectation, tokenizer: Any = None,
                     limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS) -> GPT2Spec:
    """The checked GPT-2 of ``config.json`` for a variant needing ``expect``; refuses anything else.

    Nothing is built or executed: the file is parsed as strict JSON and checked key by key (model_type gpt2,
    GPT-2's vocabulary, sizes within ``limits``, no remote code, kind/classes/embedding size as the variant
    needs, and for the prompt kind label_token_ids equal to what ``tokenizer`` (default
    ``hf_unlearn.models.text.load_tokenizer()``) makes of label_words, since those ids choose what is scored).
    The parameter count, computed from the checked sizes, must be at most ``limits.max_text_parameters``.
    """
    data = _read_config_object(path, limits, "a JSON object (a transformers GPT-2 config)")
    if data.get("model_type") != "gpt2":
        raise CheckpointRefused(f"config.json model_type={_short(data.get('model_type'), 30)!r}: this track's "
                                "pinned network is GPT-2 (model_type 'gpt2', saved by hf_unlearn's save_text_model)")
    forbidden = [k for k in _GPT2_FORBIDDEN if k in data]
    if forbidden:
        raise CheckpointRefused(f"config.json has {forbidden[0]!r}: the leaderboard never runs or loads a "
                                "checkpoint's own code or quantisation; save a plain GPT-2 with save_text_model")
    unknown = sorted(set(data) - set(_GPT2_CHECKED) - set(_GPT2_METADATA) - set(_GPT2_FIXED))
    if unknown:
        raise CheckpointRefused(f"config.json has keys {[_short(k, 30) for k in unknown[:5]]} that the pinned GPT-2 "
                                "does not take; save the model with hf_unlearn's save_text_model")
    for key, value in _GPT2_FIXED.items():
        if key in data and data[key] != value:
            raise CheckpointRefused(f"config.json {key}={_short(data[key], 20)}: the pinned GPT-2 needs "
                                    f"{_json_value(value)}")
    if data.get("vocab_size") != GPT2_VOCAB_SIZE or type(data.get("vocab_size")) is not int:
        raise CheckpointRefused(f"config.json vocab_size={_short(data.get('vocab_size'), 20)}: GPT-2's tokenizer "
                                f"has {GPT2_VOCAB_SIZE} tokens")
    n_layer = _whole(data, "n_layer", 1, limits.max_n_layer)
    n_embd = _whole(data, "n_embd", 1, limits.max_n_embd)
    n_head = _whole(data, "n_head", 1, limits.max_n_head)
    n_positions = _whole(data, "n_positions", 2, limits.max_n_positions)
    if n_embd % n_head:
        raise CheckpointRefused(f"config.json n_embd={n_embd} is not divisible by n_head={n_head}")
    n_inner = data.get("n_inner")
    if n_inner is not None:
        n_inner = _whole(data, "n_inner", 1, 4 * limits.max_n_embd)
    activation = data.get("activation_function", "gelu_new")
    if activation not in _GPT2_ACTIVATIONS:
        raise CheckpointRefused(f"config.json activation_function={_short(activation, 30)!r}: expected one of "
                                f"{list(_GPT2_ACTIVATIONS)}")
    eps = data.get("layer_norm_epsilon", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0 < eps <= 0.1):
        raise CheckpointRefused(f"config.json layer_norm_epsilon={_short(eps, 20)}: expected a number in (0, 0.1]")
    if data.get("pad_token_id", GPT2_PAD_ID) not in (None, GPT2_PAD_ID):
        raise CheckpointRefused(f"config.json pad_token_id={_short(data.get('pad_token_id'), 20)}: GPT-2's "
                                f"splits pad with eos ({GPT2_PAD_ID})")
    extras = _check_extras(data.get("hf_unlearn"), expect, n_positions, tokenizer, limits)
    for key in ("id2label", "label2id"):
        if key in data and (not isinstance(data[key], dict) or len(data[key]) != extras["num_labels"]):
            raise CheckpointRefused(f"config.json {key} must name {extras['num_labels']} classes, as hf_unlearn's "
                                    "num_labels says")
    if "num_labels" in data and data["num_labels"] != extras["num_labels"]:
        raise CheckpointRefused(f"config.json num_labels={_short(data['num_labels'], 20)} differs from hf_unlearn's "
                                f"{extras['num_labels']}")
    if expect.embed_dim is not None and n_embd != expect.embed_dim:
        raise CheckpointRefused(f"config.json n_embd={n_embd}: variant {expect.variant}'s noise lives in "
                                f"{expect.embed_dim} embedding dimensions, so it scores GPT-2s with n_embd "
                                f"{expect.embed_dim} only")
    spec = GPT2Spec(extras["kind"], n_layer, n_embd, n_head, n_positions, n_inner, activation, float(eps),
                    _flag(data, "scale_attn_weights", True), _flag(data, "scale_attn_by_inverse_layer_idx", False),
                    _flag(data, "reorder_and_upcast_attn", False), extras)
    count = gpt2_parameter_count(spec)
    if count > limits.max_text_parameters:
        raise CheckpointRefused(f"config.json describes a GPT-2 with {count:,} parameters ({count * 4 / 1e9:,.1f} GB "
                                f"as float32); the limit is {limits.max_text_parameters:,}")
    return spec


def _json_value(value: Any) -> str:
    """A value as config.json spells it (true, false, {})."""
    import json

    return json.dumps(value)


def _check_extras(extras: Any, expect: TextExpectation, n_positions: int, tokenizer: Any,
                  limits: CheckpointLimits) -> dict[str, Any]:
    """hf_unlearn's wrapper extras, checked against the variant and the real GPT-2 tokenizer."""
    where = "config.json hf_unlearn"
    if not isinstance(extras, dict):
        raise CheckpointRefused("config.json has no 'hf_unlearn' object (kind, max_length, num_labels, ...); save the "
                                "model with hf_unlearn's save_text_model")
    unknown = sorted(set(extras) - set(_EXTRAS_KEYS))
    if unknown:
        raise CheckpointRefused(f"{where} has keys {[_short(k, 30) for k in unknown[:5]]}; allowed: "
                                f"{list(_EXTRAS_KEYS)}")
    kind = extras.get("kind")
    if kind not in TEXT_KINDS:
        raise CheckpointRefused(f"{where} kind={_short(kind, 20)!r}: expected one of {list(TEXT_KINDS)}")
    if kind != expect.kind:
        raise CheckpointRefused(f"{where} kind={kind!r}: variant {expect.variant} is scored with the {expect.kind} "
                                "kind (Gaussian variants: classifier; trigger variants: prompt)")
    num_labels = _whole(extras, "num_labels", 2, 1000, where=where)
    if num_labels != expect.num_labels:
        raise CheckpointRefused(f"{where} num_labels={num_labels}: variant {expect.variant} has {expect.num_labels} "
                                "classes")
    max_length = _whole(extras, "max_length", 2, n_positions, where=where)
    if max_length < expect.max_length or n_positions < expect.max_length:
        raise CheckpointRefused(f"{where} max_length={max_length}, n_positions={n_positions}: variant "
                                f"{expect.variant}'s rows are {expect.max_length} tokens long")
    if extras.get("pad_token_id") != GPT2_PAD_ID or type(extras.get("pad_token_id")) is not int:
        raise CheckpointRefused(f"{where} pad_token_id={_short(extras.get('pad_token_id'), 20)}: GPT-2's splits pad "
                                f"with eos ({GPT2_PAD_ID})")
    out: dict[str, Any] = {"kind": kind, "max_length": max_length, "pad_token_id": GPT2_PAD_ID,
                           "num_labels": num_labels}
    if kind == "classifier":
        extra = sorted(k for k in _PROMPT_EXTRAS if k in extras)
        if extra:
            raise CheckpointRefused(f"{where} has {extra[0]!r}, which only the prompt kind takes")
        return out
    if tokenizer is None:
        from hf_unlearn.models.text import load_tokenizer

        tokenizer = load_tokenizer()
    words = extras.get("label_words")
    if (not isinstance(words, list) or not all(isinstance(w, str) and 0 < len(w) <= 50 for w in words)):
        raise CheckpointRefused(f"{where} label_words must be a list of words (one per class)")
    if len(words) != num_labels:
        raise CheckpointRefused(f"{where} label_words names {len(words)} words but num_labels={num_labels}: the "
                                "prompt model reads one label word per class")
    ids = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) != 1:
            raise CheckpointRefused(f"{where} label word {_short(word, 30)!r} is {len(encoded)} GPT-2 tokens; each "
                                    "label word must be one token")
        ids.append(int(encoded[0]))
    if len(set(ids)) != len(ids):
        raise CheckpointRefused(f"{where} label_words repeat a token; each class needs its own word")
    if extras.get("label_token_ids") != ids:
        raise CheckpointRefused(f"{where} label_token_ids={_short(extras.get('label_token_ids'), 40)} are not GPT-2's "
                                f"tokens of label_words {[_short(w, 20) for w in words]} ({ids}): the ids choose what "
                                "is scored, so they must be the words' own")
    if "prompt_suffix" in extras and extras["prompt_suffix"] != expect.prompt_suffix:
        raise CheckpointRefused(f"{where} prompt_suffix={_short(extras['prompt_suffix'], 40)!r}: variant "
                                f"{expect.variant}'s rows end with {expect.prompt_suffix!r}")
    if "prompt_suffix_ids" in extras and extras["prompt_suffix_ids"] != tokenizer.encode(
            expect.prompt_suffix or "", add_special_tokens=False):
        raise CheckpointRefused(f"{where} prompt_suffix_ids are not GPT-2's tokens of the prompt suffix")
    out.update(label_words=list(words), label_token_ids=ids)
    if expect.prompt_suffix is not None:
        out.update(prompt_suffix=expect.prompt_suffix,
                   prompt_suffix_ids=tokenizer.encode(expect.prompt_suffix, add_special_tokens=False))
    return out


def gpt2_expected_tensors(spec: GPT2Spec) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor ``save_text_model`` writes for ``spec``, without building the network.

    Mirrors transformers' GPT-2 (tested against the real module): Conv1D weights are (in, out); the prompt
    kind's LM head is tied to ``transformer.wte`` and not saved; the classifier's ``score`` has no bias.
    """
    d, inner = spec.n_embd, spec.n_inner or 4 * spec.n_embd
    out: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (GPT2_VOCAB_SIZE, d),
                                       "transformer.wpe.weight": (spec.n_positions, d)}
    for i in range(spec.n_layer):
        p = f"transformer.h.{i}"
        out.update({
            f"{p}.ln_1.weight": (d,), f"{p}.ln_1.bias": (d,),
            f"{p}.attn.c_attn.weight": (d, 3 * d), f"{p}.attn.c_attn.bias": (3 * d,),
            f"{p}.attn.c_proj.weight": (d, d), f"{p}.attn.c_proj.bias": (d,),
            f"{p}.ln_2.weight": (d,), f"{p}.ln_2.bias": (d,),
            f"{p}.mlp.c_fc.weight": (d, inner), f"{p}.mlp.c_fc.bias": (inner,),
            f"{p}.mlp.c_proj.weight": (inner, d), f"{p}.mlp.c_proj.bias": (d,),
        })
    out["transformer.ln_f.weight"], out["transformer.ln_f.bias"] = (d,), (d,)
    if spec.kind == "classifier":
        out["score.weight"] = (spec.num_labels, d)
    return out


def gpt2_parameter_count(spec: GPT2Spec) -> int:
    """Elements in the saved state dict of ``spec`` (exact integer arithmetic, no allocation)."""
    return sum(math.prod(shape) for shape in gpt2_expected_tensors(spec).values())


def text_limits(limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS) -> CheckpointLimits:
    """``limits`` with the GPT-2 file cap as the model-file cap (for ``fetch_checkpoint`` of a text checkpoint)."""
    import dataclasses

    return dataclasses.replace(limits, max_model_bytes=limits.max_text_model_bytes)


def load_gpt2(fetched: FetchedCheckpoint, expect: TextExpectation, limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS,
              tokenizer: Any = None) -> Any:
    """A GPT-2 wrapper (``hf_unlearn.models.text``) in eval mode from checked files: config, header, then weights.

    The network is built from the checked values only (``GPT2Config(...)`` of ``read_gpt2_config``, never the
    submitted dict), the safetensors header must name exactly ``gpt2_expected_tensors`` (a missing, unexpected
    or wrongly shaped tensor is refused by name before any tensor is read), the weights must be finite, and
    the state dict loads with only the tied LM head left to the embeddings.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    from hf_unlearn.models.text import GPT2Classifier, GPT2PromptClassifier

    spec = read_gpt2_config(fetched.config_path, expect, tokenizer, limits)
    expected = gpt2_expected_tensors(spec)
    check_safetensors(fetched.weights_path, expected, limits, network=f"GPT-2 ({spec.kind})",
                      max_bytes=limits.max_text_model_bytes)
    state = load_file(str(fetched.weights_path), device="cpu")
    state = {k: v.float() for k, v in state.items()}
    for name, value in state.items():
        if not bool(torch.isfinite(value).all()):
            raise CheckpointRefused(f"tensor {name!r} holds NaN or infinite values")
    head = {"num_labels": spec.num_labels} if spec.kind == "classifier" else {}
    config = GPT2Config(
        vocab_size=GPT2_VOCAB_SIZE, n_positions=spec.n_positions, n_layer=spec.n_layer, n_embd=spec.n_embd,
        n_head=spec.n_head, n_inner=spec.n_inner, activation_function=spec.activation_function,
        layer_norm_epsilon=spec.layer_norm_epsilon, scale_attn_weights=spec.scale_attn_weights,
        scale_attn_by_inverse_layer_idx=spec.scale_attn_by_inverse_layer_idx,
        reorder_and_upcast_attn=spec.reorder_and_upcast_attn, bos_token_id=GPT2_PAD_ID, eos_token_id=GPT2_PAD_ID,
        pad_token_id=GPT2_PAD_ID, tie_word_embeddings=True, **head,
    )
    net = (GPT2ForSequenceClassification if spec.kind == "classifier" else GPT2LMHeadModel)(config)
    missing, unexpected = net.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if spec.kind == "prompt" else set()
    if unexpected or set(missing) - tied:  # the header check makes this unreachable; kept as the last guard
        raise CheckpointRefused(f"the weights do not fit the pinned GPT-2 (missing {sorted(set(missing) - tied)[:1]}, "
                                f"unexpected {sorted(unexpected)[:1]})")
    if spec.kind == "prompt":
        net.lm_head.weight = net.transformer.wte.weight  # GPT-2's tied head: the embeddings just loaded
    wrapper = (GPT2Classifier if spec.kind == "classifier" else GPT2PromptClassifier)(net, dict(spec.extras))
    wrapper.eval()
    return wrapper
