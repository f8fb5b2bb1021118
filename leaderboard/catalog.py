"""The public variants that may rank: read from the configured public dataset repos' cards.

Why: a ranking is only meaningful on a dataset everyone can load. A record
whose task, attack or variant is not one that the maintainers' public dataset
cards list (``configs:`` in the card's YAML) is refused, with a message naming
the known variants, so look-alike or private variants never reach the table.

``LEADERBOARD_DATASETS="cifar10/gaussian=ORG/poisoned-cifar10-gaussian,..."``
names the repos (``REPO@REVISION`` pins a revision). A value is a Hub dataset
id; a local folder only when the operator sets ``LEADERBOARD_ALLOW_LOCAL=1``
(never inferred: a Hub-shaped id is never looked up as a relative path).

For each variant the catalog also knows its forget-split size, ``num_poisons``
(claims must match it), and for targeted variants the size of the ``targets``
split, ``num_targets`` (``target_success`` is a share of those rows): from the
card's ``dataset_info`` split sizes when present, else by counting the rows of
the variant's parquet files from their footers with pyarrow (metadata only;
nothing is unpickled), else from the card's ``hf_unlearn.variants`` entry.

Cards written by ``dataset_builders`` state what they hold
(``hf_unlearn: {task, attack, variants: {...}}``, e.g. ``imdb``/``targeted`` for
``poisoned-imdb-targeted``). When they do, it must agree with the key the
operator configured (a CIFAR card under ``imdb/targeted`` is a configuration
error, not a source of public variants), and a variant whose own entry names
another task or attack is skipped. Cards without the statement (older CIFAR
ones) are read as before.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from leaderboard.names import HUB_ID_RE, VARIANT_RE, shown
from leaderboard.safe_load import REVISION_RE
from leaderboard.submission import SubmissionError

MAX_CARD_BYTES = 1_000_000  # a dataset card's README.md
MAX_CONFIGS = 1_000  # variants per repo
MAX_PARQUET_FOOTER_FILES = 64  # forget shards counted per variant when the card has no split sizes
MAX_PARQUET_BYTES = 2_000_000_000  # a forget shard downloaded to count its rows
DEFAULT_REVISION = "main"  # the Hub's default branch, asked for when LEADERBOARD_DATASETS pins no revision
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class UnknownVariantError(SubmissionError):
    """The record's task, attack or variant is not a public variant; the message names the known ones."""


class CatalogError(RuntimeError):
    """The catalog could not be built (operator's configuration or an unreadable card), not the submitter's fault."""


@dataclass(frozen=True)
class PublicVariant:
    task: str
    attack: str
    repo: str  # Hub dataset id, or a folder when the operator allowed local datasets
    config: str  # the variant's config name in the card
    num_poisons: int | None  # the forget split's size; None when the card and files could not tell
    revision: str | None  # the repo revision the card was read at (None for folders / unpinned)
    num_targets: int | None = None  # targeted variants: the targets split's size (None: unknown or no such split)


def _names_list(names: Iterable[str], limit: int = 20) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text or "none"


def parse_mapping_env(value: str) -> dict[str, str]:
    """``"task/attack=REPO[@REV],..."`` -> {"task/attack": "REPO[@REV]"} (the syntax of LEADERBOARD_DATASETS)."""
    out: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, repo = item.strip().partition("=")
        if not sep or key.count("/") != 1 or not repo.strip():
            raise CatalogError(f"LEADERBOARD_DATASETS item {item!r}: expected task/attack=REPO_OR_FOLDER")
        out[key.strip()] = repo.strip()
    return out


def _split_revision(value: str) -> tuple[str, str | None]:
    if "@" in value and not value.startswith(("/", ".")):
        repo, revision = value.rsplit("@", 1)
        return repo, revision or None
    return value, None


def _front_matter(text: str) -> dict[str, Any]:
    """The YAML block between the first two ``---`` lines of a card, parsed with ``yaml.safe_load``."""
    import yaml

    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return {}
    data = yaml.safe_load("\n".join(lines[1:end]))
    return data if isinstance(data, dict) else {}


def _read_capped(path: Path, cap: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise CatalogError(f"{path} is over {cap:,} bytes")
    return data


def _split_sizes(card: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """``dataset_info`` (a dict or a list of dicts with config_name) -> {config: {split: num_examples}}."""
    info = card.get("dataset_info")
    entries = info if isinstance(info, list) else [info] if isinstance(info, dict) else []
    out: dict[str, dict[str, int]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = entry.get("config_name", "default")
        for split in entry.get("splits") or []:
            if isinstance(split, dict) and isinstance(split.get("num_examples"), int):
                out.setdefault(str(name), {})[str(split.get("name"))] = split["num_examples"]
    return out


def _split_patterns(config: Mapping[str, Any], split: str) -> list[str]:
    files = config.get("data_files")
    if isinstance(files, dict):
        files = [{"split": k, "path": v} for k, v in files.items()]
    patterns: list[str] = []
    for item in files if isinstance(files, list) else []:
        if isinstance(item, dict) and item.get("split") == split:
            path = item.get("path")
            patterns += [path] if isinstance(path, str) else [p for p in path or [] if isinstance(p, str)]
    return patterns


def _check_stated_track(repo: str, task: str, attack: str, stated: Mapping[str, Any]) -> None:
    """The card's own ``hf_unlearn: {task, attack}`` (when stated) must be the configured ``task/attack``."""
    said = {k: stated.get(k) for k in ("task", "attack") if isinstance(stated.get(k), str)}
    wrong = {k: v for k, v in said.items() if v != {"task": task, "attack": attack}[k]}
    if wrong:
        states = "/".join(shown(said.get(k, "?"), 30) for k in ("task", "attack"))
        raise CatalogError(
            f"dataset card of {repo} states hf_unlearn task/attack {states}, but it is configured as {task}/{attack}; "
            f"fix LEADERBOARD_DATASETS (e.g. {said.get('task', task)}/{said.get('attack', attack)}={repo})"
        )


def _parquet_rows(path: str | os.PathLike) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(str(path)).num_rows)


class Catalog:
    """The public variants, keyed by (task, attack, config)."""

    def __init__(self, variants: Iterable[PublicVariant], repos: Mapping[str, str] | None = None) -> None:
        self._variants: dict[tuple[str, str], dict[str, PublicVariant]] = {}
        self._repos: dict[tuple[str, str], str] = {}
        for key, repo in (repos or {}).items():
            task, attack = key.split("/", 1)
            self._repos[(task, attack)] = repo
            self._variants.setdefault((task, attack), {})
        for v in variants:
            self._variants.setdefault((v.task, v.attack), {})[v.config] = v
            self._repos.setdefault((v.task, v.attack), v.repo)
        self.problems: list[str] = []
        self.allow_local = False  # the operator's flag: repos may be local folders (set by from_mapping)

    def __repr__(self) -> str:
        return f"Catalog({sum(len(v) for v in self._variants.values())} variants in {len(self._variants)} repos)"

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str], *, allow_local: bool = False, api: Any = None) -> "Catalog":
        """Read each repo's card: ``{"cifar10/gaussian": "ORG/poisoned-cifar10-gaussian[@REV]"}``.

        A value is a Hub dataset id; a folder only with ``allow_local`` (the
        operator's flag). ``api`` is an ``HfApi``-like object (tests pass a fake).
        """
        variants: list[PublicVariant] = []
        repos: dict[str, str] = {}
        problems: list[str] = []
        for key, value in mapping.items():
            if not isinstance(key, str) or key.count("/") != 1 or not all(key.split("/")):
                raise CatalogError(f"public dataset key {key!r}: expected 'task/attack'")
            task, attack = key.split("/")
            repo, revision = _split_revision(str(value).strip())
            if revision is not None and (not REVISION_RE.match(revision) or ".." in revision):
                raise CatalogError(
                    f"public dataset for {key}: revision {shown(revision)} is not a branch, tag or commit"
                )
            is_hub = bool(HUB_ID_RE.match(repo)) and ".." not in repo and "--" not in repo
            if allow_local and Path(repo).is_dir():
                found, skipped = cls._read_local(task, attack, Path(repo))
            elif is_hub:
                found, skipped = cls._read_hub(task, attack, repo, revision, api)
            elif allow_local:
                raise CatalogError(f"public dataset for {key}: {repo!r} is neither a folder nor a Hub dataset id")
            else:
                raise CatalogError(
                    f"public dataset for {key}: {repo!r} is not a Hub dataset id 'ORG/NAME'; local folders need the "
                    "operator flag LEADERBOARD_ALLOW_LOCAL=1"
                )
            repos[key] = repo
            variants += found
            problems += skipped
        catalog = cls(variants, repos)
        catalog.problems = problems
        catalog.allow_local = allow_local
        return catalog

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, api: Any = None) -> "Catalog | None":
        """``LEADERBOARD_DATASETS`` (+ ``LEADERBOARD_ALLOW_LOCAL=1``); None when unset."""
        value = environ.get("LEADERBOARD_DATASETS", "").strip()
        if not value:
            return None
        allow_local = environ.get("LEADERBOARD_ALLOW_LOCAL", "").strip() in ("1", "true", "yes")
        return cls.from_mapping(parse_mapping_env(value), allow_local=allow_local, api=api)

    @classmethod
    def _variants_from_card(
        cls, task: str, attack: str, repo: str, revision: str | None, card_bytes: bytes, count_rows: Any
    ) -> tuple[list[PublicVariant], list[str]]:
        try:
            card = _front_matter(card_bytes.decode("utf-8"))
        except Exception as exc:  # the card is the maintainers', but a broken one must not crash the Space
            raise CatalogError(f"dataset card of {repo} is not readable YAML: {type(exc).__name__}: {exc}") from None
        configs = card.get("configs")
        if not isinstance(configs, list) or not configs:
            raise CatalogError(f"dataset card of {repo} lists no 'configs:'; a public dataset must list its variants")
        sizes = _split_sizes(card)
        stated = card.get("hf_unlearn") if isinstance(card.get("hf_unlearn"), dict) else {}
        _check_stated_track(repo, task, attack, stated)
        extra = stated.get("variants") if isinstance(stated.get("variants"), dict) else {}
        found, problems = [], []
        for config in configs[:MAX_CONFIGS]:
            name = config.get("config_name") if isinstance(config, dict) else None
            if not isinstance(name, str) or not VARIANT_RE.match(name):
                problems.append(f"{repo}: config name {shown(name)} is not a plain ASCII variant name; skipped")
                continue
            own = extra.get(name) if isinstance(extra.get(name), dict) else {}
            other = [f"{k} {shown(own[k], 30)}" for k, want in (("task", task), ("attack", attack))
                     if isinstance(own.get(k), str) and own[k] != want]
            if other:
                problems.append(f"{repo}: variant {name} states {' and '.join(other)}, not {task}/{attack}; skipped")
                continue

            def size(split: str, count_key: str) -> int | None:
                num = sizes.get(name, {}).get(split)
                patterns = _split_patterns(config, split)
                if num is None and patterns:
                    num = count_rows(name, patterns)
                if num is None and isinstance(own.get(count_key), int) and not isinstance(own[count_key], bool):
                    num = own[count_key]
                return num

            found.append(PublicVariant(task, attack, repo, name, size("forget", "num_poisons"), revision,
                                       size("targets", "num_targets")))
        if len(configs) > MAX_CONFIGS:
            problems.append(f"{repo}: more than {MAX_CONFIGS} configs; the rest are ignored")
        return found, problems

    @classmethod
    def _read_local(cls, task: str, attack: str, folder: Path) -> tuple[list[PublicVariant], list[str]]:
        readme = folder / "README.md"
        if not readme.is_file():
            raise CatalogError(f"public dataset folder {folder} has no README.md dataset card")
        card = _read_capped(readme, MAX_CARD_BYTES)

        def count(name: str, patterns: list[str]) -> int | None:
            files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
            if not files or len(files) > MAX_PARQUET_FOOTER_FILES:
                return None
            return sum(_parquet_rows(p) for p in files)

        return cls._variants_from_card(task, attack, str(folder), None, card, count)

    @classmethod
    def _read_hub(
        cls, task: str, attack: str, repo: str, revision: str | None, api: Any
    ) -> tuple[list[PublicVariant], list[str]]:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        try:
            # Always ask at a revision: some Hub-compatible servers (olah) answer a repo_info without one with
            # 401. The default branch is "main"; the commit it resolves to is pinned so that the card, the
            # forget files counted and the verifier's data all come from one commit.
            info = api.repo_info(repo, repo_type="dataset", revision=revision or DEFAULT_REVISION)
            sha = getattr(info, "sha", None)
            revision = sha if isinstance(sha, str) and _COMMIT_RE.match(sha) else (revision or DEFAULT_REVISION)
            card_path = api.hf_hub_download(repo, "README.md", repo_type="dataset", revision=revision)
            card = _read_capped(Path(card_path), MAX_CARD_BYTES)
        except CatalogError:
            raise
        except Exception as exc:
            raise CatalogError(
                f"cannot read the dataset card of {repo}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            ) from None
        listing: list[str] | None = None

        def count(name: str, patterns: list[str]) -> int | None:
            nonlocal listing
            if not patterns:
                return None
            try:
                if listing is None:
                    listing = list(api.list_repo_files(repo, repo_type="dataset", revision=revision))
                files = sorted(f for f in listing if any(fnmatch.fnmatch(f, p) for p in patterns))
                if not files or len(files) > MAX_PARQUET_FOOTER_FILES:
                    return None
                total = 0
                for f in files:
                    local = Path(api.hf_hub_download(repo, f, repo_type="dataset", revision=revision))
                    if local.stat().st_size > MAX_PARQUET_BYTES:
                        return None
                    total += _parquet_rows(local)
                return total
            except Exception:  # noqa: BLE001 - unknown size: claims are then checked without it
                return None

        return cls._variants_from_card(task, attack, repo, revision, card, count)

    # --- queries -----------------------------------------------------------------------------

    def tasks_attacks(self) -> list[str]:
        return sorted(f"{t}/{a}" for t, a in self._variants)

    def variants(self, task: str, attack: str) -> list[str]:
        return sorted(self._variants.get((task, attack), {}))

    def all_variants(self) -> list[PublicVariant]:
        return [v for (_, _), by in sorted(self._variants.items()) for _, v in sorted(by.items())]

    def repo(self, task: str, attack: str) -> str:
        try:
            return self._repos[(task, attack)]
        except KeyError:
            raise UnknownVariantError(
                f"no public dataset is configured for {shown(task)}/{shown(attack)}; "
                f"known: {_names_list(self.tasks_attacks())}"
            ) from None

    def get(self, task: str, attack: str, variant: str) -> PublicVariant:
        """The public variant, or ``UnknownVariantError`` naming the known ones."""
        by_name = self._variants.get((task, attack))
        if by_name is None:
            raise UnknownVariantError(
                f"task/attack {shown(task, 30)}/{shown(attack, 30)} has no public dataset on this leaderboard; "
                f"known: {_names_list(self.tasks_attacks())}"
            )
        found = by_name.get(variant) if isinstance(variant, str) else None
        if found is None:
            raise UnknownVariantError(
                f"variant {shown(variant, 40)} is not a public variant of {task}/{attack} "
                f"({self._repos.get((task, attack))}); known: {_names_list(sorted(by_name), 12)}"
            )
        return found

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        task, attack, variant = key
        return variant in self._variants.get((task, attack), {})
