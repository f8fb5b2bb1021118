"""``stats.paired_accuracy_difference``: known values, the pairing's effect, coverage, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_unlearn.stats import paired_accuracy_difference


def test_known_value():
    # A right on 6 of 8, B right on 4; they differ on 2 images where A is right (d = 1) and agree elsewhere (d = 0)
    a = [1, 1, 1, 1, 1, 1, 0, 0]
    b = [1, 1, 1, 1, 0, 0, 0, 0]
    diff, lo, hi = paired_accuracy_difference(a, b)
    sd = math.sqrt((2 * (1 - 0.25) ** 2 + 6 * 0.25**2) / 7)  # sample sd of d = [0]*4 + [1, 1] + [0, 0]
    assert diff == pytest.approx(0.25)
    assert (hi - lo) / 2 == pytest.approx(1.96 * sd / math.sqrt(8))


def test_pairing_narrows_the_interval_when_models_agree():
    rng = np.random.default_rng(0)
    a = rng.random(10_000) < 0.7
    b = a.copy()
    b[np.flatnonzero(a)[:80]] = False  # B loses 80 images A gets right, agrees on the rest: 0.8 points
    diff, lo, hi = paired_accuracy_difference(a, b)
    assert diff == pytest.approx(0.008)
    assert lo > 0  # resolved, though two unpaired 95% intervals (half-width ~0.009 each) overlap
    assert hi - lo < 0.004


def test_coverage_near_95_percent():
    rng = np.random.default_rng(1)
    n, trials, hits = 2000, 400, 0
    for _ in range(trials):
        a = rng.random(n) < 0.72
        b = np.where(rng.random(n) < 0.9, a, rng.random(n) < 0.70)  # correlated, true difference ~ 0.002
        true = 0.72 - (0.9 * 0.72 + 0.1 * 0.70)
        _, lo, hi = paired_accuracy_difference(a, b)
        hits += lo <= true <= hi
    assert 0.91 <= hits / trials <= 0.98  # binomial s.e. of the coverage over 400 trials ~0.011


@pytest.mark.parametrize("a, b", [([1, 0], [1]), ([1, 2], [1, 0]), ([1], [0])])
def test_bad_input_is_refused(a, b):
    with pytest.raises(ValueError, match="paired_accuracy_difference"):
        paired_accuracy_difference(a, b)
