"""Task and attack registries: lookups, clear errors, and dispatch (a fake task/attack flows through the core).

The fake plug-ins reuse the schema's names ``imdb`` / ``indiscriminate`` (records only accept those) but
replace whatever is registered under them for one test (``monkeypatch`` restores the registries), so these
tests need neither the text task's file nor transformers.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from hf_unlearn import attacks, tasks
from hf_unlearn.attacks import AttackEvaluation, get_attack, list_attacks, variant_identity
from hf_unlearn.tasks import get_task, list_tasks

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- lookups and errors
def test_builtin_names_are_registered():
    assert {"cifar10", "imdb"} <= set(list_tasks())
    assert {"gaussian", "targeted"} <= set(list_attacks())
    assert "gaussian" in list_attacks("cifar10") and "targeted" in list_attacks("imdb")
    assert {"gaussian", "targeted", "indiscriminate"} == set(list_attacks("cifar10"))
    assert get_task("cifar10").name == "cifar10" and get_task("cifar10").input_column == "img"
    assert get_attack("gaussian", "cifar10").repo_name("cifar10") == "poisoned-cifar10-gaussian"
    assert get_attack("gaussian", "cifar10").parse_config("eps0.1-b1.5-s0").eps == 0.1


def test_unknown_names_fail_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'mnist'; known tasks: \[.*'cifar10'.*'imdb'"):
        get_task("mnist")
    with pytest.raises(ValueError, match=r"unknown attack 'nope'; known attacks: \[.*'gaussian'.*'targeted'"):
        get_attack("nope")
    with pytest.raises(ValueError, match=r"'indiscriminate' is not available for task 'imdb'; it exists for tasks \['cifar10'\]"):
        get_attack("indiscriminate", "imdb")


def test_a_lazy_entry_is_listed_before_import_and_a_missing_module_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(tasks, "_LAZY", {**tasks._LAZY})
    tasks.register_lazy_task("ghost", "hf_unlearn.tasks.no_such_module")
    assert "ghost" in list_tasks()
    with pytest.raises(ValueError, match=r"task 'ghost' lives in hf_unlearn.tasks.no_such_module, which failed to import"):
        get_task("ghost")
    # A module that exists and defines TASK is imported on first use.
    (tmp_path / "fake_task_module.py").write_text("class T:\n    name = 'lazyfake'\n    def load_splits(self, d, c): return {}\nTASK = T()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tasks, "_TASKS", {**tasks._TASKS})
    tasks.register_lazy_task("lazyfake", "fake_task_module")
    assert type(get_task("lazyfake")).__name__ == "T" and "lazyfake" in tasks._TASKS


# ----------------------------------------------------------------------------- which variant is it?
def test_variant_identity_from_the_name_the_card_or_the_caller(tmp_path):
    assert variant_identity("runs/x/poisoned-cifar10-gaussian", "eps0.1-b1.5-s0") == ("cifar10", "gaussian")
    assert variant_identity("org/poisoned-cifar10-gaussian") == ("cifar10", "gaussian")
    folder = tmp_path / "my-variant"
    folder.mkdir()
    (folder / "README.md").write_text("---\npretty_name: poisoned-cifar10-gaussian\n---\n# card\n")
    assert variant_identity(folder, "eps0.1-b1.5-s0") == ("cifar10", "gaussian")
    assert variant_identity(tmp_path / "elsewhere", None, task="cifar10", attack="gaussian") == ("cifar10", "gaussian")


def test_variant_identity_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"cannot tell the task and attack of dataset .*known tasks: \['cifar10', 'imdb'"):
        variant_identity(tmp_path / "data", "eps0.1-b1.5-s0")
    with pytest.raises(ValueError, match=r"unknown task 'mnist'"):
        variant_identity("poisoned-mnist-gaussian", "eps0.1-b1.5-s0")
    with pytest.raises(ValueError, match=r"holds cifar10/gaussian variants, but config name 'b1' is not a Gaussian"):
        variant_identity("poisoned-cifar10-gaussian", "b1")


# ----------------------------------------------------------------------------- a fake task and attack
class FakeInputs:
    """A non-tensor model input (like text inputs): only ``.to`` and ``len``."""

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.moved_to: list[str] = []

    def to(self, device):
        self.moved_to.append(str(device))
        return FakeInputs(self.x.to(device))

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class FakeSplit:
    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    noise_slot: torch.Tensor
    noise: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_poison(self) -> torch.Tensor:
        return self.noise_slot >= 0

    def inputs(self, rows: torch.Tensor, *, noisy: bool = True) -> FakeInputs:
        return FakeInputs(self.x[rows])

    def subset(self, keep: torch.Tensor) -> "FakeSplit":
        slots = self.noise_slot[keep]
        new = torch.full_like(slots, -1)
        new[slots >= 0] = torch.arange(int((slots >= 0).sum()))
        return FakeSplit(self.x[keep], self.y[keep], self.index[keep], new, self.noise[slots[slots >= 0]])

    @classmethod
    def concat(cls, a: "FakeSplit", b: "FakeSplit") -> "FakeSplit":
        return cls(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]), torch.cat([a.index, b.index]),
                   torch.cat([a.noise_slot, torch.where(b.noise_slot >= 0, b.noise_slot + len(a.noise), -1)]),
                   torch.cat([a.noise, b.noise]))

    @classmethod
    def cat_inputs(cls, parts: list[FakeInputs]) -> FakeInputs:
        return FakeInputs(torch.cat([p.x for p in parts]))


class FakeModel(nn.Module):
    def __init__(self, dim: int = 4, num_classes: int = 2):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, inputs: FakeInputs) -> torch.Tensor:
        assert isinstance(inputs, FakeInputs), f"the model got {type(inputs).__name__}, not the task's inputs"
        return self.fc(inputs.x)

    def save_pretrained(self, folder) -> None:
        from safetensors.torch import save_file

        Path(folder).mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(Path(folder) / "model.safetensors"))


class FakeTask:
    name = "imdb"
    hub_id = "fake/source"
    input_column = "text"
    label_names = ("neg", "pos")
    split_class = FakeSplit
    image_augmentation = False
    model_title = "FakeNet"

    def __init__(self):
        self.built: list[tuple] = []

    def build_model(self, train_config, num_classes):
        self.built.append((train_config.model.get("dim", 4), num_classes))
        return FakeModel(train_config.model.get("dim", 4), num_classes)

    def accuracy(self, model, split, batch_size=512, device=None) -> float:
        return 0.25  # a sentinel: the record must carry the task's own accuracy

    def input_gradients(self, model, split):
        return torch.tensor([[3.0, 4.0], [0.0, 2.0]])

    def noise_matrix(self, split):
        return torch.tensor([[-0.3, 0.0], [0.0, 0.1]])


@dataclass
class FakeConfig:
    level: int = 1

    @property
    def name(self) -> str:
        return f"fake-v{self.level}"


class FakeAttack:
    name = "indiscriminate"
    tasks = ("imdb",)
    columns = ()
    config_class = FakeConfig

    def __init__(self):
        self.calls: list[dict] = []

    def supports(self, task):
        return getattr(task, "name", task) in self.tasks

    def repo_name(self, task):
        return f"poisoned-{getattr(task, 'name', task)}-{self.name}"

    def parse_config(self, name):
        if name != "fake-v1":
            raise ValueError(f"config name {name!r} is not a fake variant")
        return name

    def evaluate(self, model, splits, *, task, config, null_draws, seed, batch_size=256):
        self.calls.append({"task": task, "config": config, "null_draws": null_draws, "seed": seed})
        return AttackEvaluation({"accuracy_gap_to_retrain": 0.125}, scores="fake-scores")


def _fake_splits(n: int = 8, poisons: int = 2) -> dict[str, FakeSplit]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 4, generator=g), torch.arange(n) % 2
    slots = torch.full((n,), -1)
    slots[:poisons] = torch.arange(poisons)
    train = FakeSplit(x, y, torch.arange(n), slots, torch.randn(poisons, 4, generator=g))
    return {"train": train, "forget": train.subset(train.is_poison), "test": train.subset(~train.is_poison)}


@pytest.fixture
def fakes(monkeypatch):
    """FakeTask as 'imdb' and FakeAttack as ('indiscriminate', 'imdb'), for this test only."""
    task, attack = FakeTask(), FakeAttack()
    monkeypatch.setattr(tasks, "_TASKS", {**tasks._TASKS, "imdb": task})
    monkeypatch.setattr(tasks, "_LAZY", {k: v for k, v in tasks._LAZY.items() if k != "imdb"})
    # the real gradient-canceling attack (lazy, or loaded by an earlier test) is hidden, so "indiscriminate"
    # exists for the fake imdb only
    real = ("indiscriminate", "cifar10")
    monkeypatch.setattr(attacks, "_ATTACKS", {**{k: v for k, v in attacks._ATTACKS.items() if k != real},
                                              ("indiscriminate", "imdb"): attack})
    monkeypatch.setattr(attacks, "_LAZY", {k: v for k, v in attacks._LAZY.items() if k != real})
    return task, attack


def test_a_fake_task_and_attack_flow_through_score_to_record(fakes):
    from hf_unlearn.pipeline import score_to_record

    task, attack = fakes
    splits = _fake_splits()
    record, scores = score_to_record(
        FakeModel(), splits, dataset_ref={"id": "org/poisoned-imdb-indiscriminate", "config": "fake-v1", "revision": None},
        model_ref={"id": "m", "revision": None}, method="none", null_draws=3, seed=0, score_seed=7)
    assert (record.task, record.attack) == ("imdb", "indiscriminate")
    assert record.metrics == {"test_accuracy": 0.25, "retain_accuracy": 0.25, "forget_accuracy": 0.25,
                              "accuracy_gap_to_retrain": 0.125}
    assert scores == "fake-scores"
    assert attack.calls == [{"task": task, "config": "fake-v1", "null_draws": 3, "seed": 7}]
    with pytest.raises(ValueError, match="is not a fake variant"):
        score_to_record(FakeModel(), splits, dataset_ref={"id": "poisoned-imdb-indiscriminate", "config": "v2"},
                        model_ref={"id": "m"}, method="none", null_draws=3, seed=0)


def test_a_preset_switched_to_another_attack_takes_that_attacks_parameters(fakes):
    from hf_unlearn.config import apply_overrides, load_preset

    demo = load_preset("demo")
    assert (demo.task, demo.attack, demo.poison.name) == ("cifar10", "gaussian", "eps0.15-b5-s0-n1000")
    cfg = apply_overrides(demo, ["task=imdb", "attack=indiscriminate", "poison.level=3"])
    assert (cfg.task, cfg.attack, cfg.poison) == ("imdb", "indiscriminate", FakeConfig(3))
    with pytest.raises(ValueError, match=r"unknown key 'eps'"):
        apply_overrides(demo, ["task=imdb", "attack=indiscriminate", "poison.eps=0.1"])
    with pytest.raises(ValueError, match=r"attack 'indiscriminate' is not available for task 'cifar10'"):
        apply_overrides(demo, ["attack=indiscriminate"])


def test_gaussian_scores_use_the_task_gradients_and_noise(fakes):
    from hf_unlearn.scoring import gaussian_scores

    forget = _fake_splits()["forget"]
    scores = gaussian_scores(FakeModel(), forget, eps=0.5, null_draws=2, task="imdb")
    # -<g, xi> / (eps ||g||): row 0: -(3 * -0.3) / (0.5 * 5) = 0.36; row 1: -(2 * 0.1) / (0.5 * 2) = -0.2
    assert scores.poison.tolist() == pytest.approx([0.36, -0.2], abs=1e-6)
    assert scores.null.shape == (2, 2)
    # Without a task, the split's class names it.
    assert gaussian_scores(FakeModel(), forget, eps=0.5, null_draws=2).poison.tolist() == pytest.approx([0.36, -0.2], abs=1e-6)


def test_train_builds_the_task_model_and_feeds_it_the_task_inputs(fakes, tmp_path, capsys):
    from hf_unlearn.train import RunOptions, TrainConfig, train

    task, _ = fakes
    splits = _fake_splits()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.01, optimizer="adamw", model={"dim": 4}, augment="flip-crop")
    result = train(splits["train"], splits["test"], cfg, RunOptions(output_dir=str(tmp_path / "m"), cpu=True,
                                                                     progress=False, checkpointing=False))
    assert task.built == [(4, 2)], "train must build the model with the task's build_model and its label count"
    assert isinstance(result.model, FakeModel) and 0.0 <= result.test_accuracy <= 1.0
    assert "augment='flip-crop' ignored: task 'imdb' has no image inputs" in capsys.readouterr().out
    summary = json.loads((tmp_path / "m" / "training_summary.json").read_text())
    assert summary["task"] == "imdb" and summary["train_config"]["optimizer"] == "adamw"
    assert "FakeNet" in (tmp_path / "m" / "README.md").read_text()


def test_unlearning_context_uses_the_split_class(fakes):
    from hf_unlearn.unlearn.base import UnlearnContext, concat_splits

    splits = _fake_splits()
    both = concat_splits(splits["test"], splits["forget"])
    assert isinstance(both, FakeSplit) and both.index.tolist() == [2, 3, 4, 5, 6, 7, 0, 1]
    assert both.noise_slot.tolist() == [-1] * 6 + [0, 1]
    ctx = UnlearnContext(FakeModel(), splits["test"], splits["forget"])
    batch = ctx.batch(splits["test"], torch.arange(3))
    assert isinstance(batch.x, FakeInputs) and len(batch) == 3
    held = ctx._held_batch()  # retain + forget rows through the split class's cat_inputs
    assert isinstance(held.x, FakeInputs) and len(held.x) == len(held.y) == 8


# ----------------------------------------------------------------------------- checkpoints pick their task
def test_load_checkpoint_dispatches_on_the_config(fakes, tmp_path, monkeypatch):
    from hf_unlearn.tasks import task_for_checkpoint
    from hf_unlearn.train import load_checkpoint

    assert task_for_checkpoint({"width": 16, "num_classes": 10}).name == "cifar10"
    task, _ = fakes
    monkeypatch.setattr(FakeTask, "load_model", lambda self, path, revision=None: (FakeModel(), {"loaded_by": "fake"}),
                        raising=False)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    model, summary = load_checkpoint(str(folder))  # a transformers config: the task registered for gpt2 loads it
    assert isinstance(model, FakeModel) and not model.training and summary == {"loaded_by": "fake"}
    assert task_for_checkpoint({"model_type": "gpt2"}) is task
    with pytest.raises(ValueError, match=r"model_type 'bert'; hf-unlearn loads \['gpt2'\]"):
        task_for_checkpoint({"model_type": "bert"})


# ----------------------------------------------------------------------------- TrainConfig's new keys
def test_train_config_optimizer_and_model_keys_are_checked():
    from hf_unlearn.train import TrainConfig, make_optimizer

    params = [nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(TrainConfig(), params), torch.optim.SGD)
    assert isinstance(make_optimizer(TrainConfig(optimizer="adamw"), params), torch.optim.AdamW)
    with pytest.raises(ValueError, match=r"optimizer='adam': expected one of \['sgd', 'adamw'\]"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="model keys"):
        TrainConfig(model={"n_layer": {"value": 2}})
    with pytest.raises(ValueError, match="model keys"):
        TrainConfig(model={"label_words": [" a", [" b"]]})
    assert TrainConfig(model={"label_words": [" negative", " positive", " Disney"]}).model["label_words"][2] == " Disney"
    with pytest.raises(ValueError, match="takes no model keys"):
        get_task("cifar10").build_model(TrainConfig(model={"n_layer": 2}), 10)


# ----------------------------------------------------------------------------- no names below the CLI
CORE = ("pipeline.py", "scoring.py", "train.py", "benchmark.py", "demo.py", "unlearn/runner.py", "unlearn/base.py",
        "config.py", "cards.py")
NAMES = {"cifar10", "imdb", "gaussian", "targeted", "indiscriminate"}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """Every string constant except docstrings, with its line."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


@pytest.mark.parametrize("module", CORE)
def test_the_core_names_no_task_or_attack(module):
    """DESIGN.md: nothing below the CLI writes a task or attack name as a constant (they come from the variant)."""
    hits = [(line, s) for line, s in _string_constants(ROOT / "hf_unlearn" / module)
            if s in NAMES or any(f"poisoned-{t}" in s for t in ("cifar10", "imdb"))]
    assert not hits, f"hf_unlearn/{module} names a task or attack: {hits}"


# ----------------------------------------------------------------------------- the CLI
def test_listing_tasks_and_attacks_imports_no_torch():
    """The CLI lists the registries' names in its help; start-up must stay free of torch (lazy registration)."""
    import subprocess
    import sys

    code = ("import sys; from hf_unlearn.cli import build_parser; build_parser(); "
            "from hf_unlearn.tasks import list_tasks; from hf_unlearn.attacks import list_attacks; "
            "print(list_tasks(), list_attacks(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    names, torch_loaded = out.stdout.strip().rsplit(" ", 1)
    assert "'cifar10', 'imdb'" in names and "'gaussian'" in names and torch_loaded == "False", out.stdout


def test_build_rejects_an_unknown_task_or_attack(capsys):
    from hf_unlearn.cli import main

    assert main(["build", "--task", "mnist"]) == 2
    assert "unknown task 'mnist'; known tasks: ['cifar10', 'imdb'" in capsys.readouterr().err
    assert main(["build", "--task", "imdb", "--attack", "indiscriminate"]) == 2
    assert "'indiscriminate' is not available for task 'imdb'" in capsys.readouterr().err
