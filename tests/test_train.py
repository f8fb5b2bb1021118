"""The training loop: compute metering, checkpoints, resume equal to an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from hf_unlearn.models.resnet import ResNet18
from hf_unlearn.train import RunOptions, TrainConfig, load_checkpoint, train

TINY = dict(epochs=3, batch_size=64, width=4, lr=0.05, seed=1)


def _opts(path, **kw):
    return RunOptions(output_dir=str(path), cpu=True, progress=False, **kw)


def test_model_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ResNet18(width=4).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text())["width"] == 4
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt")), "weights are safetensors only"
    loaded = ResNet18.from_pretrained(str(tmp_path)).eval()
    x = torch.rand(5, 3, 32, 32)
    torch.testing.assert_close(model(x), loaded(x), rtol=0, atol=0)


def test_model_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ResNet18(width=4)(torch.rand(2, 32, 32))


def test_training_cost_and_checkpoint_folder(tiny_splits, tmp_path):
    cfg = TrainConfig(**TINY)
    res = train(tiny_splits["train"], tiny_splits["test"], cfg, _opts(tmp_path / "m"), card_info={"role": "poisoned"})
    n = len(tiny_splits["train"])
    assert res.training_cost == 3 * n * cfg.epochs, "forward+backward = 3 forward-equivalents per example"
    out = tmp_path / "m"
    for name in ("model.safetensors", "config.json", "training_summary.json", "README.md"):
        assert (out / name).exists(), name
    assert not (out / "checkpoints").exists(), "intermediate checkpoints are removed after a finished run"
    card = (out / "README.md").read_text()
    assert "training cost" in card and "test accuracy" in card
    model, summary = load_checkpoint(str(out))
    assert summary["training_cost"] == res.training_cost and summary["num_poisons_trained_on"] == 10
    assert 0.0 <= summary["test_accuracy"] <= 1.0


def test_resumed_run_equals_uninterrupted_run(tiny_splits, tmp_path):
    """Kill after one epoch, resume: no epoch is repeated and the weights match bit for bit."""
    cfg = TrainConfig(**TINY, augment=True)
    full = train(tiny_splits["train"], None, cfg, _opts(tmp_path / "full"))

    seen = []
    train(tiny_splits["train"], None, cfg, _opts(tmp_path / "cut", stop_after_epochs=1),
          on_epoch_end=lambda e, _: seen.append(e))
    assert (tmp_path / "cut" / "checkpoints" / "epoch_0").exists()
    assert not (tmp_path / "cut" / "model.safetensors").exists(), "an interrupted run writes no final model"
    resumed = train(tiny_splits["train"], None, cfg, _opts(tmp_path / "cut"), on_epoch_end=lambda e, _: seen.append(e))
    assert seen == [0, 1, 2], f"resume must start at the next epoch, saw {seen}"
    assert resumed.training_cost == full.training_cost
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs between resumed and uninterrupted runs"
    # no test split: the summary says null (strict JSON, servable by the Hub), the card "not measured"
    raw = (tmp_path / "full" / "training_summary.json").read_text()
    assert json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))["test_accuracy"] is None
    assert "not measured" in (tmp_path / "full" / "README.md").read_text()


def test_same_seed_same_model_different_seed_differs(tiny_splits, tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 1})
    a = train(tiny_splits["train"], None, cfg, _opts(tmp_path / "a", checkpointing=False)).model
    b = train(tiny_splits["train"], None, cfg, _opts(tmp_path / "b", checkpointing=False)).model
    c = train(tiny_splits["train"], None, TrainConfig(**{**TINY, "epochs": 1, "seed": 2}),
              _opts(tmp_path / "c", checkpointing=False)).model
    assert torch.equal(a.linear.weight, b.linear.weight)
    assert not torch.equal(a.linear.weight, c.linear.weight)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0)])
def test_bad_train_config(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_load_checkpoint_without_safetensors_is_a_clear_error(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_checkpoint(str(tmp_path))
