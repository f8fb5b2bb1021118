"""Gradient canceling (Lu et al. 2023) towards a GradPC target: what each step promises, on a tiny conv net.

The net has BatchNorm (so GradPC's treatment of buffers is tested) and learns a synthetic 4-class task whose
classes differ in colour, so a few dozen steps give it a high training accuracy for GradPC to destroy.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_unlearn.attacks.indiscriminate import (
    ATTACK,
    RECIPES,
    GradientCancelingRecipe,
    IndiscriminateConfig,
    canceling_loss,
    canceling_value,
    canceling_value_and_grad,
    choose_init_rows,
    clean_gradient,
    craft,
    gradpc,
    mean_loss_accuracy,
    opposing_labels,
    parameter_distance,
    quantise,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))


def _data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    colours = torch.tensor([[0.8, 0.2, 0.2], [0.2, 0.8, 0.2], [0.2, 0.2, 0.8], [0.7, 0.7, 0.2]])
    x = colours[y].view(n, 3, 1, 1) + 0.15 * torch.randn(n, 3, 32, 32, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8), y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = _data()
    net = TinyNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xf = x.float() / 255
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(net(xf), y).backward()
        opt.step()
    net.eval()
    loss, acc = mean_loss_accuracy(net, x, y)
    assert acc >= 0.9, f"the tiny net should learn the colour task (accuracy {acc})"
    return net, x, y


@pytest.fixture(scope="module")
def target(trained):
    net, x, y = trained
    return gradpc(net, x, y, radius=1.0, steps=20, lr=1.0, seed=0, progress=False, batch_size=16)


def test_gradpc_lowers_accuracy_within_the_radius_and_recalibrates_batchnorm(trained, target):
    net, x, y = trained
    loss0, acc0 = mean_loss_accuracy(net, x, y)
    loss1, acc1 = mean_loss_accuracy(target, x, y)
    assert loss1 > loss0 + 0.2 and acc1 <= acc0 - 0.2, f"ascent (measured 0->0.34, 1->0.75): loss {loss0:.3f}->{loss1:.3f}, acc {acc0}->{acc1}"
    dist = parameter_distance(net, target)
    assert dist <= 1.0 + 1e-6, f"the target must stay in the L2 ball of radius 1 (distance {dist})"
    assert dist > 1.0 - 1e-4, f"step 1 >= radius saturates the ball (distance {dist})"
    # BatchNorm statistics are re-estimated at the target: the running mean is the mean pre-BN activation over the
    # training rows (4 equal batches of 16, so the cumulative average of batch means is the overall mean)
    with torch.no_grad():
        pre = target.conv(x.float() / 255)
    assert torch.allclose(target.bn.running_mean, pre.mean(dim=(0, 2, 3)), atol=1e-5)
    assert not torch.allclose(net.bn.running_mean, target.bn.running_mean), "stale clean statistics"
    assert not target.training and target.bn.momentum == net.bn.momentum
    assert target is not net and mean_loss_accuracy(net, x, y) == (loss0, acc0), "the clean model is not touched"
    again = gradpc(net, x, y, radius=1.0, steps=20, lr=1.0, seed=0, progress=False, batch_size=16)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), target.parameters())), "same seed, same target"


def test_gradpc_small_radius_is_exact_and_bad_arguments_fail(trained):
    net, x, y = trained
    small = gradpc(net, x, y, radius=0.01, steps=3, lr=1.0, seed=1, progress=False, batch_size=8)
    assert abs(parameter_distance(net, small) - 0.01) < 1e-6
    with pytest.raises(ValueError, match="radius"):
        gradpc(net, x, y, radius=0.0, steps=3, lr=1.0, seed=0, progress=False)


def _full_gradient_norm(model, x, y, label_smoothing: float = 0.0) -> float:
    """||grad of the mean loss over x|| at the model, computed directly (not through the attack's code)."""
    model.eval()
    loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads))


def test_canceling_loss_is_half_the_squared_norm_of_the_mean_gradient(target, trained):
    _, x, y = trained
    xf = x.float() / 255
    poisons, labels = xf[:6].clone().requires_grad_(True), y[:6]
    cg = clean_gradient(target, x, y, chunk_size=20)
    loss = canceling_loss(target, cg, poisons, labels, n_clean=len(x))
    norm = _full_gradient_norm(target, torch.cat([xf, xf[:6]]), torch.cat([y, labels]))
    assert math.isclose(float(loss.detach()), 0.5 * norm**2, rel_tol=1e-4), "the objective is 0.5 ||mean gradient||^2"
    (grad,) = torch.autograd.grad(loss, poisons)
    assert grad.abs().max() > 0, "the objective must reach the poison inputs (create_graph=True)"


def test_canceling_uses_the_victims_label_smoothing(target, trained):
    """The victim trains on smoothed cross-entropy, so that is the gradient the poisons must cancel: every path
    (one chunk, several chunks, the reported value, craft) computes the smoothed objective."""
    _, x, y = trained
    xf = x.float() / 255
    poisons, labels = xf[:6].clone(), y[:6]
    both_x, both_y = torch.cat([xf, poisons]), torch.cat([y, labels])
    smooth_cg = clean_gradient(target, x, y, chunk_size=20, label_smoothing=0.1)
    expected = 0.5 * _full_gradient_norm(target, both_x, both_y, label_smoothing=0.1) ** 2
    plain = 0.5 * _full_gradient_norm(target, both_x, both_y) ** 2
    assert not math.isclose(expected, plain, rel_tol=1e-2), "smoothing must change the objective for this test"
    one, g_one = canceling_value_and_grad(target, smooth_cg, poisons, labels, len(x), chunk_size=100,
                                          label_smoothing=0.1)
    many, g_many = canceling_value_and_grad(target, smooth_cg, poisons, labels, len(x), chunk_size=4,
                                            label_smoothing=0.1)
    assert torch.allclose(g_one, g_many, rtol=1e-4, atol=1e-4 * float(g_one.abs().max())), \
        "the chunked gradient differentiates the smoothed objective too"
    value = canceling_value(target, smooth_cg, poisons, labels, len(x), chunk_size=4, label_smoothing=0.1)
    for got in (one, many, value):
        assert math.isclose(got, expected, rel_tol=1e-4), (got, expected, plain)
    recipe = GradientCancelingRecipe(gradpc_radius=1.0, gradpc_steps=1, gradpc_lr=1.0, gradpc_batch_size=8,
                                     gc_epochs=1, gc_lr=1e-9, chunk_size=8)
    _, info = craft(target, x, y, x[:6], labels, recipe, seed=0, progress=False, label_smoothing=0.1)
    assert info["label_smoothing"] == 0.1 and math.isclose(info["initial_loss"], expected, rel_tol=1e-4)


def test_chunked_gradient_equals_autograd(target, trained):
    _, x, y = trained
    cg = clean_gradient(target, x, y, chunk_size=64)
    px, py = x[:10].float() / 255, y[:10]
    whole, g_whole = canceling_value_and_grad(target, cg, px, py, len(x), chunk_size=100)
    parts, g_parts = canceling_value_and_grad(target, cg, px, py, len(x), chunk_size=3)
    assert math.isclose(whole, parts, rel_tol=1e-5)
    assert torch.allclose(g_whole, g_parts, rtol=1e-4, atol=1e-12 + 1e-4 * float(g_whole.abs().max()))
    cg_chunks = clean_gradient(target, x, y, chunk_size=7)
    # exact up to float summation order (chunk sums are added in another order; scale-relative tolerance)
    scale = max(float(a.abs().max()) for a in cg)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-4 * scale) for a, b in zip(cg, cg_chunks)), \
        "chunking the clean rows is exact"


def test_crafting_cancels_the_gradient_at_the_target(target, trained):
    _, x, y = trained
    # 16 poisons for 64 clean rows: a radius-1 target is far, and fewer poisons cannot cancel much of its gradient
    rows = torch.from_numpy(choose_init_rows(len(x), 16, seed=0))
    recipe = GradientCancelingRecipe(gradpc_radius=1.0, gradpc_steps=1, gradpc_lr=1.0, gradpc_batch_size=8,
                                     gc_epochs=40, gc_lr=0.1, chunk_size=8)
    poisons, info = craft(target, x, y, x[rows], y[rows], recipe, seed=0, progress=False)
    assert poisons.dtype == torch.float32 and poisons.shape == (16, 3, 32, 32)
    assert float(poisons.min()) >= 0.0 and float(poisons.max()) <= 1.0, "poisons are clipped to [0, 1]"
    assert len(info["loss_history"]) == 40
    assert info["final_loss"] < 0.6 * info["initial_loss"], (
        f"canceling loss {info['initial_loss']:.4g} -> {info['final_loss']:.4g}: should fall by 40% (measured: 53%)")
    xf = x.float() / 255
    before = _full_gradient_norm(target, torch.cat([xf, xf[rows]]), torch.cat([y, y[rows]]))
    after = _full_gradient_norm(target, torch.cat([xf, poisons]), torch.cat([y, y[rows]]))
    assert after < 0.8 * before, f"gradient norm over clean + poisons {before:.4g} -> {after:.4g}"
    assert math.isclose(info["final_loss"], 0.5 * after**2, rel_tol=1e-3)
    again, _ = craft(target, x, y, x[rows], y[rows], recipe, seed=0, progress=False)
    assert torch.equal(poisons, again), "crafting is deterministic"
    stored = quantise(poisons)
    assert stored.dtype == torch.uint8
    assert float((stored.float() / 255 - poisons).abs().max()) <= 0.5 / 255 + 1e-7, "8-bit rounding, no more"


def test_craft_takes_a_precomputed_clean_gradient(target, trained):
    """Passing the clean gradient (the probe computes it first for opposing_labels) gives the same poisons; it is
    used, not ignored (a different one gives different poisons), and a mis-shaped one fails clearly."""
    _, x, y = trained
    rows = torch.from_numpy(choose_init_rows(len(x), 8, seed=0))
    recipe = GradientCancelingRecipe(gradpc_radius=1.0, gradpc_steps=1, gradpc_lr=1.0, gradpc_batch_size=8,
                                     gc_epochs=3, gc_lr=0.1, chunk_size=8)
    own, info = craft(target, x, y, x[rows], y[rows], recipe, seed=0, progress=False)
    grad = clean_gradient(target, x, y, recipe.chunk_size)
    given, info_given = craft(target, x, y, x[rows], y[rows], recipe, seed=0, progress=False, clean_grad=grad)
    assert torch.equal(own, given) and info_given["clean_grad_norm"] == info["clean_grad_norm"]
    halved, _ = craft(target, x, y, x[rows], y[rows], recipe, seed=0, progress=False,
                      clean_grad=[g / 2 for g in grad])
    assert not torch.equal(own, halved)
    with pytest.raises(ValueError, match="one tensor per trainable parameter"):
        craft(target, x, y, x[rows], y[rows], recipe, seed=0, progress=False, clean_grad=grad[:-1])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_opposing_labels_pick_the_class_whose_gradient_most_opposes_the_clean_one(target, trained, smoothing):
    """Checked against the definition: for every image and class, the inner product of the parameter gradient of
    l(x, c) with the clean gradient, by autograd (not the forward-mode shortcut the function uses)."""
    _, x, y = trained
    cg = clean_gradient(target, x, y, chunk_size=20, label_smoothing=smoothing)
    images = x[:12]
    got = opposing_labels(target, cg, images, chunk_size=5, label_smoothing=smoothing)
    target.eval()
    params = [p for p in target.parameters() if p.requires_grad]
    inner = torch.empty(len(images), 10)
    for i in range(len(images)):
        for c in range(10):
            loss = F.cross_entropy(target(images[i : i + 1].float() / 255), torch.tensor([c]),
                                   label_smoothing=smoothing)
            inner[i, c] = sum((g * q).sum() for g, q in zip(torch.autograd.grad(loss, params), cg))
    assert torch.equal(got, inner.argmin(1)), (got, inner.argmin(1))
    kept = inner.gather(1, y[:12, None])
    assert bool((inner.gather(1, got[:, None]) < kept).any()), "some image gets a more opposing label than its own"
    assert not torch.equal(got, y[:12]), "at a GradPC target the opposing label is not just the true one"
    with pytest.raises(ValueError, match="clean_grad"):
        opposing_labels(target, cg[:-1], images)


def test_quantise_clips_and_rounds():
    out = quantise(torch.tensor([-0.2, 0.0, 0.6 / 255, 1.49 / 255, 0.5, 1.0, 1.3]))  # 127.5 rounds half to even
    assert out.tolist() == [0, 0, 1, 1, 128, 255, 255]


@pytest.mark.parametrize(
    "cfg, name",
    [
        (IndiscriminateConfig(1.5, 0), "gc-b1.5-s0"),
        (IndiscriminateConfig(2, 1, 5000, "cpu"), "gc-b2-s1-n5000-cpu"),
        (IndiscriminateConfig(2.5, 3, None, "tiny"), "gc-b2.5-s3-tiny"),
        (IndiscriminateConfig(10, 0, 64), "gc-b10-s0-n64"),
    ],
)
def test_config_names_round_trip(cfg, name):
    assert cfg.name == name
    assert IndiscriminateConfig.from_name(name) == cfg
    assert ATTACK.parse_config(name) == cfg


@pytest.mark.parametrize(
    "name, match",
    [
        ("eps0.1-b1.5-s0", "gc-b<budget"),
        ("gc-b1.5", "gc-b<budget"),
        ("gc-b1.5-s0-gpu", "recipe='gpu'"),
        ("gc-b1.5-s0-paper", "not written"),
        ("gc-b0-s0", "budget=0"),
        ("gc-b150-s0", "budget=150"),
    ],
)
def test_bad_config_names_say_what_is_expected(name, match):
    with pytest.raises(ValueError, match=match):
        IndiscriminateConfig.from_name(name)


def test_bad_configs_and_recipes_fail_clearly():
    with pytest.raises(ValueError, match="seed"):
        IndiscriminateConfig(1.5, -1)
    with pytest.raises(ValueError, match="max_train_rows"):
        IndiscriminateConfig(1.5, 0, 0)
    with pytest.raises(ValueError, match="gc_epochs"):
        GradientCancelingRecipe(0.5, 1, 1.0, 8, 0, 0.1)
    assert set(RECIPES) == {"paper", "cpu", "cpunear", "tiny"}
    assert RECIPES["cpunear"].gradpc_radius == 0.25, "the nearer target of the threshold experiment"
    paper = RECIPES["paper"]
    assert (paper.gc_lr, paper.gc_epochs, paper.gradpc_radius) == (0.1, 1000, 0.5), "A.1.3 and the reference"


def test_init_rows_are_seeded_distinct_and_sorted():
    a = choose_init_rows(1000, 15, seed=0)
    assert len(set(a.tolist())) == 15 and a.tolist() == sorted(a.tolist())
    assert a.tolist() == choose_init_rows(1000, 15, seed=0).tolist()
    assert a.tolist() != choose_init_rows(1000, 15, seed=1).tolist()
    with pytest.raises(ValueError, match="lower the budget"):
        choose_init_rows(10, 11, seed=0)


def test_attack_object_and_registry():
    from hf_unlearn.attacks import get_attack

    assert get_attack("indiscriminate", "cifar10") is ATTACK
    assert ATTACK.columns == () and ATTACK.tasks == ("cifar10",)
    assert ATTACK.repo_name("cifar10") == "poisoned-cifar10-indiscriminate"
    assert ATTACK.evaluate(None, {"forget": [0] * 7, "test": []}) == {"num_poisons": 7}
    with pytest.raises(ValueError, match="tasks"):
        ATTACK.build("samples", IndiscriminateConfig(), "out", task="imdb")
