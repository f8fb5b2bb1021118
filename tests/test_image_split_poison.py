"""Crafted-poison image variants (targeted, indiscriminate) have no noise: their poisons are told by ``is_poison``.

Retrain trains on ``train`` minus ``is_poison``, and the retain/forget split of every method depends on it, so a
split that lost the column (or read poisons off the empty noise table) would retrain on the poisons.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset_builders._cifar10 import image_rows_dataset, png_bytes
from hf_unlearn.variant import ImageSplit, image_split


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _crafted_part(adversarial: bool = False):
    x = _images(6)
    flags = [False, True, False, False, True, True]
    index = [3, 5, 7, 9, -1, -1]  # two appended poisons (index -1), one in-place poison (index 5)
    adv = [-1, -1, 2, 8, -1, -1] if adversarial else None
    return x, flags, image_rows_dataset([png_bytes(i) for i in x], [0, 1, 2, 3, 4, 5], index, flags, adv)


def test_split_without_noise_reads_poisons_from_is_poison_and_pixels_losslessly():
    x, flags, part = _crafted_part()
    split = image_split(part)
    assert split.is_poison.tolist() == flags
    assert len(split.noise) == 0 and split.adversarial_label is None
    assert torch.equal(split.x, torch.from_numpy(x))  # PNG is lossless: the crafted pixels come back exactly
    assert torch.equal(split.inputs(torch.arange(6), noisy=True), split.inputs(torch.arange(6), noisy=False))


def test_subset_concat_and_without_noise_keep_the_poison_flags_and_adversarial_labels():
    _, flags, part = _crafted_part(adversarial=True)
    split = image_split(part)
    assert split.adversarial_label.tolist() == [-1, -1, 2, 8, -1, -1]
    retain = split.subset(~split.is_poison)
    assert retain.is_poison.tolist() == [False] * 3 and retain.index.tolist() == [3, 7, 9]
    assert retain.adversarial_label.tolist() == [-1, 2, 8]
    forget = split.subset(split.is_poison)
    assert forget.is_poison.all() and forget.index.tolist() == [5, -1, -1]
    both = ImageSplit.concat(retain, forget)
    assert both.is_poison.tolist() == [False] * 3 + [True] * 3
    assert both.without_noise().is_poison.tolist() == both.is_poison.tolist()  # the rows are still the poisons


def test_concat_of_a_gaussian_split_and_a_flagged_split_keeps_both_rules():
    n = 4
    gaussian = ImageSplit(torch.from_numpy(_images(n, 1)), torch.zeros(n, dtype=torch.int64), torch.arange(n),
                          torch.zeros(1, 3, 32, 32), torch.tensor([-1, 0, -1, -1]))
    _, _, part = _crafted_part(adversarial=True)
    crafted = image_split(part)
    both = ImageSplit.concat(gaussian, crafted)
    assert both.is_poison.tolist() == [False, True, False, False] + [False, True, False, False, True, True]
    assert both.adversarial_label.tolist()[:n] == [-1] * n  # a split without the column has no targets


def test_png_bytes_rejects_what_is_not_a_cifar_image():
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((3, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match="differ in length"):
        image_rows_dataset([png_bytes(_images(1)[0])], [0, 1], [0], [False])
