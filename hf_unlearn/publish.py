"""`hf-unlearn publish`: every artefact a workspace built, as Hub repos, idempotently and resumably.

What goes up (one repo each; :func:`plan` names them):

- dataset repos: folders named ``poisoned-*`` whose card's YAML has ``configs:`` (all variants, one repo);
- checkpoints: folders with ``model.safetensors`` + ``config.json`` + ``training_summary.json`` (and the card
  with its ``model-index``), named after their folder;
- the metric modules ``metrics/gus`` and ``metrics/tpr_at_fpr`` as Spaces (``evaluate.load("ORG/gus")``);
- the leaderboard Space (``space/deploy.py``'s folder) and the maintainers' trusted references
  (``references.jsonl``, a dataset repo that ``LEADERBOARD_REFERENCES=hf://datasets/ORG/hf-unlearn-references`` reads).

Why a plan and two targets: no machine here reaches the Hub, and olah (the local Hub server the tests use) is
read-only. So the same plan is written either to the Hub (:class:`HubTarget`) or as git repositories in olah's
mirror layout (:class:`MirrorTarget`), with the same files, the same commit message and the same tag; a test
records what :class:`HubTarget` hands ``huggingface_hub`` and compares it with the mirror's blobs, and an
end-to-end test loads every artefact back through olah. Each repo is compared file by file with what the
target already holds (sha256 for LFS files, the git blob id otherwise: both are what the Hub reports), so a
second run commits nothing and a run cut short redoes only the repos it had not finished.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from hf_unlearn.hub import CONFIG_FILE, MODEL_FILE, SUMMARY_FILE, HubAccessError

REPO_ROOT = Path(__file__).resolve().parents[1]  # a source checkout: metrics/ and space/ live beside the package
METRIC_SPACES = ("gus", "tpr_at_fpr")  # folders under metrics/; the Space repos take the same names
LEADERBOARD_SPACE = "hf-unlearn-leaderboard"
REFERENCES_REPO = "hf-unlearn-references"  # README: LEADERBOARD_REFERENCES=hf://datasets/ORG/hf-unlearn-references
REFERENCES_FILE = "references.jsonl"  # leaderboard.references.REFERENCES_FILE (not imported: it pulls in pandas)
DATASET_PREFIX = "poisoned-"
REPO_DIRS = {"model": "models", "dataset": "datasets", "space": "spaces"}  # olah's mirror layout and Hub URLs
AUTHOR = ("hf-unlearn", "hf-unlearn@users.noreply.huggingface.co")
# Never uploaded: training resume state (top level of a checkpoint), byte code; hidden files are skipped too.
SKIPPED_TOP_DIRS = ("checkpoints",)
SKIPPED_DIRS = ("__pycache__",)
# Not searched for artefacts: resume state, tuning-grid checkpoints (hf-unlearn benchmark --tune), byte code.
NOT_SEARCHED = ("checkpoints", "tuning", "__pycache__", "node_modules", "site-packages")
MAX_DEPTH = 6  # runs/benchmark/models/<variant>/<cell> is 5 deep
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


class PublishError(ValueError):
    """Something in the workspace or the target stops the publish; the message names it and the fix."""


# --------------------------------------------------------------------------------------------- local files


@dataclass(frozen=True)
class LocalFile:
    """One file to upload, with both ids a Hub or git listing may report for it."""

    path: str  # relative, POSIX separators: the path in the repo
    size: int
    sha256: str  # what the Hub lists for an LFS file
    git_oid: str  # the git blob id: what git and the Hub list for a regular file

    def matches(self, remote_id: str) -> bool:
        return remote_id in (self.sha256, self.git_oid)


def hash_file(folder: Path, rel: str) -> LocalFile:
    """sha256 and git blob id of ``folder/rel`` in one read (git hashes ``blob <size>\\0`` + the bytes)."""
    path = folder / rel
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    sha1.update(b"blob %d\0" % size)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
    return LocalFile(rel, size, sha256.hexdigest(), sha1.hexdigest())


def is_uploaded(rel: str) -> bool:
    """Whether a repo path is part of an upload: no hidden component, no ``checkpoints/``, no byte code.

    The same rule filters the target's listing, so a Hub repo's own ``.gitattributes`` is neither compared
    nor deleted."""
    parts = rel.split("/")
    return not (any(p.startswith(".") or p in SKIPPED_DIRS for p in parts) or parts[0] in SKIPPED_TOP_DIRS
                or rel.endswith(".pyc"))


def folder_files(folder: str | os.PathLike) -> dict[str, LocalFile]:
    """The files an upload of ``folder`` sends, by repo path (sorted), with their hashes."""
    folder = Path(folder)
    rels = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath).relative_to(folder).as_posix()
        base = "" if base == "." else base + "/"
        dirnames[:] = sorted(d for d in dirnames if is_uploaded(base + d))
        rels += [base + name for name in filenames if is_uploaded(base + name)]
    return {rel: hash_file(folder, rel) for rel in sorted(rels)}


# --------------------------------------------------------------------------------------------- discovery


def is_dataset_repo(folder: Path) -> bool:
    """A built dataset repo: named ``poisoned-*``, with a card whose YAML front matter has ``configs:``."""
    card = folder / "README.md"
    if not (folder.name.startswith(DATASET_PREFIX) and card.is_file()):
        return False
    from huggingface_hub.repocard import metadata_load

    try:
        meta = metadata_load(card) or {}
    except ValueError:  # YAML that does not parse: not a card this project wrote
        return False
    return bool(meta.get("configs"))


def is_checkpoint(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (MODEL_FILE, CONFIG_FILE, SUMMARY_FILE))


@dataclass
class Workspace:
    """The dataset repo folders and checkpoint folders found (or named), in a stable order."""

    root: Path
    datasets: list[Path] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)


def discover(root: str | os.PathLike = ".", *, datasets: Iterable[str | os.PathLike] = (),
             checkpoints: Iterable[str | os.PathLike] = (), search: bool = True,
             max_depth: int = MAX_DEPTH, exclude: Iterable[str | os.PathLike] = ()) -> Workspace:
    """Artefacts under ``root`` (when ``search``) plus the folders named explicitly (checked, not searched for).

    The search does not enter hidden folders, ``checkpoints/`` (resume state), ``tuning/`` (the tuning grid's
    checkpoints: the benchmark's results are the cells, not the grid), git work trees (a clone, or a mirror
    written earlier), the folders in ``exclude`` (the mirror being written) or a folder it has already taken as
    a dataset repo or checkpoint, and stops ``max_depth`` levels below ``root``. Name such a folder with
    ``datasets``/``checkpoints`` to publish it anyway.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise PublishError(f"--from {root}: no such folder; give the workspace where you ran build/train/benchmark")
    ws = Workspace(root)
    for path in map(Path, datasets):
        if not is_dataset_repo(path):
            raise PublishError(f"--dataset {path}: not a dataset repo folder (a folder named {DATASET_PREFIX}* with a "
                               "README.md whose YAML has configs:); build one with `hf-unlearn build`")
        ws.datasets.append(path)
    for path in map(Path, checkpoints):
        if not is_checkpoint(path):
            raise PublishError(f"--checkpoint {path}: not a checkpoint folder (needs {MODEL_FILE}, {CONFIG_FILE} and "
                               f"{SUMMARY_FILE}); save one with `hf-unlearn train` or `unlearn`")
        ws.checkpoints.append(path)
    if search:
        for folder, kind in _walk(root, max_depth, {Path(p).expanduser().resolve() for p in exclude}):
            (ws.datasets if kind == "dataset" else ws.checkpoints).append(folder)
    ws.datasets = _unique(ws.datasets)
    ws.checkpoints = _unique(ws.checkpoints)
    return ws


def _walk(root: Path, max_depth: int, exclude: set[Path]) -> Iterator[tuple[Path, str]]:
    """(folder, "dataset" or "checkpoint") under ``root``, breadth first and sorted, not entering hidden, skipped
    or excluded folders, symlinks, or the artefacts themselves."""
    level = [root]
    for _ in range(max_depth):
        below = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:  # unreadable: nothing of ours is in there
                continue
            for child in children:
                if (child.name.startswith(".") or child.name in NOT_SEARCHED or child.resolve() in exclude
                        or (child / ".git").exists()):  # a clone or a mirror's repo: someone else's, not built here
                    continue
                kind = "dataset" if is_dataset_repo(child) else "checkpoint" if is_checkpoint(child) else None
                if kind:
                    yield child, kind
                else:
                    below.append(child)
        level = below


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen, out = set(), []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def checkpoint_repo_name(folder: Path, root: Path) -> str:
    """A Hub-valid name from the folder's path below ``root`` (else its own name), without ``runs``/``models``.

    ``runs/benchmark/models/eps0.1-b1.5-s0/ga-b0.1-s0`` -> ``benchmark-eps0.1-b1.5-s0-ga-b0.1-s0``: every
    character the Hub refuses becomes ``-``, ``--`` and ``..`` collapse, and the name keeps its last 96 characters.
    """
    try:
        parts = folder.resolve().relative_to(root.resolve()).parts
    except ValueError:
        parts = (folder.resolve().name,)
    parts = [p for p in parts if p not in ("runs", "models")] or [folder.resolve().name]
    name = _NAME_OK.sub("-", "-".join(parts))
    name = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", name))
    name = name[-96:].strip("-._")
    if name.endswith(".git"):
        name = name[:-4].strip("-._")
    if not name:
        raise PublishError(f"checkpoint {folder}: no Hub-valid name can be made from its path; rename the folder")
    return name


# --------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlannedRepo:
    """One repo to publish: where it goes, which local folder it holds, its files and its release tag."""

    kind: str  # dataset, checkpoint, metric, leaderboard, references
    repo_type: str  # model, dataset, space
    repo_id: str
    folder: Path
    files: dict[str, LocalFile]
    tag: str | None = None
    space_sdk: str | None = None  # a Space's front-matter sdk (create_repo needs it)
    variables: dict[str, str] = field(default_factory=dict)  # a Space's settings (the leaderboard's repos)


def check_repo_id(repo_id: str, what: str = "repo id") -> str:
    """``repo_id`` if the Hub accepts it as ``ORG/NAME``; else a PublishError that says what is wrong."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1:
        raise PublishError(f"{what} {repo_id!r}: expected ORG/NAME")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PublishError(f"{what} {repo_id!r}: {exc}") from None
    return repo_id


def _space_sdk(folder: Path) -> str:
    from huggingface_hub.repocard import metadata_load

    meta = metadata_load(folder / "README.md") if (folder / "README.md").is_file() else None
    return str((meta or {}).get("sdk") or "gradio")


def repo_for(kind: str, repo_type: str, repo_id: str, folder: Path, tag: str | None,
             variables: dict[str, str] | None = None) -> PlannedRepo:
    files = folder_files(folder)
    if not files:
        raise PublishError(f"{folder}: nothing to upload (every file is hidden or skipped)")
    return PlannedRepo(kind, repo_type, repo_id, folder, files, tag,
                       _space_sdk(folder) if repo_type == "space" else None, dict(variables or {}))


def dataset_track(folder: Path) -> tuple[str, str]:
    """(task, attack) of a dataset repo folder: its card's ``hf_unlearn: {task, attack}``, else its name
    ``poisoned-<task>-<attack>``."""
    from huggingface_hub.repocard import metadata_load

    stated = (metadata_load(folder / "README.md") or {}).get("hf_unlearn") or {}
    if stated.get("task") and stated.get("attack"):
        return str(stated["task"]), str(stated["attack"])
    task, _, attack = folder.resolve().name.removeprefix(DATASET_PREFIX).partition("-")
    return task, attack


def leaderboard_variables(repos: Sequence[PlannedRepo], tag: str | None) -> dict[str, str]:
    """The settings that make the published leaderboard read the published repos (space/app.py refuses to start
    on a Space without them): ``LEADERBOARD_DATASETS`` (every dataset repo, pinned to the release tag) and
    ``LEADERBOARD_REFERENCES``. ``LEADERBOARD_VERIFIER_KEY`` is a secret only its owner may set."""
    pin = f"@{tag}" if tag else ""
    tracks = [f"{'/'.join(dataset_track(r.folder))}={r.repo_id}{pin}" for r in repos if r.kind == "dataset"]
    variables = {"LEADERBOARD_DATASETS": ",".join(tracks)} if tracks else {}
    variables.update({"LEADERBOARD_REFERENCES": f"hf://datasets/{r.repo_id}" for r in repos if r.kind == "references"})
    return variables


def plan(namespace: str, workspace: Workspace, staging: Path, *, tag: str | None = None, spaces: bool = True,
         references: str | os.PathLike | None = None) -> list[PlannedRepo]:
    """Every repo of ``workspace`` under ``namespace``; generated folders (the leaderboard Space, the references
    repo) are written into ``staging``. Two folders that would land in one repo are an error naming both."""
    check_repo_id(f"{namespace}/x", "--namespace")
    repos: list[PlannedRepo] = []
    for folder in workspace.datasets:
        repo_id = check_repo_id(f"{namespace}/{folder.resolve().name}")
        repos.append(repo_for("dataset", "dataset", repo_id, folder, tag))
    for folder in workspace.checkpoints:
        name = checkpoint_repo_name(folder, workspace.root)
        repos.append(repo_for("checkpoint", "model", check_repo_id(f"{namespace}/{name}"), folder, tag))
    refs = Path(references) if references is not None else workspace.root / REFERENCES_FILE
    if references is not None or refs.is_file():
        repo_id = f"{namespace}/{REFERENCES_REPO}"
        repos.append(repo_for("references", "dataset", repo_id, stage_references(refs, staging / "references", repo_id),
                              tag))
    if spaces:
        for name in METRIC_SPACES:
            folder = REPO_ROOT / "metrics" / name
            if not (folder / f"{name}.py").is_file():
                raise PublishError(f"metric Space folder {folder} not found: publish from a source checkout of "
                                   "hf-unlearn, or pass --no-spaces")
            repos.append(repo_for("metric", "space", f"{namespace}/{name}", folder, tag))
        repos.append(repo_for("leaderboard", "space", f"{namespace}/{LEADERBOARD_SPACE}",
                              stage_leaderboard(staging / "leaderboard", namespace), tag, leaderboard_variables(repos, tag)))
    if not repos:
        raise PublishError(f"nothing to publish: no dataset repo ({DATASET_PREFIX}*) or checkpoint folder under "
                           f"{workspace.root}, and --no-spaces; run from your workspace or pass --from DIR")
    seen: dict[tuple[str, str], Path] = {}
    for repo in repos:
        key = (repo.repo_type, repo.repo_id)
        if key in seen:
            raise PublishError(f"{seen[key]} and {repo.folder} would both be the {repo.repo_type} repo {repo.repo_id}; "
                               "publish one of them (--dataset/--checkpoint PATH without --from) or rename a folder")
        seen[key] = repo.folder
    return repos


def stage_leaderboard(out: Path, namespace: str | None = None) -> Path:
    """The leaderboard Space folder as ``space/deploy.py`` assembles it (app, card, requirements, packages).

    The card's ``datasets:`` name the repos the board ranks under the project's own namespace; published under
    another, they are rewritten to ``namespace`` so the Hub links the Space to the datasets it really reads."""
    import importlib.util

    deploy_py = REPO_ROOT / "space" / "deploy.py"
    if not deploy_py.is_file():
        raise PublishError(f"{deploy_py} not found: publish from a source checkout of hf-unlearn, or pass --no-spaces")
    spec = importlib.util.spec_from_file_location("hf_unlearn_space_deploy", deploy_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = module.build(out)
    if namespace:
        from huggingface_hub import SpaceCard

        card = SpaceCard.load(folder / "README.md")
        ids = card.data.get("datasets") or []
        card.data.datasets = [f"{namespace}/{d.split('/', 1)[-1]}" for d in ids]
        card.save(folder / "README.md")
    return folder


def stage_references(source: Path, out: Path, repo_id: str) -> Path:
    """``references.jsonl`` (its bytes unchanged, after the leaderboard's own validation) and a dataset card."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from leaderboard.references import References

    if not source.is_file():
        raise PublishError(f"--references {source}: no such file (the maintainers' JSONL of none/retrain records)")
    refs = References.load(source)
    if refs.problems:
        raise PublishError(f"--references {source}: {len(refs.problems)} bad record(s), first: {refs.problems[0]}; "
                           "fix the file (the leaderboard would skip them)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / REFERENCES_FILE)
    data = DatasetCardData(license="apache-2.0", pretty_name="hf-unlearn reference results",
                           tags=["hf-unlearn", "machine-unlearning", "leaderboard"])
    body = f"""
# hf-unlearn reference results

The maintainers' own No-unlearning and Retrain result records ({len(refs.records)} records), one JSON object a
line in `{REFERENCES_FILE}`. The hf-unlearn leaderboard ranks every method against these rows and takes them
from here only, never from a submission:

```bash
LEADERBOARD_REFERENCES=hf://datasets/{repo_id} python space/app.py
```
"""
    DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}").save(out / "README.md")
    return out


# --------------------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Changes:
    """What a commit does to a repo, by repo path."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    @property
    def upload(self) -> tuple[str, ...]:
        return self.added + self.changed

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.deleted)


@dataclass(frozen=True)
class Refs:
    head: str | None  # the commit ``main`` points at (None: no commit yet)
    tags: dict[str, str]  # tag -> commit


class Target(Protocol):
    """Where repos are written. ``current_files`` maps each path to its sha256 (LFS) or git blob id (regular
    file), or is None when the repo does not exist."""

    def current_files(self, repo_type: str, repo_id: str) -> dict[str, str] | None: ...

    def refs(self, repo_type: str, repo_id: str) -> Refs: ...

    def commit(self, repo: PlannedRepo, changes: Changes, message: str, parent: str | None) -> str: ...

    def tag(self, repo_type: str, repo_id: str, tag: str, commit: str) -> None: ...

    def space_variables(self, repo_id: str) -> dict[str, str] | None:
        """A Space's variables ({} for a new Space); None where the target has no such settings (a mirror)."""

    def set_space_variables(self, repo_id: str, variables: dict[str, str]) -> None: ...


def _errors() -> tuple[type[BaseException], ...]:
    """The exceptions a Hub call raises when the Hub cannot be reached or refuses (HTTP, offline, transport)."""
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    errors: list[type[BaseException]] = [HfHubHTTPError, OfflineModeIsEnabled, LocalTokenNotFoundError]
    for module in ("httpx2", "httpx"):  # the transport huggingface_hub uses, whichever it is
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _hub_error(repo_id: str, exc: BaseException) -> HubAccessError:
    from hf_unlearn.hub import auth_hint

    detail = " ".join(str(exc).split())[:300]
    return HubAccessError(f"{auth_hint(repo_id)} ({type(exc).__name__}: {detail})")


class HubTarget:
    """The Hugging Face Hub (or ``HF_ENDPOINT``) through ``huggingface_hub.HfApi``: one ``create_commit`` per repo
    with only the files that differ, ``parent_commit`` set to the commit compared against (a concurrent push
    makes the commit fail instead of being overwritten), a tag per release. Errors are HubAccessError."""

    def __init__(self, api: Any = None, *, private: bool = False) -> None:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        self.api = api
        self.private = private

    def current_files(self, repo_type: str, repo_id: str) -> dict[str, str] | None:
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
        from huggingface_hub.hf_api import RepoFile

        try:
            items = list(self.api.list_repo_tree(repo_id, repo_type=repo_type, recursive=True))
        except RepositoryNotFoundError:
            return None
        except RevisionNotFoundError:  # a repo without a commit on main
            return {}
        except _errors() as exc:
            raise _hub_error(repo_id, exc) from exc
        return {f.path: (f.lfs.sha256 if f.lfs else f.blob_id)
                for f in items if isinstance(f, RepoFile) and is_uploaded(f.path)}

    def refs(self, repo_type: str, repo_id: str) -> Refs:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = self.api.list_repo_refs(repo_id, repo_type=repo_type)
        except RepositoryNotFoundError:
            return Refs(None, {})
        except _errors() as exc:
            raise _hub_error(repo_id, exc) from exc
        head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        return Refs(head, {t.name: t.target_commit for t in refs.tags})

    def commit(self, repo: PlannedRepo, changes: Changes, message: str, parent: str | None) -> str:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(repo.folder / p)) for p in changes.upload]
        ops += [CommitOperationDelete(path_in_repo=p) for p in changes.deleted]
        try:
            self.api.create_repo(repo.repo_id, repo_type=repo.repo_type, private=self.private, exist_ok=True,
                                 space_sdk=repo.space_sdk)
            info = self.api.create_commit(repo.repo_id, ops, commit_message=message, repo_type=repo.repo_type,
                                          parent_commit=parent)
        except _errors() as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) in (409, 412):
                raise PublishError(f"{repo.repo_type} repo {repo.repo_id} changed while publishing (its main is no "
                                   f"longer {parent}); run publish again") from None
            raise _hub_error(repo.repo_id, exc) from exc
        return info.oid

    def tag(self, repo_type: str, repo_id: str, tag: str, commit: str) -> None:
        try:
            self.api.create_tag(repo_id, tag=tag, revision=commit, repo_type=repo_type)
        except _errors() as exc:
            raise _hub_error(repo_id, exc) from exc

    def space_variables(self, repo_id: str) -> dict[str, str] | None:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            return {k: v.value for k, v in self.api.get_space_variables(repo_id).items()}
        except RepositoryNotFoundError:
            return {}
        except _errors() as exc:
            raise _hub_error(repo_id, exc) from exc

    def set_space_variables(self, repo_id: str, variables: dict[str, str]) -> None:
        try:
            for key, value in variables.items():
                self.api.add_space_variable(repo_id, key, value)
        except _errors() as exc:
            raise _hub_error(repo_id, exc) from exc


class MirrorTarget:
    """Git repositories in olah's mirror layout, ``<root>/<models|datasets|spaces>/ORG/NAME``, branch ``main``.

    A commit holds exactly the uploaded files' bytes (``hash-object --no-filters``: no line-ending or attribute
    filter), built in a temporary index, so nothing else in the folder can slip in; the work tree is then reset
    to it so the folder shows what is served. The author is ``hf-unlearn`` unless GIT_AUTHOR_*/GIT_COMMITTER_*
    say otherwise; no user or system git config is read (it could sign, hook or filter).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()

    def path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / REPO_DIRS[repo_type] / repo_id

    @staticmethod
    def _env() -> dict[str, str]:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
        for role in ("AUTHOR", "COMMITTER"):
            env.setdefault(f"GIT_{role}_NAME", AUTHOR[0])
            env.setdefault(f"GIT_{role}_EMAIL", AUTHOR[1])
        return env

    def _git(self, repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        try:
            proc = subprocess.run(["git", *args], cwd=repo, env={**self._env(), **(env or {})}, input=stdin,
                                  capture_output=True, text=True, check=True)
        except FileNotFoundError:
            raise PublishError("--mirror needs git on PATH") from None
        except subprocess.CalledProcessError as exc:
            detail = " ".join((exc.stderr or exc.stdout or "").split())[:300]
            raise PublishError(f"mirror repo {repo}: git {args[0]} failed ({detail})") from None
        return proc.stdout.strip()

    def _exists(self, repo: Path) -> bool:
        return (repo / ".git").is_dir()

    def _head(self, repo: Path) -> str | None:
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "refs/heads/main^{commit}"], cwd=repo,
                             capture_output=True, text=True, env=self._env())  # exit 1 and no output: no commit yet
        return out.stdout.strip() or None

    def current_files(self, repo_type: str, repo_id: str) -> dict[str, str] | None:
        repo = self.path(repo_type, repo_id)
        if not self._exists(repo):
            return None
        if self._head(repo) is None:
            return {}
        files = {}
        for line in self._git(repo, "ls-tree", "-r", "-z", "refs/heads/main").split("\0"):
            if line:
                meta, path = line.split("\t", 1)
                if is_uploaded(path):
                    files[path] = meta.split()[2]
        return files

    def refs(self, repo_type: str, repo_id: str) -> Refs:
        repo = self.path(repo_type, repo_id)
        if not self._exists(repo):
            return Refs(None, {})
        tags = {}
        listing = self._git(repo, "for-each-ref", "--format=%(refname:strip=2) %(objectname) %(*objectname)",
                            "refs/tags")
        for line in listing.splitlines():
            name, obj, *peeled = line.split()
            tags[name] = peeled[0] if peeled else obj  # an annotated tag names the commit it peels to
        return Refs(self._head(repo), tags)

    def commit(self, repo: PlannedRepo, changes: Changes, message: str, parent: str | None) -> str:
        path = self.path(repo.repo_type, repo.repo_id)
        if not self._exists(path):
            path.mkdir(parents=True, exist_ok=True)
            self._git(path, "init", "-q", "-b", "main")
        if self._git(path, "symbolic-ref", "HEAD") != "refs/heads/main":
            raise PublishError(f"mirror repo {path} is not on branch main (olah serves main); check it out first")
        head = self._head(path)
        if head != parent:
            raise PublishError(f"mirror repo {path} changed while publishing (main is {head}, expected {parent}); "
                               "run publish again")
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git(path, "read-tree", *(["refs/heads/main"] if head else ["--empty"]), env=env)
            entries = []
            if changes.upload:
                oids = self._git(path, "hash-object", "-w", "--no-filters", "--stdin-paths", env=env,
                                 stdin="".join(str((repo.folder / p).resolve()) + "\n" for p in changes.upload))
                for rel, oid in zip(changes.upload, oids.splitlines()):
                    if oid != repo.files[rel].git_oid:
                        raise PublishError(f"{repo.folder / rel} changed while publishing; run publish again")
                    entries.append(f"100644 {oid}\t{rel}")
            entries += [f"0 {'0' * 40}\t{rel}" for rel in changes.deleted]
            self._git(path, "update-index", "--index-info", stdin="\n".join(entries) + "\n", env=env)
            tree = self._git(path, "write-tree", env=env)
        commit = self._git(path, "commit-tree", tree, *(["-p", head] if head else []), "-m", message)
        self._git(path, "update-ref", "refs/heads/main", commit, head or "0" * 40)
        self._git(path, "reset", "-q", "--hard", "refs/heads/main")
        return commit

    def tag(self, repo_type: str, repo_id: str, tag: str, commit: str) -> None:
        self._git(self.path(repo_type, repo_id), "tag", tag, commit)

    def space_variables(self, repo_id: str) -> None:
        return None  # a git repo has no Space settings: whoever runs the Space sets them in its environment

    def set_space_variables(self, repo_id: str, variables: dict[str, str]) -> None:
        raise PublishError("a mirror has no Space settings")


# --------------------------------------------------------------------------------------------- running a plan


@dataclass
class RepoAction:
    """A planned repo against the target: what would change, and (after running) the commit that holds it."""

    repo: PlannedRepo
    action: str  # create, update, unchanged
    changes: Changes
    head: str | None
    tag_action: str | None = None  # create, exists (None: no tag asked)
    commit: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # Space settings to set (those that differ)
    unset_variables: dict[str, str] = field(default_factory=dict)  # settings the target cannot hold (a mirror)


def compare(repo: PlannedRepo, target: Target) -> RepoAction:
    """The repo's files against the target's: which to add, change and delete; and whether its tag is free."""
    remote = target.current_files(repo.repo_type, repo.repo_id)
    refs = target.refs(repo.repo_type, repo.repo_id) if remote is not None else Refs(None, {})
    have = remote or {}
    changes = Changes(
        added=tuple(p for p in repo.files if p not in have),
        changed=tuple(p for p, f in repo.files.items() if p in have and not f.matches(have[p])),
        deleted=tuple(sorted(p for p in have if p not in repo.files)),
    )
    action = "create" if remote is None else "update" if changes else "unchanged"
    tag_action = None
    if repo.tag:
        where = refs.tags.get(repo.tag)
        if where is None:
            tag_action = "create"
        elif changes or where != refs.head:
            raise PublishError(f"tag {repo.tag} already names commit {where[:12]} of {repo.repo_type} repo "
                               f"{repo.repo_id}, not its {'new content' if changes else 'main'}; a release tag names "
                               "one commit: choose a new --tag")
        else:
            tag_action = "exists"
    result = RepoAction(repo, action, changes, refs.head, tag_action, None if changes else refs.head)
    if repo.variables:
        current = target.space_variables(repo.repo_id)
        if current is None:
            result.unset_variables = dict(repo.variables)
        else:
            result.variables = {k: v for k, v in repo.variables.items() if current.get(k) != v}
    return result


def commit_message(action: RepoAction) -> str:
    c = action.changes
    return (f"hf-unlearn publish: {action.repo.kind} {action.repo.folder.name} ({len(c.added)} added, "
            f"{len(c.changed)} changed, {len(c.deleted)} deleted)")


def run_action(action: RepoAction, target: Target) -> RepoAction:
    """Commit the changes (if any), then the tag (if asked and missing)."""
    repo = action.repo
    if action.changes:
        action.commit = target.commit(repo, action.changes, commit_message(action), action.head)
    if action.tag_action == "create":
        target.tag(repo.repo_type, repo.repo_id, repo.tag, action.commit)
    if action.variables:
        target.set_space_variables(repo.repo_id, action.variables)
    return action


def format_table(actions: Sequence[RepoAction], *, done: bool) -> str:
    """One line per repo: type, id, action, files added/changed/deleted, tag (and the commit after a run)."""
    rows = [("type", "repo", "action", "+added", "~changed", "-deleted", "tag", *(["commit"] if done else []))]
    for a in actions:
        tag = f"{a.repo.tag} ({'new' if a.tag_action == 'create' else 'exists'})" if a.repo.tag else "-"
        rows.append((a.repo.repo_type, a.repo.repo_id, a.action, str(len(a.changes.added)), str(len(a.changes.changed)),
                     str(len(a.changes.deleted)), tag, *([(a.commit or "-")[:12]] if done else [])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def publish(namespace: str, target: Target, *, root: str | os.PathLike | None = None,
            datasets: Iterable[str | os.PathLike] = (), checkpoints: Iterable[str | os.PathLike] = (),
            references: str | os.PathLike | None = None, tag: str | None = None, spaces: bool = True,
            dry_run: bool = False, progress: bool = True, out: IO[str] | None = None) -> list[RepoAction]:
    """Publish a workspace's repos to ``target``; with ``dry_run``, only compare and print the table.

    ``root`` is searched when given, or when no dataset or checkpoint is named (then it is ``.``). Every repo is
    compared (and every tag checked) before anything is written; then each repo is committed on its own, so an
    interrupted run leaves whole commits and a rerun does only the rest.
    """
    from tqdm.auto import tqdm

    out = out or sys.stdout
    datasets, checkpoints = list(datasets), list(checkpoints)
    search = root is not None or not (datasets or checkpoints)
    if tag is not None:
        _check_tag(tag)
    exclude = [target.root] if isinstance(target, MirrorTarget) else []
    workspace = discover(root if root is not None else ".", datasets=datasets, checkpoints=checkpoints, search=search,
                         exclude=exclude)
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-publish-") as staging:
        repos = plan(namespace, workspace, Path(staging), tag=tag, spaces=spaces, references=references)
        actions = [compare(repo, target) for repo in tqdm(repos, desc="comparing", unit="repo", disable=not progress)]
        if not dry_run:
            for action in tqdm(actions, desc="publishing", unit="repo", disable=not progress):
                run_action(action, target)
    print(format_table(actions, done=not dry_run), file=out)
    counts = {k: sum(a.action == k for a in actions) for k in ("create", "update", "unchanged")}
    verb = "would be" if dry_run else "were"
    print(f"{len(actions)} repos: {counts['create']} {verb} created, {counts['update']} {verb} updated, "
          f"{counts['unchanged']} unchanged{' (dry run: nothing written)' if dry_run else ''}", file=out)
    for a in actions:
        for key, value in a.variables.items():
            print(f"{a.repo.repo_id}: variable {key}={value} {'would be set' if dry_run else 'set'}", file=out)
        if a.unset_variables:
            print(f"{a.repo.repo_id}: run the Space with "
                  + " ".join(f"{k}={v}" for k, v in a.unset_variables.items()) + " (a mirror holds no settings)",
                  file=out)
        if a.repo.kind == "leaderboard":
            print(f"{a.repo.repo_id}: set the secret LEADERBOARD_VERIFIER_KEY (>= 16 bytes) in the Space's settings "
                  "if it has none; the Space refuses to start without it", file=out)
    return actions


def _check_tag(tag: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", tag) or ".." in tag or tag.endswith((".lock", ".")):
        raise PublishError(f"--tag {tag!r}: use letters, digits, '.', '_' and '-', e.g. v1.0")


def push_folder(folder: str | os.PathLike, repo_id: str, *, repo_type: str = "model", kind: str | None = None,
                tag: str | None = None, target: Target | None = None) -> RepoAction:
    """One folder to one repo by the path ``publish`` takes: only the files that differ, one commit, the tag if
    missing; HubAccessError when the Hub refuses. (``hub.push_folder`` could call this, so that builders'
    ``--push-to-hub`` and ``space/deploy.py`` upload the same way.)"""
    check_repo_id(repo_id, "--push-to-hub")
    if tag is not None:
        _check_tag(tag)
    target = target or HubTarget()
    kind = kind or {"model": "checkpoint", "dataset": "dataset", "space": "space"}[repo_type]
    return run_action(compare(repo_for(kind, repo_type, repo_id, Path(folder), tag), target), target)


def push_checkpoint(folder: str | os.PathLike, repo_id: str, target: Target | None = None) -> RepoAction:
    """``train``/``unlearn --push-to-hub``: a checkpoint folder (weights, config, summary, card) to a model repo."""
    check_repo_id(repo_id, "--push-to-hub")
    if not is_checkpoint(Path(folder)):
        raise PublishError(f"{folder}: not a checkpoint folder (needs {MODEL_FILE}, {CONFIG_FILE}, {SUMMARY_FILE})")
    return push_folder(folder, repo_id, repo_type="model", target=target)
