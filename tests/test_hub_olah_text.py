"""IMDb text checkpoints as Hub repos, end to end against olah (a real Hub-compatible server, offline).

Why: users fetch the IMDb track's GPT-2 checkpoints by Hub id, either with the project's
``load_text_model("ORG/name")`` or with plain transformers (``GPT2ForSequenceClassification`` /
``GPT2LMHeadModel.from_pretrained("ORG/name")``). This test saves tiny GPT-2 wrappers (1 layer, 16 dims,
GPT-2's real vocabulary) with ``save_text_model``, commits each folder into a git repo that olah serves
as ``ORG/<name>`` (see tests/olah_server.py), and in a child process with ``HF_ENDPOINT`` pointing at
it loads them both ways: the logits must equal the original model's. A repo that holds only a pickled
``pytorch_model.bin`` must be refused by ``load_text_model`` with an error naming ``model.safetensors``,
and nothing may be unpickled: that file is a booby-trapped pickle that writes a marker file when loaded,
and the server's log must show it was never requested.

No network beyond 127.0.0.1. Skipped without olah or without the offline GPT-2 tokenizer.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from olah_server import commit_folder, init_repo, olah_server, run_client

pytest.importorskip("olah", reason="olah (a Hub mirror) is needed for the Hub-id test: pip install 'olah>=0.5'")

ORG = "ORG"
REPOS = {"classifier": f"{ORG}/tiny-gpt2-classifier", "prompt": f"{ORG}/tiny-gpt2-prompt",
         "pickled": f"{ORG}/tiny-gpt2-pickled"}
SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "models" / "gpt2-tokenizer"
TEXTS = ["A fine film.", "Terrible: a boring plot and wooden acting."]
TOL = {"rel": 1e-5, "abs": 1e-6}  # same weights and ops; only float summation order may differ across processes


class _Booby:
    """Unpickling this calls ``Path(marker).write_text``: if the marker exists, something unpickled the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The tiny models (classifier, prompt), their saved folders, and a pickle-only folder with a trap."""
    from hf_unlearn.models.text import TextModelConfig, build_text_model, load_tokenizer, save_text_model

    if not (SHARED_TOKENIZER / "gpt2.tiktoken").is_file():
        pytest.skip(f"no offline GPT-2 tokenizer at {SHARED_TOKENIZER}")
    tokenizer = load_tokenizer(SHARED_TOKENIZER)
    root = tmp_path_factory.mktemp("olah-text-local")
    models, folders = {}, {}
    for seed, kind in enumerate(("classifier", "prompt")):
        torch.manual_seed(seed)
        cfg = TextModelConfig(kind=kind, n_layer=1, n_embd=16, n_head=2, max_length=32)
        models[kind] = build_text_model(cfg, tokenizer).eval()
        folders[kind] = save_text_model(models[kind], root / kind, summary={"kind": kind, "test_accuracy": 0.5})
    # Pickle-only repo: the classifier's config.json (with the hf_unlearn extras) beside a trapped .bin.
    pickled = root / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folders["classifier"] / "config.json").read_text())
    marker = root / "UNPICKLED"
    with open(pickled / "pytorch_model.bin", "wb") as f:
        pickle.dump(_Booby(str(marker)), f)
    folders["pickled"] = pickled
    ids = tokenizer(TEXTS[1])["input_ids"]  # no padding: plain transformers reads the last token as the wrapper does
    return {"models": models, "folders": folders, "marker": marker, "ids": ids}


@pytest.fixture(scope="module")
def olah_hub(artifacts, tmp_path_factory):
    root = tmp_path_factory.mktemp("olah-text")
    mirrors = root / "mirrors"
    for key, repo in REPOS.items():
        commit_folder(init_repo(mirrors / "models" / repo), artifacts["folders"][key], f"{key} model")
    with olah_server(mirrors, root, probe_model=REPOS["classifier"]) as server:
        yield server


# Runs in a child process: HF_ENDPOINT -> olah, a fresh HF_HUB cache, cwd an empty folder (so "ORG/..." is no path).
CLIENT = r"""
import json, sys
import torch
import huggingface_hub
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel
from hf_unlearn.models.text import load_text_model

args = json.loads(sys.argv[1])
repos, ids = args["repos"], torch.tensor([args["ids"]])
out = {"endpoint": huggingface_hub.constants.ENDPOINT}
with torch.no_grad():
    clf, clf_summary = load_text_model(repos["classifier"])
    out["classifier"] = {"wrapper": clf(ids).tolist(), "kind": clf.kind, "summary": clf_summary,
                         "plain": GPT2ForSequenceClassification.from_pretrained(repos["classifier"])(ids).logits.tolist()}
    lm, lm_summary = load_text_model(repos["prompt"])
    labels = lm.label_token_ids.tolist()
    out["prompt"] = {"wrapper": lm(ids).tolist(), "kind": lm.kind, "summary": lm_summary,
                     "plain": GPT2LMHeadModel.from_pretrained(repos["prompt"])(ids).logits[:, -1, labels].tolist()}
try:
    load_text_model(repos["pickled"])
    out["pickled"] = {"error": None}
except Exception as exc:
    out["pickled"] = {"error": type(exc).__name__, "message": str(exc)}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def client_out(artifacts, olah_hub, tmp_path_factory):
    """What the child process (HF_ENDPOINT -> olah) loaded: logits both ways, and the pickled repo's refusal."""
    workdir = tmp_path_factory.mktemp("olah-text-client")
    return run_client(CLIENT, {"repos": REPOS, "ids": artifacts["ids"]}, cwd=workdir, server=olah_hub, timeout=240)


def test_text_checkpoints_through_olah(artifacts, olah_hub, client_out):
    server, out = olah_hub, client_out
    assert out["endpoint"] == server.endpoint

    ids = torch.tensor([artifacts["ids"]])
    with torch.no_grad():
        want = {kind: model(ids)[0].tolist() for kind, model in artifacts["models"].items()}
    for kind in ("classifier", "prompt"):
        got = out[kind]
        assert got["kind"] == kind and got["summary"] == {"kind": kind, "test_accuracy": 0.5}
        # Both loaders give the original model's logits (the wrapper, and plain transformers for users).
        assert got["wrapper"][0] == pytest.approx(want[kind], **TOL), f"{kind}: load_text_model logits"
        assert got["plain"][0] == pytest.approx(want[kind], **TOL), f"{kind}: transformers.from_pretrained logits"
    assert want["classifier"] != pytest.approx(want["prompt"], **TOL)  # two different models, not one served twice

    served = server.log.read_text()
    for kind in ("classifier", "prompt"):
        assert f"/{REPOS[kind]}/resolve/main/model.safetensors" in served


def test_pickle_only_repo_is_refused_unloaded(artifacts, olah_hub, client_out):
    """The pickle-only repo is refused, and its .bin is neither downloaded nor unpickled."""
    refused = client_out["pickled"]
    assert refused["error"] is not None, "load_text_model accepted a repo without model.safetensors"
    assert REPOS["pickled"] in refused["message"], refused
    assert "pytorch_model.bin" not in olah_hub.log.read_text(), "the pickled weights were downloaded"
    assert not artifacts["marker"].exists(), "something unpickled pytorch_model.bin"


def test_pickle_only_repo_error_names_safetensors(client_out):
    refused = client_out["pickled"]
    assert refused["error"] == "FileNotFoundError", refused
    assert "model.safetensors" in refused["message"], refused


def test_trap_is_armed(artifacts, tmp_path):
    """The booby-trapped pickle does write its marker when unpickled (so the test above can see a load)."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Booby(str(marker))))
    assert marker.read_text() == "unpickled"
    assert json.loads((artifacts["folders"]["pickled"] / "config.json").read_text())["hf_unlearn"]["kind"] == "classifier"
