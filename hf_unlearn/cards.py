"""Dataset and model cards, built with huggingface_hub's card classes from the objects the code uses.

A dataset card is both documentation and loader config: its YAML ``configs:``
maps each variant to its parquet files, and an ``hf_unlearn:`` block records
every generator parameter and shard checksum so a variant can be rebuilt and
verified from the card alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

# The paper every hf-unlearn dataset card cites; a card's spec adds the attack's own sources after it.
PAPER_BIBTEX = """@inproceedings{pawelczyk2025machine,
  title={Machine Unlearning Fails to Remove Data Poisoning Attacks},
  author={Pawelczyk, Martin and Di, Jimmy Z. and Lu, Yiwei and Sekhari, Ayush and Kamath, Gautam and Neel, Seth},
  booktitle={International Conference on Learning Representations},
  year={2025}
}"""


@dataclass(frozen=True)
class DatasetCardSpec:
    """What one dataset repo's card says beyond the merged ``configs:`` and variants: identity, header, prose.

    The builders own the task- and attack-specific parts (a CIFAR card is an image-classification card under
    MIT, an IMDb card a text-classification one), so this module stays free of task names. ``body(variants,
    example_config)`` writes the prose up to the citation section, which is always the paper plus ``citations``.
    ``task`` and ``attack`` go into the YAML as ``hf_unlearn: {task, attack}``, where
    ``hf_unlearn.attacks.variant_identity`` reads them for a folder whose name does not say.
    """

    task: str
    attack: str
    license: str
    task_categories: tuple[str, ...]
    body: Callable[[dict[str, dict], str], str]
    task_ids: tuple[str, ...] | None = None
    language: tuple[str, ...] | None = None
    source_datasets: tuple[str, ...] | None = None
    size_categories: tuple[str, ...] = ("10K<n<100K",)
    citations: tuple[str, ...] = ()

    def citation_section(self) -> str:
        entries = "\n".join((PAPER_BIBTEX, *self.citations))
        return f"## Citation\n\n```bibtex\n{entries}\n```\n"


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    """A YAML list, or None so that the card leaves the key out (a CIFAR card has no ``language:``)."""
    return None if values is None else list(values)


def _load_existing(folder: Path) -> tuple[list[dict], dict]:
    readme = folder / "README.md"
    if not readme.exists():
        return [], {}
    data = DatasetCard.load(readme).data.to_dict()
    return list(data.get("configs", [])), dict(data.get("hf_unlearn", {}).get("variants", {}))


def update_dataset_card(
    folder: str | os.PathLike,
    *,
    repo_name: str,
    config_name: str,
    params: dict[str, Any],
    checksums: dict[str, dict[str, str]],
    spec: DatasetCardSpec,
) -> Path:
    """Merge one variant into the folder's card (replacing a config of the same name); returns the card's path.

    Configs are sorted by name and the first is the default; each variant's parameters and the sha256 of its
    shards go under ``hf_unlearn.variants``. The card is written beside and moved into place, so an interrupted
    build never leaves half a card.
    """
    folder = Path(folder)
    configs, variants = _load_existing(folder)
    configs = [c for c in configs if c.get("config_name") != config_name]
    configs.append(
        {
            "config_name": config_name,
            "data_files": [{"split": s, "path": f"data/{config_name}/{s}-*.parquet"} for s in checksums],
        }
    )
    configs.sort(key=lambda c: c["config_name"])
    for c in configs:
        c.pop("default", None)
    configs[0]["default"] = True
    variants[config_name] = {**params, "sha256": {f: h for split in checksums.values() for f, h in split.items()}}
    variants = dict(sorted(variants.items()))
    data = DatasetCardData(
        language=_listed(spec.language),
        license=spec.license,
        task_categories=list(spec.task_categories),
        task_ids=_listed(spec.task_ids),
        size_categories=list(spec.size_categories),
        source_datasets=_listed(spec.source_datasets),
        pretty_name=repo_name,
        tags=["machine-unlearning", "data-poisoning", "hf-unlearn"],
        configs=configs,
        hf_unlearn={"task": spec.task, "attack": spec.attack, "variants": variants},
    )
    body = spec.body(variants, configs[0]["config_name"]) + spec.citation_section()
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")
    tmp = folder / ".README.md.tmp"
    card.save(tmp)
    os.replace(tmp, folder / "README.md")
    return folder / "README.md"


def variant_params(card_path: str | os.PathLike, config_name: str) -> dict[str, Any]:
    """The generator parameters a card records for one config."""
    card_path = Path(card_path)
    if card_path.is_dir():
        card_path = card_path / "README.md"
    if not card_path.exists():
        raise FileNotFoundError(f"no dataset card at {card_path}")
    variants = DatasetCard.load(card_path).data.to_dict().get("hf_unlearn", {}).get("variants", {})
    if config_name not in variants:
        raise ValueError(f"config {config_name!r} is not in {card_path}; it lists {sorted(variants)}")
    return variants[config_name]


def local_variant_key(folder: str | os.PathLike, config_name: str) -> str:
    """A digest of what a local folder holds for one config, to key a loader's cache by content.

    It covers the sha256 the card records for the config's shards (what the builder wrote) and each of the
    config's data files as it is now: path in the folder, size and modification time (so hand-replaced files
    count too). That costs a card read and a few ``stat`` calls, not a pass over the data. Without a card entry
    every parquet file in the folder counts.
    """
    folder = Path(folder).expanduser()
    recorded, patterns = _config_entry(folder, config_name)
    files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    if not files:
        files = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
    stats = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = json.dumps({"config": config_name, "sha256": recorded, "files": stats}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _config_entry(folder: Path, config_name: str) -> tuple[dict[str, str], list[str]]:
    """(shard sha256 the card records, data-file patterns of its ``configs:`` entry) for a config; empty if none."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}, []
    data = DatasetCard.load(readme).data.to_dict()
    recorded = ((data.get("hf_unlearn") or {}).get("variants") or {}).get(config_name, {}).get("sha256", {})
    patterns: list[str] = []
    for entry in data.get("configs") or []:
        if entry.get("config_name") != config_name:
            continue
        files = entry.get("data_files") or []
        for item in files if isinstance(files, list) else [files]:
            paths = item.get("path") if isinstance(item, dict) else item
            patterns.extend([paths] if isinstance(paths, str) else list(paths or []))
    return dict(recorded), patterns


def _fmt(value: Any, spec: str) -> str:
    return "not measured" if value is None else format(value, spec)


def write_model_card(folder: str | os.PathLike, summary: dict[str, Any], *, title: str, task: Any = None) -> Path:
    """A model card recording the data variant, the recipe, the seed and the training cost.

    ``task`` (default: the default task) supplies the model family's tag, one-line description and usage
    snippet (``card_tag``, ``card_model``, ``card_usage(repo_hint)``; generic text when it has none)."""
    from hf_unlearn.tasks import DEFAULT_TASK, get_task

    task = get_task(task if task is not None else summary.get("task") or DEFAULT_TASK)
    hint = summary.get('repo_hint', 'PATH_OR_REPO')
    usage = task.card_usage(hint) if hasattr(task, "card_usage") else (
        f'from hf_unlearn.train import load_checkpoint\nmodel, summary = load_checkpoint("{hint}")')
    ds = summary.get("dataset", {})
    data = ModelCardData(
        library_name="hf-unlearn",
        license="mit",
        tags=["machine-unlearning", "data-poisoning", "hf-unlearn", *([task.card_tag] if hasattr(task, "card_tag") else [])],
        datasets=[ds["id"]] if ds.get("id") and "/" in str(ds["id"]) and not str(ds["id"]).startswith((".", "/")) else None,
        metrics=["accuracy"],
        hf_unlearn=summary,
    )
    recipe = "\n".join(f"| `{k}` | `{v}` |" for k, v in summary.get("train_config", {}).items())
    body = f"""
# {title}

A {getattr(task, "card_model", getattr(task, "model_title", "model"))} trained by `hf-unlearn` on `{ds.get('id')}` (config `{ds.get('config')}`,
rows: {summary.get('num_train')}, of which {summary.get('num_poisons_trained_on', 0)} carry Gaussian poisons).

| | |
| --- | --- |
| test accuracy | {_fmt(summary.get('test_accuracy'), '.4f')} |
| training cost | {summary.get('training_cost', 0):.4g} forward-equivalents (forward = 1, forward+backward = 3, per example) |
| seed | {summary.get('seed')} |
| role | {summary.get('role', 'poisoned')} |

```python
{usage}
```

## Training recipe

| hyper-parameter | value |
| --- | --- |
{recipe}

{getattr(task, "card_inputs", "Poisoned rows are trained on their poisoned inputs exactly; see the dataset card.")}
"""
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    path = Path(folder) / "README.md"
    card.save(path)
    return path
