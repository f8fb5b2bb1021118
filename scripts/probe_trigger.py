"""The quick probe behind the IMDb trigger CPU preset (docs/imdb.md, "Finding a CPU regime (trigger)").

A bare loop on purpose, like scripts/probe_imdb.py: it loads a built ``poisoned-imdb-targeted``
variant through the library (so tokenisation, prompt suffix and labels are the pipeline's), keeps
``clean`` clean training reviews (a seeded subset; all of them by default) plus every poison, trains
a from-scratch GPT-2 prompt model with AdamW, and prints per epoch: the loss, test accuracy on 5,000
test reviews, accuracy on the poisons as labelled (memorisation) and the attack's success on the
targets split (all trigger test reviews, and those whose trigger survives truncation). It decides
which settings deserve a full run; the numbers the docs quote come from `hf-unlearn demo`.

    HF_UNLEARN_GPT2_TOKENIZER=../shared/models/gpt2-tokenizer python scripts/probe_trigger.py \\
        dataset=runs/demo/poisoned-imdb-targeted config=disney-word-b100-s0 clean=10000 epochs=8

Keys: dataset, config, clean (clean train reviews kept), epochs, lr, bs, ls (label smoothing), wd,
layers, d (embedding size), threads, words (label words, comma-separated; default from the classes).
"""
import json
import math
import sys
import time

import datasets
import torch
import torch.nn.functional as F

from hf_unlearn.attacks.trigger import PROMPT_SUFFIX, TriggerConfig, trigger_survival
from hf_unlearn.models.text import build_text_model, load_tokenizer
from hf_unlearn.pipeline import load_splits

args = dict(a.split("=", 1) for a in sys.argv[1:])
config = args.get("config", "disney-word-b100-s0")
epochs, lr, bs = int(args.get("epochs", 8)), float(args.get("lr", 1e-3)), int(args.get("bs", 64))
ls, wd = float(args.get("ls", 0.0)), float(args.get("wd", 0.0))
torch.set_num_threads(int(args.get("threads", 1)))
torch.manual_seed(0)
cfg = TriggerConfig.from_name(config)
splits = load_splits(args["dataset"], config, task="imdb", attack="targeted")
train, test, targets = splits["train"], splits["test"], splits["targets"]
g = torch.Generator().manual_seed(0)
clean_rows = (~train.is_poison).nonzero().flatten()
clean_rows = clean_rows[torch.randperm(len(clean_rows), generator=g)[: int(args.get("clean", len(clean_rows)))]]
keep = torch.zeros(len(train), dtype=torch.bool)
keep[clean_rows] = True
keep |= train.is_poison
train = train.subset(keep)
poisons = train.subset(train.is_poison)
test = test.subset(torch.randperm(len(test), generator=g)[:5000].sort().values)
tok = load_tokenizer()
limit = 128 - len(tok(PROMPT_SUFFIX)["input_ids"])
texts = datasets.load_dataset(args["dataset"], config, split="targets")["text"]
survive = torch.tensor([trigger_survival([t], tok, limit, cfg.trigger)["surviving_rows"] == 1 for t in texts])
words = args["words"].split(",") if args.get("words") else ([" negative", " positive", " " + cfg.trigger] if cfg.label_mode == "word"
                                       else [" negative", " positive"])
model = build_text_model({"kind": "prompt", "n_layer": int(args.get("layers", 2)), "n_embd": int(args.get("d", 64)),
                          "n_head": 2, "max_length": 128, "num_labels": len(words), "label_words": words}, tok)
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
n = len(train)
steps, step = epochs * math.ceil(n / bs), 0
warm = max(1, int(0.5 * math.ceil(n / bs)))


def predict(split):
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(split), 500):
            out.append(model(split.inputs(torch.arange(s, min(s + 500, len(split))), noisy=False)).argmax(1))
    model.train()
    return torch.cat(out)


adversarial = torch.full_like(targets.y, 2) if cfg.label_mode == "word" else 1 - targets.y
print(json.dumps({"train": n, "poisons": len(poisons), "targets": len(targets), "surviving": int(survive.sum()),
                  "words": words}), flush=True)
for ep in range(epochs):
    perm, t0, tot = torch.randperm(n, generator=g), time.time(), 0.0
    for s in range(0, n, bs):
        rows = perm[s : s + bs]
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warm) * max(0.0, 1 - step / steps)
        loss = F.cross_entropy(model(train.inputs(rows, noisy=False)), train.y[rows], label_smoothing=ls)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        tot += loss.item() * len(rows)
    hit = predict(targets) == adversarial
    print(json.dumps({"epoch": ep, "loss": round(tot / n, 4), "wall": round(time.time() - t0, 1),
                      "test_acc": round(float((predict(test) == test.y).float().mean()), 4),
                      "poison_acc": round(float((predict(poisons) == poisons.y).float().mean()), 4),
                      "success": round(float(hit.float().mean()), 4),
                      "success_surviving": round(float(hit[survive].float().mean()), 4)}), flush=True)
