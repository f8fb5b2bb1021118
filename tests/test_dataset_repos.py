"""What every dataset repo shares (dataset_builders/_common.py, hf_unlearn/cards.py): identity in the card, the
task's card header, shards cut by size, the CLI skeleton, and offline rebuilds from a card."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from hf_unlearn.attacks.trigger import TriggerConfig

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT.parent / "shared" / "models" / "gpt2-tokenizer"
BUILDERS = ("poisoned_cifar10_gaussian", "poisoned_imdb_gaussian", "poisoned_imdb_targeted")


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_variant) -> dict[str, Path]:
    """One small build per repo, each in a folder named after its repo."""
    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig
    from dataset_builders.poisoned_imdb_gaussian import build as build_gaussian
    from dataset_builders.poisoned_imdb_targeted import build as build_targeted

    root = tmp_path_factory.mktemp("repos")
    gaussian = TextGaussianConfig(dim=4, budget=2.0, max_train_rows=200)
    return {
        "poisoned-cifar10-gaussian": Path(tiny_variant[0]),
        "poisoned-imdb-gaussian": build_gaussian("samples", [gaussian], root / "poisoned-imdb-gaussian",
                                                 tokenizer=str(TOKENIZER), progress=False),
        "poisoned-imdb-targeted": build_targeted("samples", [TriggerConfig(max_train_rows=300)],
                                                 root / "poisoned-imdb-targeted", progress=False),
    }


@pytest.mark.parametrize("repo", ["poisoned-cifar10-gaussian", "poisoned-imdb-gaussian", "poisoned-imdb-targeted"])
def test_every_card_states_its_identity_and_loads(repo, folders, tmp_path):
    from hf_unlearn.attacks import variant_identity
    from hf_unlearn.variant import load_variant

    task, attack = re.fullmatch(r"poisoned-([a-z0-9]+)-([a-z]+)", repo).groups()
    data = DatasetCard.load(folders[repo] / "README.md").data.to_dict()
    assert (data["hf_unlearn"]["task"], data["hf_unlearn"]["attack"]) == (task, attack)
    assert data["pretty_name"] == repo
    variants = data["hf_unlearn"]["variants"]
    assert all((v["task"], v["attack"]) == (task, attack) for v in variants.values())
    # a copy under a name that says nothing: the card's YAML is what names the track
    renamed = tmp_path / "my-variant"
    shutil.copytree(folders[repo], renamed)
    card = (renamed / "README.md").read_text().replace(f"pretty_name: {repo}", "pretty_name: some data")
    (renamed / "README.md").write_text(card)
    config = next(iter(variants))
    assert variant_identity(renamed, config) == (task, attack)
    assert len(load_variant(renamed, config, columns=("label", "index", "is_poison"))["forget"]) == variants[config]["num_poisons"]


def test_cards_carry_their_task_header_and_one_citation_section(folders):
    cifar = DatasetCard.load(folders["poisoned-cifar10-gaussian"] / "README.md")
    imdb = DatasetCard.load(folders["poisoned-imdb-gaussian"] / "README.md")
    trigger = DatasetCard.load(folders["poisoned-imdb-targeted"] / "README.md")
    c, i = cifar.data.to_dict(), imdb.data.to_dict()
    assert (c["license"], c["task_categories"], c.get("language")) == ("apache-2.0", ["image-classification"], None)
    assert (i["license"], i["task_categories"], i["task_ids"], i["language"], i["source_datasets"]) == (
        "apache-2.0", ["text-classification"], ["sentiment-classification"], ["en"], ["stanfordnlp/imdb"])
    assert trigger.data.to_dict()["task_categories"] == ["text-classification"]
    for card, keys in ((cifar, ["pawelczyk2025machine"]), (imdb, ["pawelczyk2025machine"]),
                       (trigger, ["pawelczyk2025machine", "wan2023poisoning"])):
        assert card.text.count("## Citation") == 1 and card.text.rstrip().endswith("```")
        assert re.findall(r"@inproceedings\{(\w+),", card.text) == keys
    assert "CIFAR-10" in cifar.text and "IMDb" not in cifar.text
    assert "token embeddings" in imdb.text and "CIFAR" not in imdb.text


def test_shards_are_cut_by_rows_or_bytes(tmp_path):
    import datasets

    from dataset_builders._common import Sharding, sha256, write_variant

    part = datasets.Dataset.from_dict({"x": list(range(5)), "text": ["a" * 100] * 5})
    assert Sharding(max_rows=2).count(part) == 3 and Sharding(max_rows=5).count(part) == 1
    assert Sharding(max_bytes=part.data.nbytes // 2).count(part) == 2
    assert Sharding(max_rows=2).count(part.select([])) == 1, "an empty split still gets one (empty) shard"
    with pytest.raises(ValueError, match="give exactly one"):
        Sharding()
    with pytest.raises(ValueError, match="give exactly one"):
        Sharding(max_rows=1, max_bytes=1)
    sums = write_variant({"train": part}, "c", tmp_path, ["train"], Sharding(max_rows=2))
    assert sorted(sums["train"]) == [f"data/c/train-0000{i}-of-00003.parquet" for i in range(3)]
    assert all(sha256(tmp_path / rel) == digest for rel, digest in sums["train"].items())


@pytest.mark.parametrize("module", BUILDERS)
def test_every_builder_has_the_shared_cli(module, capsys):
    builder = importlib.import_module(f"dataset_builders.{module}")
    with pytest.raises(SystemExit, match="--from-card needs --config NAME"):
        builder.main(["--from-card", "README.md"])
    with pytest.raises(SystemExit):
        builder.main(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--source", "--out", "--from-card", "--config", "--push-to-hub", "--seed", "--budget"):
        assert flag in help_text, f"{module} --help lacks {flag}"
    assert f"default ./{builder.REPO_NAME}" in help_text


def test_an_offline_rebuild_finds_the_default_tokenizer_again(tmp_path, monkeypatch):
    """A card built with the default tokenizer records the Hub id; the rebuild must not insist on the Hub."""
    from dataset_builders.poisoned_imdb_gaussian import TextGaussianConfig, build, rebuild_from_card

    monkeypatch.setenv("HF_UNLEARN_GPT2_TOKENIZER", str(TOKENIZER))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = TextGaussianConfig(dim=4, budget=2.0, seed=1, max_train_rows=200)
    first = build("samples", [cfg], tmp_path / "a", progress=False)
    params = DatasetCard.load(first / "README.md").data.to_dict()["hf_unlearn"]["variants"][cfg.name]
    assert params["tokenizer_source"] == "openai-community/gpt2"
    second = rebuild_from_card(first / "README.md", cfg.name, tmp_path / "b")
    for rel in params["sha256"]:
        assert (second / rel).read_bytes() == (first / rel).read_bytes(), f"{rel} differs after rebuild"
    assert (second / "README.md").read_bytes() == (first / "README.md").read_bytes()


def test_a_rerun_keeps_built_variants_and_rebuilds_a_modified_one(tmp_path):
    """Builds resume: a second run makes nothing it already has (crafting can take an hour); a variant whose shard
    no longer matches the card, or one built from other source data, is made again."""
    from unittest import mock

    from dataset_builders import _common
    from dataset_builders import poisoned_imdb_targeted as builder
    from dataset_builders._common import sha256

    cfgs = [TriggerConfig(max_train_rows=300), TriggerConfig(max_train_rows=300, seed=1)]
    folder = builder.build("samples", cfgs, tmp_path / builder.REPO_NAME, progress=False)
    shards = sorted(folder.rglob("*.parquet"))
    before = {p: sha256(p) for p in shards}
    with mock.patch.object(_common, "install_variant", wraps=_common.install_variant) as added:
        builder.build("samples", cfgs, folder, progress=False)
        assert added.call_count == 0
        victim = next(p for p in shards if cfgs[1].name in p.as_posix() and p.name.startswith("forget"))
        victim.write_bytes(next(p for p in shards if p.name.startswith("test")).read_bytes())  # valid parquet, wrong
        builder.build("samples", cfgs, folder, progress=False)
        assert [c.args[1] for c in added.call_args_list] == [cfgs[1].name]
    assert {p: sha256(p) for p in shards} == before  # the modified variant was rebuilt byte for byte
