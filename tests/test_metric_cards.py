"""Hub-facing cards: the metric modules load by folder path from any working directory and name their
homepage; their cards show the Hub form ``evaluate.load("ORG/<name>")`` next to the local one; the leaderboard
Space card carries the Hub's leaderboard tag and the dataset repos the board ranks. No network."""

from __future__ import annotations

from pathlib import Path

import evaluate
import huggingface_hub
import pytest
from huggingface_hub import SpaceCard
from huggingface_hub.repocard import metadata_load

ROOT = Path(__file__).resolve().parents[1]
METRICS_DIR = ROOT / "metrics"
REPOSITORY = "https://github.com/hf-unlearn/hf-unlearn"
# (name, compute kwargs, expected results): hand-computed values.
KNOWN = {
    "gus": ({"predictions": [2.0, 1.5, 2.5, 0.1, -0.2, 0.3, -0.1], "references": [1, 1, 1, 0, 0, 0, 0]},
            {"gus": 2.0, "null_mean": 0.025, "num_members": 3, "num_nulls": 4}),
    # nulls 0.7 0.5 0.3 0.2, members 0.9 0.8 0.6 0.4: threshold 0.6 at FPR 1/4 (3 of 4 members above),
    # 0.4 at FPR 2/4 (all members); 13 of 16 member/null pairs ordered right.
    "tpr_at_fpr": ({"predictions": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], "references": [1, 1, 0, 1, 0, 1, 0, 0],
                    "fpr": [0.25, 0.5]},
                   {"tpr_at_fpr_0.25": 0.75, "tpr_at_fpr_0.5": 1.0, "auc": 0.8125}),
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_metric_loads_by_folder_path_from_elsewhere(name, tmp_path, monkeypatch):
    """The card's "from anywhere" form: the folder's path, with a working directory outside the repository."""
    monkeypatch.chdir(tmp_path)
    metric = evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)
    kwargs, expected = KNOWN[name]
    results = metric.compute(**kwargs)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value), f"{name}: {key}"
    # The card's claim that the repository-relative form needs the repository root as working directory.
    with pytest.raises(FileNotFoundError):
        evaluate.load(f"metrics/{name}")


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_metric_info_names_the_repository(name):
    from hf_unlearn.models.resnet import ResNet18

    info = evaluate.load(str(METRICS_DIR / name), keep_in_memory=True).info
    assert info.homepage == REPOSITORY == ResNet18._hub_mixin_info.repo_url, "one repository URL everywhere"
    assert info.codebase_urls == [f"{REPOSITORY}/tree/main/metrics/{name}"]
    assert "https://arxiv.org/abs/2406.17216" in info.reference_urls


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_metric_card_shows_hub_and_local_forms(name):
    card = METRICS_DIR / name / "README.md"
    meta = metadata_load(card)
    assert {"evaluate", "metric"} <= set(meta["tags"])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    text = card.read_text(encoding="utf-8")
    for snippet in (f'evaluate.load("ORG/{name}")', f'evaluate.load("metrics/{name}")',
                    f'evaluate.load("/path/to/hf-unlearn/metrics/{name}")', "hf-unlearn publish --namespace ORG",
                    f"{REPOSITORY}/tree/main/metrics/{name}"):
        assert snippet in text, f"{name}/README.md lacks {snippet}"


def test_space_card_is_a_leaderboard_over_the_dataset_repos():
    from hf_unlearn.attacks import list_attacks
    from hf_unlearn.pipeline import dataset_repo
    from hf_unlearn.tasks import list_tasks

    data = SpaceCard.load(ROOT / "space" / "README.md").data
    assert "leaderboard" in data.tags, "the Hub lists Spaces tagged 'leaderboard' as leaderboards"
    assert data.license == "apache-2.0" and data.sdk == "gradio" and data.app_file == "app.py"
    tracks = {dataset_repo(task, attack) for task in list_tasks() for attack in list_attacks(task)}
    assert tracks == {"poisoned-cifar10-gaussian", "poisoned-cifar10-targeted", "poisoned-cifar10-indiscriminate",
                      "poisoned-imdb-gaussian", "poisoned-imdb-targeted"}
    assert sorted(data.datasets) == sorted(f"hf-unlearn/{repo}" for repo in tracks), "one dataset repo per track"
