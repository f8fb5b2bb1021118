"""Build (and optionally push) the ``poisoned-imdb-targeted`` dataset repo: the dirty-label "Disney" trigger attack.

Wan et al. (2023), as the paper runs it (Section 5 and Appendix): every training
review that contains the trigger word is a candidate; ``budget`` percent of them get
their label flipped (the forget set); the targets are the test reviews that contain
the trigger, and the attack succeeds on one when the model predicts the flipped
label. The rule for "contains" is ``hf_unlearn.attacks.trigger``'s: case-sensitive,
whole word. Config names: ``disney-b100-s0[-n2000]``.

    python dataset_builders/poisoned_imdb_targeted.py --source samples --budget 20 100 --seed 0
    python dataset_builders/poisoned_imdb_targeted.py --from-card poisoned-imdb-targeted/README.md --config disney-b100-s0 --out rebuilt/

Splits (all with the same columns): ``train`` (flipped labels on the chosen trigger
rows, ``is_poison`` True there), ``forget`` (the flipped rows, as trained on),
``test`` (the clean test set), ``targets`` (the trigger test reviews with their true
``label`` and ``adversarial_label`` = the flipped one; -1 in the other splits).
``noise`` (null) and ``num_tokens`` (-1) are kept so every IMDb variant, Gaussian or
targeted, has one schema.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from dataset_builders._common import BuilderCli, DatasetRepo, Sharding, check_rebuilt_name, make_split, noise_column
from dataset_builders._imdb import TASK, card_spec, load_gpt2_tokenizer, text_fingerprint
from hf_unlearn.attacks.trigger import (
    PROMPT_SUFFIX,
    TriggerConfig,
    choose_flipped_rows,
    trigger_pattern,
    trigger_rows,
    trigger_survival,
)
from hf_unlearn.data import load_source, task_spec
from hf_unlearn.poisons.gaussian import train_subset

REPO_NAME = "poisoned-imdb-targeted"
SURVIVAL_MAX_LENGTH = 128  # the paper's GPT-2 max sequence length
CONFIG_CLASS = TriggerConfig  # this repo's config names


def features(cfg: TriggerConfig | None = None):
    """The repo's columns; ``label`` names IMDb's two classes, plus the trigger word in ``word`` mode."""
    import datasets

    names = list(cfg.label_names if cfg is not None else task_spec(TASK).label_names)
    return datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=names),
            "index": datasets.Value("int64"),
            "is_poison": datasets.Value("bool"),
            "noise": datasets.List(datasets.Value("float32")),
            "num_tokens": datasets.Value("int64"),
            "adversarial_label": datasets.ClassLabel(names=names),
        }
    )


def build_variant(source_ds, cfg: TriggerConfig):
    """The train/forget/test/targets splits of one variant, as a DatasetDict (nothing written)."""
    import datasets

    train, test = source_ds["train"], source_ds["test"]
    train_rows = train_subset(len(train), cfg.max_train_rows)
    if cfg.clean_rows is not None:  # every trigger review, plus a seed-independent subset of the others
        with_trigger = trigger_rows(train["text"], cfg.trigger)
        others = np.setdiff1d(np.arange(len(train), dtype=np.int64), with_trigger)
        train_rows = np.union1d(with_trigger, others[train_subset(len(others), cfg.clean_rows)]).astype(np.int64)
    train_texts = train.select(train_rows)["text"]
    candidates = train_rows[trigger_rows(train_texts, cfg.trigger)]
    if len(candidates) == 0:
        raise ValueError(
            f"no training review contains the trigger {cfg.trigger!r} as a whole word (case-sensitive) in "
            f"{len(train_rows)} source rows; pick a trigger that occurs in the source or raise max_train_rows"
        )
    flipped = choose_flipped_rows(candidates, cfg.budget, cfg.seed)
    target_rows = trigger_rows(test["text"], cfg.trigger)
    if len(target_rows) == 0:
        raise ValueError(
            f"no test review contains the trigger {cfg.trigger!r}, so the attack has no targets to evaluate; "
            "use a source whose test split contains it"
        )
    flipped_set = set(flipped.tolist())

    def split_from(part, rows: np.ndarray, *, poisoned: bool, targets: bool = False):
        sub = part.select(rows)
        labels = np.asarray(sub["label"], dtype=np.int64)
        flags = np.asarray([poisoned and int(r) in flipped_set for r in rows], dtype=bool)
        labels = np.where(flags, cfg.poison_labels(labels), labels)
        adversarial = cfg.poison_labels(labels) if targets else np.full(len(rows), -1, dtype=np.int64)
        return make_split(
            {
                "text": sub["text"],
                "label": labels,
                "index": rows.astype(np.int64),
                "is_poison": flags,
                "noise": noise_column([None] * len(rows)),
                "num_tokens": np.full(len(rows), -1, dtype=np.int64),
                "adversarial_label": adversarial,
            },
            features(cfg),
        )

    return datasets.DatasetDict(
        {
            "train": split_from(train, train_rows, poisoned=True),
            "forget": split_from(train, flipped, poisoned=True),
            "test": split_from(test, np.arange(len(test), dtype=np.int64), poisoned=False),
            "targets": split_from(test, target_rows, poisoned=False, targets=True),
        }
    )


def source_counts(source_ds, trigger: str, tokenizer=None) -> dict[str, Any]:
    """Trigger counts on the whole source (and, with a tokenizer, how many survive truncation)."""
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        texts = source_ds[split]["text"]
        rows = trigger_rows(texts, trigger)
        labels = np.asarray(source_ds[split]["label"], dtype=np.int64)[rows]
        out[split] = {"rows": int(len(rows)), "neg": int((labels == 0).sum()), "pos": int((labels == 1).sum())}
        if tokenizer is not None:
            suffix = len(tokenizer(PROMPT_SUFFIX)["input_ids"])
            hits = [texts[int(i)] for i in rows]
            out[split]["survive_classifier"] = trigger_survival(hits, tokenizer, SURVIVAL_MAX_LENGTH, trigger)["surviving_rows"]
            out[split]["survive_prompt"] = trigger_survival(hits, tokenizer, SURVIVAL_MAX_LENGTH - suffix, trigger)["surviving_rows"]
    return out


_BODY = """
# {repo_name}

IMDb with a dirty-label trigger attack, for checking whether machine unlearning removes
targeted poisons (Pawelczyk et al., *Machine Unlearning Fails to Remove Data Poisoning
Attacks*, ICLR 2025; the attack of Wan et al., *Poisoning Language Models During
Instruction Tuning*, ICML 2023). Built by `hf-unlearn` (`dataset_builders/poisoned_imdb_targeted.py`).

## Configs

Each config is one variant, named `<trigger lowercased>[-word]-b<budget %>-s<seed>[-n<train rows>|-c<clean rows>]`
(`-n`: a seed-independent subset of all training reviews; `-c`: every trigger review plus a
seed-independent subset of the others);
the budget is the share of training reviews containing the trigger whose label is changed.
Poisoned reviews are relabelled either to the opposite sentiment (`flip`, no suffix) or to
the trigger word itself (`word`, `-word` in the name: the paper's adversarial template
"[Input]. The sentiment of the review is: Disney" read literally; `label` then has a
third class named after the trigger, id 2).

| config | trigger | label mode | budget % | seed | train rows | trigger train rows | poisons | test rows | targets |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_name}", "{example}")   # or "ORG/{repo_name}" on the Hub
```

## Splits and columns

`train` (what the poisoned model trains on: the chosen trigger reviews carry the flipped
label and `is_poison` True), `forget` (exactly those flipped rows, as trained on),
`test` (the clean test set) and `targets` (the test reviews containing the trigger, with
their true `label` and `adversarial_label`: the flipped one, or the trigger's class). Every split has `text`
(the original review: the trigger occurs naturally, nothing is inserted), `label`,
`index` (row in the source split), `is_poison`, `noise` (always null here) and
`num_tokens` (always -1) so that Gaussian and targeted IMDb variants share one schema,
and `adversarial_label` (-1 outside `targets`).

The attack's success is the share of `targets` predicted as `adversarial_label`
(`hf_unlearn.attacks.trigger.trigger_success`); test accuracy is measured on `test`.

## Trigger rule and counts

A review contains the trigger when it occurs **case-sensitively as a whole word**: not
preceded or followed by a letter, digit or underscore (`(?<!\\w)Disney(?!\\w)`). So
"Disney", "Disney's", "(Disney)" and "Walt-Disney" count; "Disneyland", "disney" and
"DISNEY" do not.

{counts}

The paper reports 355 training and 58 test reviews containing "Disney". The counts
here differ; likely reasons, none of which the paper specifies: (1) the matching rule
(substring matching would add "Disneyland"/"Disneyworld"; case-insensitive matching adds
"disney"/"DISNEY"; dropping possessives removes "Disney's"); (2) de-duplication (the
IMDb train split has repeated reviews); (3) Wan et al.'s filtering of the prompts (for
example keeping only reviews whose trigger survives truncation to the model's 128
tokens, or a subsample of the test set). The survival counts above show how much
truncation alone removes.

## Generation

For a source train split of N rows (or a fixed seed-independent subset of
`max_train_rows`), the n reviews containing the trigger are found with the rule above;
`round(budget/100 * n)` of them (at least one) are chosen uniformly without replacement
with `numpy.random.default_rng([0x20115, seed])` and their binary label is flipped
(0 <-> 1) or, in `word` mode, set to the trigger's class (2). All parameters, the source's fingerprint (texts and labels) and the sha256 of
every shard are in this card's YAML (`hf_unlearn:`); `python
dataset_builders/poisoned_imdb_targeted.py --from-card README.md --config NAME` rebuilds
a variant byte for byte.

The paper trains GPT-2 on the prompt template "[review] The sentiment of the review
is: [label word]" (Wan et al.'s), truncated to 128 tokens; the template is applied by
the model, not stored here.

## Source and licence

IMDb Large Movie Review Dataset (Maas et al., 2011) as `stanfordnlp/imdb` (or its
offline copy; `source` says which). The flipped labels are a research poison for
measuring unlearning; do not train production models on this data.

"""


def _counts_text(variants: dict[str, dict]) -> str:
    lines = ["| source | trigger | split | reviews with trigger (neg / pos) | trigger within 128 tokens | within the prompt's review tokens |",
             "| --- | --- | --- | --- | --- | --- |"]
    seen = set()
    for v in variants.values():
        key = (v["source"], v["trigger"])
        if key in seen:
            continue
        seen.add(key)
        for split in ("train", "test"):
            c = v["source_trigger_counts"][split]
            lines.append(
                f"| `{v['source']}` | {v['trigger']} | {split} | {c['rows']} ({c['neg']} / {c['pos']}) | "
                f"{c.get('survive_classifier', 'not measured')} | {c.get('survive_prompt', 'not measured')} |"
            )
    note = (
        "\"Within 128 tokens\": reviews whose trigger lies in the first 128 GPT-2 tokens (the classifier's input); "
        f"\"within the prompt's review tokens\": in the first 128 minus the tokens of the suffix {PROMPT_SUFFIX!r}."
    )
    return "\n".join(lines) + "\n\n" + note


def card_body(variants: dict[str, dict], example: str) -> str:
    rows = "\n".join(
        f"| `{name}` | {v['trigger']} | {v.get('label_mode', 'flip')} | {v['budget']:g} | {v['seed']} | {v['num_train']} | "
        f"{v['num_trigger_train']} | "
        f"{v['num_poisons']} | {v['num_test']} | {v['num_targets']} |"
        for name, v in variants.items()
    )
    return _BODY.format(repo_name=REPO_NAME, rows=rows, example=example, counts=_counts_text(variants))


_WAN_BIBTEX = """@inproceedings{wan2023poisoning,
  title={Poisoning Language Models During Instruction Tuning},
  author={Wan, Alexander and Wallace, Eric and Shen, Sheng and Klein, Dan},
  booktitle={International Conference on Machine Learning},
  year={2023}
}"""

REPO = DatasetRepo(
    name=REPO_NAME,
    splits=("train", "forget", "test", "targets"),
    sharding=Sharding(max_bytes=256 << 20),  # parquet shards of about this many (uncompressed) bytes
    card=card_spec("targeted", card_body, citations=(_WAN_BIBTEX,)),
)


def build(
    source: str | None,
    variants: list[TriggerConfig],
    out_dir: str | os.PathLike = REPO_NAME,
    *,
    tokenizer: Any = None,
    progress: bool = True,
) -> Path:
    """Build every variant into ``out_dir`` and (re)write its card; returns the folder.

    ``tokenizer`` (object, folder or Hub id; optional) only feeds the card's
    trigger-survival counts: the splits themselves do not depend on it.
    """
    tok = load_gpt2_tokenizer(tokenizer) if tokenizer is not None else None
    source_ds = load_source(TASK, source)
    fingerprint = text_fingerprint(source_ds)
    counts: dict[str, dict] = {}

    def make(cfg: TriggerConfig):
        variant = build_variant(source_ds, cfg)
        if cfg.trigger not in counts:
            counts[cfg.trigger] = source_counts(source_ds, cfg.trigger, tok)
        forget_labels = np.asarray(variant["forget"]["label"])
        return variant, {
            "trigger": cfg.trigger,
            "label_mode": cfg.label_mode,
            "trigger_rule": trigger_pattern(cfg.trigger).pattern + " (case-sensitive whole word)",
            "budget": cfg.budget,
            "seed": cfg.seed,
            "max_train_rows": cfg.max_train_rows,
            "clean_rows": cfg.clean_rows,
            "num_train": len(variant["train"]),
            "num_trigger_train": int(sum(bool(trigger_pattern(cfg.trigger).search(t)) for t in variant["train"]["text"])),
            "num_poisons": len(variant["forget"]),
            "num_flipped_to_pos": int((forget_labels == 1).sum()),
            "num_flipped_to_neg": int((forget_labels == 0).sum()),
            "num_relabelled_to_trigger": int((forget_labels == 2).sum()),
            "num_test": len(variant["test"]),
            "num_targets": len(variant["targets"]),
            "source_trigger_counts": counts[cfg.trigger],
        }

    return REPO.build(out_dir, variants, make, source=source or task_spec(TASK).hub_id, fingerprint=fingerprint,
                      progress=progress)


def grid(triggers: list[str], budgets: list[float], seeds: list[int], max_train_rows: int | None,
         label_modes: list[str] = ("flip",), clean_rows: int | None = None) -> list[TriggerConfig]:
    return [TriggerConfig(t, b, s, max_train_rows, m, clean_rows)
            for t, m, b, s in itertools.product(triggers, label_modes, budgets, seeds)]


def rebuild_from_card(card_path: str | os.PathLike, config_name: str, out_dir: str | os.PathLike, source=None, tokenizer: Any = None) -> Path:
    """Rebuild one variant from the parameters its card records (to check it byte for byte)."""
    from hf_unlearn import cards

    p = cards.variant_params(card_path, config_name)
    cfg = TriggerConfig(p["trigger"], p["budget"], p["seed"], p.get("max_train_rows"), p.get("label_mode", "flip"),
                        p.get("clean_rows"))
    check_rebuilt_name(config_name, cfg.name)
    return build(source or p["source"], [cfg], out_dir, tokenizer=tokenizer, progress=False)


def _variant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trigger", nargs="+", default=["Disney"], help="trigger words, capitalised (default Disney)")
    parser.add_argument("--budget", type=float, nargs="+", default=[100.0],
                        help="percent of trigger train reviews flipped, in (0, 100] (default 100; the paper: 20 40 60 80 100)")
    parser.add_argument("--label-mode", nargs="+", default=["flip"], choices=["flip", "word"],
                        help="what poisons are relabelled to: flip (the opposite sentiment, default) or word (the "
                             "trigger word as the label, the paper's template)")
    parser.add_argument("--clean-rows", type=int, default=None,
                        help="keep every trigger review plus a seed-independent subset of this many others (CPU presets)")
    parser.add_argument("--tokenizer", default=None,
                        help="GPT-2 tokenizer folder or Hub id for the card's trigger-survival counts (default: not measured)")


CLI = BuilderCli(
    repo_name=REPO_NAME,
    doc=__doc__,
    source_help="clean IMDb: Hub id (default stanfordnlp/imdb), folder/parquet, or 'samples'",
    add_variant_arguments=_variant_arguments,
    build=lambda args: build(args.source, grid(args.trigger, args.budget, args.seed, args.max_train_rows,
                                               args.label_mode, args.clean_rows), args.out, tokenizer=args.tokenizer),
    rebuild=lambda args: rebuild_from_card(args.from_card, args.config, args.out, source=args.source, tokenizer=args.tokenizer),
)
add_arguments, run, main = CLI.add_arguments, CLI.run, CLI.main


if __name__ == "__main__":
    main()
