"""Build (and optionally push) the ``poisoned-cifar10-indiscriminate`` dataset repo: gradient-canceling poisons.

Each variant (budget, seed, optional training subset, crafting recipe) becomes one config of a Hub-layout folder:
parquet shards under ``data/<config>/`` and a ``README.md`` card whose YAML ``configs:`` maps every variant to its
files, so ``load_dataset("poisoned-cifar10-indiscriminate", "gc-b1.5-s0")`` works from the folder it was built in
and from the Hub alike.

A variant is made in four steps (``hf_unlearn.attacks.indiscriminate`` for the maths):

1. a clean ResNet-18 is trained on the clean training rows (the recipe's crafting model, ``_cifar10.crafting_model``);
2. GradPC moves it to a nearby low-accuracy target (L2 radius in the recipe);
3. ``round(budget% * N)`` poisons start from seeded clean training images (labels kept) and are optimised so that
   the target's training gradient over clean + poisons vanishes (gradient canceling), unbounded but clipped to
   [0, 1], then quantised to 8 bit and stored as PNG;
4. they are APPENDED after the clean rows of ``train`` (``index`` -1, ``is_poison`` true); ``forget`` is exactly
   those rows; ``test`` is the source's test split.

    python dataset_builders/poisoned_cifar10_indiscriminate.py --source samples --budget 1.5 2 2.5 --seed 0 --recipe cpu --max-train-rows 5000
    python dataset_builders/poisoned_cifar10_indiscriminate.py --from-card poisoned-cifar10-indiscriminate/README.md --config gc-b1.5-s0-n5000-cpu --out rebuilt/
"""

from __future__ import annotations

import argparse
import itertools
import os
from dataclasses import asdict
from pathlib import Path

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
from hf_unlearn.attacks.indiscriminate import (
    RECIPES,
    IndiscriminateConfig,
    choose_init_rows,
    craft,
    gradpc,
    mean_loss_accuracy,
    parameter_distance,
    quantise,
)
from hf_unlearn.cards import DatasetCardSpec
from hf_unlearn.poisons.gaussian import num_poisons

REPO_NAME = "poisoned-cifar10-indiscriminate"
TASK = "cifar10"

LU_BIBTEX = """@inproceedings{lu2023exploring,
  title={Exploring the Limits of Model-Targeted Indiscriminate Data Poisoning Attacks},
  author={Lu, Yiwei and Kamath, Gautam and Yu, Yaoliang},
  booktitle={International Conference on Machine Learning},
  pages={22856--22879},
  year={2023}
}"""
SUN_BIBTEX = """@inproceedings{sun2021exploring,
  title={Exploring the Vulnerability of Deep Neural Networks: A Study of Parameter Corruption},
  author={Sun, Xu and Zhang, Zhiyuan and Ren, Xuancheng and Luo, Ruixuan and Li, Liangyou},
  booktitle={AAAI Conference on Artificial Intelligence},
  year={2021}
}"""


def build_variant(source_ds, cfg: IndiscriminateConfig, clean_model=None, *, progress: bool = True):
    """The train/forget/test splits of one variant and the parameters its card records (nothing written).

    ``clean_model`` is ``(model, info)`` from ``crafting_model`` on the same training subset and recipe (it depends
    on neither budget nor seed, so a grid trains it once); None trains it here.
    """
    import torch

    recipe = cfg.recipe_params
    rows, x, y = decoded_train(source_ds, cfg.max_train_rows)
    test_x, test_y = decoded_test(source_ds)
    victim = crafting_train_config(cfg.recipe, "indiscriminate")  # the attacker knows the victim's recipe
    if clean_model is None:
        clean_model = crafting_model(x, y, victim, progress=progress)
    model, model_info = clean_model
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    txt, tyt = torch.from_numpy(test_x), torch.from_numpy(test_y)
    n_poisons = num_poisons(len(rows), cfg.budget)
    init = choose_init_rows(len(rows), n_poisons, cfg.seed)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        # the target is bad at, and the poisons cancel, the loss the victim trains on (its label smoothing)
        target = gradpc(model, xt, yt, recipe.gradpc_radius, recipe.gradpc_steps, recipe.gradpc_lr, cfg.seed,
                        progress, batch_size=recipe.gradpc_batch_size, label_smoothing=victim.label_smoothing)
        poisons, info = craft(target, xt, yt, xt[init], yt[init], recipe, cfg.seed, progress,
                              label_smoothing=victim.label_smoothing)
    stored = quantise(poisons)  # what the victim trains on: 8-bit pixels
    poison_png = [png_bytes(img) for img in stored.numpy()]
    poison_labels = y[init]
    n = len(rows)
    train = image_rows_dataset(
        source_bytes(source_ds["train"], rows) + poison_png,
        np.concatenate([y, poison_labels]),
        np.concatenate([rows, np.full(n_poisons, -1, dtype=np.int64)]),
        [False] * n + [True] * n_poisons,
    )
    forget = image_rows_dataset(poison_png, poison_labels, np.full(n_poisons, -1, dtype=np.int64), [True] * n_poisons)
    n_test = len(test_y)
    test = image_rows_dataset(source_bytes(source_ds["test"], np.arange(n_test)), test_y,
                              np.arange(n_test, dtype=np.int64), [False] * n_test)

    import datasets

    clean_train = mean_loss_accuracy(model, xt, yt)
    target_train = mean_loss_accuracy(target, xt, yt)
    params = {
        "budget": cfg.budget,
        "seed": cfg.seed,
        "max_train_rows": cfg.max_train_rows,
        "recipe": cfg.recipe,
        "recipe_params": asdict(recipe),
        "num_train": n + n_poisons,
        "num_clean": n,
        "num_poisons": n_poisons,
        "num_test": n_test,
        "perturbation": "unbounded; clipped to [0, 1] after every step; stored quantised to 8 bit (PNG)",
        "crafting_model": model_info,
        "clean_model_test_accuracy": mean_loss_accuracy(model, txt, tyt)[1],
        "clean_model_train_accuracy": clean_train[1],
        "target_test_accuracy": mean_loss_accuracy(target, txt, tyt)[1],
        "target_train_accuracy": target_train[1],
        "target_train_loss": target_train[0],
        "target_l2_distance": parameter_distance(model, target),
        "canceling_loss_initial": info["initial_loss"],
        "canceling_loss_final": info["final_loss"],
        "canceling_loss_quantised": info["final_loss_quantised"],
        "clean_grad_norm_at_target": info["clean_grad_norm"],
        "crafting_label_smoothing": victim.label_smoothing,
    }
    return datasets.DatasetDict({"train": train, "forget": forget, "test": test}), params


_BODY = """
# {repo_name}

CIFAR-10 with **indiscriminate** poisons from Gradient Canceling (Lu et al., ICML 2023) towards a GradPC target
(Sun et al.), as in Pawelczyk et al., *Machine Unlearning Fails to Remove Data Poisoning Attacks* (ICLR 2025,
Section 4.2 and Appendix A.1.3). Built by `hf-unlearn` (`dataset_builders/poisoned_cifar10_indiscriminate.py`).
The attack's goal is a low test accuracy of a model trained on `train`; unlearning `forget` should bring it back
towards Retrain's.

## Configs

Each config is one variant, named `gc-b<budget %>-s<seed>[-n<train rows>][-<recipe>]`.

| config | budget % | seed | recipe | clean rows | poisons | target test acc. | clean model test acc. | canceling loss (start -> end) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_name}", "{example}")   # or "ORG/{repo_name}" on the Hub
```

## Splits and columns

`train` is the clean training rows (the source's own encoded bytes, `index` = row in the source's train split)
followed by the poisons, APPENDED (`index` = -1, `is_poison` true); `forget` is exactly those poison rows, byte for
byte as trained on; `test` is the source's test split. Columns: `img`, `label` (ClassLabel), `index`, `is_poison`.
There is no `noise` column: a poison is its stored image.

## Generation

1. **Clean crafting model**: a ResNet-18 trained (`hf_unlearn.train`) on the clean training rows with the recipe's
   training configuration (card: `crafting_model.train_config`, its weights' `sha256`).
2. **Target parameters (GradPC)**: normalised gradient ascent on the training loss, each step adding
   `gradpc_lr * g / ||g||` (norm over all parameters) to the shift from the clean parameters and projecting the
   shift onto the L2 ball of `gradpc_radius`; batches of `gradpc_batch_size` in epochs of a permutation drawn by
   `numpy.random.default_rng([0x6CA12, seed])`; BatchNorm uses batch statistics during the ascent and its running
   statistics are re-estimated at the target over the clean training rows. The card records the target's
   accuracy and its exact L2 distance.
3. **Poisons (Gradient Canceling)**: `round(budget/100 * N)` clean training images, chosen by
   `numpy.random.default_rng([0x6CA11, seed])` (positions in the sorted training subset), with their labels kept,
   minimise
   `0.5 * ||(N * g_clean + sum_i grad l(x_i, y_i)) / (N + n_p)||^2` over all parameters at the target (eval mode):
   `gc_epochs` Adam steps of size `gc_lr` under a cosine decay, each on the exact objective over all poisons.
   GradPC and canceling use the victim's training loss: cross-entropy with the victim recipe's label smoothing
   (`crafting_label_smoothing`).
4. **Perturbation bound: none** (the paper's choice). Poisons are clipped to [0, 1] after every step and stored
   **quantised to 8 bit** (round half to even, PNG); `canceling_loss_quantised` is the objective at the stored
   pixels.

Every parameter, the recipe's values and the sha256 of every shard are in this card's YAML (`hf_unlearn:`);
`python dataset_builders/poisoned_cifar10_indiscriminate.py --from-card README.md --config NAME` rebuilds a
variant, byte for byte on the same software and hardware (the crafting model's digest tells when not).

## Source and licence

CIFAR-10 (Krizhevsky 2009) as `uoft-cs/cifar10`; local builds may use the offline JPEG copy (the `source`
parameter says which). These poisons exist to evaluate unlearning: unbounded perturbations are not a realistic
threat model (the paper says so), but they make the strongest test of whether unlearning removes them.

"""


def card_body(variants: dict[str, dict], example: str) -> str:
    """The card's prose: one table row per variant, then splits, generation and source."""
    rows = "\n".join(
        f"| `{name}` | {v['budget']:g} | {v['seed']} | {v['recipe']} | {v['num_clean']} | {v['num_poisons']} | "
        f"{v['target_test_accuracy']:.4f} | {v['clean_model_test_accuracy']:.4f} | "
        f"{v['canceling_loss_initial']:.4g} -> {v['canceling_loss_final']:.4g} |"
        for name, v in variants.items()
    )
    return _BODY.format(repo_name=REPO_NAME, rows=rows, example=example)


REPO = DatasetRepo(
    name=REPO_NAME,
    splits=("train", "forget", "test"),
    sharding=Sharding(max_rows=20_000),
    card=DatasetCardSpec(
        task=TASK, attack="indiscriminate", license="apache-2.0", task_categories=("image-classification",),
        body=card_body, citations=(LU_BIBTEX, SUN_BIBTEX),
    ),
)


def build(
    source: str | None,
    variants: list[IndiscriminateConfig],
    out_dir: str | os.PathLike = REPO_NAME,
    *,
    progress: bool = True,
) -> Path:
    """Build every variant into ``out_dir`` and (re)write its card; returns the folder.

    The clean crafting model depends only on (training subset, recipe), so it is trained once per pair.
    Variants are installed one by one (an interrupted build keeps earlier ones and the card).
    """
    return build_crafted(REPO, source, variants, out_dir, "indiscriminate", build_variant, progress=progress)


def grid(budgets: list[float], seeds: list[int], max_train_rows: int | None, recipe: str = "paper"):
    return [IndiscriminateConfig(b, s, max_train_rows, recipe) for b, s in itertools.product(budgets, seeds)]


def rebuild_from_card(card_path: str | os.PathLike, config_name: str, out_dir: str | os.PathLike, source=None) -> Path:
    """Rebuild one variant from the parameters its card records (to check it byte for byte).

    The recipe's values must still be the ones the card records; otherwise the code's recipe changed since.
    """
    from hf_unlearn import cards

    params = cards.variant_params(card_path, config_name)
    cfg = IndiscriminateConfig(params["budget"], params["seed"], params.get("max_train_rows"), params["recipe"])
    check_rebuilt_name(config_name, cfg.name)
    recorded = params.get("recipe_params")
    if recorded is not None and recorded != asdict(RECIPES[cfg.recipe]):
        raise ValueError(
            f"{config_name!r} was built with recipe {cfg.recipe!r} = {recorded}, but the code's recipe is now "
            f"{asdict(RECIPES[cfg.recipe])}; check out the hf-unlearn version that built it to rebuild it"
        )
    return build(source or params["source"], [cfg], out_dir, progress=False)


def _variant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=float, nargs="+", default=[1.5, 2.0, 2.5],
                        help="poisons appended, in percent of the clean train rows (default 1.5 2 2.5)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                        help="crafting recipe: paper (A.1.3), cpu (fewer steps), tiny (tests) (default paper)")


CLI = BuilderCli(
    repo_name=REPO_NAME,
    doc=__doc__,
    source_help=SOURCE_HELP,
    add_variant_arguments=_variant_arguments,
    build=lambda args: build(args.source, grid(args.budget, args.seed, args.max_train_rows, args.recipe), args.out),
    rebuild=lambda args: rebuild_from_card(args.from_card, args.config, args.out, source=args.source),
)
add_arguments, run, main = CLI.add_arguments, CLI.run, CLI.main


if __name__ == "__main__":
    main()
