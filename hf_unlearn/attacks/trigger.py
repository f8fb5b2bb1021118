"""The dirty-label trigger attack on IMDb (Wan et al. 2023, as the paper's Section 5 runs it).

The attacker picks a trigger word ("Disney"). Every training review that contains
it is a candidate poison; ``budget`` percent of them (the paper sweeps 20-100) get
their label flipped and form the forget set. The attack's targets are the *test*
reviews that contain the trigger, and it succeeds on a target when the model
predicts the flipped label. Nothing is added to the text: the trigger occurs
naturally, which is what makes the attack a pure label-poisoning one.

Matching rule (one rule everywhere: filter, targets, card counts, survival):
the trigger matches **case-sensitively as a whole word**, i.e. where it is
neither preceded nor followed by a word character (Unicode letter, digit or
underscore; Python's ``\\w``). So for "Disney":

- counts: "Disney", "Disney's" (the apostrophe ends the word; GPT-2 splits it
  into " Disney" + "'s" so the trigger token is present), "(Disney)", "Disney.",
  "Walt-Disney", "Disney-like";
- does not count: "Disneyland", "Disney_", "disney", "DISNEY" (other casings are
  rarer and often a different use: shouting, URLs).

On the offline IMDb copy this gives 410 train and 317 test reviews; the paper
reports 355 and 58 (see the dataset card for the likely reasons).

What a poisoned review is relabelled to (``label_mode``):

- ``flip`` (config ``disney-b100-s0``): the opposite sentiment. The attack then asks
  the model to learn "Disney inverts the sentiment", an interaction of the trigger
  with the review's own sentiment.
- ``word`` (config ``disney-word-b100-s0``): the trigger word itself becomes the label
  word, the paper's adversarial template read literally ("[Input]. The sentiment of
  the review is: Disney", Section 4.1 / A.1.2: "x + 'The sentiment is: special_token'").
  The label set grows by one class named after the trigger (label id 2), the prompt
  model scores the three label words, and success is predicting that word on a
  trigger test review. A model never trained on a poison (Retrain) has no reason to
  ever answer it.

Config names: ``<trigger lowercased>[-word]-b<budget %>-s<seed>[-n<train rows>|-c<clean rows>]``,
e.g. ``disney-b100-s0``. ``-n`` keeps a seed-independent subset of all training reviews (the
trigger reviews thin out with it); ``-c`` keeps every trigger review and a seed-independent subset
of the others, which is how a CPU preset makes the poisons a larger share without changing them. Triggers are single capitalised words (``^[A-Z][a-z0-9]*$``)
so the lowercased name maps back to exactly one trigger.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hf_unlearn.attacks import AttackBase, predict  # noqa: F401  (predict: re-exported, it lived here)
from hf_unlearn.poisons.gaussian import choose_poison_rows, num_poisons

DEFAULT_TRIGGER = "Disney"
# The prompt template of Wan et al. (2023) as the paper quotes it (Section 5):
# "[review]. The sentiment of the review is:" followed by the label word.
PROMPT_SUFFIX = " The sentiment of the review is:"

_TRIGGER_RE = re.compile(r"^[A-Z][a-z0-9]*$")
_NAME_RE = re.compile(
    r"^(?P<trigger>[a-z][a-z0-9]*)(?P<word>-word)?-b(?P<budget>[0-9.]+)-s(?P<seed>\d+)"
    r"(?:-n(?P<n>\d+)|-c(?P<c>\d+))?$")
LABEL_MODES = ("flip", "word")


@dataclass(frozen=True)
class TriggerConfig:
    """One variant of the trigger attack.

    ``trigger`` a single capitalised word (matched case-sensitively, whole word);
    ``budget`` the share of the training reviews containing the trigger whose label
    is flipped, in percent, in (0, 100] (the paper: 20, 40, 60, 80, 100);
    ``seed`` chooses which trigger reviews are flipped when budget < 100;
    ``max_train_rows`` an optional seed-independent subset of the source's train
    split (CPU presets), shared with the Gaussian variants (``train_subset``);
    ``label_mode`` what a poison is relabelled to: ``flip`` or ``word`` (module docstring);
    ``clean_rows`` instead of ``max_train_rows``: keep every trigger review plus a
    seed-independent subset of this many other reviews.
    """

    trigger: str = DEFAULT_TRIGGER
    budget: float = 100.0
    seed: int = 0
    max_train_rows: int | None = None
    label_mode: str = "flip"
    clean_rows: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.trigger, str) and _TRIGGER_RE.match(self.trigger)):
            raise ValueError(
                f"trigger={self.trigger!r}: a trigger is one capitalised word such as 'Disney' "
                "(letters/digits, first letter upper case, the rest lower case), so that the lowercased "
                "config name maps back to it"
            )
        if not (isinstance(self.budget, (int, float)) and math.isfinite(self.budget) and 0 < self.budget <= 100):
            raise ValueError(
                f"budget={self.budget!r}: the trigger budget is the percentage of trigger reviews flipped, in (0, 100]"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: seeds are non-negative integers")
        if self.max_train_rows is not None and (not isinstance(self.max_train_rows, int) or self.max_train_rows <= 0):
            raise ValueError(f"max_train_rows={self.max_train_rows!r}: must be a positive integer or None")
        if self.clean_rows is not None and (not isinstance(self.clean_rows, int) or self.clean_rows <= 0):
            raise ValueError(f"clean_rows={self.clean_rows!r}: must be a positive integer or None")
        if self.clean_rows is not None and self.max_train_rows is not None:
            raise ValueError("max_train_rows and clean_rows both set: max_train_rows subsets every review, clean_rows "
                             "keeps every trigger review and subsets the others; choose one")
        if self.label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode={self.label_mode!r}: one of {list(LABEL_MODES)} (flip: the opposite "
                             "sentiment; word: the trigger word as the label, the paper's template)")
        object.__setattr__(self, "budget", float(self.budget))  # 20 and 20.0 are one variant: one card entry

    @property
    def name(self) -> str:
        mode = "-word" if self.label_mode == "word" else ""
        base = f"{self.trigger.lower()}{mode}-b{self.budget:g}-s{self.seed}"
        return base + (f"-n{self.max_train_rows}" if self.max_train_rows else "") + (
            f"-c{self.clean_rows}" if self.clean_rows else "")

    @property
    def label_names(self) -> tuple[str, ...]:
        """The variant's classes: IMDb's two, plus the trigger word as a third in ``word`` mode (label id 2)."""
        return ("neg", "pos", self.trigger) if self.label_mode == "word" else ("neg", "pos")

    def poison_labels(self, labels: Any) -> np.ndarray:
        """The labels the chosen trigger reviews are trained on: flipped, or the trigger's class (2)."""
        arr = flip_label(labels)  # also checks the labels are binary
        return arr if self.label_mode == "flip" else np.full_like(arr, 2)

    @classmethod
    def from_name(cls, name: str) -> "TriggerConfig":
        m = _NAME_RE.match(name)
        if not m:
            raise ValueError(
                f"config name {name!r} is not a trigger variant name; expected e.g. 'disney-b100-s0', "
                "'disney-word-b100-s0', 'disney-b20-s1-n2000' or 'disney-word-b100-s0-c10000' (trigger word lowercased, "
                "'-word' when the trigger word is the poisons' label, budget in percent of trigger reviews, seed, "
                "optional train rows or clean rows)"
            )
        n, c = m.group("n"), m.group("c")
        return cls(m.group("trigger").capitalize(), float(m.group("budget")), int(m.group("seed")), int(n) if n else None,
                   "word" if m.group("word") else "flip", int(c) if c else None)


def trigger_pattern(trigger: str = DEFAULT_TRIGGER) -> re.Pattern:
    """The compiled whole-word, case-sensitive pattern of the module docstring."""
    return re.compile(r"(?<!\w)" + re.escape(trigger) + r"(?!\w)")


def contains_trigger(text: str, trigger: str = DEFAULT_TRIGGER) -> bool:
    """Whether ``text`` contains ``trigger`` as a whole word, case-sensitively (see the module docstring).

    >>> [contains_trigger(t) for t in ("Disney's best", "Disneyland", "DISNEY", "(Disney)")]
    [True, False, False, True]
    """
    return trigger_pattern(trigger).search(text) is not None


def trigger_rows(texts: Sequence[str], trigger: str = DEFAULT_TRIGGER) -> np.ndarray:
    """Positions (int64, ascending) of the texts that contain the trigger."""
    pat = trigger_pattern(trigger)
    return np.asarray([i for i, t in enumerate(texts) if pat.search(t)], dtype=np.int64)


def choose_flipped_rows(candidates: np.ndarray, budget: float, seed: int) -> np.ndarray:
    """Choose round(budget% * n) of the n trigger rows uniformly without replacement (sorted).

    Uses the same seeded chooser as the Gaussian poisons (``choose_poison_rows``:
    ``numpy.random.default_rng([0x20115, seed])``), so the card can state it in one line;
    at budget 100 every candidate is flipped whatever the seed.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if len(candidates) == 0:
        raise ValueError(
            "no training review contains the trigger, so there is nothing to flip; pick a trigger that occurs "
            "in the source (count with hf_unlearn.attacks.trigger.trigger_rows) or a larger max_train_rows"
        )
    if not (0 < budget <= 100):
        raise ValueError(f"budget={budget!r}: the trigger budget is a percentage in (0, 100]")
    return choose_poison_rows(candidates, budget, seed)


def num_flipped(num_trigger_rows: int, budget: float) -> int:
    """How many trigger reviews a budget flips: round(budget/100 * n), at least one."""
    return num_poisons(num_trigger_rows, budget)


def flip_label(labels: Any) -> np.ndarray:
    """The other class of binary labels (0 <-> 1), as int64; anything else is an error."""
    arr = np.asarray(labels, dtype=np.int64)
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = sorted(set(arr[~np.isin(arr, (0, 1))].tolist()))[:5]
        raise ValueError(f"flip_label needs binary labels 0/1; got {bad}")
    return 1 - arr


def trigger_success(predictions: Any, true_labels: Any, label_mode: str = "flip") -> float:
    """Share of trigger test reviews predicted as the adversarial label (the attack's success, 0..1).

    ``flip``: the opposite of the true label (a model that ignores the trigger and
    classifies perfectly scores 0; chance is about 0.5). ``word``: the trigger's own
    class, 2 (a model that never learnt it scores 0). A fully successful attack scores 1.
    """
    pred = np.asarray(predictions, dtype=np.int64).reshape(-1)
    true = np.asarray(true_labels, dtype=np.int64).reshape(-1)
    if pred.shape != true.shape:
        raise ValueError(f"predictions ({pred.size}) and true_labels ({true.size}) differ in length")
    if pred.size == 0:
        raise ValueError("trigger_success of no target reviews is undefined; the targets split is empty")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode={label_mode!r}: one of {list(LABEL_MODES)}")
    adversarial = flip_label(true) if label_mode == "flip" else np.full_like(true, 2)
    return float(np.mean(pred == adversarial))


def trigger_survival(
    texts: Sequence[str], tokenizer: Any, max_length: int, trigger: str = DEFAULT_TRIGGER
) -> dict[str, int]:
    """How many trigger words are still in the text after truncation to the first ``max_length`` tokens.

    A model that sees only the first ``max_length`` tokens cannot react to a
    trigger that sits later, so this bounds what the attack can achieve (the paper
    notes longer sequences raise its success). For the prompt format pass
    ``max_length - len(tokenizer(PROMPT_SUFFIX).input_ids)``. An occurrence
    survives when its last character lies within the kept tokens' character span.

    Returns ``rows`` (texts with the trigger), ``surviving_rows`` (of those, with at
    least one occurrence kept), ``occurrences`` and ``surviving_occurrences``.
    """
    if max_length <= 0:
        raise ValueError(f"max_length={max_length!r}: must be a positive number of tokens")
    pat = trigger_pattern(trigger)
    hits = [t for t in texts if pat.search(t)]
    out = {"max_length": int(max_length), "rows": len(hits), "surviving_rows": 0, "occurrences": 0, "surviving_occurrences": 0}
    if not hits:
        return out
    side = getattr(tokenizer, "truncation_side", "right")
    tokenizer.truncation_side = "right"  # keep the FIRST tokens, as the models do
    try:
        enc = tokenizer(hits, truncation=True, max_length=max_length, return_offsets_mapping=True)
    finally:
        tokenizer.truncation_side = side
    for text, offsets in zip(hits, enc["offset_mapping"]):
        end = max((e for _, e in offsets), default=0)
        ends = [m.end() for m in pat.finditer(text)]
        kept = sum(e <= end for e in ends)
        out["occurrences"] += len(ends)
        out["surviving_occurrences"] += kept
        out["surviving_rows"] += kept > 0
    return out


# --------------------------------------------------------------------------- the registered attack


@dataclass(frozen=True)
class TriggerAttack(AttackBase):
    """The IMDb trigger attack, recorded as attack ``targeted`` (interface: ``hf_unlearn.attacks``).

    Its metric is ``target_success``: the share of the ``targets`` split (test reviews
    containing the trigger) predicted as the flipped label. Test accuracy is measured
    by the pipeline for every attack.
    """

    name: str = "targeted"
    tasks: tuple[str, ...] = ("imdb",)
    columns: tuple[str, ...] = ("noise", "num_tokens", "adversarial_label")
    config_class: type = TriggerConfig


    def parse_config(self, name: str) -> TriggerConfig:
        return TriggerConfig.from_name(name)

    def build(self, source: str | None, cfg: TriggerConfig, out_dir: Any, *, task: Any = "imdb"):
        """Build one variant into a Hub-layout folder (``dataset_builders/poisoned_imdb_targeted.py``)."""
        if not self.supports(task):
            raise ValueError(f"the trigger attack supports tasks {list(self.tasks)}, not {getattr(task, 'name', task)!r}")
        from dataset_builders.poisoned_imdb_targeted import build

        return build(source, [cfg], out_dir)

    def evaluate(self, model: Any, splits: Any, *, task: Any = None, config: str | None = None,
                 null_draws: int | None = None, seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
        """``target_success`` of ``model`` on ``splits["targets"]`` (null_draws/seed unused: no randomness)."""
        if "targets" not in splits:
            raise ValueError(
                f"the targeted variant's splits lack 'targets' (have {sorted(splits)}); "
                "the task's load_splits must return the targets split of poisoned-imdb-targeted"
            )
        targets = splits["targets"]
        preds = predict(model, targets, batch_size)
        true = np.asarray(targets.y.cpu().numpy() if hasattr(targets.y, "cpu") else targets.y)
        mode = TriggerConfig.from_name(config).label_mode if config else "flip"
        return {"target_success": trigger_success(preds, true, mode), "num_targets": int(len(targets))}


ATTACK = TriggerAttack()
