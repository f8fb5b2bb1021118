"""Everything that talks to the Hugging Face Hub: repo ids, revisions, push and pull.

Nothing else in the package calls ``huggingface_hub`` upload/download functions,
so Hub behaviour (and its errors) is handled in one place. ``HF_ENDPOINT`` works
as usual, which is how the tests point at a local Hub-compatible server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "training_summary.json"


def split_revision(repo: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); no ``@`` -> revision None."""
    if "@" in repo:
        repo_id, rev = repo.rsplit("@", 1)
        if not rev:
            raise ValueError(f"{repo!r}: empty revision after '@'; use ORG/NAME or ORG/NAME@REVISION")
        return repo_id, rev
    return repo, None


class HubAccessError(RuntimeError):
    """The Hub (or HF_ENDPOINT) could not serve a repo; the message says what to do."""


def check_local_or_repo_id(name: str, what: str) -> bool:
    """True for an existing local path; False for something shaped like ``org/name[@rev]``; else a clear error.

    Catching a mistyped folder name here avoids a minute of Hub retries ending in a network error.
    A name like ``runs/nope`` whose first part is an existing local folder is taken for a mistyped path, not for
    the Hub repo of an organisation called ``runs``.
    """
    if Path(name).expanduser().exists():
        return True
    repo_id, _ = split_revision(name)
    parts = repo_id.split("/")
    if len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~")):
        if Path(parts[0]).is_dir():
            raise FileNotFoundError(f"{what} folder {name!r} does not exist ({parts[0]}/ has no {parts[1]!r}); "
                                    "a Hub id looks like ORG/NAME")
        return False
    raise FileNotFoundError(f"{what} {name!r}: no such folder, and not a Hub repo id (a Hub id looks like ORG/NAME)")


def auth_hint(repo_id: str) -> str:
    return (
        f"could not reach {repo_id!r} on {os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}: log in with "
        "`hf auth login` or set HF_TOKEN, check the repo id, or work offline from a local folder"
    )


def _missing_model(repo: str, revision: str | None, exc: Exception) -> Exception:
    """The error for a checkpoint name that is no local folder and that the Hub (or its cache) cannot serve."""
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    head = f"checkpoint {repo!r}: no such local folder, and"
    tail = "a local path must exist; a Hub id looks like ORG/NAME"
    if isinstance(exc, LocalEntryNotFoundError):
        return FileNotFoundError(f"{head} no such model in the local Hub cache (offline, or {endpoint} unreachable); "
                                 f"{tail}")
    if isinstance(exc, RevisionNotFoundError):
        return FileNotFoundError(f"{head} the Hub repo has no revision {revision!r}; {tail}")
    if isinstance(exc, RepositoryNotFoundError):
        return FileNotFoundError(f"{head} {endpoint} has no model repo of that name (private or gated ones need "
                                 f"`hf auth login` or HF_TOKEN); {tail}")
    return HubAccessError(f"{auth_hint(split_revision(repo)[0])} ({exc})")


def dataset_snapshot(repo: str, config: str, revision: str | None = None) -> Path:
    """A local copy of one config of a Hub dataset repo (its card and that config's shards), from the Hub cache.

    Loading a Hub variant through a local snapshot lets the loader check the shards against the sha256 the card
    records, as it does for a folder; ``datasets`` alone would load a tampered shard without a word. Only the
    card and the config's own files are fetched (the card's ``configs:`` patterns), as ``load_dataset`` would.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    from hf_unlearn.cards import config_data_patterns

    repo_id, at = split_revision(repo)
    revision = revision or at
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        card_only = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=["README.md"]))
        patterns = config_data_patterns(card_only, config)
        if not patterns:
            raise ValueError(f"dataset {repo_id}{'@' + revision if revision else ''} has no config {config!r} in its "
                             "card's configs:; check the config name (the card lists them)")
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                      allow_patterns=["README.md", *patterns]))
    except RevisionNotFoundError:
        raise FileNotFoundError(f"dataset {repo_id!r} has no revision {revision!r} on {endpoint}") from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"dataset {repo_id!r}: {endpoint} has no dataset repo of that name (private or gated "
                                "ones need `hf auth login` or HF_TOKEN); a local folder must exist") from None
    except LocalEntryNotFoundError:
        raise FileNotFoundError(f"dataset {repo_id!r}: not in the local Hub cache (offline, or {endpoint} "
                                "unreachable); download it once online or use a local folder") from None
    except HfHubHTTPError as exc:
        raise HubAccessError(f"{auth_hint(repo_id)} ({exc})") from exc


def push_folder(folder: str | os.PathLike, repo_id: str, *, repo_type: str = "dataset", private: bool = False) -> str:
    """Create the repo if needed and commit the files that differ (``hf_unlearn.publish``'s path, so builders'
    ``--push-to-hub``, ``space/deploy.py`` and ``hf-unlearn publish`` upload the same way); returns where it went."""
    from hf_unlearn.publish import HubTarget
    from hf_unlearn.publish import push_folder as publish_folder

    action = publish_folder(folder, repo_id, repo_type=repo_type, target=HubTarget(private=private))
    return f"{repo_id} ({repo_type}) at {action.commit or action.head}: {action.action}"


def load_model(repo: str, revision: str | None = None):
    """A ResNet18 checkpoint and its training summary from a Hub model repo (safetensors only; the cifar10 task)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    from hf_unlearn.models.resnet import ResNet18

    repo_id, rev = split_revision(repo)
    revision = revision or rev
    try:
        model = ResNet18.from_pretrained(repo_id, revision=revision)
    except (HfHubHTTPError, LocalEntryNotFoundError) as exc:
        raise _missing_model(repo, revision, exc) from exc
    summary: dict[str, Any] = {}
    try:
        summary = json.loads(Path(hf_hub_download(repo_id, SUMMARY_FILE, revision=revision)).read_text())
    except EntryNotFoundError:
        pass
    return model, summary


def read_model_config(repo: str, revision: str | None = None) -> dict[str, Any]:
    """A Hub model repo's ``config.json`` ({} if it has none), for ``train.load_checkpoint`` to pick the task."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    repo_id, rev = split_revision(repo)
    try:
        path = hf_hub_download(repo_id, CONFIG_FILE, revision=revision or rev)
    except (LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        # LocalEntryNotFoundError is also an EntryNotFoundError: offline, it is a missing model, not a missing file
        raise _missing_model(repo, revision or rev, exc) from exc
    except EntryNotFoundError:
        return {}
    except HfHubHTTPError as exc:
        raise HubAccessError(f"{auth_hint(repo_id)} ({exc})") from exc
    return json.loads(Path(path).read_text())
