"""scripts/attack_check.py's statistics: the exact sign test and the adversarial-class probability."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from attack_check import _class_probability, markdown, sign_test_p  # noqa: E402


def test_sign_test_is_the_binomial_upper_tail():
    assert sign_test_p(10, 10) == 1 / 1024
    assert sign_test_p(0, 10) == 1.0
    assert math.isclose(sign_test_p(8, 10), (45 + 10 + 1) / 1024)
    assert math.isclose(sign_test_p(5, 10), sum(math.comb(10, j) for j in range(5, 11)) / 1024)


class _Split:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def inputs(self, rows, noisy=False):
        assert noisy is False, "targets are scored on their clean inputs"
        return torch.eye(3)[rows]


def test_class_probability_is_the_softmax_of_the_asked_label_and_restores_mode():
    model = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]))
    model.train()
    got = _class_probability(model, _Split(3), np.array([0, 2, 1]))
    logits = torch.eye(3) @ model.weight.T.detach()
    want = torch.softmax(logits.double(), 1)[torch.arange(3), torch.tensor([0, 2, 1])].numpy()
    assert np.allclose(got, want) and model.training


def test_markdown_reports_the_graded_effect():
    rows = [{"config": f"c{i}", "target_index": i, "poison_label": 3, "victim_success": i == 0, "clean_success": False,
             "victim_adversarial_probability": 0.5, "clean_adversarial_probability": 0.01,
             "victim_test_accuracy": 0.7} for i in range(4)]
    text = markdown({"targeted": {"clean_model": "m", "targets": rows, "num_targets": 4, "success": 0.25,
                                  "success_ci95": (0.05, 0.7), "clean_success": 0.0, "clean_success_ci95": (0.0, 0.49),
                                  "clean_base_rate": 0.01, "moved_towards_adversarial": 4,
                                  "sign_test_p": sign_test_p(4, 4), "median_probability_ratio": 50.0}})
    assert "4/4 targets" in text and "p = 0.0625" in text and "0.01 -> 0.5" in text
