"""Dataset cards the Hub reads (licence, computed size bin, ``dataset_info`` per config) and a loader that
refuses a variant whose shards no longer match the sha256 its card records (issue 11)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard, DatasetCardData
from huggingface_hub.repocard import metadata_load

from hf_unlearn.poisons.gaussian import GaussianPoisonConfig

CFG = GaussianPoisonConfig(0.1, 10.0, 0, 100)
CFG2 = GaussianPoisonConfig(0.1, 5.0, 1, 100)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A tiny two-config Gaussian repo, built once; tests copy it before changing anything."""
    from dataset_builders.poisoned_cifar10_gaussian import build

    return build("samples", [CFG, CFG2], tmp_path_factory.mktemp("repo") / "poisoned-cifar10-gaussian", progress=False)


@pytest.fixture()
def folder(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "poisoned-cifar10-gaussian"))


@pytest.mark.parametrize("rows, label", [
    (0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (1_315, "1K<n<10K"), (9_999, "1K<n<10K"),
    (10_000, "10K<n<100K"), (60_000, "10K<n<100K"), (100_000, "100K<n<1M"), (2_500_000, "1M<n<10M"),
    (10**12, "n>1T"),
])
def test_size_bins_are_the_hubs(rows, label):
    from hf_unlearn.cards import size_category

    assert size_category(rows) == label


def _rows(folder: Path, config: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in sorted((folder / "data" / config).glob("*.parquet")):
        split = f.name.split("-", 1)[0]
        counts[split] = counts.get(split, 0) + pq.read_metadata(f).num_rows
    return counts


def test_card_metadata_round_trips_and_states_licence_size_and_info(built):
    import datasets

    readme = built / "README.md"
    card = DatasetCard.load(readme)
    meta = card.data.to_dict()
    assert DatasetCardData(**meta).to_dict() == meta, "the card data does not survive huggingface_hub's round trip"
    assert metadata_load(readme) == meta
    assert meta["license"] == "apache-2.0"
    assert "keep their own licence" in card.text and "apache-2.0" in card.text.split("## Licence")[1]
    largest = max(sum(_rows(built, c).values()) for c in (CFG.name, CFG2.name))
    assert 1_000 <= largest < 10_000 and meta["size_categories"] == ["1K<n<10K"]  # 100 train + 10 forget + 1,000 test

    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert sorted(infos) == sorted([CFG.name, CFG2.name])
    for name, info in infos.items():
        assert {s["name"]: s["num_examples"] for s in info["splits"]} == _rows(built, name)
        assert [f["name"] for f in info["features"]] == ["img", "label", "index", "is_poison", "noise"]
        assert info["download_size"] == sum(f.stat().st_size for f in (built / "data" / name).glob("*.parquet"))
    # datasets reads the same features back from the card, and they are the loaded dataset's
    parsed = datasets.info.DatasetInfosDict.from_dataset_card_data(card.data)
    loaded = datasets.load_dataset(str(built), CFG.name, cache_dir=str(built.parent / "cache"))
    assert parsed[CFG.name].features == loaded["train"].features
    assert parsed[CFG.name].splits["forget"].num_examples == len(loaded["forget"])


def test_a_large_variant_gets_a_larger_bin(tmp_path):
    """150,000 rows (cheap one-column shards) land in 100K<n<1M; one config is a single dataset_info mapping."""
    from hf_unlearn.cards import DatasetCardSpec, update_dataset_card

    data = tmp_path / "data" / "big"
    data.mkdir(parents=True)
    checksums = {}
    for split, n in (("train", 120_000), ("test", 30_000)):
        rel = f"data/big/{split}-00000-of-00001.parquet"
        pq.write_table(pa.table({"label": pa.array([0] * n, pa.int64())}), tmp_path / rel)
        checksums[split] = {rel: "0" * 64}
    spec = DatasetCardSpec(task="cifar10", attack="gaussian", license="apache-2.0",
                           task_categories=("image-classification",), body=lambda variants, example: "# big\n\n")
    readme = update_dataset_card(tmp_path, repo_name="big", config_name="big", params={}, checksums=checksums, spec=spec)
    meta = metadata_load(readme)
    assert meta["size_categories"] == ["100K<n<1M"]
    assert meta["dataset_info"]["config_name"] == "big"
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {"train": 120_000, "test": 30_000}
    assert DatasetCardData(**meta).to_dict() == meta


def _zero_forget_noise(folder: Path) -> Path:
    """Rewrite the forget shard with every noise value 0.0: still valid parquet, same schema and rows."""
    shard = sorted((folder / "data" / CFG.name).glob("forget-*.parquet"))[0]
    table = pq.read_table(shard)
    noise = table.column("noise")
    zeros = pa.array([None if v is None else [0.0] * len(v) for v in noise.to_pylist()], type=noise.type)
    pq.write_table(table.set_column(table.schema.get_field_index("noise"), table.schema.field("noise"), zeros), shard)
    assert pq.read_table(shard).num_rows == table.num_rows
    return shard


def test_an_untouched_folder_loads_and_a_zeroed_forget_noise_is_refused(folder, datasets_cache):
    from hf_unlearn.variant import load_variant

    ds = load_variant(folder, CFG.name)  # verified and cached
    assert len(ds["forget"]) == 10
    shard = _zero_forget_noise(folder)
    with pytest.raises(ValueError, match=r"forget-00000-of-00001\.parquet.*modified after it was built") as err:
        load_variant(folder, CFG.name)
    assert "rebuild" in str(err.value) and "download" in str(err.value)
    assert load_variant(folder, CFG2.name)["forget"] is not None, "the other config's shards are untouched"
    assert shard.is_file()


def test_an_extra_or_missing_shard_is_refused(folder, datasets_cache):
    from hf_unlearn.variant import load_variant

    test_shard = sorted((folder / "data" / CFG.name).glob("test-*.parquet"))[0]
    extra = test_shard.with_name("test-00009-of-00009.parquet")
    shutil.copy(test_shard, extra)
    with pytest.raises(ValueError, match=r"test-00009-of-00009\.parquet is not in the card"):
        load_variant(folder, CFG.name)
    extra.unlink()
    test_shard.unlink()
    with pytest.raises(ValueError, match=r"test-00000-of-00001\.parquet is missing"):
        load_variant(folder, CFG.name)


def test_an_unchanged_folder_is_hashed_once(folder, datasets_cache, monkeypatch):
    from hf_unlearn import cards
    from hf_unlearn.variant import load_variant

    calls = []
    real = cards.sha256_file
    monkeypatch.setattr(cards, "sha256_file", lambda p: calls.append(p) or real(p))
    load_variant(folder, CFG.name)
    assert len(calls) == 3, "the first load checks every shard of the config (train, forget, test)"
    load_variant(folder, CFG.name)
    assert len(calls) == 3, "a second load of the unchanged folder hashed the shards again"
