"""Sweep the demo's knobs (noise scale, epochs, train rows, width, augmentation, budget).

Each cell builds the variant from the shipped samples, trains the poisoned model,
scores it (50+ poisons, 40 null draws each) and prints one line; the lines are the
calibration table in docs/calibration.md.

    python scripts/calibrate_demo.py --cells "eps=0.15,n=1000,b=5,epochs=40" "eps=0.1,n=1000,b=5,epochs=40"
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from dataset_builders.poisoned_cifar10_gaussian import build
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
from hf_unlearn.scoring import gaussian_scores
from hf_unlearn.train import RunOptions, TrainConfig, train
from hf_unlearn.variant import image_split, load_variant

DEFAULTS = {"eps": 0.15, "n": 1000, "b": 5.0, "epochs": 40, "width": 16, "augment": 0, "lr": 0.05, "wd": 5e-4, "bs": 128, "seed": 0}


def run_cell(spec: str, retrain: bool) -> dict:
    cell = dict(DEFAULTS)
    for part in filter(None, spec.split(",")):
        k, v = part.split("=")
        cell[k] = type(DEFAULTS[k])(float(v)) if isinstance(DEFAULTS[k], int) else float(v)
    cfg = GaussianPoisonConfig(cell["eps"], cell["b"], cell["seed"], cell["n"])
    with tempfile.TemporaryDirectory() as tmp:
        build("samples", [cfg], f"{tmp}/ds", progress=False)
        ds = load_variant(f"{tmp}/ds", cfg.name)
        tr, fg, te = (image_split(ds[s]) for s in ("train", "forget", "test"))
        if retrain:
            tr = tr.subset(~tr.is_poison)
        tc = TrainConfig(epochs=cell["epochs"], width=cell["width"], augment=bool(cell["augment"]), lr=cell["lr"],
                         weight_decay=cell["wd"], batch_size=cell["bs"], seed=cell["seed"])
        t0 = time.perf_counter()
        res = train(tr, te, tc, RunOptions(output_dir=f"{tmp}/m", checkpointing=False, progress=False, cpu=True))
        secs = time.perf_counter() - t0
        s = gaussian_scores(res.model, fg, cfg.eps, null_draws=40).summary()
    row = {"cell": spec, "retrain": retrain, "test_acc": round(res.test_accuracy, 3), "gus": round(s["gus"], 3),
           "se": round(s["gus_stderr"], 3), "tpr1": s["tpr_at_fpr_0.01"], "tpr01": s["tpr_at_fpr_0.001"],
           "auc": round(s["auc"], 3), "poisons": s["num_poisons"], "train_s": round(secs)}
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=[""])
    p.add_argument("--retrain", action="store_true", help="also train each cell without its poisons")
    a = p.parse_args()
    for c in a.cells:
        run_cell(c, False)
        if a.retrain:
            run_cell(c, True)
