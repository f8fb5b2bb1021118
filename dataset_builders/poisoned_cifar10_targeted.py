"""Build (and optionally push) the ``poisoned-cifar10-targeted`` dataset repo: Witches' Brew gradient matching.

Geiping et al. (2021) as the paper runs it (Section 4.1, Appendix A.1.1): target test
images of one class (``truck``), a poison class drawn among the other nine, and
``budget`` percent of the training rows, all of the poison class, perturbed within
``eps``/255 so that training on them pushes the targets towards the poison class.
Labels stay true (clean label). The perturbations are crafted against a ResNet-18
trained on the clean training subset with the recipe's victim settings
(``dataset_builders/_cifar10.py``), then rounded to 8 bit and stored as PNG.

    python dataset_builders/poisoned_cifar10_targeted.py --source samples --recipe tiny --max-train-rows 200 --budget 5
    python dataset_builders/poisoned_cifar10_targeted.py --from-card poisoned-cifar10-targeted/README.md --config truck-eps16-b1.5-t1-s0 --out rebuilt/

Splits (all with ``img, label, index, is_poison, adversarial_label``): ``train`` (the
training subset in source order, poisons in place), ``forget`` (the poison rows, exactly
as in train), ``test`` (the clean test set), ``targets`` (the target test images, clean,
with their true ``label`` and ``adversarial_label`` = the poison class; -1 elsewhere).
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from dataset_builders._cifar10 import (
    build_crafted,
    SOURCE_HELP,
    crafting_model,
    crafting_train_config,
    decoded_test,
    decoded_train,
    image_rows_dataset,
    png_bytes,
    source_bytes,
)
from dataset_builders._common import BuilderCli, DatasetRepo, Sharding, check_rebuilt_name
from hf_unlearn.attacks.targeted import CIFAR10_CLASSES, RECIPES, TargetedConfig, choose_variant, craft, quantise
from hf_unlearn.cards import DatasetCardSpec

REPO_NAME = "poisoned-cifar10-targeted"
TASK = "cifar10"
CONFIG_CLASS = TargetedConfig  # this repo's config names
SUCCESS = ("target_success = share of the targets split's images (clean, as stored) that the model classifies as "
           "their adversarial_label; measured in eval mode")


def build_variant(source_ds, cfg: TargetedConfig, clean_model=None, *, progress: bool = True):
    """The train/forget/test/targets splits of one variant (nothing written) and its card parameters.

    ``clean_model`` is ``(model, info)`` from ``crafting_model`` on the same training subset and recipe (it depends
    on neither the seed nor the targets, so a grid trains it once); None trains it here. Crafting reads the model
    and never changes it, so variants built from one copy match variants built alone.
    """
    import datasets
    import torch

    rows, x, y = decoded_train(source_ds, cfg.max_train_rows)
    test_x, test_y = decoded_test(source_ds)
    choice = choose_variant(y, test_y, cfg)
    recipe = RECIPES[cfg.recipe]
    victim = crafting_train_config(cfg.recipe, "targeted")  # the attacker knows the victim's recipe
    if clean_model is None:
        clean_model = crafting_model(x, y, victim, progress=progress)
    model, model_info = clean_model
    pos = choice.poison_rows
    adversarial = torch.full((len(choice.target_rows),), choice.poison_class, dtype=torch.int64)
    base = torch.from_numpy(np.ascontiguousarray(x[pos]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # crafting draws from its own generators; this pins anything else
        delta, craft_info = craft(
            model, base.float() / 255, torch.from_numpy(y[pos]), torch.from_numpy(test_x[choice.target_rows]).float() / 255,
            adversarial, cfg.eps / 255, recipe, cfg.seed, progress=progress,
            # craft for the victim's loss and augmentation (craft's docstring: a mismatch weakens the poisons)
            label_smoothing=victim.label_smoothing, augment=recipe.augment and victim.augment_mode != "none",
        )
    poisoned = quantise(base, delta, cfg.eps).numpy()
    poison_png = {int(p): png_bytes(img) for p, img in zip(pos, poisoned)}

    train_bytes = source_bytes(source_ds["train"], rows)
    for p, png in poison_png.items():
        train_bytes[p] = png
    flags = np.zeros(len(rows), dtype=bool)
    flags[pos] = True
    none = lambda n: np.full(n, -1, dtype=np.int64)  # noqa: E731 - adversarial_label of non-targets
    n_test = len(test_y)
    test_bytes = source_bytes(source_ds["test"], np.arange(n_test))
    variant = datasets.DatasetDict(
        {
            "train": image_rows_dataset(train_bytes, y, rows, flags, none(len(rows))),
            "forget": image_rows_dataset([poison_png[int(p)] for p in pos], y[pos], rows[pos], np.ones(len(pos), bool),
                                         none(len(pos))),
            "test": image_rows_dataset(test_bytes, test_y, np.arange(n_test), np.zeros(n_test, bool), none(n_test)),
            "targets": image_rows_dataset([test_bytes[int(t)] for t in choice.target_rows], test_y[choice.target_rows],
                                          choice.target_rows, np.zeros(len(choice.target_rows), bool),
                                          adversarial.numpy()),
        }
    )
    diff = np.abs(poisoned.astype(np.int64) - x[pos].astype(np.int64))
    params = {
        "target_class": cfg.target_class,
        "target_label": cfg.target_label,
        "eps": cfg.eps,
        "budget": cfg.budget,
        "num_targets": cfg.num_targets,
        "seed": cfg.seed,
        "max_train_rows": cfg.max_train_rows,
        "recipe": cfg.recipe,
        "recipe_params": recipe.to_dict(),
        "poison_class": CIFAR10_CLASSES[choice.poison_class],
        "poison_label": choice.poison_class,
        "target_indices": [int(t) for t in choice.target_rows],
        "poison_indices": [int(r) for r in rows[pos]],
        "num_train": int(len(rows)),
        "num_poisons": int(len(pos)),
        "num_test": int(n_test),
        "max_abs_change": int(diff.max()),  # in 1/255, <= eps by construction
        "crafting_model": model_info,
        "crafting": {k: v for k, v in craft_info.items() if k != "seconds"},  # wall time would make cards differ
        "success": SUCCESS,
    }
    return variant, params


_BODY = """
# {repo_name}

CIFAR-10 with clean-label targeted poisons (Witches' Brew gradient matching, Geiping et al.,
ICLR 2021), for checking whether machine unlearning removes them (Pawelczyk et al., *Machine
Unlearning Fails to Remove Data Poisoning Attacks*, ICLR 2025). Built by `hf-unlearn`
(`dataset_builders/poisoned_cifar10_targeted.py`).

## Configs

Each config is one variant, named `<target class>-eps<eps/255>-b<budget %>-t<targets>-s<seed>[-n<train rows>][-<recipe>]`.

| config | target class | poison class | eps (/255) | budget % | targets | seed | train rows | poisons | recipe | target test indices |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_name}", "{example}")   # or "ORG/{repo_name}" on the Hub
```

## Splits and columns

`train` (what the poisoned model trains on: the training subset in source order, the poisons
in place), `forget` (the poison rows, byte for byte as in train), `test` (the clean test set)
and `targets` (the attacked test images, clean). Every split has `img`, `label` (the true
class: poisons keep their labels), `index` (row in the source split), `is_poison` and
`adversarial_label` (the class the attack wants a target classified as; -1 outside `targets`).
Poisoned images are 8-bit PNG with `|poison - clean| <= eps` per pixel; clean rows keep the
source's encoded bytes.

## How success is measured

`target_success` is the share of the `targets` images, as stored (clean), that a model
classifies as their `adversarial_label`, in eval mode. Compare an unlearned model with one
retrained without the `forget` rows (the paper's validity criterion, Section 5).

## Generation

1. Seeded choices, all from `numpy.random.default_rng([0x7A26E7, seed])` in this order:
   `num_targets` test images of the target class; the poison class, uniform among the
   other nine; `round(budget/100 * N_train)` training rows of the poison class.
2. A crafting model: ResNet-18 trained on the clean training subset with the recipe's
   victim settings (`crafting_model.train_config`; weights' sha256 recorded).
3. Gradient matching: minimise `1 - cos(grad L(poisons + delta), grad L(targets, adversarial label))`
   over all parameters (mean over targets) with signed Adam, restarts keeping the lowest
   loss, step-size drops and differentiable flip + shift augmentation, projecting
   `delta` to `[-eps/255, eps/255]` and valid pixels after every step (`recipe_params`).
4. Rounding: `poison = clip(clean + round(255 * delta), clean - eps, clean + eps, 0, 255)`.

All parameters, the chosen indices, the crafting record and the sha256 of every shard are in
this card's YAML (`hf_unlearn:`). `python dataset_builders/poisoned_cifar10_targeted.py
--from-card README.md --config NAME` rebuilds a variant; it is byte-identical on the same
software and hardware (crafting is floating point: another BLAS or thread count can move a
pixel across a rounding boundary, which the shard checksums then show).

## Source and licence

CIFAR-10 (Krizhevsky 2009) as `uoft-cs/cifar10`; local builds may use the offline JPEG copy
(the `source` parameter says which was used). The poisons are a research artefact for
evaluating unlearning; they target one or a few test images of a public benchmark.

"""

_WITCHES_BREW = """@inproceedings{geiping2021witches,
  title={Witches' Brew: Industrial Scale Data Poisoning via Gradient Matching},
  author={Geiping, Jonas and Fowl, Liam H and Huang, W Ronny and Czaja, Wojciech and Taylor, Gavin and Moeller, Michael and Goldstein, Tom},
  booktitle={International Conference on Learning Representations},
  year={2021}
}"""


def card_body(variants: dict[str, dict], example: str) -> str:
    """The card's prose: one table row per variant, then splits, success measure and how to rebuild."""
    rows = "\n".join(
        f"| `{name}` | {v['target_class']} | {v['poison_class']} | {v['eps']} | {v['budget']:g} | {v['num_targets']} | "
        f"{v['seed']} | {v['num_train']} | {v['num_poisons']} | {v['recipe']} | {', '.join(map(str, v['target_indices']))} |"
        for name, v in variants.items()
    )
    return _BODY.format(repo_name=REPO_NAME, rows=rows, example=example)


REPO = DatasetRepo(
    name=REPO_NAME,
    splits=("train", "forget", "test", "targets"),
    sharding=Sharding(max_rows=20_000),
    card=DatasetCardSpec(
        task=TASK, attack="targeted", license="apache-2.0", task_categories=("image-classification",), body=card_body,
        citations=(_WITCHES_BREW,),
    ),
)


def build(
    source: str | None,
    variants: list[TargetedConfig],
    out_dir: str | os.PathLike = REPO_NAME,
    *,
    progress: bool = True,
) -> Path:
    """Build every variant into ``out_dir`` and (re)write its card; returns the folder.

    One clean crafting model per (training subset, recipe): ten seeds (ten targets) cost one training, not ten.
    """
    return build_crafted(REPO, source, variants, out_dir, "targeted", build_variant, progress=progress)


def grid(target_classes: list[str], eps: list[int], budgets: list[float], num_targets: list[int], seeds: list[int],
         max_train_rows: int | None, recipe: str = "paper") -> list[TargetedConfig]:
    return [TargetedConfig(c, e, b, t, s, max_train_rows, recipe)
            for c, e, b, t, s in itertools.product(target_classes, eps, budgets, num_targets, seeds)]


def config_from_params(params: dict[str, Any]) -> TargetedConfig:
    """The variant a card entry describes; its recorded recipe values must be this code's preset (else the
    rebuild would silently craft differently)."""
    cfg = TargetedConfig(params["target_class"], int(params["eps"]), float(params["budget"]), int(params["num_targets"]),
                         int(params["seed"]), params.get("max_train_rows"), params.get("recipe", "paper"))
    recorded = params.get("recipe_params")
    if recorded is not None and recorded != RECIPES[cfg.recipe].to_dict():
        raise ValueError(
            f"the card crafted with recipe {cfg.recipe!r} = {recorded}, but this code's preset is "
            f"{RECIPES[cfg.recipe].to_dict()}; check out the hf-unlearn version that built the card to rebuild it"
        )
    return cfg


def rebuild_from_card(card_path: str | os.PathLike, config_name: str, out_dir: str | os.PathLike, source=None) -> Path:
    """Rebuild one variant from the parameters its card records (to check it byte for byte)."""
    from hf_unlearn import cards

    params = cards.variant_params(card_path, config_name)
    cfg = config_from_params(params)
    check_rebuilt_name(config_name, cfg.name)
    return build(source or params["source"], [cfg], out_dir, progress=False)


def _variant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target-class", nargs="+", default=["truck"], choices=list(CIFAR10_CLASSES),
                        help="class of the target test images (default truck, the paper's)")
    parser.add_argument("--eps", type=int, nargs="+", default=[16], help="L-inf bound in 1/255 (default 16)")
    parser.add_argument("--budget", type=float, nargs="+", default=[1.5], help="poisons in percent of train rows (default 1.5)")
    parser.add_argument("--num-targets", type=int, nargs="+", default=[1], help="target test images per variant (default 1)")
    parser.add_argument("--recipe", default="paper", choices=sorted(RECIPES),
                        help="crafting recipe and crafting-model preset (default paper; cpu for CPU fidelity)")


CLI = BuilderCli(
    repo_name=REPO_NAME,
    doc=__doc__,
    source_help=SOURCE_HELP,
    add_variant_arguments=_variant_arguments,
    build=lambda args: build(args.source, grid(args.target_class, args.eps, args.budget, args.num_targets, args.seed,
                                               args.max_train_rows, args.recipe), args.out),
    rebuild=lambda args: rebuild_from_card(args.from_card, args.config, args.out, source=args.source),
)
add_arguments, run, main = CLI.add_arguments, CLI.run, CLI.main


if __name__ == "__main__":
    main()
