"""The crafting-model cache (``dataset_builders/_cifar10.py``): a build process reuses the clean model an earlier
one trained on the same images and recipe, refuses a damaged entry, and writes the same card either way."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from dataset_builders import _cifar10 as shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "crafting-cache"
    monkeypatch.setenv(shared.CACHE_ENV, str(folder))
    return folder


def _no_training(monkeypatch):
    import hf_unlearn.train

    def refuse(*args, **kwargs):
        raise AssertionError("the crafting model was trained although the cache holds it")

    monkeypatch.setattr(hf_unlearn.train, "train", refuse)


def test_a_second_build_loads_the_model_the_first_trained(cache, monkeypatch):
    x, y = _data()
    config = shared.crafting_train_config("tiny")
    first, info = shared.crafting_model(x, y, config, progress=False)
    assert len(list(cache.iterdir())) == 1, "one entry per (images, recipe)"
    _no_training(monkeypatch)
    second, info2 = shared.crafting_model(x, y, config, progress=False)
    assert info2 == info, "the card's crafting_model entry must not depend on the cache"
    assert shared.weights_sha256(second) == info["sha256"] == shared.weights_sha256(first)
    assert not second.training and all(p.requires_grad for p in second.parameters()), "ready to craft against"
    probe = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(first.eval()(probe), second(probe))


def test_other_images_or_recipe_train_a_new_model(cache):
    x, y = _data()
    config = shared.crafting_train_config("tiny")
    shared.crafting_model(x, y, config, progress=False)
    keys = {shared.crafting_cache_key(x, y, config)}
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10  # one label differs
    for xx, yy, cc in ((x, y2, config), (x, y, replace(config, seed=1)), (_data(seed=1)[0], y, config)):
        key = shared.crafting_cache_key(xx, yy, cc)
        assert key not in keys, "a different input must not hit another input's entry"
        keys.add(key)


def test_a_damaged_entry_is_retrained_not_used(cache, monkeypatch):
    x, y = _data()
    config = shared.crafting_train_config("tiny")
    _, info = shared.crafting_model(x, y, config, progress=False)
    (entry,) = cache.iterdir()
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])  # truncated
    _, again = shared.crafting_model(x, y, config, progress=False)
    assert again["sha256"] == info["sha256"], "retrained (same software: same weights) rather than failing"
    import safetensors.torch

    tensors = safetensors.torch.load_file(weights)  # the entry was replaced by a whole one
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1.0  # readable, but not what was trained
    safetensors.torch.save_file(tensors, weights)
    calls = []
    import hf_unlearn.train

    real = hf_unlearn.train.train
    monkeypatch.setattr(hf_unlearn.train, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    _, third = shared.crafting_model(x, y, config, progress=False)
    assert calls == [1] and third["sha256"] == info["sha256"], "an edited entry fails its digest and is retrained"


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(shared.CACHE_ENV, "off")
    assert shared.crafting_cache_dir() is None
    monkeypatch.setenv("HOME", str(tmp_path))
    x, y = _data(n=16)
    shared.crafting_model(x, y, shared.crafting_train_config("tiny"), progress=False)
    assert not any(tmp_path.iterdir())


def test_every_crafting_recipe_names_its_victim_regime():
    """A recipe crafts against the victim of its regime: cpunear (a nearer GradPC target) is a CPU recipe, so its
    crafting model is the CPU victim, the same cache entry as cpu's; an unknown recipe is refused by name."""
    from hf_unlearn.attacks.indiscriminate import RECIPES as CANCELING
    from hf_unlearn.attacks.targeted import RECIPES as MATCHING

    assert set(CANCELING) | set(MATCHING) <= set(shared.RECIPE_REGIME)
    assert shared.crafting_train_config("cpunear", "indiscriminate") == shared.crafting_train_config("cpu",
                                                                                                    "indiscriminate")
    assert shared.crafting_train_config("cpu", "indiscriminate").epochs == 12
    with pytest.raises(ValueError, match="cpunear"):
        shared.crafting_train_config("gpu")
