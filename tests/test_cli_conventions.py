"""The CLI's conventions across verbs (issue 11): one revision convention, `--version`, every user error one line with
exit 2, `score` on the accelerator. The verbs run in-process (``cli.main``) on a tiny variant and a width-4 model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from hf_unlearn.cli import main
from hf_unlearn.results import read_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHA = "0123456789abcdef0123456789abcdef01234567"  # a commit id: offline, the Hub cache serves snapshots/<SHA>/


@pytest.fixture(scope="module")
def work(tiny_variant, tmp_path_factory, one_torch_thread):
    """A folder with the tiny variant (``ds``) and a 1-epoch width-4 checkpoint of it (``runs/m``)."""
    folder, cfg = tiny_variant
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(folder, root / "ds")
    code = main(["train", "--dataset", str(root / "ds"), "--config", cfg.name, "--output-dir", str(root / "runs" / "m"),
                 "--task", "cifar10", "--attack", "gaussian",
                 "--set", "train.epochs=1", "--set", "train.width=4", "--no-progress", "--cpu"])
    assert code == 0
    return root, cfg.name


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``hf-unlearn ARGV`` in-process: (exit code, stdout, stderr). A traceback fails the test by raising."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --version, --help, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str, alone: bool = True) -> str:
    """Exit 2 and one ``hf-unlearn VERB: error: ...`` line holding ``needles``; ``alone``: nothing else on stderr
    (else datasets' own progress bars may come before it)."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert [line for line in lines if "error:" in line] == lines[-1:], err
    assert lines[-1].startswith("hf-unlearn ") and (len(lines) == 1 or not alone), err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def variant_args(root: Path, config: str) -> list[str]:
    return ["--dataset", str(root / "ds"), "--config", config, "--task", "cifar10", "--attack", "gaussian"]


# --------------------------------------------------------------------------------------------- --version
def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"hf-unlearn {version('hf-unlearn')}"


# --------------------------------------------------------------------------------------------- revisions
def fake_hub_checkpoint(cache: Path, checkpoint: Path, repo_id: str, sha: str) -> None:
    """``checkpoint`` as the Hub cache holds a downloaded commit ``sha`` of model repo ``repo_id``."""
    snap = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / sha
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "training_summary.json"):
        shutil.copy(checkpoint / name, snap / name)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_unlearn_records_the_checkpoint_revision_as_the_model_s_not_the_dataset_s(work, hub_cache, tmp_path, capsys):
    """The provenance bug: `unlearn --checkpoint ORG/x --revision SHA` recorded the model's commit as the dataset's."""
    root, config = work
    fake_hub_checkpoint(hub_cache, root / "runs" / "m", "someorg/poisoned", SHA)
    common = ["unlearn", "--checkpoint", "someorg/poisoned", "--method", "none", "--null-draws", "2", "--no-progress",
              "--cpu", *variant_args(root, config)]

    code, _, err = run(capsys, *common, "--revision", SHA, "--output", str(tmp_path / "old.jsonl"))
    assert code == 0, err
    (old,) = read_records(tmp_path / "old.jsonl")
    assert old.dataset["revision"] is None, "the checkpoint's commit is not the dataset's revision"
    assert old.model == {"id": "someorg/poisoned", "revision": SHA}
    assert "--revision is deprecated" in err and f"--checkpoint-revision {SHA}" in err, err

    code, _, err = run(capsys, *common, "--checkpoint-revision", SHA, "--dataset-revision", "main",
                       "--output", str(tmp_path / "new.jsonl"))
    assert code == 0, err
    assert "deprecated" not in err
    (new,) = read_records(tmp_path / "new.jsonl")
    assert new.model == {"id": "someorg/poisoned", "revision": SHA}
    assert new.dataset == {"id": str(root / "ds"), "config": config, "revision": "main"}


def test_score_takes_both_revisions_and_the_old_flag_means_the_dataset_s(work, hub_cache, tmp_path, capsys):
    root, config = work
    fake_hub_checkpoint(hub_cache, root / "runs" / "m", "someorg/poisoned", SHA)
    out = tmp_path / "r.jsonl"
    common = ["score", "--null-draws", "2", "--output", str(out), *variant_args(root, config)]
    code, _, err = run(capsys, *common, "--checkpoint", "someorg/poisoned", "--checkpoint-revision", SHA,
                       "--dataset-revision", "main")
    assert code == 0, err
    code, _, err = run(capsys, *common, "--checkpoint", f"someorg/poisoned@{SHA}", "--revision", "main")
    assert code == 0, err
    assert "deprecated" in err and "--dataset-revision main" in err, err
    for record in read_records(out):
        assert record.model == {"id": "someorg/poisoned", "revision": SHA}
        assert record.dataset["revision"] == "main"
    code, _, err = run(capsys, *common, "--checkpoint", "someorg/poisoned", "--revision", "main",
                       "--dataset-revision", "v2")
    assert_one_line_error(code, err, "disagree")


def test_train_takes_dataset_revision_and_warns_on_the_old_flag(work, tmp_path, capsys):
    root, config = work
    common = ["train", *variant_args(root, config), "--set", "train.epochs=1", "--set", "train.width=4",
              "--no-progress", "--cpu"]
    code, _, err = run(capsys, *common, "--dataset-revision", "main", "--output-dir", str(tmp_path / "a"))
    assert code == 0 and "deprecated" not in err, err
    summary = json.loads((tmp_path / "a" / "training_summary.json").read_text())
    assert summary["dataset"]["revision"] == "main"
    code, _, err = run(capsys, *common, "--revision", "main", "--output-dir", str(tmp_path / "b"))
    assert code == 0 and "--dataset-revision main" in err, err
    code, _, err = run(capsys, "train", *variant_args(root, config), "--checkpoint-revision", "x")
    assert code == 2 and "unrecognized arguments: --checkpoint-revision" in err, "train reads no checkpoint"


# --------------------------------------------------------------------------------------------- user errors
def test_a_truncated_parquet_is_one_line(work, tmp_path, capsys):
    """A folder whose card records no checksums (a hand-made or older folder): datasets fails to read the shard."""
    root, config = work
    bad = tmp_path / "bad-ds"
    shutil.copytree(root / "ds", bad)
    card = bad / "README.md"
    card.write_text(re.sub(r"\n( +)sha256:\n(\1 +.*\n)+", "\n", card.read_text()))
    assert "sha256:" not in card.read_text()
    shard = next((bad / "data" / config).glob("forget-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:500])
    code, _, err = run(capsys, "score", "--checkpoint", str(root / "runs" / "m"), "--dataset", str(bad),
                       "--config", config, "--task", "cifar10", "--attack", "gaussian")
    line = assert_one_line_error(code, err, str(bad), config, alone=False)
    assert f"data/{config}/{shard.name} could not be read" in line and "rebuild" in line


@pytest.mark.parametrize("config_json, needle", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "holds a list"),
    ('{"foo": 1}', "neither a ResNet-18 config"),
    ('{"model_type": "bert"}', "model_type 'bert'"),
    ('{"width": 8}', "weights do not fit"),
])
def test_a_wrong_checkpoint_config_is_one_line(work, tmp_path, capsys, config_json, needle):
    root, config = work
    bad = tmp_path / "bad-ckpt"
    shutil.copytree(root / "runs" / "m", bad)
    (bad / "config.json").write_text(config_json)
    code, _, err = run(capsys, "score", "--checkpoint", str(bad), *variant_args(root, config))
    assert_one_line_error(code, err, str(bad), needle)


@pytest.mark.parametrize("override, needles", [
    ("train.lr=abc", ("train.lr", "'abc'", "float")),
    ("train.epochs=1.5", ("train.epochs", "1.5", "int")),
    ("train.nesterov=2", ("train.nesterov", "2", "bool")),
    ("train.augment=maybe", ("augment", "maybe")),
    ("poison.eps=0.2", ("poison.eps=0.2", "train", "demo, benchmark")),
    ("scoring.null_draws=5", ("scoring", "hf-unlearn score")),
])
def test_train_set_values_are_typed_and_keys_checked_for_the_verb(work, tmp_path, capsys, override, needles):
    root, config = work
    code, _, err = run(capsys, "train", *variant_args(root, config), "--set", override,
                       "--output-dir", str(tmp_path / "t"), "--no-progress", "--cpu")
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "t" / "training_summary.json").exists()


def test_typed_values_for_presets_and_overrides():
    """The dataclass field's type decides: YAML's string '1e-4' is a float for a float field, not for an int one."""
    from hf_unlearn.config import apply_overrides, load_preset

    cfg = apply_overrides(load_preset("demo"), ["train.lr=1e-4", "poison.max_train_rows=null", "train.augment=flip"])
    assert cfg.train.lr == 1e-4 and cfg.poison.max_train_rows is None and cfg.train.augment == "flip"
    with pytest.raises(ValueError, match=r"poison.max_train_rows='many': expected int or None"):
        apply_overrides(load_preset("demo"), ["poison.max_train_rows=many"])
    assert apply_overrides(load_preset("demo"), ["poison.eps=0.2"], verb="demo").poison.eps == 0.2


def test_a_missing_checkpoint_folder_is_one_line(work, capsys, monkeypatch, tmp_path):
    root, config = work
    monkeypatch.chdir(root)  # runs/ exists here: runs/nope is a mistyped folder, not the Hub repo of org "runs"
    code, _, err = run(capsys, "score", "--checkpoint", "runs/nope", *variant_args(root, config))
    assert_one_line_error(code, err, "runs/nope", "does not exist", "ORG/NAME")
    monkeypatch.chdir(tmp_path)  # no local folder: a Hub id the (offline) Hub cache does not have
    code, _, err = run(capsys, "score", "--checkpoint", "nobody/nope", *variant_args(root, config))
    assert_one_line_error(code, err, "nobody/nope", "no such local folder", "ORG/NAME")


def test_submit_accepts_an_existing_relative_checkpoint_folder(work, capsys, monkeypatch, tmp_path):
    root, config = work
    monkeypatch.chdir(tmp_path)
    shutil.copytree(root / "runs" / "m", tmp_path / "runs" / "u" / "gd")
    code, _, err = run(capsys, "score", "--checkpoint", "runs/u/gd", *variant_args(root, config),
                       "--null-draws", "2", "--output", "scored.jsonl")
    assert code == 0, err
    (record,) = read_records(tmp_path / "scored.jsonl")
    row = record.to_dict() | {"method": "gd", "budget_fraction": 0.1}
    (tmp_path / "gd.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "store").mkdir()
    code, out, err = run(capsys, "submit", "gd.jsonl", "--leaderboard", "store", "--submitter", "ci",
                         "--checkpoint", "runs/u/gd", "--no-verify")
    assert code == 0, err
    stored = [json.loads(p.read_text()) for p in (tmp_path / "store").rglob("*.json")]
    assert any('"./runs/u/gd"' in json.dumps(s) for s in stored), stored


# --------------------------------------------------------------------------------------------- device
def test_score_runs_where_accelerate_puts_it(monkeypatch):
    import torch
    from accelerate import PartialState

    from hf_unlearn.scoring import scoring_device

    PartialState._reset_state()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    try:
        assert scoring_device().type == "cuda"
        assert scoring_device(cpu=True) == torch.device("cpu")
    finally:
        PartialState._reset_state()


def test_score_verb_asks_for_the_accelerator_unless_cpu(work, capsys, monkeypatch):
    import torch

    import hf_unlearn.scoring

    root, config = work
    asked = []
    monkeypatch.setattr(hf_unlearn.scoring, "scoring_device",
                        lambda cpu=False: asked.append(cpu) or torch.device("cpu"))
    for extra in ([], ["--cpu"]):
        code, _, err = run(capsys, "score", "--checkpoint", str(root / "runs" / "m"), *variant_args(root, config),
                           "--null-draws", "2", *extra)
        assert code == 0, err
    assert asked == [False, True]


def test_preset_method_config_is_checked_and_reaches_the_demo_s_methods(tmp_path):
    from hf_unlearn.config import apply_overrides, load_preset
    from hf_unlearn.demo import run_demo

    cfg = apply_overrides(load_preset("demo"), ["method_config.gd.lr=0.0123", "method_config.gd.batch_size=16",
                                                "poison.max_train_rows=120", "train.epochs=1", "scoring.null_draws=2"],
                          verb="demo")
    assert cfg.method_config == {"gd": {"lr": 0.0123, "batch_size": 16}}
    with pytest.raises(ValueError, match="unknown key"):
        apply_overrides(cfg, ["method_config.gd.learning_rate=1"], verb="demo")
    with pytest.raises(ValueError, match="does not use method_config"):
        apply_overrides(cfg, ["method_config.gd.lr=1"], verb="train")
    out = run_demo(cfg, str(tmp_path / "demo"), progress=False, cpu=True, methods=("gd",))
    (record,) = out["records"]
    assert record["method"] == "gd" and record["method_config"]["lr"] == 0.0123
    assert record["method_config"]["batch_size"] == 16
