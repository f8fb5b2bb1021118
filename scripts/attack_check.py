"""Do the crafted CIFAR-10 attacks work at this scale? Success of the victims against a clean model, with intervals.

Issue 10 asks, before any unlearning, for evidence that the two crafted attacks work on the CPU regime: targeted
success well above the clean model's rate over at least 10 targets, and a measurable test-accuracy drop for the
indiscriminate poisons, each with an interval. This script reads the trained victims (one per variant: a ResNet-18
trained from scratch on the poisoned train split, ``hf-unlearn train``) and one clean reference model, and writes
the table and a JSON summary.

    python scripts/attack_check.py \
        --targeted /work/bench/crafted/poisoned-cifar10-targeted \
        --indiscriminate /work/bench/crafted/poisoned-cifar10-indiscriminate \
        --models /work/bench/crafted/models --out docs/attacks

Models are found as ``<models>/<config>-poisoned`` (the victim of each variant) and ``<config>-retrain``
(``hf-unlearn train --retrain``: trained without the forget rows). The clean reference of each attack is the first
``-retrain`` model found for it: the targeted one never saw any poisons crafted for the other variants' targets
either (it is their clean model; for its own variant it is Retrain proper), the indiscriminate one is trained on
exactly the clean rows every budget shares.

Targeted: per target, whether the victim predicts the adversarial label, and whether the clean model does; the
success rate over all targets with a Wilson 95% interval; the probability each gives the adversarial class, and
on how many targets the victim moved towards it (a sign test: a graded effect that ten binary hits cannot show);
and the clean model's base rate (the share of all test
images of the target class it assigns to each variant's poison class, averaged over variants), which is what
"well above the clean model's rate" is measured against. Indiscriminate: the victim's test accuracy minus the
clean model's, per budget, with a paired 95% interval over the 10,000 shared test images
(``stats.paired_accuracy_difference``: test-set sampling only; training-seed variation is about half a point).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _configs(folder: Path) -> list[str]:
    """The variants the folder's card lists (the card is written as each variant is installed)."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(folder / "README.md").data.to_dict()
    return sorted(card.get("hf_unlearn", {}).get("variants", {}))


def _model(models: Path, config: str, role: str):
    from hf_unlearn.train import load_checkpoint

    folder = models / f"{config}-{role}"
    if not (folder / "model.safetensors").exists():
        return None
    return load_checkpoint(str(folder))[0]


def _first_clean(models: Path, configs: list[str], clean: Path | None = None):
    if clean is not None:
        from hf_unlearn.train import load_checkpoint

        return clean.name, load_checkpoint(str(clean))[0]
    for config in configs:
        model = _model(models, config, "retrain")
        if model is not None:
            return config, model
    return None, None


def _class_probability(model, split, labels: np.ndarray) -> np.ndarray:
    """Softmax probability ``model`` gives each row of ``split`` (clean inputs, eval mode) for ``labels[row]``."""
    import torch

    from hf_unlearn.attacks import predict_logits

    probs = torch.softmax(predict_logits(model, split).double(), 1)
    return probs[torch.arange(len(split)), torch.as_tensor(labels)].numpy()


def sign_test_p(wins: int, n: int) -> float:
    """One-sided exact sign test: P(Binomial(n, 1/2) >= wins), the chance of at least this many targets moving
    towards the adversarial class if the poisons did nothing (the victim as likely to move either way)."""
    from math import comb

    return sum(comb(n, j) for j in range(wins, n + 1)) / 2**n


def targeted(folder: Path, models: Path, clean_model: Path | None = None) -> dict:
    from hf_unlearn.attacks import predict
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.stats import wilson_interval

    configs = _configs(folder)
    clean_config, clean = _first_clean(models, configs, clean_model)
    if clean is None:
        raise SystemExit(f"no <config>-retrain model under {models} for {folder.name}: train one with --retrain")
    rows, base_rates = [], []
    for config in configs:
        victim = _model(models, config, "poisoned")
        if victim is None:
            continue
        splits = load_splits(folder, config, needed=("test",))
        targets, test = splits["targets"], splits["test"]
        adversarial = targets.adversarial_label.numpy()
        hit = predict(victim, targets) == adversarial
        clean_hit = predict(clean, targets) == adversarial
        p_victim = _class_probability(victim, targets, adversarial)
        p_clean = _class_probability(clean, targets, adversarial)
        test_pred_victim, test_pred_clean = predict(victim, test), predict(clean, test)
        truth = test.y.numpy()
        same_class = truth == int(targets.y[0])
        base_rates.append(float((test_pred_clean[same_class] == adversarial[0]).mean()))
        for t in range(len(targets)):
            rows.append({
                "config": config, "target_index": int(targets.index[t]), "poison_label": int(adversarial[t]),
                "victim_success": bool(hit[t]), "clean_success": bool(clean_hit[t]),
                "victim_adversarial_probability": float(p_victim[t]),
                "clean_adversarial_probability": float(p_clean[t]),
                "victim_test_accuracy": float((test_pred_victim == truth).mean()),
                "clean_test_accuracy": float((test_pred_clean == truth).mean()),
            })
    n = len(rows)
    if not n:
        raise SystemExit(f"no victim (<config>-poisoned) under {models} for {folder.name}")
    k, k0 = sum(r["victim_success"] for r in rows), sum(r["clean_success"] for r in rows)
    towards = sum(r["victim_adversarial_probability"] > r["clean_adversarial_probability"] for r in rows)
    log_ratio = [np.log(r["victim_adversarial_probability"] / r["clean_adversarial_probability"]) for r in rows]
    return {
        "moved_towards_adversarial": towards, "sign_test_p": sign_test_p(towards, n),
        "median_probability_ratio": float(np.exp(np.median(log_ratio))),
        "clean_model": clean_config if clean_model else f"{clean_config}-retrain", "targets": rows, "num_targets": n,
        "success": k / n, "success_ci95": wilson_interval(k, n),
        "clean_success": k0 / n, "clean_success_ci95": wilson_interval(k0, n),
        "clean_base_rate": float(np.mean(base_rates)),
    }


def indiscriminate(folder: Path, models: Path, clean_model: Path | None = None) -> dict:
    from hf_unlearn import cards
    from hf_unlearn.attacks import predict
    from hf_unlearn.pipeline import load_splits
    from hf_unlearn.stats import paired_accuracy_difference

    configs = _configs(folder)
    clean_config, clean = _first_clean(models, configs, clean_model)
    if clean is None:
        raise SystemExit(f"no <config>-retrain model under {models} for {folder.name}: train one with --retrain")
    rows = []
    clean_correct = None
    for config in configs:
        victim = _model(models, config, "poisoned")
        if victim is None:
            continue
        test = load_splits(folder, config, needed=("test",))["test"]
        truth = test.y.numpy()
        if clean_correct is None:
            clean_correct = predict(clean, test) == truth
        correct = predict(victim, test) == truth
        diff, lo, hi = paired_accuracy_difference(correct, clean_correct)
        params = cards.variant_params(folder, config)
        rows.append({
            "config": config, "budget": params["budget"], "num_poisons": params["num_poisons"],
            "victim_test_accuracy": float(correct.mean()), "clean_test_accuracy": float(clean_correct.mean()),
            "drop": -diff, "drop_ci95": (-hi, -lo),
        })
    if not rows:
        raise SystemExit(f"no victim (<config>-poisoned) under {models} for {folder.name}")
    return {"clean_model": clean_config if clean_model else f"{clean_config}-retrain",
            "budgets": sorted(rows, key=lambda r: r["budget"])}


def markdown(result: dict) -> str:
    out = []
    if "targeted" in result:
        t = result["targeted"]
        lo, hi = t["success_ci95"]
        clo, chi = t["clean_success_ci95"]
        out += [
            "## Targeted (gradient matching)", "",
            f"Clean reference: `{t['clean_model']}`.", "",
            "| variant | target (test row) | poison class | victim hits | clean model hits | P(poison class): clean -> victim "
            "| victim test acc |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        out += [f"| {r['config']} | {r['target_index']} | {r['poison_label']} | {'yes' if r['victim_success'] else 'no'} "
                f"| {'yes' if r['clean_success'] else 'no'} | {r['clean_adversarial_probability']:.3g} -> "
                f"{r['victim_adversarial_probability']:.3g} | {r['victim_test_accuracy']:.3f} |" for r in t["targets"]]
        out += ["", f"**Success {t['success']:.2f}** ({sum(r['victim_success'] for r in t['targets'])}/{t['num_targets']} "
                f"targets, Wilson 95% [{lo:.2f}, {hi:.2f}]); the clean model {t['clean_success']:.2f} on the same targets "
                f"([{clo:.2f}, {chi:.2f}]); its base rate (test images of the target class it assigns to the poison "
                f"class, mean over variants) {t['clean_base_rate']:.3f}. The victim gives the poison class more "
                f"probability than the clean model on {t['moved_towards_adversarial']}/{t['num_targets']} targets "
                f"(one-sided sign test p = {t['sign_test_p']:.3g}; median ratio {t['median_probability_ratio']:.3g}x).",
                ""]
    if "indiscriminate" in result:
        d = result["indiscriminate"]
        out += [
            "## Indiscriminate (gradient canceling)", "",
            f"Clean reference: `{d['clean_model']}` (trained on the clean rows every budget shares).", "",
            "| variant | budget % | poisons | victim test acc | clean test acc | drop (95% paired CI) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [f"| {r['config']} | {r['budget']} | {r['num_poisons']} | {r['victim_test_accuracy']:.4f} | "
                f"{r['clean_test_accuracy']:.4f} | {r['drop']:+.4f} [{r['drop_ci95'][0]:+.4f}, {r['drop_ci95'][1]:+.4f}] |"
                for r in d["budgets"]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targeted", type=Path, help="built poisoned-cifar10-targeted folder")
    parser.add_argument("--indiscriminate", type=Path, help="built poisoned-cifar10-indiscriminate folder")
    parser.add_argument("--models", type=Path, required=True, help="folder of <config>-poisoned / -retrain models")
    parser.add_argument("--clean-model", type=Path, help="the clean reference checkpoint (default: the first "
                        "<config>-retrain under --models); e.g. a model trained on the clean rows both attacks share")
    parser.add_argument("--out", type=Path, help="write attack_check.md and attack_check.json here")
    args = parser.parse_args(argv)
    if not (args.targeted or args.indiscriminate):
        parser.error("give --targeted and/or --indiscriminate")
    result = {}
    if args.targeted:
        result["targeted"] = targeted(args.targeted, args.models, args.clean_model)
    if args.indiscriminate:
        result["indiscriminate"] = indiscriminate(args.indiscriminate, args.models, args.clean_model)
    text = markdown(result)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "attack_check.md").write_text(text)
        (args.out / "attack_check.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
