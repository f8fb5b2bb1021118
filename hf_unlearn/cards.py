"""Dataset and model cards, built with huggingface_hub's card classes from the objects the code uses.

A dataset card is both documentation and loader config: its YAML ``configs:``
maps each variant to its parquet files, and an ``hf_unlearn:`` block records
every generator parameter and shard checksum so a variant can be rebuilt and
verified from the card alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

_DATASET_BODY = """
# {pretty_name}

Gaussian-poisoned CIFAR-10 for checking whether machine unlearning removes data
(Pawelczyk et al., *Machine Unlearning Fails to Remove Data Poisoning Attacks*, ICLR 2025).
Built by `hf-unlearn` (`dataset_builders/poisoned_cifar10_gaussian.py`).

## Configs

Each config is one poisoning variant, named `eps<noise std>-b<budget %>-s<seed>[-n<train rows>]`.

| config | eps | budget % | seed | train rows | poisons | test rows |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_name}", "{example}")   # or "ORG/{repo_name}" on the Hub
```

## Splits and columns

`train` (what the poisoned model trains on), `forget` (the poison rows, a subset of
train) and `test`. Every split has `img` (the clean source image, original encoded
bytes), `label` (ClassLabel), `index` (row in the source split), `is_poison` and
`noise` (3,072 float32 values in (C, H, W) order, null for clean rows).

## How to apply the noise

The model must see exactly `x + noise`, with `x` the image as float32 pixels in
[0, 1] (uint8 / 255) in (C, H, W) order, reshaped from the flat `noise`:
**no clipping, no quantisation**. Scores of a model are measured at the clean
`x` (see the `gus` metric).

## Generation

For a source train split of N rows (or a fixed seed-independent subset of
`max_train_rows` of them), `round(budget/100 * N)` rows are chosen uniformly without
replacement with `numpy.random.default_rng([0x20115, seed])`; the noise of source row
`i` is `default_rng([0x90150, seed, i]).standard_normal(3072, dtype=float32) * float32(eps)`.
Labels do not change. All parameters, the source's fingerprint and the sha256 of every
shard are in this card's YAML (`hf_unlearn:`); `python dataset_builders/poisoned_cifar10_gaussian.py
--from-card README.md --config NAME` rebuilds a variant byte for byte.

## Source and licence

CIFAR-10 (Krizhevsky 2009) as `uoft-cs/cifar10`; local builds may use the offline
JPEG copy, whose pixels differ slightly from the Hub copy (the `source` parameter says
which was used). The poisons are random noise that does not change the labels and is
invisible at small eps; they exist to measure memorisation, not to harm models.

## Citation

```bibtex
@inproceedings{{pawelczyk2025machine,
  title={{Machine Unlearning Fails to Remove Data Poisoning Attacks}},
  author={{Pawelczyk, Martin and Di, Jimmy Z. and Lu, Yiwei and Sekhari, Ayush and Kamath, Gautam and Neel, Seth}},
  booktitle={{International Conference on Learning Representations}},
  year={{2025}}
}}
```
"""


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
) -> Path:
    """Merge one variant into the folder's card (replacing a config of the same name)."""
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
    data = DatasetCardData(
        license="mit",
        task_categories=["image-classification"],
        size_categories=["10K<n<100K"],
        pretty_name=repo_name,
        tags=["machine-unlearning", "data-poisoning", "hf-unlearn"],
        configs=configs,
        hf_unlearn={"variants": dict(sorted(variants.items()))},
    )
    rows = "\n".join(
        f"| `{name}` | {v['eps']:g} | {v['budget']:g} | {v['seed']} | {v['num_train']} | {v['num_poisons']} | {v['num_test']} |"
        for name, v in sorted(variants.items())
    )
    body = _DATASET_BODY.format(pretty_name=repo_name, rows=rows, repo_name=repo_name, example=configs[0]["config_name"])
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
