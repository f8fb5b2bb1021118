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
    path = Path(path)
    _check_file_size(path, CONFIG_FILE, limits.max_config_bytes)
    with open(path, "rb") as fh:
        raw = fh.read(limits.max_config_bytes + 1)
    if len(raw) > limits.max_config_bytes:
        raise CheckpointRefused(f"config.json is over {limits.max_config_bytes:,} bytes")
    data = _strict_json(raw, "config.json")
    if not isinstance(data, dict):
        raise CheckpointRefused("config.json must be a JSON object of ResNet18 arguments")
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
                      limits: CheckpointLimits = DEFAULT_CHECKPOINT_LIMITS) -> None:
    """Refuse a ``model.safetensors`` whose header is not exactly the pinned network's, before reading tensors.

    The format: 8 bytes little-endian header length N, N bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
    then the data. Names and shapes must equal ``expected``; dtypes are F32,
    F16 or BF16 (I64 for ``num_batches_tracked``); each tensor's byte range
    must fit its shape and the ranges must tile the data exactly.
    """
    path = Path(path)
    size = _check_file_size(path, MODEL_FILE, limits.max_model_bytes)
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
            "model.safetensors does not hold the pinned ResNet-18's tensors"
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
