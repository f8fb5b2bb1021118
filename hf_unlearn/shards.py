"""Spreading benchmark cells over processes and machines: shard ids, per-shard files, locks and the merge.

A benchmark is a grid of independent cells (``hf_unlearn.benchmark.plan_cells``). Shard ``K/N``
(0-based: ``0/4`` .. ``3/4``, as ``SLURM_ARRAY_TASK_ID`` with ``--array=0-3``) runs the cells
:func:`assign` gives it; every shard computes the same plan from the same arguments, so no
coordinator is needed. Under ``accelerate launch --num_processes N`` (or ``torchrun``) the shard is
the process's rank in the launched world and each process runs alone on its own device
(:func:`detach_from_launcher`): cells are independent, so nothing is data-parallel.

Files (all in the benchmark's output folder), so that nothing two processes write can collide:

- ``results.shard-K-of-N.jsonl`` / ``tuning_cells.shard-K-of-N.jsonl``: only shard K/N appends to
  them, one whole line per finished cell, flushed and fsynced (:func:`append_line`). A kill can at
  worst leave a torn last line (no newline): readers ignore it and the owner cuts it off on restart
  (:func:`read_lines` with ``repair=True``), so that cell is simply run again. A single-process run
  (N = 1) keeps the historical names ``results.jsonl`` / ``tuning_cells.jsonl``.
- ``.locks/``: ``fcntl.flock`` locks, released by the kernel when their holder dies (SIGKILL
  included). A cell is computed only under its lock and after re-reading every shard's file, so a
  finished cell is never redone, even by shards started with different ``N`` or grids. The shared
  prerequisites (a variant's dataset folder and poisoned model) are built under a per-variant lock
  by whichever shard gets there first; the others wait and reuse them (every recipe is seeded, so
  whoever trains gets the same model). Locks need a file system with working ``flock`` (local disks;
  NFS v4 emulates it with POSIX locks).
- ``results.jsonl`` after :func:`merge_records`: the union of ``results.jsonl`` and every shard file,
  each record validated (``hf_unlearn.results``), duplicates dropped when identical (apart from
  ``created_at``) and refused when they disagree, in plan order, written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_DIR = ".locks"
_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# Environment variables of a launched world (torchrun / accelerate launch; MPI as fallbacks), and what
# torch.distributed / accelerate read to decide that a process is part of one.
_RANK_VARS = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")
_WORLD_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
_LOCAL_VARS = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK")
_DIST_VARS = (*_RANK_VARS, *_WORLD_VARS, *_LOCAL_VARS, "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
              "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


# ----------------------------------------------------------------------------- shard ids
@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based). ``local_rank`` is the device index of a launched process."""

    index: int = 0
    count: int = 1
    local_rank: int | None = None

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: K/N needs N >= 1 and 0 <= K < N (K is 0-based, e.g. "
                             f"--shard 0/{max(self.count, 1)} .. {max(self.count, 1) - 1}/{max(self.count, 1)}, as "
                             "SLURM_ARRAY_TASK_ID with --array=0-(N-1))")

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def file(self, folder: str | os.PathLike, stem: str) -> Path:
        """``stem.jsonl`` for one process, else ``stem.shard-K-of-N.jsonl``: the file only this shard appends to."""
        suffix = "" if self.count == 1 else f".shard-{self.index}-of-{self.count}"
        return Path(folder) / f"{stem}{suffix}.jsonl"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; K is 0-based (``0/4`` .. ``3/4``)."""
    match = _SHARD_RE.match(str(text))
    if not match:
        raise ValueError(f"--shard {text!r}: expected K/N with 0 <= K < N, e.g. --shard 0/4 (0-based, as "
                         "SLURM_ARRAY_TASK_ID with --array=0-3)")
    return Shard(int(match[1]), int(match[2]))


def _env_int(env: Mapping[str, str], names: Iterable[str]) -> int | None:
    for name in names:
        if env.get(name, "").strip().lstrip("-").isdigit():
            return int(env[name])
    return None


def launched_world(env: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when this process was started by ``accelerate launch`` / ``torchrun``
    (or MPI) with more than one process, else None."""
    env = os.environ if env is None else env
    world = _env_int(env, _WORLD_VARS)
    rank = _env_int(env, _RANK_VARS)
    if world is None or world <= 1 or rank is None:
        return None
    local = _env_int(env, _LOCAL_VARS)
    return rank, world, rank if local is None else local


def resolve_shard(shard: str | Shard | None = None, env: Mapping[str, str] | None = None) -> Shard:
    """The shard this process runs: ``--shard K/N``, the launched world's rank, or both (an array job of
    multi-process launches: shard ``K * world + rank`` of ``N * world``); ``0/1`` otherwise."""
    given = parse_shard(shard) if isinstance(shard, str) else (shard or Shard())
    world = launched_world(env)
    if world is None:
        return given
    rank, size, local = world
    return Shard(given.index * size + rank, given.count * size, local)


def detach_from_launcher(shard: Shard, env: dict[str, str] | None = None) -> str | None:
    """Make a launched process a lone worker on its own device; returns that device (``cuda:<local rank>``)
    or None on CPU.

    ``accelerate launch`` starts N copies that would join one data-parallel group as soon as an
    ``Accelerator`` is built (the training of the poisoned model and of Retrain): N different
    trainings would then average each other's gradients, or hang. Benchmark cells are independent,
    so each process drops the launcher's rendezvous variables and pins its own GPU instead (the usual
    way to run a sweep). Must run before anything builds an ``Accelerator`` or a process group.
    """
    env = os.environ if env is None else env
    if shard.local_rank is None:
        return None
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        raise RuntimeError("the benchmark must split its cells before a torch.distributed process group exists: call "
                           "run_benchmark before building an Accelerator in a launched script")
    from accelerate.state import PartialState

    if PartialState._shared_state:  # an Accelerator already decided this process is part of a world
        raise RuntimeError("accelerate's state was created before the benchmark split its cells; under `accelerate "
                           "launch`, call run_benchmark before building any Accelerator")
    for name in _DIST_VARS:
        env.pop(name, None)
    if not torch.cuda.is_available():
        return None
    device = f"cuda:{shard.local_rank % max(1, torch.cuda.device_count())}"
    env["ACCELERATE_TORCH_DEVICE"] = device  # accelerate's single-process device
    torch.cuda.set_device(torch.device(device))  # and torch's "cuda" for code that does not say which
    return device


def assign(costs: Sequence[float], count: int) -> list[int]:
    """The shard of each cell: longest cells first, each to the least loaded shard (ties: lowest index).

    Deterministic in the planned order and costs, so every shard computes the same assignment; the
    expensive cells (Retrain) spread before the cheap ones fill the gaps.
    """
    load = [0.0] * count
    owner = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        k = min(range(count), key=lambda k: (load[k], k))
        owner[i] = k
        load[k] += costs[i]
    return owner


# ----------------------------------------------------------------------------- locks
def _lock_path(folder: str | os.PathLike, name: str) -> Path:
    path = Path(folder) / LOCK_DIR / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def key_name(key: Any) -> str:
    """A file-name-safe, stable name for a cell key (any JSON-able value)."""
    return "cell-" + hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]


@contextlib.contextmanager
def file_lock(folder: str | os.PathLike, name: str, *, blocking: bool = True) -> Iterator[bool]:
    """Hold ``folder/.locks/<name>.lock`` (``flock``); yields False at once when ``blocking=False`` and another
    process holds it. The kernel drops the lock when the holder dies, so a killed shard blocks nobody."""
    fd = os.open(_lock_path(folder, name), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


# ----------------------------------------------------------------------------- JSON lines
def append_line(path: str | os.PathLike, data: Mapping[str, Any]) -> None:
    """Append one JSON object as one whole line (a single ``write``), then flush and fsync: once this
    returns the line survives a kill; a kill during it leaves at worst a torn last line."""
    line = (json.dumps(data, sort_keys=True) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: str | os.PathLike, *, repair: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every complete line of a JSON-lines file (none if it does not exist).

    A last line without its newline is a write cut short by a kill: it is ignored, and with ``repair``
    (only the file's own writer may) cut off, so the next append starts on a fresh line. A complete
    line that is not JSON is real damage, not a torn write: that raises, naming the file and line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    end = raw.rfind(b"\n") + 1
    if end < len(raw):
        if repair:
            os.truncate(path, end)
            print(f"{path}: dropped a torn last line ({len(raw) - end} bytes, a write cut short by a kill); its cell "
                  "runs again", flush=True)
        raw = raw[:end]
    out = []
    for lineno, line in enumerate(raw.decode().split("\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg}); this is not a torn last line: fix or "
                             "delete that line") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object per line, got {type(data).__name__}")
        out.append((lineno, data))
    return out


def shard_files(folder: str | os.PathLike, stem: str) -> list[Path]:
    """``stem.jsonl`` (if there) then every ``stem.shard-K-of-N.jsonl`` in ``folder``, by (N, K)."""
    folder = Path(folder)
    pattern = re.compile(rf"^{re.escape(stem)}\.shard-(\d+)-of-(\d+)\.jsonl$")
    found = sorted(((int(m[2]), int(m[1]), p) for p in folder.glob(f"{stem}.shard-*-of-*.jsonl")
                    if (m := pattern.match(p.name))), key=lambda t: t[:2])
    single = folder / f"{stem}.jsonl"
    return ([single] if single.exists() else []) + [p for _, _, p in found]


class MergeConflict(ValueError):
    """Two records of the same cell disagree; the message names the cell, both places and the fields."""


def _comparable(data: Mapping[str, Any], volatile: tuple[str, ...]) -> Any:
    if isinstance(data, Mapping):
        return {k: _comparable(v, volatile) for k, v in data.items() if k not in volatile}
    return data


def union(
    paths: Iterable[str | os.PathLike],
    key: Callable[[dict[str, Any]], Any],
    *,
    validate: Callable[[dict[str, Any]], None] | None = None,
    describe: Callable[[dict[str, Any]], str] = str,
    volatile: tuple[str, ...] = ("created_at",),
) -> dict[Any, tuple[dict[str, Any], str]]:
    """key -> (object, "file:line") over the complete lines of ``paths``, in order of first appearance.

    Each object is validated; a second object with the same key is dropped when equal apart from the
    ``volatile`` fields (a merged file next to the shard files it came from), and raises
    :class:`MergeConflict` otherwise (the same cell computed twice with different results).
    """
    out: dict[Any, tuple[dict[str, Any], str]] = {}
    for path in paths:
        for lineno, data in read_lines(path):
            where = f"{path}:{lineno}"
            if validate is not None:
                try:
                    validate(data)
                except ValueError as exc:
                    raise type(exc)(f"{where}: {exc}") from None
            k = key(data)
            if k not in out:
                out[k] = (data, where)
                continue
            first, first_where = out[k]
            a, b = _comparable(first, volatile), _comparable(data, volatile)
            if a != b:
                fields = sorted(f for f in set(a) | set(b) if a.get(f) != b.get(f))
                raise MergeConflict(
                    f"cell {describe(data)} has two different records: {first_where} and {where} differ in {fields}. "
                    "The same cell ran twice with different results (shards started with different arguments, or "
                    "overlapping runs): delete the line that is wrong, then merge again")
    return out
