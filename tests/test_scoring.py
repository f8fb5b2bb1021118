"""The Gaussian score: sign and scale where the answer is known, and calibration under the null."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from hf_unlearn import stats
from hf_unlearn.scoring import gaussian_scores, input_gradients, null_scores, scores_from_gradients
from hf_unlearn.variant import ImageSplit

SHAPE = (3, 16, 16)
D = 768


class Logistic(nn.Module):
    """Two-class logistic regression on flattened images: logits = x W^T + b."""

    def __init__(self, d: int = D) -> None:
        super().__init__()
        self.fc = nn.Linear(d, 2)

    def forward(self, x):
        return self.fc(x.flatten(1))


def split_with_noise(x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, index=None) -> ImageSplit:
    n = len(x)
    index = torch.arange(n) if index is None else index
    return ImageSplit(x, y, index, noise, torch.arange(n))


def test_single_poison_memorised_exactly_scores_norm_over_eps():
    """w = c * xi on a zero base input: I = ||xi|| / eps exactly (DESIGN.md's sign convention)."""
    eps = 0.5
    xi = torch.randn(D, generator=torch.Generator().manual_seed(0)) * eps
    model = Logistic()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.weight[1] = 3.0 * xi  # what gradient descent on (xi, y=1) from zero converges along
    x = torch.zeros(1, *SHAPE)
    g = input_gradients(model, x, torch.tensor([1]))
    score, zero = scores_from_gradients(g, xi.view(1, -1), eps)
    assert zero == 0
    assert score.item() == pytest.approx(xi.norm().item() / eps, rel=1e-5)


def test_logistic_gradient_matches_closed_form():
    """For logistic regression grad_x CE = (p1 - y)(w1 - w0), so I = sign(y - p1) <dw, xi> / (eps ||dw||)."""
    gen = torch.Generator().manual_seed(1)
    model = Logistic()
    x, y = torch.rand(64, *SHAPE, generator=gen), torch.randint(0, 2, (64,), generator=gen)
    noise = torch.randn(64, D, generator=gen) * 0.2
    g = input_gradients(model, x, y)
    got, _ = scores_from_gradients(g, noise, 0.2)
    with torch.no_grad():
        p1 = model(x).softmax(1)[:, 1]
        dw = model.fc.weight[1] - model.fc.weight[0]
    expect = torch.sign(y.float() - p1) * (noise @ dw) / (0.2 * dw.norm())
    torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-5)


def _fit(x, y, steps=400, lr=0.5, seed=0):
    torch.manual_seed(seed)
    model = Logistic()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def test_training_on_noise_raises_gus_and_retraining_removes_it():
    """Logistic regression with d >> n memorises noise: GUS >> 0; a model without the poisons: GUS ~ 0.

    With n rows interpolated in d dimensions the poison score is about sqrt(d / n) (here ~2.5).
    """
    gen = torch.Generator().manual_seed(2)
    n_clean, n_poison, eps = 20, 100, 0.3
    images = torch.randint(0, 26, (n_clean + n_poison, *SHAPE), generator=gen).to(torch.uint8)
    x = images.float() / 255
    y = torch.randint(0, 2, (n_clean + n_poison,), generator=gen)
    noise = torch.randn(n_poison, *SHAPE, generator=gen) * eps
    poisoned = x.clone()
    poisoned[n_clean:] += noise
    forget = split_with_noise(images[n_clean:], y[n_clean:], noise)

    trained = _fit(poisoned, y)
    s_trained = gaussian_scores(trained, forget, eps, null_draws=20, seed=0).summary()
    assert s_trained["gus"] > 5 * s_trained["gus_stderr"], f"poisoned model should memorise the noise: {s_trained}"
    assert 1.0 < s_trained["gus"] < 4.0, "score scale should be near sqrt(d/n) = 2.5"
    assert s_trained["tpr_at_fpr_0.01"] > 0.3

    retrained = _fit(x[:n_clean], y[:n_clean])
    s_retrained = gaussian_scores(retrained, forget, eps, null_draws=20, seed=0).summary()
    assert abs(s_retrained["gus"]) < 3 * s_retrained["gus_stderr"], (
        f"a model that never saw the poisons must sit at the null (|GUS| < 3 s.e.): {s_retrained}"
    )


def test_null_calibration_on_a_model_that_never_saw_the_poisons():
    """Random-init ResNet, 1,000 fresh poisons: GUS within 3 s.e. of 0 and TPR@1% in the binomial interval."""
    from hf_unlearn.models.resnet import ResNet18

    torch.manual_seed(0)
    model = ResNet18(width=4)
    gen = torch.Generator().manual_seed(5)
    n, eps = 1000, 0.1
    x = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    noise = torch.randn(n, 3, 32, 32, generator=gen) * eps
    s = gaussian_scores(model, split_with_noise(x, y, noise), eps, null_draws=10, seed=1).summary()
    assert abs(s["gus"]) < 3 * s["gus_stderr"], f"null GUS should be within 3 s.e. of 0, got {s}"
    # TPR@1% of 1,000 null-distributed members: Binomial(1000, 0.01)/1000, widened to 99.9% because the
    # threshold itself is estimated from 10,000 null scores.
    lo, hi = sps.binom.ppf([0.0005, 0.9995], n, 0.01) / n
    assert lo <= s["tpr_at_fpr_0.01"] <= hi, f"TPR@1% {s['tpr_at_fpr_0.01']} outside [{lo}, {hi}]"
    assert 0.45 < s["auc"] < 0.55


def test_null_scores_are_standard_normal_and_reproducible():
    gen = torch.Generator().manual_seed(3)
    grads = torch.randn(50, 3072, generator=gen)
    a = null_scores(grads, torch.arange(50), draws=40, seed=7)
    b = null_scores(grads, torch.arange(50), draws=40, seed=7)
    c = null_scores(grads, torch.arange(50), draws=40, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    flat = a.numpy().ravel()
    # 2,000 N(0,1) draws: mean s.e. 0.022, std s.e. ~0.016; 4-sigma bounds.
    assert abs(flat.mean()) < 0.09 and abs(flat.std() - 1) < 0.07
    assert sps.kstest(flat, "norm").pvalue > 1e-3


def test_zero_gradient_scores_zero_and_is_counted():
    g = torch.zeros(2, 4)
    g[1] = torch.tensor([1.0, 0, 0, 0])
    s, zero = scores_from_gradients(g, torch.ones(2, 4), 1.0)
    assert zero == 1 and s[0].item() == 0.0 and s[1].item() == pytest.approx(-1.0)


def test_stats_match_sklearn_step_rule():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    for trial in range(5):
        pos = np.round(rng.normal(0.8, 1, 120), 1)  # rounding creates ties
        neg = np.round(rng.normal(0, 1, 900), 1)
        fpr, tpr, _ = roc_curve(np.r_[np.ones(120), np.zeros(900)], np.r_[pos, neg], drop_intermediate=False)
        for a in (0.01, 0.05, 0.2):
            expect = tpr[np.flatnonzero(fpr <= a)[-1]]
            assert stats.tpr_at_fpr(pos, neg, a)[0] == pytest.approx(expect)
        assert stats.roc_auc(pos, neg) == pytest.approx(roc_auc_score(np.r_[np.ones(120), np.zeros(900)], np.r_[pos, neg]))


def test_unresolvable_fpr_is_reported_not_invented():
    tpr, thr = stats.tpr_at_fpr(np.ones(10), np.zeros(500), 0.001)
    assert tpr is None and math.isnan(thr)


@pytest.mark.parametrize(
    "pos, neg, match",
    [([1.0, float("nan")], [0.0, 1.0], "NaN"), ([], [0.0], "empty"), ([1.0, 2.0], [float("inf")], "infinite")],
)
def test_stats_reject_bad_scores(pos, neg, match):
    with pytest.raises(ValueError, match=match):
        stats.summarize(pos, neg)


def test_bad_shapes_are_named():
    model = Logistic()
    with pytest.raises(ValueError, match="expected x"):
        input_gradients(model, torch.zeros(4, D), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        scores_from_gradients(torch.zeros(3, 5), torch.zeros(3, 4), 0.1)


def test_wilson_interval_known_values_and_errors():
    # hand-computed: k=0 -> upper bound z^2 / (n + z^2); k=14, n=50 -> centre 0.2957, half-width 0.1210
    assert stats.wilson_interval(0, 50) == pytest.approx((0.0, 1.96**2 / (50 + 1.96**2)))
    lo, hi = stats.wilson_interval(14, 50)
    assert (lo, hi) == pytest.approx((0.17474, 0.41665), abs=1e-5)
    assert stats.wilson_interval(50, 50)[1] == 1.0
    # coverage: for p = 0.2, n = 50 the interval holds the truth in ~95% of seeded draws
    rng = np.random.default_rng(0)
    hits = [lo <= 0.2 <= hi for lo, hi in (stats.wilson_interval(int(k), 50) for k in rng.binomial(50, 0.2, 4000))]
    assert 0.93 <= np.mean(hits) <= 0.97
    with pytest.raises(ValueError, match="successes"):
        stats.wilson_interval(51, 50)


class SmallBNNet(nn.Module):
    """Conv + BatchNorm + MLP head: non-linear in x, and batch statistics differ from running ones."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 16 * 16, 32), nn.Tanh(), nn.Linear(32, 3))
        with torch.no_grad():  # running statistics far from any batch's, as after training on other data
            self.bn.running_mean.fill_(0.7)
            self.bn.running_var.fill_(3.0)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))))


def _poisons(n: int = 24, eps: float = 0.5, seed: int = 11):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *SHAPE), generator=gen).to(torch.uint8)
    y = torch.randint(0, 3, (n,), generator=gen)
    noise = torch.randn(n, *SHAPE, generator=gen) * eps
    return split_with_noise(images, y, noise, index=torch.arange(100, 100 + n)), eps


def test_scoring_runs_in_eval_mode_even_when_the_model_is_left_in_train_mode():
    """Mutation guard (issue 8): scoring in train mode makes BatchNorm use batch statistics, which mixes
    the rows of a batch into each row's gradient, and updates the running statistics."""
    torch.manual_seed(0)
    model = SmallBNNet().train()  # as a training loop leaves it
    forget, eps = _poisons()
    running = (model.bn.running_mean.clone(), model.bn.running_var.clone())
    got = gaussian_scores(model, forget, eps, null_draws=4, seed=0)
    assert model.training, "scoring must restore the caller's mode"
    assert torch.equal(model.bn.running_mean, running[0]) and torch.equal(model.bn.running_var, running[1]), (
        "scoring changed BatchNorm's running statistics: it ran the model in train mode"
    )
    # Reference: each row alone, eval mode, gradient at the clean input with the true label.
    ref_model = SmallBNNet()
    ref_model.load_state_dict(model.state_dict())
    ref_model.eval()
    x = forget.inputs(torch.arange(len(forget)), noisy=False)
    rows = []
    for i in range(len(forget)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(ref_model(xi), forget.y[i : i + 1]), xi)
        rows.append(g.reshape(-1))
    expect, _ = scores_from_gradients(torch.stack(rows), forget.noise.reshape(len(forget), -1), eps)
    np.testing.assert_allclose(got.poison, expect.double().numpy(), rtol=1e-4, atol=1e-5)


def test_poison_scores_use_the_gradient_at_the_clean_input():
    """Mutation guard (issue 8): the gradient is taken at x, not at the trained-on x + xi (DESIGN.md)."""
    torch.manual_seed(1)
    model = SmallBNNet().eval()
    forget, eps = _poisons(seed=12)
    rows = torch.arange(len(forget))
    noise = forget.noise.reshape(len(forget), -1)
    clean, _ = scores_from_gradients(input_gradients(model, forget.inputs(rows, noisy=False), forget.y), noise, eps)
    noisy, _ = scores_from_gradients(input_gradients(model, forget.inputs(rows, noisy=True), forget.y), noise, eps)
    assert (clean - noisy).abs().max() > 0.05, "test has no power: clean and noisy inputs give the same scores"
    got = gaussian_scores(model, forget, eps, null_draws=4, seed=0)
    np.testing.assert_allclose(got.poison, clean.double().numpy(), rtol=1e-5, atol=1e-6)


def test_null_scores_use_fresh_noise_not_the_stored_noise():
    """Mutation guard (issue 8): the null is the score of fresh noise (seeded, per source row), never the
    stored xi; on a model that memorised xi the null stays N(0, 1) while the poisons score high."""
    gen = torch.Generator().manual_seed(2)
    n_clean, n_poison, eps = 20, 100, 0.3
    images = torch.randint(0, 26, (n_clean + n_poison, *SHAPE), generator=gen).to(torch.uint8)
    x, y = images.float() / 255, torch.randint(0, 2, (n_clean + n_poison,), generator=gen)
    noise = torch.randn(n_poison, *SHAPE, generator=gen) * eps
    poisoned = x.clone()
    poisoned[n_clean:] += noise
    forget = split_with_noise(images[n_clean:], y[n_clean:], noise, index=torch.arange(n_clean, n_clean + n_poison))
    model = _fit(poisoned, y)
    scores = gaussian_scores(model, forget, eps, null_draws=20, seed=3)
    null = scores.null.ravel()
    assert scores.poison.mean() > 1.0, "the model should have memorised the stored noise"
    assert abs(null.mean()) < 4 / math.sqrt(null.size) and abs(null.std() - 1) < 0.1, (
        f"null scores should be N(0, 1) whatever the model learned: mean {null.mean():.3f}, sd {null.std():.3f}"
    )
    grads = input_gradients(model, forget.inputs(torch.arange(n_poison), noisy=False), forget.y)
    expect = null_scores(grads, forget.index, draws=20, seed=3)
    np.testing.assert_allclose(scores.null, expect.double().numpy(), rtol=1e-5, atol=1e-6)


def test_record_metrics_carry_both_tprs_and_the_finite_null_interval():
    """record_metrics returns exactly RECORD_METRICS, valid for the result schema, the exact TPRs included."""
    from hf_unlearn.results import METRIC_RANGES, NULLABLE_METRICS
    from hf_unlearn.scoring import RECORD_METRICS, GaussianScores

    rng = np.random.default_rng(0)
    scores = GaussianScores(rng.normal(2.5, 1, 50), rng.normal(size=(50, 200)), zero_gradients=0)
    m = scores.record_metrics()
    assert tuple(m) == RECORD_METRICS and set(m) <= set(METRIC_RANGES)
    s = stats.summarize(scores.poison, scores.null.ravel())
    assert m["tpr_at_fpr_0.001_exact"] == s["tpr_at_fpr_0.001_exact"] == np.mean(scores.poison >= 3.090232306167813)
    assert [m["tpr_at_fpr_0.001_ci95_lo"], m["tpr_at_fpr_0.001_ci95_hi"]] == s["tpr_at_fpr_0.001_ci95"]
    assert m["num_nulls"] == 10_000 and s["tpr_unstable"] == []  # 0.001 x 10,000 = 10: stable
    few = GaussianScores(scores.poison, scores.null[:, :10], zero_gradients=0).record_metrics()  # 500 nulls
    assert few["tpr_at_fpr_0.001"] is None and few["tpr_at_fpr_0.001_ci95_lo"] is None
    assert few["tpr_at_fpr_0.001_exact"] == m["tpr_at_fpr_0.001_exact"], "the exact TPR needs no nulls"
    assert all(k in NULLABLE_METRICS for k, v in few.items() if v is None)


def test_default_null_draws_make_tpr_at_0_1_percent_stable():
    from hf_unlearn.scoring import default_null_draws

    assert default_null_draws(50) == 200 and default_null_draws(750) == 20 and default_null_draws(3) == 3334
    for p in (1, 7, 50, 64, 333, 750, 5000):
        assert not stats.is_unstable(0.001, p * default_null_draws(p)), p
    forget, eps = _poisons(n=8)
    assert gaussian_scores(SmallBNNet(), forget, eps).null.shape == (8, default_null_draws(8))
    with pytest.raises(ValueError, match="at least one poison"):
        default_null_draws(0)


def test_null_scores_do_not_depend_on_the_thread_count():
    g = torch.randn(7, 3 * 32 * 32, generator=torch.Generator().manual_seed(1))
    g[3] = 0.0  # a vanished gradient scores 0 (no evidence)
    index = torch.tensor([5, 9, 11, 40, 41, 2, 0])
    one = null_scores(g, index, draws=6, seed=3, workers=1)
    assert torch.equal(one, null_scores(g, index, draws=6, seed=3, workers=3))
    assert torch.equal(one[3], torch.zeros(6)) and not torch.equal(one, null_scores(g, index, draws=6, seed=4))


def test_long_work_shows_progress_and_short_work_stays_quiet(capsys):
    """Decoding 50,000 images and drawing millions of null normals take a while: a bar when asked (or, by
    default, when large and on a terminal); nothing for small work or when switched off."""
    import io as _io

    from PIL import Image

    from hf_unlearn.data import decode_images
    from hf_unlearn.scoring import null_scores

    buf = _io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, format="PNG")
    column = [{"bytes": buf.getvalue(), "path": None}] * 3
    grads, index = torch.randn(4, 12), torch.arange(4)

    assert decode_images(column, progress=True).shape == (3, 3, 32, 32)
    null_scores(grads, index, draws=2, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "decoding images" in err and "null scores" in err

    decode_images(column)  # default: small work, no bar
    null_scores(grads, index, draws=2, seed=0)
    decode_images(column, progress=False)
    assert capsys.readouterr().err == ""
