"""Text training overhead: ``hf_unlearn.train.train`` on an IMDb TextSplit against a bare PyTorch loop.

Both arms train the same GPT-2 classifier (``hf_unlearn.models.text``, built from the same seed)
with AdamW on the same batches for the same number of steps:

* project: ``train(split, None, TrainConfig(optimizer="adamw", model={...}), RunOptions(...))``
  through the imdb task, i.e. Accelerate, the compute meter, noise added to the poisoned rows'
  embeddings, the per-epoch ``save_state`` checkpoint (``--no-checkpointing`` turns it off) and
  the final safetensors + model card, all inside the timer;
* bare: seed, build the model, then for each step gather the rows (``TextSplit.inputs``, noise
  included), set the learning rate, forward, ``cross_entropy``, ``zero_grad``, ``backward``,
  ``step``. It borrows only the project's batch order (``epoch_permutation``) and learning-rate
  schedule (``lr_at``), so that both arms do the same arithmetic.

Before timing, one run of each is compared: the per-epoch mean training loss (the project's
``on_epoch_end``) and the final weights must agree (to 1e-5), which shows the batches, the
dropout draws and the updates are the same. Then the arms run round-robin ``--repeats`` times
after a warm-up round and the medians are compared (``_timing.interleaved``). Target: the project
within 10% of the bare loop's time (ratio <= 1.10); the ratio is printed whatever it is.

The reviews are random GPT-2 token ids of random lengths (left-padded to ``--tokens``); a tenth of
the rows carry Gaussian noise on their real tokens' embeddings, as a poisoned variant does.

    python benchmarks/text_training.py                       # 2 layers, 64 dims, 128 tokens, 256 rows, 2 epochs
    python benchmarks/text_training.py --rows 2048 --n-layer 4 --n-embd 256 --n-head 4 --device cuda
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, interleaved, add_gpt2_arguments, sync  # noqa: E402

TOLERANCE = 1e-5  # max |project - bare| over per-epoch losses and final weights (float32, same kernels)


def synthetic_split(rows: int, tokens: int, embed_dim: int, poison_fraction: float = 0.1, seed: int = 0):
    """A training TextSplit: random reviews of [tokens/4, tokens] tokens, the first rows poisoned with noise."""
    from hf_unlearn.models.text import GPT2_EOS_ID
    from hf_unlearn.tasks.imdb import TextSplit

    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(1, tokens // 4), tokens + 1, (rows,), generator=gen)
    ids = torch.full((rows, tokens), GPT2_EOS_ID, dtype=torch.long)
    mask = torch.zeros(rows, tokens, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):  # left padding: the last token of every row is real
        ids[i, tokens - n :] = torch.randint(0, GPT2_EOS_ID, (n,), generator=gen)
        mask[i, tokens - n :] = 1
    poisons = max(1, int(rows * poison_fraction))
    noise = torch.randn(poisons, tokens, embed_dim, generator=gen) * 0.1 * mask[:poisons, :, None]
    slots = torch.full((rows,), -1, dtype=torch.long)
    slots[:poisons] = torch.arange(poisons)
    y = torch.randint(0, 2, (rows,), generator=gen)
    return TextSplit(ids, mask, y, torch.arange(rows), noise, slots)


def bare_train(split, cfg, device: str, losses: list[torch.Tensor] | None = None) -> torch.nn.Module:
    """The plainest loop doing the project's arithmetic (same seed, batches, learning rates, AdamW)."""
    from hf_unlearn.models.text import build_text_model
    from hf_unlearn.train import epoch_permutation, lr_at

    torch.manual_seed(cfg.seed)  # before building: the seed fixes the initial weights and the dropout draws
    model = build_text_model({**cfg.model, "num_labels": 2}).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = math.ceil(len(split) / cfg.batch_size)
    total, warmup = steps * cfg.epochs, max(1, int(cfg.warmup_epochs * steps))
    model.train()
    for epoch in range(cfg.epochs):
        perm = epoch_permutation(len(split), cfg.seed, epoch)
        for step in range(steps):
            rows = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x, y = split.inputs(rows).to(device), split.y[rows].to(device)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_at(epoch * steps + step, total, warmup)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if losses is not None:
                losses.append(loss.detach() * len(rows))
    sync(device)
    return model


def project_train(split, cfg, device: str, checkpointing: bool, epoch_losses: list[float] | None = None):
    """``hf_unlearn.train.train`` through the imdb task, in a temporary output folder."""
    from hf_unlearn.train import RunOptions, train

    def record(epoch: int, info: dict) -> None:
        if epoch_losses is not None:
            epoch_losses.append(float(info["loss"]))

    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(output_dir=tmp, cpu=torch.device(device).type == "cpu", progress=False,
                             checkpointing=checkpointing)
        result = train(split, None, cfg, options, task="imdb", on_epoch_end=record)
    sync(device)
    return result.model


def compare(split, cfg, device: str, checkpointing: bool) -> dict[str, float]:
    """One run of each arm: max |difference| of the per-epoch mean losses and of the final weights."""
    project_losses: list[float] = []
    project = project_train(split, cfg, device, checkpointing, project_losses)
    step_losses: list[torch.Tensor] = []
    bare = bare_train(split, cfg, device, step_losses)
    steps = math.ceil(len(split) / cfg.batch_size)
    bare_losses = [float(sum(step_losses[e * steps : (e + 1) * steps])) / len(split) for e in range(cfg.epochs)]
    mine, theirs = project.state_dict(), bare.state_dict()
    if mine.keys() != theirs.keys():
        raise RuntimeError(f"the arms built different models: {sorted(set(mine) ^ set(theirs))[:5]}")
    weights = max(float((mine[k].float().cpu() - theirs[k].float().cpu()).abs().max()) for k in mine)
    loss = max(abs(a - b) for a, b in zip(project_losses, bare_losses))
    return {"loss_diff": loss, "weight_diff": weights, "project_losses": project_losses, "bare_losses": bare_losses}


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, check both arms agree, time them; return the numbers (and print them)."""
    from hf_unlearn.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gpt2_arguments(p)
    p.add_argument("--rows", type=int, default=256, help="training reviews")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per arm after one warm-up round")
    p.add_argument("--no-checkpointing", action="store_true", help="no per-epoch save_state in the project arm")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    for name in ("n_layer", "n_embd", "n_head", "tokens", "rows", "epochs", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}={getattr(args, name)}: must be a positive integer")
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=0.01,
                      warmup_epochs=0.5, optimizer="adamw", eval_batch_size=256,
                      model={"kind": "classifier", "n_layer": args.n_layer, "n_embd": args.n_embd,
                             "n_head": args.n_head, "max_length": args.tokens})
    split = synthetic_split(args.rows, args.tokens, args.n_embd)
    checkpointing = not args.no_checkpointing

    same = compare(split, cfg, args.device, checkpointing)
    if not (same["loss_diff"] <= TOLERANCE and same["weight_diff"] <= TOLERANCE):
        raise RuntimeError(f"the two arms disagree: per-epoch loss differs by {same['loss_diff']:.3g}, final weights "
                           f"by {same['weight_diff']:.3g} (tolerance {TOLERANCE:g}); the ratio would compare different work")

    t = interleaved({"project": lambda: project_train(split, cfg, args.device, checkpointing),
                     "bare": lambda: bare_train(split, cfg, args.device)}, repeats=args.repeats)
    ratio = t["project"] / t["bare"]
    steps = math.ceil(args.rows / args.batch_size) * args.epochs
    load = "n/a" if not hasattr(os, "getloadavg") else ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"text training benchmark: {args.rows} reviews x {args.tokens} tokens x {args.epochs} epochs "
          f"({steps} AdamW steps of {args.batch_size}), GPT-2 classifier {args.n_layer} layers x {args.n_embd} dims, "
          f"checkpointing {'on' if checkpointing else 'off'}, {args.repeats} repeats, device {args.device}; "
          f"{environment()}; load average {load}")
    print(f"  same work: per-epoch loss {', '.join(f'{v:.4f}' for v in same['project_losses'])} (max |diff| "
          f"{same['loss_diff']:.2g}), final weights max |diff| {same['weight_diff']:.2g} (tolerance {TOLERANCE:g})")
    for k, v in t.items():
        print(f"  {k:>7}: {v:6.2f} s ({args.rows * args.epochs / v:.0f} reviews/s)")
    print(f"  project / bare time = {ratio:.3f} (target <= 1.10)")
    return {"ratio": ratio, "seconds": t, **same}


if __name__ == "__main__":
    run()
