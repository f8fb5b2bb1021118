"""Dataset and model cards, built with huggingface_hub's card classes from the objects the code uses.

A dataset card is both documentation and loader config: its YAML ``configs:``
maps each variant to its parquet files, and an ``hf_unlearn:`` block records
every generator parameter and shard checksum so a variant can be rebuilt and
verified from the card alone (``verify_local_variant``, which ``load_variant`` runs);
``dataset_info`` and ``size_categories`` are read from the shards. A model card
carries the Hub's metadata (library, pipeline tag, datasets, base model, licence)
and a ``model-index`` that ``add_eval_results`` extends with each scored record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

# The package's licence (pyproject.toml): what the cards, the generated noise and the checkpoints are released under.
LICENSE = "apache-2.0"

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

    The builders own the task- and attack-specific parts (a CIFAR card is an image-classification card, an IMDb
    card a text-classification one), so this module stays free of task names. ``license`` is the licence of what
    the repo adds (cards, noise, poisons: the package's, :data:`LICENSE`); ``source_terms`` says in the card that
    the source rows keep their own licence. ``size_categories`` is computed from the row counts, not declared.
    ``body(variants, example_config)`` writes the prose up to the citation section, which is always the paper plus ``citations``.
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
    citations: tuple[str, ...] = ()
    source_terms: str = ("The source rows (images or texts) keep their own licence and terms of use; see the "
                         "source dataset's card.")

    def license_section(self) -> str:
        return (f"## Licence\n\nThis card, the generated noise and the poisoned rows are released under "
                f"{self.license} (the licence of the hf-unlearn package). {self.source_terms}\n\n")

    def citation_section(self) -> str:
        entries = "\n".join((PAPER_BIBTEX, *self.citations))
        return f"## Citation\n\n```bibtex\n{entries}\n```\n"


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    """A YAML list, or None so that the card leaves the key out (a CIFAR card has no ``language:``)."""
    return None if values is None else list(values)


# The Hub's size bins (its dataset-card metadata schema), as (upper bound exclusive, label).
_SIZE_BINS = (
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T"),
)


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bin for a row count (``n<1K``, ``1K<n<10K``, ..., ``n>1T``).

    A card's count is its largest config's rows over all splits (what ``load_dataset`` of one config gets).
    """
    if rows < 0:
        raise ValueError(f"rows={rows}: a row count is >= 0")
    return next((label for bound, label in _SIZE_BINS if rows < bound), "n>1T")


def _existing_infos(folder: Path) -> dict[str, dict]:
    """``dataset_info`` entries the folder's card already has, by config (kept for configs whose files are gone)."""
    readme = folder / "README.md"
    if not readme.exists():
        return {}
    info = DatasetCard.load(readme).data.to_dict().get("dataset_info") or []
    entries = [info] if isinstance(info, dict) else list(info)
    return {e.get("config_name", "default"): e for e in entries}


def _dataset_infos(folder: Path, config_names: Iterable[str], existing: dict[str, dict]) -> list[dict]:
    """``dataset_info`` per config, read from its parquet shards: features, split sizes, download and data size.

    The features are the ones ``datasets`` stored in each shard's schema, so the card cannot disagree with the
    files; the Hub viewer and ``load_dataset`` read them from the card. Only footers are read, not the data.
    """
    import datasets
    import pyarrow.parquet as pq

    infos = []
    for name in config_names:
        shards = sorted((folder / "data" / name).glob("*.parquet"))
        if not shards:
            if name in existing:
                infos.append(existing[name])
            continue
        by_split: dict[str, list[Path]] = {}
        for shard in shards:
            by_split.setdefault(shard.name.split("-", 1)[0], []).append(shard)
        splits = datasets.SplitDict()
        features = None
        for split, files in by_split.items():
            metas = [pq.read_metadata(f) for f in files]
            rows = sum(m.num_rows for m in metas)
            nbytes = sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups))
            splits.add(datasets.SplitInfo(name=split, num_bytes=nbytes, num_examples=rows))
            features = features or datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
        info = datasets.DatasetInfo(features=features, splits=splits,
                                    download_size=sum(f.stat().st_size for f in shards),
                                    dataset_size=sum(s.num_bytes for s in splits.values()))
        infos.append({"config_name": name, **info._to_yaml_dict()})
    return infos


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
    infos = _dataset_infos(folder, [c["config_name"] for c in configs], existing=_existing_infos(folder))
    rows = max((sum(s["num_examples"] for s in info["splits"]) for info in infos), default=0)
    data = DatasetCardData(
        language=_listed(spec.language),
        license=spec.license,
        task_categories=list(spec.task_categories),
        task_ids=_listed(spec.task_ids),
        size_categories=[size_category(rows)],
        source_datasets=_listed(spec.source_datasets),
        pretty_name=repo_name,
        tags=["machine-unlearning", "data-poisoning", "hf-unlearn"],
        configs=configs,
        dataset_info=infos[0] if len(infos) == 1 else infos,
        hf_unlearn={"task": spec.task, "attack": spec.attack, "variants": variants},
    )
    body = spec.body(variants, configs[0]["config_name"]) + spec.license_section() + spec.citation_section()
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


class VariantModifiedError(ValueError):
    """A local variant's shards differ from the sha256 its card records: the folder changed after it was built."""


def verify_local_variant(folder: str | os.PathLike, config_name: str) -> int:
    """Recompute the sha256 of every shard of one config and compare it with the card; returns the files checked.

    A shard whose bytes differ from the recorded checksum (a forget split whose noise was zeroed is still valid
    parquet, and would score GUS 0 without complaint), a recorded shard that is missing, or a shard of the
    config that the card does not list raises :class:`VariantModifiedError` naming the file. A folder whose
    card records no checksums for the config (hand-made data) is not checked: 0 is returned.
    """
    folder = Path(folder).expanduser()
    recorded, patterns = _config_entry(folder, config_name)
    if not recorded:
        return 0
    present = {p.relative_to(folder).as_posix() for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    fix = "rebuild it (`hf-unlearn build ... --from-card`) or download it again"
    for rel in sorted(set(recorded) | present):
        if rel not in recorded:
            raise VariantModifiedError(
                f"{folder / rel} is not in the card's checksums for config {config_name!r}: the variant was "
                f"modified after it was built; {fix}")
        path = folder / rel
        if not path.is_file():
            raise VariantModifiedError(
                f"{path} is missing, though the card records it for config {config_name!r}: the variant was "
                f"modified after it was built; {fix}")
        if sha256_file(path) != recorded[rel]:
            raise VariantModifiedError(
                f"{path} does not match the sha256 its card records (config {config_name!r}): the variant was "
                f"modified after it was built; {fix}")
    return len(recorded)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (shards and weights can be larger than memory wants)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_data_patterns(folder: str | os.PathLike, config_name: str) -> list[str]:
    """The data-file patterns the card's ``configs:`` entry gives one config (what a download of it needs)."""
    return _config_entry(Path(folder).expanduser(), config_name)[1]


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


# A result record's metrics that a model card's ``model-index`` carries: record key -> (metric type, display name,
# split it is measured on). Test accuracy for every model; GUS and TPR at 1% FPR (Gaussian poisons, on the forget
# rows); target success (targeted attacks, on the targets split); the accuracy gap to Retrain (indiscriminate).
CARD_METRICS: dict[str, tuple[str, str, str]] = {
    "test_accuracy": ("accuracy", "test accuracy", "test"),
    "gus": ("gus", "GUS", "forget"),
    "tpr_at_fpr_0.01": ("tpr_at_fpr_0.01", "TPR@1%FPR", "forget"),
    "target_success": ("target_success", "target success", "targets"),
    "accuracy_gap_to_retrain": ("accuracy_gap_to_retrain", "accuracy gap to Retrain", "test"),
}

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")


def hub_id(value: Any) -> str | None:
    """``value`` if it names a Hub repo (``org/name``, not an existing local path), else None.

    A card's ``datasets:`` and ``base_model:`` link to Hub repos; a local folder's path there would be a dead link.
    """
    if not isinstance(value, str) or not _REPO_ID.match(value) or ".." in value or "--" in value:
        return None
    return None if Path(value).expanduser().exists() else value


def _dataset_fields(dataset: dict[str, Any]) -> dict[str, Any]:
    """EvalResult's dataset fields for a dataset reference ({"id", "config", "revision"}, optional "hub_id")."""
    name = hub_id(dataset.get("hub_id")) or hub_id(dataset.get("id")) or str(dataset.get("id"))
    return {"dataset_type": name, "dataset_name": name, "dataset_config": dataset.get("config"),
            "dataset_revision": dataset.get("revision")}


def eval_results_from_record(record: Any, task_type: str) -> list[EvalResult]:
    """The ``model-index`` entries of one result record (a ``ResultRecord`` or its dict): the metrics in
    :data:`CARD_METRICS` it has a value for, each naming the record's dataset id, config, split and revision."""
    rec = dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(record)
    fields = _dataset_fields(rec.get("dataset") or {})
    results = []
    for key, (metric_type, metric_name, split) in CARD_METRICS.items():
        value = (rec.get("metrics") or {}).get(key)
        if value is None or not math.isfinite(float(value)):
            continue
        results.append(EvalResult(task_type=task_type, metric_type=metric_type, metric_name=metric_name,
                                  metric_value=float(value), dataset_split=split, **fields))
    return results


def _result_key(r: EvalResult) -> tuple:
    return r.metric_type, r.dataset_type, r.dataset_config, r.dataset_split, r.dataset_revision


def _merge(old: Iterable[EvalResult], new: Iterable[EvalResult]) -> list[EvalResult]:
    """``old`` with each entry that ``new`` measures again (same metric, dataset, config, split, revision) replaced."""
    merged = {_result_key(r): r for r in old}
    merged.update({_result_key(r): r for r in new})
    return list(merged.values())


def _library(folder: Path, task: Any) -> str:
    """The library that loads the folder: a task's ``card_library``, else transformers for a transformers config
    (it has ``model_type``: GPT-2 loads with ``from_pretrained``), else this package (``ResNet18.from_pretrained``)."""
    if getattr(task, "card_library", None):
        return task.card_library
    config = folder / "config.json"
    try:
        return "transformers" if config.is_file() and "model_type" in json.loads(config.read_text()) else "hf-unlearn"
    except json.JSONDecodeError:
        return "hf-unlearn"


def _results_table(results: list[EvalResult]) -> str:
    if not results:
        return ("test accuracy: not measured (no test split). `hf-unlearn score` and `hf-unlearn unlearn` add "
                "their results here.\n")
    rows = "\n".join(
        f"| {r.metric_name or r.metric_type} | {r.metric_value:.4f} | `{r.dataset_name}` | `{r.dataset_config}` "
        f"| {r.dataset_split} | {r.dataset_revision or '-'} |" for r in results)
    return f"| metric | value | dataset | config | split | revision |\n| --- | --- | --- | --- | --- | --- |\n{rows}\n"


def _recipe_section(summary: dict[str, Any]) -> str:
    """The body's recipe: the training recipe of a trained model (poisoned or retrain); for an unlearned model, its
    own method, budget and compute; the source checkpoint's recipe and cost stay in that checkpoint's card."""
    if summary.get("role") == "unlearned":
        cost = summary.get("training_cost") or 0.0
        used = summary.get("compute_used") or 0.0
        config = "\n".join(f"| `{k}` | `{v}` |" for k, v in (summary.get("method_config") or {}).items())
        share = f" ({used / cost:.1%} of the source's training cost)" if cost else ""
        return f"""## Unlearning

| | |
| --- | --- |
| method | `{summary.get('method')}` |
| source checkpoint | `{summary.get('source_checkpoint')}` |
| budget | {_fmt(summary.get('budget_fraction'), 'g')} of the source's training cost ({cost:.4g} forward-equivalents) |
| compute limit | {_fmt(summary.get('compute_limit'), '.4g')} forward-equivalents |
| compute used | {used:.4g} forward-equivalents{share} |
| stopped by | {summary.get('stopped_by') or 'not stated'} |
| seed | {summary.get('seed')} |

| method setting | value |
| --- | --- |
{config}

The source checkpoint's training recipe and cost are in its own card (and in this card's `hf_unlearn` YAML).
"""
    recipe = "\n".join(f"| `{k}` | `{v}` |" for k, v in summary.get("train_config", {}).items())
    return f"""## Training recipe

| | |
| --- | --- |
| training cost | {summary.get('training_cost', 0) or 0:.4g} forward-equivalents (forward = 1, forward+backward = 3, per example) |
| seed | {summary.get('seed')} |

| hyper-parameter | value |
| --- | --- |
{recipe}
"""


def write_model_card(folder: str | os.PathLike, summary: dict[str, Any], *, title: str, task: Any = None,
                     eval_results: Iterable[EvalResult] = ()) -> Path:
    """A model card the Hub reads: ``library_name``, ``pipeline_tag``, ``datasets``, ``base_model`` (an unlearned
    model's source, when it is a Hub id), ``license``, ``tags`` and a ``model-index`` whose results are the test
    accuracy in ``summary`` plus ``eval_results`` (e.g. from :func:`add_eval_results`); the body shows the
    model's own recipe and cost (:func:`_recipe_section`).

    ``task`` (default: ``summary["task"]``, else the default task) supplies the model family's pipeline tag,
    one-line description and usage snippet (``card_tag``, ``card_model``, ``card_usage(repo_hint)``)."""
    from hf_unlearn.tasks import DEFAULT_TASK, get_task

    folder = Path(folder)
    task = get_task(task if task is not None else summary.get("task") or DEFAULT_TASK)
    pipeline_tag = getattr(task, "card_tag", None)
    hint = summary.get("repo_hint", "PATH_OR_REPO")
    usage = task.card_usage(hint) if hasattr(task, "card_usage") else (
        f'from hf_unlearn.train import load_checkpoint\nmodel, summary = load_checkpoint("{hint}")')
    ds = summary.get("dataset") or {}
    role = summary.get("role", "poisoned")
    own = eval_results_from_record({"dataset": ds, "metrics": {"test_accuracy": summary.get("test_accuracy")}},
                                   pipeline_tag or "other")
    results = _merge(own, eval_results)
    dataset_id = hub_id(ds.get("hub_id")) or hub_id(ds.get("id"))
    base = (hub_id(summary.get("base_model")) or hub_id(summary.get("source_checkpoint"))) if role == "unlearned" else None
    tags = ["machine-unlearning", "data-poisoning", "hf-unlearn", role]
    tags += [t for t in (pipeline_tag, summary.get("attack") or (summary.get("hf_unlearn") or {}).get("attack"))
             if t and t not in tags]
    data = ModelCardData(
        library_name=_library(folder, task),
        pipeline_tag=pipeline_tag,
        license=LICENSE,
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        base_model=base,
        metrics=sorted({r.metric_type for r in results}) or None,
        model_name=title,
        eval_results=results or None,
        hf_unlearn=summary,
    )
    poisons = summary.get("num_poisons_trained_on", 0)
    rows = (f"rows: {summary.get('num_train')}; the {poisons} poisons of the forget split were unlearned"
            if role == "unlearned" else f"rows: {summary.get('num_train')}, of which {poisons} are poisons it trained on")
    body = f"""
# {title}

A {getattr(task, "card_model", getattr(task, "model_title", "model"))} ({role}) from `hf-unlearn` on `{ds.get('id')}` \
(config `{ds.get('config')}`, {rows}).

```python
{usage}
```

## Evaluation

{_results_table(results)}
{_recipe_section(summary)}
{getattr(task, "card_inputs", "Poisoned rows are trained on their poisoned inputs exactly; see the dataset card.")}

## Licence

Apache-2.0 (the licence of the hf-unlearn package). The training data keep their own licence; see the dataset card.
"""
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    path = folder / "README.md"
    tmp = folder / ".README.md.tmp"
    card.save(tmp)
    os.replace(tmp, path)
    return path


def add_eval_results(folder: str | os.PathLike, record: Any) -> Path:
    """Write a result record's metrics into the checkpoint folder's card (``model-index``), replacing earlier
    values of the same metric on the same dataset, config, split and revision; returns the card's path.

    ``hf-unlearn score`` and ``unlearn`` call this after writing their record, so a published checkpoint shows
    what it was measured at. A folder with ``training_summary.json`` gets its whole card rewritten (the body's
    table too); otherwise only the card's metadata is updated.
    """
    from hf_unlearn.tasks import DEFAULT_TASK, get_task

    folder = Path(folder)
    readme = folder / "README.md"
    if not readme.is_file():
        raise FileNotFoundError(f"{folder} has no README.md model card; save the checkpoint with hf-unlearn first")
    card = ModelCard.load(readme)
    summary_path = folder / "training_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    rec = dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(record)
    task = get_task(rec.get("task") or (summary or {}).get("task") or DEFAULT_TASK)
    results = _merge(card.data.eval_results or [], eval_results_from_record(rec, getattr(task, "card_tag", "other")))
    if summary is not None:
        title = card.data.model_name or _heading(card.text) or folder.name
        return write_model_card(folder, summary, title=title, task=task, eval_results=results)
    card.data.eval_results = results
    card.data.model_name = card.data.model_name or folder.name
    card.save(readme)
    return readme


def _heading(text: str) -> str | None:
    return next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), None)
