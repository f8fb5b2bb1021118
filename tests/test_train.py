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


# ----------------------------------------------------------------------------- mixed precision (issue 8, item 6)
def test_first_layer_runs_in_float32_under_bf16_autocast():
    """Under bf16 autocast the first conv sees x + xi in float32 (no rounding to 8 mantissa bits)."""
    torch.manual_seed(0)
    model = ResNet18(width=4).eval()
    seen = {}
    model.conv1.register_forward_hook(lambda mod, inp, out: seen.update(out=out))
    x = torch.rand(4, 3, 32, 32) + 0.15 * torch.randn(4, 3, 32, 32)  # a poisoned input, unclipped
    model(x)
    ref = seen["out"].clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    # autocast casts inside the op, so the module's output (not its argument) shows the precision
    assert seen["out"].dtype == torch.float32, "the first convolution must run on float32 pixels"
    torch.testing.assert_close(seen["out"], ref, rtol=1e-6, atol=1e-6)
    assert logits.dtype == torch.bfloat16, "the rest of the network still runs in the autocast dtype"


def test_bf16_training_returns_a_plain_float32_model(tiny_splits, tmp_path):
    """The model a bf16 run returns (the one the demo scores) has no autocast wrapper left."""
    from accelerate.state import AcceleratorState

    cfg = TrainConfig(**{**TINY, "epochs": 1})
    AcceleratorState._reset_state(reset_partial_state=True)  # the state is a process-wide singleton
    try:
        res = train(tiny_splits["train"], None, cfg, _opts(tmp_path / "m", checkpointing=False, mixed_precision="bf16"))
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    saved, _ = load_checkpoint(str(tmp_path / "m"))
    res.model.eval()
    x = tiny_splits["train"].inputs(torch.arange(8))
    out = res.model(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, saved(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------- augmentation modes
def test_flip_keeps_noise_pixel_aligned_and_modes_parse():
    from hf_unlearn.train import batch_flip, batch_flip_crop

    x = torch.rand(64, 3, 32, 32)
    out = batch_flip(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()), "flip-only must return each image as is or mirrored, never shifted"
    assert 0 < int(mirrored.sum()) < 64, "about half the images are flipped"
    cropped = batch_flip_crop(x, torch.Generator().manual_seed(0), pad=2)
    assert not bool(((cropped == x) | (cropped == x.flip(-1))).flatten(1).all(1).all()), "flip-crop shifts images"
    assert TrainConfig(augment=True).augment_mode == "flip-crop"
    assert TrainConfig(augment=False).augment_mode == "none"
    assert TrainConfig(augment="flip").augment_mode == "flip"
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment="crop-everything")
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)


def test_fidelity_sweep_cells_parse():
    """scripts/sweep_fidelity.py: a cell overrides DEFAULTS with typed values; typos are errors."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "sweep_fidelity.py"
    spec = importlib.util.spec_from_file_location("sweep_fidelity", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cell = mod.parse_cell("n=20000,augment=flip-crop,pad=2,ls=0.2")
    assert cell["n"] == 20000 and isinstance(cell["n"], int)
    assert cell["augment"] == "flip-crop" and cell["pad"] == 2 and cell["ls"] == 0.2
    assert cell["eps"] == mod.DEFAULTS["eps"]
    with pytest.raises(ValueError, match="unknown cell key"):
        mod.parse_cell("epoch=3")


def test_cpu_fidelity_preset_is_the_measured_point():
    """configs/cpu-fidelity.yaml is the sweep's chosen cell (docs/fidelity.md, fidelity.jsonl)."""
    from hf_unlearn.config import load_preset

    cfg = load_preset("cpu-fidelity")
    assert cfg.source != "samples", "the regime needs the full CIFAR-10 test set, not the 5,000-image sample"
    assert cfg.poison.max_train_rows == 20000 and cfg.poison.budget == 5.0 and cfg.poison.eps == 0.15
    t = cfg.train
    assert (t.width, t.epochs, t.batch_size, t.augment_mode) == (16, 12, 256, "none")
    assert (t.lr, t.label_smoothing, t.weight_decay) == (0.2, 0.1, 5e-4)
