"""scripts/probe_convex_canceling.py: the convex victim's optimum and the weight-decay term in canceling."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from probe_convex_canceling import SoftmaxRegression, fit, regularised_clean_gradient  # noqa: E402

from hf_unlearn.attacks.indiscriminate import canceling_value  # noqa: E402


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).round().to(torch.uint8), torch.randint(0, 10, (n,), generator=g)


def test_fit_reaches_the_unique_regularised_optimum():
    """From zero and from a random start L-BFGS ends at the same point, within what strong convexity allows
    (||a - b|| <= (g_a + g_b) / mu), and the reported gradient norm is the true one."""
    x, y = _data(64, 0)
    xf, wd = x.float() / 255, 0.1
    model, norm = fit(xf, y, weight_decay=wd, iters=200)
    assert norm < 1e-4, f"L-BFGS should reach the optimum of a strongly convex loss (gradient norm {norm:.2e})"
    other, other_norm = fit(xf, y, weight_decay=wd, iters=200, init_seed=1)
    start, _ = fit(xf, y, weight_decay=wd, iters=0, init_seed=1)
    assert float(start.linear.weight.abs().max()) > 0.01, "the second fit really starts elsewhere"
    gap = math.sqrt(sum(float((a - b).pow(2).sum()) for a, b in zip(model.parameters(), other.parameters())))
    assert gap <= (norm + other_norm) / wd + 1e-6 and gap < 1e-3
    loss = F.cross_entropy(model(xf), y) + 0.5 * wd * sum(p.pow(2).sum() for p in model.parameters())
    true_norm = math.sqrt(sum(float(g.pow(2).sum()) for g in torch.autograd.grad(loss, list(model.parameters()))))
    assert math.isclose(true_norm, norm, rel_tol=1e-3, abs_tol=1e-7)


def test_folded_weight_decay_makes_canceling_the_victims_full_gradient():
    """0.5 ||G||^2 as craft computes it from the folded gradient equals 0.5 ||grad of the victim's regularised
    loss over clean + poisons||^2 from autograd; leaving the term out does not."""
    x, y = _data(40, 2)
    px, py = _data(6, 3)
    torch.manual_seed(0)
    model = SoftmaxRegression().eval()
    wd, n_total = 5.0, len(x) + len(px)  # large enough that the term is a visible part of the gradient
    folded = regularised_clean_gradient(model, x, y, wd, n_total, chunk_size=16)
    value = canceling_value(model, folded, px.float() / 255, py, len(x), chunk_size=4)
    xs, ys = torch.cat([x, px]).float() / 255, torch.cat([y, py])
    loss = F.cross_entropy(model(xs), ys) + 0.5 * wd * sum(p.pow(2).sum() for p in model.parameters())
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = 0.5 * sum(float(g.double().pow(2).sum()) for g in grads)
    assert math.isclose(value, expected, rel_tol=1e-4)
    unfolded = regularised_clean_gradient(model, x, y, 0.0, n_total, chunk_size=16)
    assert not math.isclose(canceling_value(model, unfolded, px.float() / 255, py, len(x), chunk_size=4), expected,
                            rel_tol=1e-2)
