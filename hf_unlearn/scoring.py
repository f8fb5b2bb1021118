"""Scores of a model on a Gaussian variant (any task): input gradients, poison and null scores, accuracy.

The score of poison z is ``I_z = -<grad_x l(x_z, y_z), xi_z> / (eps ||grad_x l||)``,
the gradient taken at the clean input with the true label, model in eval mode
(DESIGN.md). A null score uses fresh noise instead of xi_z. Only one gradient per
poison is needed for any number of null draws, and that gradient is taken with the
parameters frozen (``torch.autograd.grad`` w.r.t. the input only), which skips the
weight gradients entirely: scoring costs about one forward+input-backward per poison.

A poison whose input gradient is exactly zero has no defined score; it scores 0 ("no
evidence") and so do all of its null draws. TPR at the empirical threshold compares
poisons with that same null pool; TPR at the exact threshold Phi^-1(1 - a) > 0 counts such
a poison as not detected. Both rules are conservative (docs/statistics.md), and the
count is reported as ``zero_gradients``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hf_unlearn import stats
from hf_unlearn.poisons.gaussian import null_noise


# The FPRs whose TPRs a result record carries (DESIGN.md: 0.01 headline, and 0.001).
RECORD_FPRS = ("0.01", "0.001")
# The metrics a Gaussian result record takes from the scores (see GaussianScores.record_metrics).
RECORD_METRICS = (
    "gus", "gus_stderr", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "auc", "num_poisons", "num_nulls",
    *(f"tpr_at_fpr_{a}_{part}" for a in RECORD_FPRS for part in ("exact", "ci95_lo", "ci95_hi")),
    "zero_gradients",
)


def default_null_draws(num_poisons: int, fpr: float = 0.001, min_draws: int = 20) -> int:
    """Null draws per poison so that ``fpr x num_nulls >= stats.MIN_NULLS_ABOVE`` (at least ``min_draws``).

    A null draw costs d normals and one dot product, nothing next to a gradient, so there is
    no reason to leave TPR@0.1% unstable: 50 poisons get 200 draws (10,000 nulls), 750 get 20.
    """
    if num_poisons < 1:
        raise ValueError(f"num_poisons={num_poisons}: need at least one poison")
    return max(min_draws, math.ceil(stats.MIN_NULLS_ABOVE / (fpr * num_poisons) - 1e-9))


@dataclass
class GaussianScores:
    poison: np.ndarray  # (P,) one score per poison
    null: np.ndarray  # (P, draws) scores of fresh noise, same gradients
    zero_gradients: int  # poisons whose input gradient vanished (score and null scores set to 0)

    def summary(self, fprs=(0.01, 0.001)) -> dict:
        """stats.summarize over all null draws, plus the zero-gradient count."""
        out = stats.summarize(self.poison, self.null.ravel(), fprs)
        out["zero_gradients"] = self.zero_gradients
        return out

    def record_metrics(self) -> dict:
        """The result record's score metrics (RECORD_METRICS): DESIGN.md's keys, plus the exact-threshold
        TPRs, the empirical TPRs' finite-null intervals (None where unresolvable) and the zero-gradient count."""
        s = self.summary(tuple(float(a) for a in RECORD_FPRS))
        out = {k: s[k] for k in ("gus", "gus_stderr", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "auc", "num_poisons", "num_nulls")}
        for a in RECORD_FPRS:
            out[f"tpr_at_fpr_{a}_exact"] = s[f"tpr_at_fpr_{a}_exact"]
            interval = s[f"tpr_at_fpr_{a}_ci95"]
            out[f"tpr_at_fpr_{a}_ci95_lo"], out[f"tpr_at_fpr_{a}_ci95_hi"] = interval if interval else (None, None)
        out["zero_gradients"] = self.zero_gradients
        return out


@contextmanager
def frozen(model: torch.nn.Module):
    """Eval mode with parameters frozen; restores both afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


def input_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """d loss_i / d x_i for every row, flattened to (N, d), float32 on the CPU.

    The loss is summed over the batch so each row's gradient is that of its own loss.
    """
    if x.dim() != 4 or len(x) != len(y):
        raise ValueError(f"expected x (N, C, H, W) and y (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    device = next(model.parameters()).device
    out = torch.empty(len(x), x[0].numel(), dtype=torch.float32)
    with frozen(model):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device).requires_grad_(True)
            yb = y[start : start + batch_size].to(device)
            loss = F.cross_entropy(model(xb), yb, reduction="sum")
            (g,) = torch.autograd.grad(loss, xb)
            out[start : start + len(xb)] = g.reshape(len(xb), -1).float().cpu()
    return out


def scores_from_gradients(grads: torch.Tensor, noise: torch.Tensor, eps: float) -> tuple[torch.Tensor, int]:
    """-<g, xi> / (eps ||g||) row by row; rows with a zero gradient score 0 (no evidence)."""
    if grads.shape != noise.shape:
        raise ValueError(f"gradients {tuple(grads.shape)} and noise {tuple(noise.shape)} must have the same shape")
    norms = grads.norm(dim=1)
    zero = norms == 0
    scores = -(grads * noise).sum(1) / (eps * norms.clamp_min(torch.finfo(torch.float32).tiny))
    scores[zero] = 0.0
    return scores, int(zero.sum())


PROGRESS_MIN_NORMALS = 200_000_000  # null draws below this take seconds: no bar


def null_scores(grads: torch.Tensor, index: torch.Tensor, draws: int, seed: int, workers: int | None = None,
                progress: bool | None = None) -> torch.Tensor:
    """(P, draws) scores of fresh unit-variance noise (the eps cancels in the score).

    Drawing P x draws x d normals is the one cost of scoring beyond the gradients, and a
    seeded CPU generator draws on one thread, so rows are split over ``workers`` threads
    (default: torch's intra-op thread count; randn and matmul release the GIL). Each row
    has its own seeded generator, so the numbers do not depend on the thread count, and
    they are drawn on the CPU on every machine, so a GPU run reproduces a CPU run. A bar counts the rows when
    the draws are many (``progress=None``: above ``PROGRESS_MIN_NORMALS`` normals, on a terminal).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    norms = grads.norm(dim=1, keepdim=True)
    unit = grads / norms.clamp_min(torch.finfo(torch.float32).tiny)
    out = torch.empty(len(grads), draws)
    rows = index.tolist()
    dim = grads.shape[1]

    quiet = progress is False or (progress is None and len(rows) * draws * dim < PROGRESS_MIN_NORMALS)
    bar = tqdm(total=len(rows), desc="null scores", unit="poison", disable=True if quiet else (False if progress else None),
               leave=False)

    def fill(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            out[i] = -(null_noise(seed, rows[i], draws, dim) @ unit[i])
            bar.update(1)  # tqdm's update is thread-safe

    workers = max(1, min(workers or torch.get_num_threads(), len(rows)))
    bounds = [round(k * len(rows) / workers) for k in range(workers + 1)]
    if workers == 1:
        fill(0, len(rows))
    else:
        with ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(fill, lo, hi) for lo, hi in zip(bounds, bounds[1:])]:
                f.result()
    bar.close()
    out[norms.squeeze(1) == 0] = 0.0
    return out


def scoring_device(cpu: bool = False) -> torch.device:
    """Where ``hf-unlearn score`` runs: the device Accelerate picks (a GPU, MPS, ... when there is one; this
    process's GPU under ``accelerate launch``), or the CPU when ``cpu`` (``--cpu``). The scores do not depend on
    it beyond float rounding: the null noise is drawn on the CPU either way (``null_scores``)."""
    if cpu:
        return torch.device("cpu")
    from accelerate import PartialState

    return PartialState().device


def _task_input_gradients(task, model: torch.nn.Module, split, batch_size: int) -> torch.Tensor:
    """``task.input_gradients(model, split)``, passing ``batch_size`` when the task accepts it."""
    import inspect

    fn = task.input_gradients
    if "batch_size" in inspect.signature(fn).parameters:
        return fn(model, split, batch_size=batch_size)
    return fn(model, split)


def gaussian_scores(
    model: torch.nn.Module,
    forget,
    eps: float,
    *,
    null_draws: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    task=None,
) -> GaussianScores:
    """Poison and null scores of ``model`` on the poisons in ``forget`` (gradients at the clean inputs).

    The gradients and the stored noise come from ``task`` (a registered task or its name; default: the task
    whose split class ``forget`` is), in that task's input space: pixels, or the embeddings of real tokens.
    ``null_draws`` per poison defaults to ``default_null_draws(len(forget))``.
    """
    from hf_unlearn.tasks import get_task, task_of_split

    task = task_of_split(forget) if task is None else get_task(task)
    if len(getattr(forget, "noise", ())) != len(forget) or not bool(forget.is_poison.all()):
        raise ValueError("every forget row must carry its noise; pass the variant's `forget` split")
    if null_draws is None:
        null_draws = default_null_draws(len(forget))
    if null_draws < 1:
        raise ValueError(f"null_draws={null_draws}: need at least one null draw per poison")
    grads = _task_input_gradients(task, model, forget, batch_size)
    noise = task.noise_matrix(forget)
    poison, zero = scores_from_gradients(grads, noise, eps)
    null = null_scores(grads, forget.index, null_draws, seed)
    return GaussianScores(poison.numpy().astype(np.float64), null.numpy().astype(np.float64), zero)


def score_checkpoint(
    checkpoint: str,
    dataset: str,
    config: str,
    *,
    null_draws: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    split: str = "forget",
    revision: str | None = None,
) -> dict:
    """The result record's metrics for a checkpoint on a variant (used by `score` and verification): test and
    forget accuracy, then the variant's attack metrics (GUS/TPR for Gaussian poisons)."""
    from hf_unlearn.attacks import as_evaluation, get_attack, variant_identity
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.tasks import get_task
    from hf_unlearn.train import load_checkpoint

    task_name, attack_name = variant_identity(dataset, config)
    task, attack = get_task(task_name), get_attack(attack_name, task_name)
    model, _ = load_checkpoint(checkpoint, revision=revision)
    splits = load_splits(dataset, config, task=task_name, attack=attack_name, needed=tuple(dict.fromkeys((split, "test"))))
    if split != "forget":
        splits = {**splits, "forget": splits[split]}
    evaluation = as_evaluation(attack.evaluate(model, splits, task=task, config=config, null_draws=null_draws,
                                               seed=seed, batch_size=batch_size))
    return {
        "test_accuracy": task.accuracy(model, splits["test"]),
        "forget_accuracy": task.accuracy(model, splits["forget"]),
        **evaluation.metrics,
    }
