"""Text scoring throughput: ``hf_unlearn.tasks.imdb.input_gradients`` against a bare frozen-weight gradient.

Scoring an IMDb Gaussian variant costs one input gradient per poison, taken on the token
embeddings (``hf_unlearn.scoring.gaussian_scores`` -> the imdb task's ``input_gradients``, batches
of 256); the null scores reuse it. This compares that path with the plainest code doing the
same arithmetic on the same model and the same batches:

    model.eval(); model.requires_grad_(False)
    embeds = wte(ids).requires_grad_()
    logits = model.forward_embeds(embeds, mask)        # GPT-2 on inputs_embeds, positions from the mask
    (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), embeds)

The project's extra work is the split's batching (``TextSplit.inputs``: gather, drop all-pad
columns), the ``frozen`` context, zeroing the gradient outside the noise support and copying it
into one (N, L*d) CPU tensor. Both arms are checked to give the same gradients (to 1e-5) before
timing; then they run round-robin ``--repeats`` times after a warm-up round and the medians are
compared (``_timing.interleaved``). Target: the project reaches >= 0.8x the bare throughput.

The reviews are random GPT-2 token ids of random lengths (left-padded to ``--tokens``), on a
randomly initialised GPT-2 classifier: throughput does not depend on the words.

    python benchmarks/text_scoring.py                      # 2 layers, 64 dims, 128 tokens, 256 reviews
    python benchmarks/text_scoring.py --n-layer 24 --n-embd 1024 --n-head 16 --reviews 1024 --device cuda
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, interleaved, add_gpt2_arguments, sync  # noqa: E402

TOLERANCE = 1e-5  # max |project - bare| over all gradient entries (float32, same kernels)


def synthetic_split(reviews: int, tokens: int, embed_dim: int, seed: int = 0):
    """A forget-like TextSplit: every row a poison with noise on its real tokens, lengths in [tokens/4, tokens]."""
    from hf_unlearn.models.text import GPT2_EOS_ID
    from hf_unlearn.tasks.imdb import TextSplit

    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(1, tokens // 4), tokens + 1, (reviews,), generator=gen)
    ids = torch.full((reviews, tokens), GPT2_EOS_ID, dtype=torch.long)
    mask = torch.zeros(reviews, tokens, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):  # left padding: the last token of every row is real
        ids[i, tokens - n :] = torch.randint(0, GPT2_EOS_ID, (n,), generator=gen)
        mask[i, tokens - n :] = 1
    noise = torch.randn(reviews, tokens, embed_dim, generator=gen) * 0.1 * mask[:, :, None]
    y = torch.randint(0, 2, (reviews,), generator=gen)
    return TextSplit(ids, mask, y, torch.arange(reviews), noise, torch.arange(reviews))


def build_model(n_layer: int, n_embd: int, n_head: int, tokens: int, device: str):
    """A random GPT-2 classifier (``hf_unlearn.models.text``), seeded."""
    from hf_unlearn.models.text import build_text_model

    torch.manual_seed(0)
    model = build_text_model({"kind": "classifier", "n_layer": n_layer, "n_embd": n_embd, "n_head": n_head,
                              "max_length": tokens})
    return model.to(device).eval()


def bare_batches(split, batch_size: int, device: str) -> list[tuple[torch.Tensor, ...]]:
    """The batches input_gradients sees (same rows, same trimmed width), prepared once, on the device."""
    out = []
    for start in range(0, len(split), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(split)))
        x = split.inputs(rows, noisy=False)
        out.append((x.ids.to(device), x.mask.to(device), split.y[rows].to(device)))
    return out


def bare_gradients(model, batches) -> list[torch.Tensor]:
    """The plain way: frozen weights, embeddings as the leaf, summed cross-entropy, one autograd.grad per batch."""
    model.eval()
    model.requires_grad_(False)
    grads = []
    for ids, mask, y in batches:
        embeds = model.transformer.wte(ids).requires_grad_()
        loss = F.cross_entropy(model.forward_embeds(embeds, mask), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, embeds)
        grads.append(g)
    return grads


def max_difference(project: torch.Tensor, bare: list[torch.Tensor], split) -> float:
    """Max |project - bare| with the bare gradients laid out as the project's (N, L*d), zero off the support."""
    length, d = split.ids.shape[1], split.embed_dim
    full = torch.zeros(len(split), length, d)
    start = 0
    for g in bare:
        rows = slice(start, start + len(g))
        full[rows, length - g.shape[1] :] = g.float().cpu()
        start += len(g)
    full *= split.noise_mask[:, :, None]
    return float((project.reshape(len(split), length, d) - full).abs().max())


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, check both arms agree, time them; return the numbers (and print them)."""
    from hf_unlearn.tasks.imdb import input_gradients

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gpt2_arguments(p)
    p.add_argument("--reviews", type=int, default=256, help="poisons scored")
    p.add_argument("--batch-size", type=int, default=256, help="rows per gradient batch (scoring's default: 256)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per arm after one warm-up round")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    for name in ("n_layer", "n_embd", "n_head", "tokens", "reviews", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}={getattr(args, name)}: must be a positive integer")
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build_model(args.n_layer, args.n_embd, args.n_head, args.tokens, args.device)
    split = synthetic_split(args.reviews, args.tokens, args.n_embd)
    batches = bare_batches(split, args.batch_size, args.device)

    diff = max_difference(input_gradients(model, split, args.batch_size), bare_gradients(model, batches), split)
    if not diff <= TOLERANCE:
        raise RuntimeError(f"the two arms disagree: max |project - bare| = {diff:.3g} > {TOLERANCE:g}; "
                           "the ratio would compare different work")

    def project():
        input_gradients(model, split, args.batch_size)
        sync(args.device)

    def bare():
        bare_gradients(model, batches)
        sync(args.device)

    t = interleaved({"project": project, "bare": bare}, repeats=args.repeats)
    ratio = t["bare"] / t["project"]  # throughput ratio = inverse time ratio (same reviews)
    load = "n/a" if not hasattr(os, "getloadavg") else ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"text scoring benchmark: {args.reviews} reviews x {args.tokens} tokens, GPT-2 classifier "
          f"{args.n_layer} layers x {args.n_embd} dims, batches of {args.batch_size}, {args.repeats} repeats, "
          f"device {args.device}; {environment()}; load average {load}")
    print(f"  gradients agree: max |project - bare| = {diff:.2g} (tolerance {TOLERANCE:g})")
    for k, v in t.items():
        print(f"  {k:>7}: {args.reviews / v:8.1f} reviews/s (median {v * 1000:.1f} ms)")
    print(f"  project / bare throughput = {ratio:.2f}x (target >= 0.8x)")
    return {"ratio": ratio, "seconds": t, "max_abs_diff": diff, "reviews": args.reviews}


if __name__ == "__main__":
    run()
