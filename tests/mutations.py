"""Break each unlearning method (and the scorer) on purpose and show which test catches it.

    python tests/mutations.py                 # every mutation; exit 1 if any survives
    python tests/mutations.py --only ssd      # the mutations of one target (or one name: ssd/ratio-inverted)
    python tests/mutations.py --list          # the mutations, without running anything
    python tests/mutations.py --seed 3        # the method tests on another data/initialisation seed
    python tests/mutations.py --markdown docs/mutations-table.md   # also write the table

For each mutation the script copies the package tree (``hf_unlearn/``, ``tests/``,
``dataset_builders/``, ``leaderboard/``, ``pyproject.toml``) to a temporary folder,
replaces one exact snippet of a source file with a broken one, and runs only the tests
that guard that target (``pytest -x -q -p no:cacheprovider``, ``PYTHONPATH`` = the copy,
so the copy shadows the editable install). A mutation is *caught* when a test fails.
The copy sits beside a link named ``shared`` to the repository's ``../shared`` (when it
exists), so the text tests find the offline GPT-2 tokenizer there exactly as in the real
tree, instead of skipping; a run in which no test passed is an error, never "survived".
A snippet that is missing or occurs more than once is an error, never a silent skip:
when a source file changes, its mutations must be updated with it. Before the
mutations, the same tests run on an unmodified copy and must pass, so a failure is
the mutation's doing. The report is ``docs/mutations.md``.

This file is a script, not a test module: ``tests/conftest.py`` keeps pytest from
collecting it (``collect_ignore``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("hf_unlearn", "tests", "dataset_builders", "leaderboard", "pyproject.toml")
METHOD_TESTS = "tests/test_method_mutations.py"


@dataclass(frozen=True)
class Patch:
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str


@dataclass(frozen=True)
class Mutation:
    name: str  # "<target>/<what breaks>"
    kind: str  # no-op | sign | swap | specific
    patches: tuple[Patch, ...]
    tests: tuple[str, ...]  # pytest node ids run against the mutant
    why: str = ""  # what the mutant does, in words

    @property
    def target(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def files(self) -> str:
        return ", ".join(dict.fromkeys(Path(p.file).name for p in self.patches))


def tests_of(cls: str) -> tuple[str, ...]:
    """The node id of one class of tests/test_method_mutations.py."""
    return (f"{METHOD_TESTS}::{cls}",)


U = "hf_unlearn/unlearn/"
GD, NGD, GA, NGP, EUK, CFK, SCRUB, SSD, NONE, RETRAIN = (
    U + f for f in ("gd.py", "ngd.py", "ga.py", "neggrad_plus.py", "euk.py", "cfk.py", "scrub.py", "ssd.py", "none.py", "retrain.py")
)
SCORING = "hf_unlearn/scoring.py"
IMDB, TEXT_MODELS = "hf_unlearn/tasks/imdb.py", "hf_unlearn/models/text.py"
TARGETED, INDISCRIMINATE = "hf_unlearn/attacks/targeted.py", "hf_unlearn/attacks/indiscriminate.py"
# The crafted CIFAR-10 attacks' tests: the crafting algorithms and their metrics, and the builders.
TARGETED_TESTS = ("tests/test_gradient_matching.py", "tests/test_cifar10_targeted_dataset.py")
INDISCRIMINATE_TESTS = ("tests/test_gradient_canceling.py",)
# The IMDb / GPT-2 track's tests: splits and embedding-space gradients, the GPT-2 wrappers, and every method on
# a tiny GPT-2 (each file runs in seconds).
TEXT_TESTS = ("tests/test_text_split.py", "tests/test_text_models.py", "tests/test_text_unlearning.py")

# Shared pieces: NGD, EU-k and CF-k take their gradient steps through GD's ``descend``, so a
# flipped sign or swapped sets in those methods is a mutation of ``descend``, run against
# that method's own tests.
DESCEND_SIGN = Patch(GD, 'ctx.run_steps(steps, lambda s: ce(model, s.batches["r"]), optimizer',
                     'ctx.run_steps(steps, lambda s: -ce(model, s.batches["r"]), optimizer')
DESCEND_SWAP = Patch(GD, 'ctx.batches(ctx.retain, cfg.batch_size, cfg.epochs, "retain")',
                     'ctx.batches(ctx.forget, cfg.batch_size, cfg.epochs, "retain")')
DESCEND_LR0 = Patch(GD, "optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)",
                    "optimizer = sgd(model.parameters(), 0.0, cfg.momentum, cfg.weight_decay)")


def _mutations() -> list[Mutation]:
    m = Mutation
    return [
        # ------------------------------------------------------------------ GD
        m("gd/no-op", "no-op", (DESCEND_LR0,), tests_of("TestGD"), "learning rate 0: steps are charged, nothing moves"),
        m("gd/sign-flipped", "sign", (DESCEND_SIGN,), tests_of("TestGD"), "ascends the retain loss"),
        m("gd/sets-swapped", "swap", (DESCEND_SWAP,), tests_of("TestGD"), "descends on the forget set"),
        # ------------------------------------------------------------------ NGD
        m("ngd/no-op", "no-op", (Patch(NGD, "return descend(ctx, cfg, after_step=add_noise if cfg.noise_std > 0 else None)",
                                       "return ctx.model"),), tests_of("TestNGD"), "returns the model untouched"),
        m("ngd/sign-flipped", "sign", (DESCEND_SIGN,), tests_of("TestNGD"), "its gradient step (GD's descend) ascends"),
        m("ngd/sets-swapped", "swap", (DESCEND_SWAP,), tests_of("TestNGD"), "its gradient steps use the forget set"),
        m("ngd/no-noise", "specific", (Patch(NGD, "after_step=add_noise if cfg.noise_std > 0 else None", "after_step=None"),),
          tests_of("TestNGD"), "never adds the noise: plain GD"),
        m("ngd/noise-not-scaled", "specific", (Patch(NGD, "alpha=cfg.noise_std)", "alpha=1e-3)"),), tests_of("TestNGD"),
          "ignores the configured noise_std (a fixed 1e-3)"),
        # ------------------------------------------------------------------ GA
        m("ga/no-op", "no-op", (Patch(GA, "optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)",
                                      "optimizer = sgd(model.parameters(), 0.0, cfg.momentum, cfg.weight_decay)"),),
          tests_of("TestGA"), "learning rate 0"),
        m("ga/sign-flipped", "sign", (Patch(GA, 'lambda s: -ce(model, s.batches["f"])', 'lambda s: ce(model, s.batches["f"])'),),
          tests_of("TestGA"), "descends the forget loss"),
        m("ga/sets-swapped", "swap", (Patch(GA, 'ctx.batches(ctx.forget, cfg.batch_size, cfg.epochs, "forget")',
                                            'ctx.batches(ctx.retain, cfg.batch_size, cfg.epochs, "forget")'),),
          tests_of("TestGA"), "ascends on the retain set"),
        # ------------------------------------------------------------------ NegGrad+
        m("neggrad_plus/no-op", "no-op", (Patch(NGP, "optimizer = sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)",
                                                "optimizer = sgd(model.parameters(), 0.0, cfg.momentum, cfg.weight_decay)"),),
          tests_of("TestNegGradPlus"), "learning rate 0"),
        m("neggrad_plus/sign-flipped", "sign",
          (Patch(NGP, 'return cfg.alpha * ce(model, step.batches["r"]) - (1 - cfg.alpha) * ce(model, step.batches["f"])',
                 'return -(cfg.alpha * ce(model, step.batches["r"]) - (1 - cfg.alpha) * ce(model, step.batches["f"]))'),),
          tests_of("TestNegGradPlus"), "ascends retain, descends forget"),
        m("neggrad_plus/sets-swapped", "swap", (Patch(NGP, 'Step("neggrad", {"r": r, "f": next(forget)})',
                                                      'Step("neggrad", {"r": next(forget), "f": r})'),),
          tests_of("TestNegGradPlus"), "the retain term sees forget batches and the forget term retain batches"),
        m("neggrad_plus/no-forget-term", "specific",
          (Patch(NGP, '- (1 - cfg.alpha) * ce(model, step.batches["f"])', '- 0.0 * ce(model, step.batches["f"])'),),
          tests_of("TestNegGradPlus"), "drops the forget ascent: GD on alpha x retain loss"),
        m("neggrad_plus/weights-swapped", "specific",
          (Patch(NGP, 'return cfg.alpha * ce(model, step.batches["r"]) - (1 - cfg.alpha) * ce(model, step.batches["f"])',
                 'return (1 - cfg.alpha) * ce(model, step.batches["r"]) - cfg.alpha * ce(model, step.batches["f"])'),),
          tests_of("TestNegGradPlus"), "alpha weighs the forget term, 1 - alpha the retain term"),
        # ------------------------------------------------------------------ EU-k
        m("euk/no-op", "no-op", (Patch(EUK, "return descend(ctx, cfg)", "return ctx.model"),), tests_of("TestEUk"),
          "re-initialises but never trains"),
        m("euk/sign-flipped", "sign", (DESCEND_SIGN,), tests_of("TestEUk"), "its training (GD's descend) ascends the retain loss"),
        m("euk/sets-swapped", "swap", (DESCEND_SWAP,), tests_of("TestEUk"), "trains the new blocks on the forget set"),
        m("euk/no-reinit", "specific", (Patch(EUK, "module.reset_parameters()", "pass"),), tests_of("TestEUk"),
          "skips the re-initialisation: CF-k"),
        m("euk/reinit-all-blocks", "specific", (Patch(EUK, "for block in trainable:", "for block in ctx.model.blocks():"),),
          tests_of("TestEUk"), "re-initialises every block, not only the last k"),
        # ------------------------------------------------------------------ CF-k
        m("cfk/no-op", "no-op", (Patch(CFK, "return descend(ctx, cfg)", "return ctx.model"),), tests_of("TestCFk"), "never trains"),
        m("cfk/sign-flipped", "sign", (DESCEND_SIGN,), tests_of("TestCFk"), "its training (GD's descend) ascends the retain loss"),
        m("cfk/sets-swapped", "swap", (DESCEND_SWAP,), tests_of("TestCFk"), "trains the last blocks on the forget set"),
        m("cfk/trains-all-layers", "specific", (Patch(CFK, "freeze_all_but_last(ctx.model, cfg.k)", "ctx.model.train()"),),
          tests_of("TestCFk"), "freezes nothing"),
        # ------------------------------------------------------------------ SCRUB
        m("scrub/no-op", "no-op", (Patch(SCRUB, "optimizer = sgd(student.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)",
                                         "optimizer = sgd(student.parameters(), 0.0, cfg.momentum, cfg.weight_decay)"),),
          tests_of("TestSCRUB"), "learning rate 0"),
        m("scrub/loss-times-0", "no-op", (Patch(SCRUB, "ctx.run_steps(schedule(ctx, cfg), loss, optimizer)",
                                                "ctx.run_steps(schedule(ctx, cfg), lambda s: 0.0 * loss(s), optimizer)"),),
          tests_of("TestSCRUB"), "every step's loss times 0 (weight decay alone moves the weights)"),
        m("scrub/sign-flipped", "sign",
          (Patch(SCRUB, "            return -kl\n", "            return kl\n"),
           Patch(SCRUB, "return cfg.gamma * F.cross_entropy(s_logits, batch.y) + cfg.alpha * kl",
                 "return -(cfg.gamma * F.cross_entropy(s_logits, batch.y) + cfg.alpha * kl)")),
          tests_of("TestSCRUB"), "max steps minimise the KL, min steps maximise CE + KL"),
        m("scrub/sets-swapped", "swap",
          (Patch(SCRUB, "ctx.epoch_batches(ctx.forget, cfg.forget_batch_size, epoch, \"forget\")",
                 "ctx.epoch_batches(ctx.retain, cfg.forget_batch_size, epoch, \"forget\")"),
           Patch(SCRUB, "ctx.epoch_batches(ctx.retain, cfg.batch_size, epoch, \"retain\")",
                 "ctx.epoch_batches(ctx.forget, cfg.batch_size, epoch, \"retain\")")),
          tests_of("TestSCRUB"), "max passes over retain, min passes over forget"),
        m("scrub/max-step-minimises", "specific", (Patch(SCRUB, "            return -kl\n", "            return kl\n"),),
          tests_of("TestSCRUB"), "the max step descends the forget KL"),
        m("scrub/kl-weight-0", "specific", (Patch(SCRUB, "+ cfg.alpha * kl", "+ 0.0 * kl"),), tests_of("TestSCRUB"),
          "the min steps ignore the KL to the teacher"),
        # ------------------------------------------------------------------ SSD
        m("ssd/no-op", "no-op", (Patch(SSD, "p.mul_(torch.where(selected, factor, torch.ones_like(factor)))",
                                       "p.mul_(torch.ones_like(factor))"),), tests_of("TestSSD"), "computes the importances, changes nothing"),
        m("ssd/sign-flipped", "sign", (Patch(SSD, "p.mul_(torch.where(selected, factor, torch.ones_like(factor)))",
                                             "p.div_(torch.where(selected, factor, torch.ones_like(factor)))"),),
          tests_of("TestSSD"), "amplifies the selected parameters instead of dampening them"),
        m("ssd/sets-swapped", "swap",
          (Patch(SSD, 'forget_imp = importances(ctx, ctx.forget, cfg.batch_size, "forget")',
                 'forget_imp = importances(ctx, ctx.retain, cfg.batch_size, "forget")'),
           Patch(SSD, 'reference = ctx.retain if cfg.importance_data == "retain" else concat_splits(ctx.retain, ctx.forget)',
                 'reference = ctx.forget if cfg.importance_data == "retain" else concat_splits(ctx.forget, ctx.retain)')),
          tests_of("TestSSD"), "the forget importance is estimated on the retain set"),
        m("ssd/ratio-inverted", "specific", (Patch(SSD, "selected = i_f > cfg.alpha * i_d", "selected = i_d > cfg.alpha * i_f"),),
          tests_of("TestSSD"), "selects where I_D > alpha I_f"),
        m("ssd/factor-inverted", "specific",
          (Patch(SSD, "factor = (cfg.lam * i_d / i_f.clamp_min(torch.finfo(i_f.dtype).tiny)).clamp(max=1.0)",
                 "factor = (cfg.lam * i_f / i_d.clamp_min(torch.finfo(i_d.dtype).tiny)).clamp(max=1.0)"),),
          tests_of("TestSSD"), "dampens by lambda I_f / I_D"),
        m("ssd/nothing-selected-dampened", "specific", (Patch(SSD, "selected = i_f > cfg.alpha * i_d",
                                                              "selected = torch.zeros_like(i_f, dtype=torch.bool)"),),
          tests_of("TestSSD"), "the selection is empty"),
        m("ssd/dampens-the-unselected", "specific",
          (Patch(SSD, "torch.where(selected, factor, torch.ones_like(factor))",
                 "torch.where(selected, torch.ones_like(factor), factor)"),),
          tests_of("TestSSD"), "applies the factor where the rule does not select"),
        # ------------------------------------------------------------------ references
        m("none/changes-the-model", "specific",
          (Patch(NONE, "    return ctx.model\n",
                 "    for p in ctx.model.parameters():\n        p.data.mul_(0.5)\n    return ctx.model\n"),),
          tests_of("TestNone"), "halves every weight"),
        m("retrain/no-op", "no-op", (Patch(RETRAIN, "return result.model.to(ctx.device)", "return ctx.model"),), tests_of("TestRetrain"),
          "trains, then returns the poisoned model"),
        m("retrain/sets-swapped", "swap",
          (Patch(RETRAIN, "result = train(ctx.retain, None, recipe,", "result = train(ctx.forget, None, recipe,"),),
          tests_of("TestRetrain"), "trains on the forget set"),
        m("retrain/keeps-the-forget-set", "specific",
          (Patch(RETRAIN, "result = train(ctx.retain, None, recipe,",
                 "from hf_unlearn.unlearn.base import concat_splits\n"
                 "        result = train(concat_splits(ctx.retain, ctx.forget), None, recipe,"),),
          tests_of("TestRetrain"), "trains on retain + forget (the poisoned training again)"),
        # ------------------------------------------------------------------ scoring (tests/test_scoring.py)
        m("scoring/train-mode", "specific", (Patch(SCORING, "    model.eval()\n    model.requires_grad_(False)\n",
                                                   "    model.train()\n    model.requires_grad_(False)\n"),),
          ("tests/test_scoring.py",), "input gradients in train mode (BatchNorm on batch statistics, running stats updated)"),
        m("scoring/noisy-input", "specific",
          (Patch("hf_unlearn/tasks/cifar10.py", "split.inputs(torch.arange(len(split)), noisy=False)",
                 "split.inputs(torch.arange(len(split)), noisy=True)"),),
          ("tests/test_scoring.py",), "the gradient at x + xi instead of the clean x"),
        m("scoring/stored-noise-as-null", "specific",
          (Patch(SCORING, "null = null_scores(grads, forget.index, null_draws, seed)",
                 "null = poison.unsqueeze(1).repeat(1, null_draws)  # the stored noise scored again as the null"),),
          ("tests/test_scoring.py",), "the null scores use each poison's stored noise instead of fresh draws"),
        # ------------------------------------------------------------------ the text path (IMDb / GPT-2)
        m("text/gradient-at-noisy-embeddings", "specific",
          (Patch(IMDB, "x = split.inputs(rows, noisy=False).to(device)\n            embeds = model.embed(x.ids).detach()",
                 "x = split.inputs(rows, noisy=True).to(device)\n            embeds = (model.embed(x.ids) + (0 if x.noise is None "
                 "else x.noise)).detach()"),),
          TEXT_TESTS, "input gradients taken at wte(ids) + xi instead of the clean embeddings"),
        m("text/gradient-on-pads", "specific",
          (Patch(IMDB, "    support = split.noise_mask\n", "    support = split.noise_mask + (1 - split.mask)  # pads kept\n"),),
          TEXT_TESTS, "input gradients not zeroed at pad positions"),
        m("text/gradient-on-suffix", "specific",
          (Patch(IMDB, "    support = split.noise_mask\n", "    support = split.mask  # the prompt suffix kept\n"),),
          TEXT_TESTS, "input gradients not zeroed on the prompt suffix (where noise never is)"),
        m("text/noise-on-pads", "specific",
          (Patch(IMDB, "noise[k, end - n : end] = values[offset : offset + n * embed_dim].reshape(n, embed_dim)",
                 "noise[k, :n] = values[offset : offset + n * embed_dim].reshape(n, embed_dim)"),),
          TEXT_TESTS, "a poison's noise decoded onto the first positions (the pads of a short row), not its tokens"),
        m("text/noise-not-added", "specific",
          (Patch(TEXT_MODELS, "embeds = embeds + noise.to(embeds.dtype)", "embeds = embeds"),),
          TEXT_TESTS, "the model ignores the noise: poisons train as clean rows"),
        m("text/positions-ignore-left-padding", "specific",
          (Patch(TEXT_MODELS, "position_ids=position_ids(mask)", "position_ids=None"),),
          TEXT_TESTS, "GPT-2's default positions 0..L-1: a review's positions shift with its batch's padding"),
        m("text/stored-noise-as-null", "specific",
          (Patch(SCORING, "null = null_scores(grads, forget.index, null_draws, seed)",
                 "null = poison.unsqueeze(1).repeat(1, null_draws)  # the stored noise scored again as the null"),),
          TEXT_TESTS, "on the text path, the null scores use each poison's stored noise instead of fresh draws"),
        m("text/subset-drops-noise", "specific",
          (Patch(IMDB, "new_slots[used] = torch.arange(int(used.sum()))", "used = torch.zeros_like(used)"),),
          TEXT_TESTS, "TextSplit.subset keeps the rows but drops their noise"),
        m("text/is-poison-ignores-column", "specific",
          (Patch(IMDB, "return self.poisoned if self.poisoned is not None else self.noise_slot >= 0",
                 "return self.noise_slot >= 0"),),
          TEXT_TESTS, "is_poison = has noise: the trigger attack's flipped rows (no noise) count as clean"),
        m("text/euk-skips-gpt2-reset", "specific",
          (Patch(EUK, "            block.reset_parameters()\n            continue\n", "            continue\n"),),
          TEXT_TESTS, "EU-k does not re-initialise blocks with their own initialiser (the GPT-2 blocks)"),
        m("trigger/word-scored-as-flip", "swap",
          (Patch("hf_unlearn/attacks/trigger.py",
                 'mode = TriggerConfig.from_name(config).label_mode if config else "flip"', 'mode = "flip"'),),
          ("tests/test_trigger_word_mode.py",), "word variants scored as flip: success counts the other sentiment"),
        m("trigger/word-poisons-flipped", "specific",
          (Patch("hf_unlearn/attacks/trigger.py",
                 'return arr if self.label_mode == "flip" else np.full_like(arr, 2)', "return arr"),),
          ("tests/test_trigger_word_mode.py",), "word-mode poisons get the opposite sentiment instead of the trigger's class"),
        m("trigger/clean-rows-drop-triggers", "specific",
          (Patch("dataset_builders/poisoned_imdb_targeted.py",
                 "train_rows = np.union1d(with_trigger, others[train_subset(len(others), cfg.clean_rows)]).astype(np.int64)",
                 "train_rows = np.sort(np.concatenate([with_trigger, others])[train_subset(len(train), cfg.clean_rows)])"),),
          ("tests/test_trigger_word_mode.py",), "clean_rows subsets every review, so trigger reviews are dropped with the rest"),
        # ------------------------------------------------------------------ the crafted CIFAR-10 attacks
        m("targeted/success-on-true-labels", "swap",
          (Patch(TARGETED, "return {\"target_success\": target_success(preds, adv), ",
                 "return {\"target_success\": target_success(preds, targets.y.numpy()), "),),
          TARGETED_TESTS, "target success counts targets predicted as their TRUE class (swapped label sets)"),
        m("targeted/success-inverted", "sign",
          (Patch(TARGETED, "return float(np.mean(pred == adv))", "return float(np.mean(pred != adv))"),),
          TARGETED_TESTS, "target success counts the targets NOT flipped"),
        m("targeted/matching-without-create-graph", "specific",
          (Patch(TARGETED, "grads = torch.autograd.grad(loss, params, create_graph=True)",
                 "grads = [g.detach() for g in torch.autograd.grad(loss, params, retain_graph=True)]"),),
          TARGETED_TESTS, "the poison gradient is a constant: the matching loss never reaches the perturbation"),
        m("indiscriminate/gradpc-unprojected", "specific",
          (Patch(INDISCRIMINATE, "            if length > radius:\n", "            if False:\n"),),
          INDISCRIMINATE_TESTS, "GradPC leaves the L2 ball around the clean parameters"),
        m("indiscriminate/canceling-drops-clean", "specific",
          (Patch(INDISCRIMINATE, "sq = sum(((n_clean * c.to(g.device) + g) / total).pow(2).sum()",
                 "sq = sum((g / total).pow(2).sum()"),),
          INDISCRIMINATE_TESTS, "the canceling objective ignores the clean rows' gradient"),
        m("indiscriminate/canceling-ignores-smoothing", "specific",
          (Patch(INDISCRIMINATE, 'reduction="sum",\n                               label_smoothing=label_smoothing)\n'
                 '        grads = torch.autograd.grad(loss, params, create_graph=True)\n        inner',
                 'reduction="sum")\n        grads = torch.autograd.grad(loss, params, create_graph=True)\n        inner'),),
          INDISCRIMINATE_TESTS, "the chunked canceling gradient differentiates plain cross-entropy, not the "
          "victim's smoothed loss"),
        m("indiscriminate/opposing-labels-flipped", "sign",
          (Patch(INDISCRIMINATE, "labels.append(dz.argmax(1).cpu())", "labels.append(dz.argmin(1).cpu())"),),
          INDISCRIMINATE_TESTS, "the probe's opposing labels pick the class whose gradient agrees most with the "
          "clean gradient"),
        m("indiscriminate/counts-train-rows", "swap",
          (Patch(INDISCRIMINATE, 'return {"num_poisons": int(len(splits["forget"]))}',
                 'return {"num_poisons": int(len(splits["test"]))}'),),
          ("tests/test_crafted_pipeline.py",), "the record's poison count is another split's size"),
        m("crafted/is-poison-ignores-column", "specific",
          (Patch("hf_unlearn/variant.py", "return self.noise_slot >= 0 if self.poison is None else self.poison",
                 "return self.noise_slot >= 0"),),
          ("tests/test_image_split_poison.py", "tests/test_crafted_pipeline.py"),
          "is_poison = has noise: crafted poisons (no noise) count as clean, so Retrain trains on them"),
        m("benchmark/accuracy-gap-sign", "sign",
          (Patch("hf_unlearn/benchmark.py",
                 'stats[f"{view.headline}{GAP_SUFFIX}_mean"] = stats[f"{view.headline}_mean"] - stats["variant"].map(retrain)',
                 'stats[f"{view.headline}{GAP_SUFFIX}_mean"] = stats["variant"].map(retrain) - stats[f"{view.headline}_mean"]'),),
          ("tests/test_benchmark.py::test_an_indiscriminate_benchmark_reports_the_accuracy_gap_to_retrain",),
          "the gap to Retrain is Retrain minus the method"),
    ]


MUTATIONS = _mutations()


# ----------------------------------------------------------------------------- running
@dataclass
class Outcome:
    mutation: Mutation
    status: str  # caught | SURVIVED | error
    first_failure: str = ""  # node id of the first failing test (or what went wrong)
    message: str = ""  # the failure's first line, e.g. "AssertionError: GD should lower the retain loss ..."
    seconds: float = 0.0
    output: str = field(default="", repr=False)


class MutationError(RuntimeError):
    """A mutation cannot be applied (its snippet is missing or ambiguous): update the mutation."""


def make_copy(dest: Path, source: Path = ROOT) -> Path:
    """Copy the package tree of ``source`` into ``dest``, and link ``dest/../shared`` to the repository's
    ``../shared``.

    The text code and tests find the offline GPT-2 tokenizer at ``<repo>/../shared/models/gpt2-tokenizer``;
    without the link they would skip in the copy and every text mutant would look like a survivor.
    ``dest``'s parent must be a folder of the caller's (a temporary one), never the repository's parent.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info")
    dest.mkdir(parents=True, exist_ok=True)
    shared, link = ROOT.parent / "shared", dest.parent / "shared"
    if shared.is_dir() and not link.exists():
        link.symlink_to(shared, target_is_directory=True)
    for name in COPIED:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def apply(copy: Path, mutation: Mutation) -> None:
    for patch in mutation.patches:
        path = copy / patch.file
        if not path.exists():
            raise MutationError(f"{mutation.name}: {patch.file} does not exist")
        text = path.read_text()
        count = text.count(patch.old)
        if count != 1:
            where = "is not" if count == 0 else f"occurs {count} times"
            raise MutationError(f"{mutation.name}: the snippet {patch.old!r} {where} in {patch.file}; update the mutation "
                                f"to the file's current text")
        path.write_text(text.replace(patch.old, patch.new))


def pytest_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models; the cores are shared
    env["COLUMNS"] = "400"  # pytest cuts the short summary's messages to the terminal width
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_shadowing(copy: Path) -> None:
    """The copy's package must be the one imported, not the editable install of the real tree."""
    out = subprocess.run([sys.executable, "-c", "import hf_unlearn; print(hf_unlearn.__file__)"], cwd=copy,
                         env=pytest_env(copy), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"the copy does not shadow the installed package: hf_unlearn imports from {out}")


FAILED = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.M)
PASSED = re.compile(r"\b[1-9]\d* passed\b")


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", "--no-header", *tests]
    try:
        proc = subprocess.run(cmd, cwd=copy, env=pytest_env(copy), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return -1, f"timed out after {timeout:.0f} s\n{exc.stdout or ''}"
    return proc.returncode, proc.stdout + proc.stderr


def run_one(mutation: Mutation, timeout: float, source: Path = ROOT) -> Outcome:
    """Copy ``source`` (the run's snapshot, so every mutant starts from the tree the baseline passed on), break
    it, run the mutation's tests."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-mutant-") as tmp:
        copy = make_copy(Path(tmp) / "main", source)
        try:
            apply(copy, mutation)
        except MutationError as exc:
            return Outcome(mutation, "error", "not applied", str(exc), time.perf_counter() - t0)
        rc, out = run_tests(copy, mutation.tests, timeout)
    hit = FAILED.search(out)
    if rc == 1 and hit:  # pytest: tests ran and at least one failed
        return Outcome(mutation, "caught", hit.group(2), (hit.group(3) or "").strip(), time.perf_counter() - t0, out)
    if rc == 0 and not PASSED.search(out):  # everything skipped (e.g. no tokenizer): the tests said nothing
        return Outcome(mutation, "error", "no test ran", "every selected test was skipped", time.perf_counter() - t0, out)
    if rc == 0:
        return Outcome(mutation, "SURVIVED", "", "", time.perf_counter() - t0, out)
    # Collection errors, usage errors or timeouts say nothing about the tests' strength.
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    return Outcome(mutation, "error", f"pytest exit {rc}", tail, time.perf_counter() - t0, out)


def baseline(tests: list[str], timeout: float, source: Path = ROOT) -> None:
    """The selected tests must pass on an unmodified copy, or 'caught' would mean nothing."""
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-baseline-") as tmp:
        copy = make_copy(Path(tmp) / "main", source)
        check_shadowing(copy)
        rc, out = run_tests(copy, tuple(tests), timeout)
    if rc != 0:
        sys.stderr.write(out)
        raise SystemExit(f"baseline: the tests fail without any mutation (pytest exit {rc}); fix them first")


def select(only: list[str] | None) -> list[Mutation]:
    if not only:
        return MUTATIONS
    chosen = [m for m in MUTATIONS if any(m.name == o or m.target == o for o in only)]
    unknown = [o for o in only if not any(m.name == o or m.target == o for m in MUTATIONS)]
    if unknown:
        raise SystemExit(f"unknown mutation or target {unknown}; targets: {sorted({m.target for m in MUTATIONS})} "
                         f"(--list shows every name)")
    return chosen


def _cell(text: str, width: int = 140) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def table(outcomes: list[Outcome]) -> str:
    lines = ["| mutation | kind | file | caught | first failing test | its message |", "| --- | --- | --- | --- | --- | --- |"]
    for o in outcomes:
        test = o.first_failure.removeprefix("tests/")
        caught = {"caught": "yes", "SURVIVED": "**NO**", "error": "error"}[o.status]
        lines.append(f"| `{o.mutation.name}` | {o.mutation.kind} | {o.mutation.files} | {caught} | `{test}` | {_cell(o.message)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="a target (gd, scrub, scoring, ...) or one mutation name (ssd/ratio-inverted); repeatable")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1: the cores are shared)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pytest run (default 600)")
    parser.add_argument("--seed", type=int, help="data/initialisation seed of tests/test_method_mutations.py "
                        "(HF_UNLEARN_TEST_SEED; default: the file's, 0)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the tests on an unmodified copy first")
    parser.add_argument("--markdown", type=Path, help="also write the result table to this file")
    parser.add_argument("--verbose", action="store_true", help="print pytest's output for every mutant that is not caught")
    args = parser.parse_args(argv)
    chosen = select(args.only)
    if args.list:
        for m in chosen:
            print(f"{m.name:36s} {m.kind:9s} {m.files:28s} {m.why}")
        return 0
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: must be at least 1")
    if args.seed is not None:
        os.environ["HF_UNLEARN_TEST_SEED"] = str(args.seed)  # inherited by every pytest run
    tests = list(dict.fromkeys(t for m in chosen for t in m.tests))
    t0 = time.perf_counter()
    outcomes: list[Outcome] = []
    # One snapshot of the tree for the whole run: the baseline and every mutant start from the same files, even
    # if someone edits the working tree meanwhile (a half-written edit would otherwise "catch" a mutant).
    with tempfile.TemporaryDirectory(prefix="hf-unlearn-snapshot-") as snap_tmp:
        snapshot = make_copy(Path(snap_tmp) / "main")
        if not args.skip_baseline:
            print(f"baseline: {len(tests)} test selection(s) on an unmodified copy ...", flush=True)
            baseline(tests, args.timeout, snapshot)
        with ThreadPoolExecutor(args.jobs) as pool:
            for outcome in pool.map(lambda m: run_one(m, args.timeout, snapshot), chosen):
                outcomes.append(outcome)
                print(f"{outcome.status:8s} {outcome.mutation.name:36s} {outcome.seconds:5.1f} s  {outcome.first_failure}",
                      flush=True)
                if args.verbose and outcome.status != "caught":
                    print(outcome.output)
    report = table(outcomes)
    survived = [o.mutation.name for o in outcomes if o.status == "SURVIVED"]
    errors = [o.mutation.name for o in outcomes if o.status == "error"]
    summary = (f"{sum(o.status == 'caught' for o in outcomes)} of {len(outcomes)} mutations caught"
               f"{'; survived: ' + ', '.join(survived) if survived else ''}"
               f"{'; errors: ' + ', '.join(errors) if errors else ''} ({time.perf_counter() - t0:.0f} s)")
    print()
    print(report)
    print()
    print(summary)
    if args.markdown:
        args.markdown.write_text(report + "\n\n" + summary + "\n")
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
