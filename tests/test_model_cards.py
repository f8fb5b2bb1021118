"""Model cards the Hub reads (issue 11): library, pipeline tag, datasets, base model, licence and a ``model-index``
whose results ``ModelCard.load(...).data.eval_results`` reads back; metrics of ``score``/``unlearn`` records written
into a checkpoint's card; an unlearned model's card showing its own method, budget and compute; and the mixin's
``save_pretrained``/``push_to_hub`` keeping ``training_summary.json`` and the project's card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard import metadata_load

from hf_unlearn.cards import add_eval_results, write_model_card
from hf_unlearn.results import ResultRecord

DATASET = {"id": "org/poisoned-cifar10-gaussian", "config": "eps0.1-b1.5-s0", "revision": "v1.0"}
RECIPE = {"epochs": 40, "lr": 0.4, "batch_size": 512, "seed": 0}
POISONED = {"role": "poisoned", "task": "cifar10", "dataset": DATASET, "train_config": RECIPE, "seed": 0,
            "training_cost": 3.0e6, "test_accuracy": 0.91, "num_train": 50_000, "num_poisons_trained_on": 750}


def _meta_round_trip(path: Path) -> dict:
    """The card's metadata, checked to survive huggingface_hub's ModelCardData round trip and metadata_load."""
    data = ModelCard.load(path).data
    meta = data.to_dict()
    assert ModelCardData(**meta).to_dict() == meta
    assert metadata_load(path) == meta
    return meta


def _results(path: Path) -> dict[tuple[str, str], tuple]:
    """{(metric type, split): (value, dataset id, config, revision)} as the Hub parses model-index."""
    results = ModelCard.load(path).data.eval_results
    assert results, "the card has no model-index eval results"
    keys = [(r.metric_type, r.dataset_type, r.dataset_config, r.dataset_split, r.dataset_revision) for r in results]
    assert len(keys) == len(set(keys)), f"a result is listed twice: {keys}"
    return {(r.metric_type, r.dataset_split): (r.metric_value, r.dataset_type, r.dataset_config, r.dataset_revision)
            for r in results}


def test_poisoned_resnet_card_has_hub_metadata_and_test_accuracy(tmp_path):
    path = write_model_card(tmp_path, POISONED, title="hf-unlearn ResNet-18 (poisoned)")
    meta = _meta_round_trip(path)
    assert meta["library_name"] == "hf-unlearn"
    assert meta["pipeline_tag"] == "image-classification"
    assert meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["org/poisoned-cifar10-gaussian"]
    assert "base_model" not in meta, "a model trained from scratch has no base model"
    assert {"machine-unlearning", "data-poisoning", "poisoned"} <= set(meta["tags"])
    assert _results(path) == {("accuracy", "test"): (0.91, "org/poisoned-cifar10-gaussian", "eps0.1-b1.5-s0", "v1.0")}
    assert meta["model-index"][0]["name"] == "hf-unlearn ResNet-18 (poisoned)"
    text = path.read_text()
    assert "## Training recipe" in text and "| `lr` | `0.4` |" in text


def test_a_local_dataset_is_named_but_not_linked(tmp_path):
    local = tmp_path / "data" / "poisoned-cifar10-gaussian"
    local.mkdir(parents=True)
    summary = {**POISONED, "dataset": {"id": str(local), "config": "c", "revision": None}}
    meta = _meta_round_trip(write_model_card(tmp_path, summary, title="t"))
    assert "datasets" not in meta
    assert _results(tmp_path / "README.md") == {("accuracy", "test"): (0.91, str(local), "c", None)}


def test_gpt2_card_is_a_transformers_text_classifier(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"]}))
    summary = {**POISONED, "task": "imdb", "dataset": {"id": "org/poisoned-imdb-gaussian", "config": "c", "revision": None}}
    meta = _meta_round_trip(write_model_card(tmp_path, summary, title="hf-unlearn GPT-2 (poisoned)"))
    assert (meta["pipeline_tag"], meta["library_name"]) == ("text-classification", "transformers")
    assert meta["datasets"] == ["org/poisoned-imdb-gaussian"]


def _unlearned(source: str) -> dict:
    return {"role": "unlearned", "task": "cifar10", "method": "gd", "method_config": {"lr": 0.01, "epochs_cap": 3},
            "budget_fraction": 0.1, "compute_used": 2.5e5, "compute_limit": 3.0e5, "stopped_by": "budget",
            "source_checkpoint": source, "dataset": DATASET, "seed": 1, "train_config": RECIPE,
            "training_cost": 3.0e6, "test_accuracy": 0.88, "num_train": 50_000, "num_poisons_trained_on": 750}


def test_unlearned_card_shows_its_own_method_budget_and_compute(tmp_path):
    path = write_model_card(tmp_path, _unlearned("org/resnet18-poisoned"), title="gd on eps0.1-b1.5-s0 (seed 1)")
    meta = _meta_round_trip(path)
    assert meta["base_model"] == "org/resnet18-poisoned"
    assert "unlearned" in meta["tags"]
    text = ModelCard.load(path).text
    assert "| method | `gd` |" in text
    assert "| budget | 0.1 of the source's training cost (3e+06 forward-equivalents) |" in text
    assert "| compute used | 2.5e+05 forward-equivalents (8.3% of the source's training cost) |" in text
    assert "| `lr` | `0.01` |" in text and "| stopped by | budget |" in text
    assert "Training recipe" not in text and "| `batch_size` |" not in text, "the body shows the source's recipe"
    # a source that is a local folder is not a Hub link
    local = tmp_path / "runs" / "poisoned"
    local.mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    assert "base_model" not in _meta_round_trip(write_model_card(other, _unlearned(str(local)), title="t"))


def _record(metrics: dict, attack: str = "gaussian", dataset: dict = DATASET) -> ResultRecord:
    return ResultRecord(task="cifar10", attack=attack, dataset=dataset, model={"id": "runs/m", "revision": None},
                        method="none", metrics=metrics)


GAUSSIAN = {"test_accuracy": 0.91, "gus": 12.5, "gus_stderr": 0.5, "tpr_at_fpr_0.01": 0.42, "auc": 0.9}


def test_score_results_go_into_the_card_and_replace_older_values(tmp_path):
    write_model_card(tmp_path, POISONED, title="hf-unlearn ResNet-18 (poisoned)")
    (tmp_path / "training_summary.json").write_text(json.dumps(POISONED))
    path = add_eval_results(tmp_path, _record(GAUSSIAN))
    _meta_round_trip(path)
    ref = ("org/poisoned-cifar10-gaussian", "eps0.1-b1.5-s0", "v1.0")
    assert _results(path) == {("accuracy", "test"): (0.91, *ref), ("gus", "forget"): (12.5, *ref),
                              ("tpr_at_fpr_0.01", "forget"): (0.42, *ref)}
    assert "| GUS | 12.5000 |" in path.read_text(), "the body's table shows the new result"
    assert ModelCard.load(path).data.model_name == "hf-unlearn ResNet-18 (poisoned)"
    # scored again (same dataset, config, split, revision): replaced, not duplicated; another revision is added
    add_eval_results(tmp_path, _record({**GAUSSIAN, "gus": 3.0}))
    add_eval_results(tmp_path, _record({**GAUSSIAN, "gus": 4.0}, dataset={**DATASET, "revision": "v2.0"}))
    gus = sorted((r.dataset_revision, r.metric_value) for r in ModelCard.load(path).data.eval_results
                 if r.metric_type == "gus")
    assert gus == [("v1.0", 3.0), ("v2.0", 4.0)]


def test_targeted_results_name_the_targets_split(tmp_path):
    write_model_card(tmp_path, POISONED, title="t")
    record = _record({"test_accuracy": 0.9, "target_success": 0.75, "num_targets": 4}, attack="targeted",
                     dataset={"id": "org/poisoned-cifar10-targeted", "config": "c", "revision": None})
    path = add_eval_results(tmp_path, record)  # no training_summary.json: only the metadata is updated
    _meta_round_trip(path)
    assert _results(path)[("target_success", "targets")] == (0.75, "org/poisoned-cifar10-targeted", "c", None)


def test_add_eval_results_needs_a_card(tmp_path):
    with pytest.raises(FileNotFoundError, match="no README.md model card"):
        add_eval_results(tmp_path, _record(GAUSSIAN))


# ---------------------------------------------------------------------------------------- mixin round trip


def _tiny_checkpoint(folder: Path) -> Path:
    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.train import save_checkpoint

    save_checkpoint(ResNet18(width=2), folder, dict(POISONED), title="hf-unlearn ResNet-18 (poisoned)")
    return folder


def test_mixin_save_pretrained_keeps_summary_and_project_card(tmp_path):
    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.train import load_checkpoint

    src = _tiny_checkpoint(tmp_path / "src")
    model = ResNet18.from_pretrained(str(src))
    model.save_pretrained(tmp_path / "copy")
    copy = tmp_path / "copy"
    assert json.loads((copy / "training_summary.json").read_text()) == json.loads((src / "training_summary.json").read_text())
    assert (copy / "README.md").read_text() == (src / "README.md").read_text()
    assert _results(copy / "README.md")[("accuracy", "test")][0] == 0.91
    _, summary = load_checkpoint(str(copy))
    assert summary["training_cost"] == 3.0e6, "a re-saved checkpoint lost the cost its unlearning budget needs"


def test_mixin_save_of_a_summary_without_card_writes_the_project_card(tmp_path):
    from hf_unlearn.models.resnet import ResNet18

    src = _tiny_checkpoint(tmp_path / "src")
    (src / "README.md").unlink()
    ResNet18.from_pretrained(str(src)).save_pretrained(tmp_path / "copy")
    meta = _meta_round_trip(tmp_path / "copy" / "README.md")
    assert meta["hf_unlearn"]["training_cost"] == 3.0e6 and meta["pipeline_tag"] == "image-classification"


def test_fresh_model_saves_no_summary(tmp_path):
    from hf_unlearn.models.resnet import ResNet18

    ResNet18(width=2).save_pretrained(tmp_path)
    assert not (tmp_path / "training_summary.json").exists()
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()


def test_push_to_hub_uploads_summary_and_project_card(tmp_path, monkeypatch):
    """push_to_hub saves through save_pretrained into a temporary folder and uploads it: record what it uploads."""
    import huggingface_hub.hub_mixin as hub_mixin

    from hf_unlearn.models.resnet import ResNet18

    uploaded: dict[str, bytes] = {}

    class FakeApi:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def create_repo(self, repo_id, **kwargs):
            return type("Url", (), {"repo_id": repo_id})()

        def upload_folder(self, *, folder_path, **kwargs):
            uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
            return "commit"

    monkeypatch.setattr(hub_mixin, "HfApi", FakeApi)
    src = _tiny_checkpoint(tmp_path / "src")
    ResNet18.from_pretrained(str(src)).push_to_hub("org/resnet18-poisoned")
    assert {"model.safetensors", "config.json", "training_summary.json", "README.md"} <= set(uploaded)
    assert uploaded["training_summary.json"] == (src / "training_summary.json").read_bytes()
    assert uploaded["README.md"] == (src / "README.md").read_bytes()
