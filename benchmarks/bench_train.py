"""Training-loop overhead: ``hf_unlearn.train.train`` against a bare PyTorch loop, same device, model and data.

Both arms train the same ResNet-18 for the same epochs, batch size and SGD recipe on the same in-memory
tensors, on the same device, with the same memory format (NHWC on CUDA) and autocast setting. The project's arm
also runs Accelerate, the compute meter, noise injection, the seeded permutation and per-epoch ``save_state``
(the bare loop does none of that); on an accelerator it keeps the split on the device
(``RunOptions.data_on_device``), and so does the bare loop (float pixels, noise already added: the least work).
Target: the project within 10% of the bare loop's time (images/s ratio >= 0.9; the issue's floor is 0.8x).

    python benchmarks/bench_train.py [--rows 512] [--epochs 2] [--width 16] [--device cuda] [--json out.jsonl]

On a GPU, the paper's network and batch: ``--device cuda --rows 50000 --epochs 2 --width 64 --batch-size 256
--mixed-precision bf16``. Every run prints one JSON line (and appends it to ``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile

import torch
import torch.nn.functional as F

from _timing import environment, interleaved, sync
from hf_unlearn.models.resnet import ResNet18
from hf_unlearn.train import RunOptions, TrainConfig, train
from hf_unlearn.variant import ImageSplit


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default=default_device(), help="cpu or cuda (default: cuda when there is one)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16"], help="autocast for both arms")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, metavar="PATH", help="also append the result line to this JSONL file")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible; use --device cpu")
    cpu = device.type == "cpu"
    nhwc = device.type == "cuda"  # the project's default on CUDA; never on the CPU (train.RunOptions.channels_last)
    fmt = torch.channels_last if nhwc else torch.contiguous_format

    gen = torch.Generator().manual_seed(0)
    n = args.rows
    x = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    poisons = max(1, n // 67)  # 1.5%, the paper's budget
    slots = torch.full((n,), -1)
    slots[:poisons] = torch.arange(poisons)
    split = ImageSplit(x, y, torch.arange(n), torch.randn(poisons, 3, 32, 32, generator=gen) * 0.1, slots)
    cfg = TrainConfig(epochs=args.epochs, width=args.width, batch_size=args.batch_size)

    def project():
        with tempfile.TemporaryDirectory() as tmp:
            train(split, None, cfg, RunOptions(output_dir=tmp, cpu=cpu, progress=False,
                                               mixed_precision=args.mixed_precision))
        sync(args.device)

    xf = split.inputs(torch.arange(n)).to(device)
    yd = y.to(device)

    def bare():
        torch.manual_seed(0)
        model = ResNet18(width=args.width).to(device, memory_format=fmt)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
        amp = (torch.autocast(device.type, dtype=torch.bfloat16) if args.mixed_precision == "bf16"
               else contextlib.nullcontext())
        for _ in range(args.epochs):
            perm = torch.randperm(n, device=device)
            for i in range(0, n, cfg.batch_size):
                rows = perm[i : i + cfg.batch_size]
                with amp:
                    loss = F.cross_entropy(model(xf[rows].contiguous(memory_format=fmt)), yd[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
        sync(args.device)

    t = interleaved({"project": project, "bare": bare}, repeats=args.repeats)
    images = n * args.epochs
    rate = {k: images / v for k, v in t.items()}
    print(f"training benchmark: {n} rows x {args.epochs} epochs, batch {args.batch_size}, ResNet-18 width "
          f"{args.width}, {args.device}, mixed precision {args.mixed_precision}; {environment()}")
    for k, v in t.items():
        print(f"  {k:>7}: {v:6.2f} s ({rate[k]:.0f} images/s)")
    print(f"  project / bare time = {t['project'] / t['bare']:.3f} (target <= 1.10)")
    line = {"benchmark": "train", "device": str(device), "device_name": _device_name(device), "rows": n,
            "epochs": args.epochs, "batch_size": args.batch_size, "width": args.width,
            "mixed_precision": args.mixed_precision, "seconds": t, "images_per_s": rate,
            "project_over_bare_time": t["project"] / t["bare"],
            "project_over_bare_throughput": rate["project"] / rate["bare"], "environment": environment()}
    print(json.dumps(line))
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    main()
