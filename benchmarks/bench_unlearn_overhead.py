"""Overhead of the unlearning runner: one GD epoch on the retain set, runner vs a bare PyTorch loop.

Claim: the shared loop (metered steps, seeded batches, the step trace) costs less than
10% over the plainest loop doing the same arithmetic. Both runs start from the same
weights, see the same batches in the same order with the same SGD settings, and must
end with the same weights (checked), so the ratio measures overhead only. Timers wrap
each whole call: ``run_method`` (model copy included) against a model copy plus the bare
epoch, synchronised on a GPU; the arms run round-robin ``--repeats`` times after a warm-up
round (``_timing.interleaved``) and the medians are compared.

    python benchmarks/bench_unlearn_overhead.py            # demo scale: 950 retain images, width-16 ResNet-18
    python benchmarks/bench_unlearn_overhead.py --rows 256 --width 8 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import tempfile

import torch
import torch.nn.functional as F
from _timing import environment, interleaved


def bare_epoch(model, retain, perm, cfg, device):
    """The plainest loop: gather, forward, backward, step."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    model.train()
    for start in range(0, len(retain), cfg.batch_size):
        rows = perm[start : start + cfg.batch_size]
        x = retain.inputs(rows).to(device)
        y = retain.y[rows].to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return model


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000, help="training rows of the samples variant (default 1000)")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 width (default 16, the demo's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per arm (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from hf_unlearn.models.resnet import ResNet18
    from hf_unlearn.pipeline import build_dataset, load_splits
    from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
    from hf_unlearn.unlearn import UnlearnContext, build_config, run_method
    from hf_unlearn.unlearn.runner import retain_forget

    variant = GaussianPoisonConfig(0.15, 5.0, 0, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_dataset("samples", variant, f"{tmp}/poisoned-cifar10-gaussian")
        retain, forget = retain_forget(load_splits(folder, variant.name))
    torch.manual_seed(0)
    model = ResNet18(width=args.width).to(args.device)
    cfg = build_config("gd", {"epochs": 1})
    seed = 0
    # The runner's batch order for epoch 0 of the "retain" stream, reproduced for the bare loop.
    gen = UnlearnContext(model, retain, forget, seed=seed).generator("retain", 0)
    perm = torch.randperm(len(retain), generator=gen)

    arms = {
        "runner": lambda: run_method(model, retain, forget, "gd", config=cfg, seed=seed, device=args.device),
        "bare": lambda: bare_epoch(copy.deepcopy(model), retain, perm, cfg, args.device),
    }
    result, bare_model = arms["runner"](), arms["bare"]()
    same = all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in
               zip(result.model.state_dict().values(), bare_model.state_dict().values()))
    if not same:
        raise SystemExit("the runner and the bare loop ended with different weights: they did not do the same work")
    sync(args.device)
    times = interleaved(arms, repeats=args.repeats, warmup=0)  # the calls above were the warm-up

    print(f"GD, one epoch over {len(retain)} retain images ({len(result.steps)} steps of {cfg.batch_size}), "
          f"ResNet-18 width {args.width}, {args.device}; {environment()}")
    print(f"runner: median {times['runner']:.3f} s   bare loop: median {times['bare']:.3f} s   ({args.repeats} repeats)")
    print(f"ratio runner/bare: {times['runner'] / times['bare']:.3f} (target <= 1.10); same final weights: {same}")


if __name__ == "__main__":
    main()
