"""collate_poisoned: a plain DataLoader over a variant's train split (python or torch format) gives the stored
pixels, labels and the exact stored noise (zeros on clean rows), and the plain DataLoader without it fails."""

from __future__ import annotations

import datasets
import pytest
import torch
from torch.utils.data import DataLoader

from hf_unlearn.collate import collate_poisoned, noisy_inputs, with_torch_format

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BATCH = 16


@pytest.fixture(scope="module")
def train_rows(tiny_variant, tmp_path_factory):
    folder, cfg = tiny_variant
    cache = tmp_path_factory.mktemp("collate-cache")
    return datasets.load_dataset(str(folder), cfg.name, cache_dir=str(cache))["train"]


def _batches(dataset) -> list[dict]:
    return list(DataLoader(dataset, batch_size=BATCH, shuffle=False, collate_fn=collate_poisoned))


@pytest.mark.parametrize("fmt", ["python", "torch"])
def test_batches_hold_the_stored_rows_and_noise(train_rows, tiny_splits, fmt):
    """Each batch equals the pipeline's decoded split (ImageSplit) on the same rows, in both formats."""
    split = tiny_splits["train"]
    dataset = train_rows if fmt == "python" else with_torch_format(train_rows)
    batches = _batches(dataset)
    assert sum(len(b["label"]) for b in batches) == len(split) == 200
    poisoned_seen = 0
    for k, b in enumerate(batches):
        rows = torch.arange(k * BATCH, min((k + 1) * BATCH, len(split)))
        n = len(rows)
        assert b["img"].shape == (n, 3, 32, 32) and b["img"].dtype == torch.uint8
        assert b["noise"].shape == (n, 3, 32, 32) and b["noise"].dtype == torch.float32
        assert b["has_noise"].dtype == torch.bool and b["is_poison"].dtype == torch.bool
        assert b["label"].dtype == torch.int64 and b["index"].dtype == torch.int64
        assert torch.equal(b["img"], split.x[rows])
        assert torch.equal(b["label"], split.y[rows]) and torch.equal(b["index"], split.index[rows])
        assert torch.equal(b["has_noise"], split.noise_slot[rows] >= 0)
        assert torch.equal(b["is_poison"], b["has_noise"]), "a Gaussian variant's poisons are its noisy rows"
        slots = split.noise_slot[rows]
        hit = slots >= 0
        assert torch.equal(b["noise"][hit], split.noise[slots[hit]]), "poisoned rows carry exactly the stored noise"
        assert not b["noise"][~hit].any(), "clean rows carry zero noise"
        assert torch.equal(noisy_inputs(b), split.inputs(rows)), "img / 255 + noise is what the model trained on"
        poisoned_seen += int(hit.sum())
    assert poisoned_seen == 10


def test_plain_dataloader_fails_without_the_helper(train_rows):
    """The note's claim: neither format batches with torch's default collate (or datasets' torch formatter)."""
    with pytest.raises(TypeError):  # PIL images and None noise: default_collate cannot stack them
        list(DataLoader(train_rows, batch_size=BATCH))
    with pytest.raises((TypeError, AttributeError)):  # None noise in the collate, or datasets' formatter
        list(DataLoader(train_rows.with_format("torch"), batch_size=BATCH))
    # datasets 5.2's torch batch formatter fails before any collate_fn when a batch starts with a clean row and
    # holds a poison (huggingface/datasets PR #8432). If this stops raising, datasets fixed it: simplify the note.
    with pytest.raises(AttributeError, match="NoneType"):
        list(DataLoader(train_rows.with_format("torch"), batch_size=BATCH, collate_fn=collate_poisoned))


def test_other_variants_pass_through():
    """A targeted variant (no noise, adversarial_label) and a text variant (ragged embedding noise)."""
    targeted = [{"label": 3, "index": -1, "is_poison": True, "adversarial_label": 5},
                {"label": 1, "index": 7, "is_poison": False, "adversarial_label": -1}]
    b = collate_poisoned(targeted)
    assert set(b) == {"label", "index", "is_poison", "adversarial_label"}, "no noise column, no has_noise"
    assert b["adversarial_label"].tolist() == [5, -1] and b["adversarial_label"].dtype == torch.int64
    assert b["is_poison"].tolist() == [True, False] and b["is_poison"].dtype == torch.bool

    text = [{"text": "a fine film", "label": 1, "num_tokens": 3, "noise": [0.5] * 6},
            {"text": "dull", "label": 0, "num_tokens": -1, "noise": None}]
    b = collate_poisoned(text)
    assert b["text"] == ["a fine film", "dull"]
    assert b["has_noise"].tolist() == [True, False]
    assert torch.equal(b["noise"][0], torch.full((6,), 0.5)) and b["noise"][1].numel() == 0


def test_errors_name_the_problem():
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"row 1: noise has 5 values but its image is \(3, 32, 32\)"):
        collate_poisoned([{"img": image, "noise": None}, {"img": image, "noise": [0.0] * 5}])
    with pytest.raises(ValueError, match="empty batch"):
        collate_poisoned([])
    with pytest.raises(ValueError, match="row 1 of the batch has columns"):
        collate_poisoned([{"label": 1}, {"index": 1}])
