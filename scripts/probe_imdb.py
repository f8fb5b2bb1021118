"""The quick probe behind the IMDb CPU preset (docs/imdb.md, "Finding a CPU regime").

A bare loop on purpose: it trains a small from-scratch GPT-2 classifier (hf_unlearn.models.text) on
a seeded subset of the real IMDb with Gaussian noise on the token embeddings of P reviews, prints
test accuracy per epoch (on 5,000 test reviews), then GUS on the poisons (one fresh-noise draw per
poison for the null) and how the model treats the noisy rows. It decides which settings deserve a
full run; the numbers the docs quote for the preset come from `hf-unlearn demo --preset
imdb-gaussian`, which builds the real variant and scores it with the library's scorer.

    HF_UNLEARN_GPT2_TOKENIZER=../shared/models/gpt2-tokenizer \
        python scripts/probe_imdb.py n=5000 epochs=15 P=250 eps=0.5 ls=0.1

Keys: n (train reviews), L (max tokens), d (embedding size), layers, epochs, lr, bs, threads,
eps, P (poisons), ls (label smoothing), kind (classifier | prompt), source (IMDb parquet folder).
"""
import os, sys, time, json, math
import torch, torch.nn.functional as F
from hf_unlearn.data import load_source
from hf_unlearn.models.text import load_tokenizer, build_text_model, TextInputs
from hf_unlearn.tasks.imdb import tokenize_reviews
args = dict(a.split("=") for a in sys.argv[1:])
n = int(args.get("n", 25000)); L = int(args.get("L", 128)); d = int(args.get("d", 64)); layers = int(args.get("layers", 2))
epochs = int(args.get("epochs", 2)); lr = float(args.get("lr", 1e-3)); bs = int(args.get("bs", 64)); threads = int(args.get("threads", 1))
eps = float(args.get("eps", 0.0)); P = int(args.get("P", 0)); kind = args.get("kind", "classifier")
torch.set_num_threads(threads); torch.manual_seed(0)
ds = load_source("imdb", args.get("source", "../shared/data/imdb"))
tok = load_tokenizer()
g = torch.Generator().manual_seed(0)
tr_rows = torch.randperm(len(ds["train"]), generator=g)[:n].tolist()
te_rows = torch.randperm(len(ds["test"]), generator=g)[:5000].tolist()
tr = ds["train"].select(tr_rows); te = ds["test"].select(te_rows)
t0 = time.time()
ids, mask = tokenize_reviews(tr["text"], tok, L); y = torch.tensor(tr["label"])
tids, tmask = tokenize_reviews(te["text"], tok, L); ty = torch.tensor(te["label"])
print("tokenised", time.time() - t0, ids.shape, flush=True)
model = build_text_model({"kind": kind, "n_layer": layers, "n_embd": d, "n_head": max(1, d // 32), "max_length": L}, tok)
noise = torch.zeros(0)
if P:
    prow = torch.randperm(n, generator=g)[:P]
    noise = torch.zeros(n, ids.shape[1], d)
    noise[prow] = torch.randn(P, ids.shape[1], d, generator=g) * eps
    noise *= mask[:, :, None]
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
steps = epochs * math.ceil(n / bs); step = 0
def evaluate(m, ids_, mask_, y_):
    m.eval(); c = 0
    with torch.no_grad():
        for s in range(0, len(y_), 500):
            c += (m(TextInputs(ids_[s:s+500], mask_[s:s+500])).argmax(1) == y_[s:s+500]).sum().item()
    m.train(); return c / len(y_)
for ep in range(epochs):
    perm = torch.randperm(n, generator=g); t0 = time.time(); tot = 0
    for s in range(0, n, bs):
        r = perm[s:s+bs]
        for gr in opt.param_groups: gr["lr"] = lr * min(1, (step + 1) / 100) * max(0.0, 1 - step / steps)
        x = TextInputs(ids[r], mask[r], noise[r] if P else None)
        loss = F.cross_entropy(model(x), y[r], label_smoothing=float(args.get("ls", 0))); opt.zero_grad(); loss.backward(); opt.step(); step += 1; tot += loss.item() * len(r)
    print(json.dumps({"epoch": ep, "loss": tot / n, "wall": round(time.time() - t0, 1), "test_acc": evaluate(model, tids, tmask, ty)}), flush=True)
if P:
    model.eval(); model.requires_grad_(False)
    pr = prow[:500]
    emb = model.embed(ids[pr]).detach().requires_grad_(True)
    loss = F.cross_entropy(model.forward_embeds(emb, mask[pr]), y[pr], reduction="sum")
    (gr,) = torch.autograd.grad(loss, emb)
    gr = (gr * mask[pr][:, :, None]).reshape(len(pr), -1); xi = noise[pr].reshape(len(pr), -1)
    sc = -(gr * xi).sum(1) / (eps * gr.norm(dim=1))
    null = -(gr * torch.randn_like(xi)).sum(1) / gr.norm(dim=1)
    print(json.dumps({"gus": sc.mean().item(), "se": (sc.std() / len(sc) ** .5).item(), "null_mean": null.mean().item()}))
if P:
    with torch.no_grad():
        a = model(TextInputs(ids[prow[:300]], mask[prow[:300]], noise[prow[:300]]))
        b = model(TextInputs(ids[prow[:300]], mask[prow[:300]]))
        print(json.dumps({"noisy_acc": (a.argmax(1) == y[prow[:300]]).float().mean().item(),
                          "clean_acc": (b.argmax(1) == y[prow[:300]]).float().mean().item(),
                          "logit_diff": (a - b).abs().mean().item(), "emb_std": model.transformer.wte.weight.std().item(),
                          "noise_std": noise[prow[:300]][mask[prow[:300]].bool()].std().item()}))
