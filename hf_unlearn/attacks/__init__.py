"""The attack registry: how a variant was poisoned, how to build it, and how to measure it on a model.

An attack (``gaussian``, ``targeted``, ...) builds variants of the tasks it supports and
turns a model into the result record's attack metrics (GUS and TPR for Gaussian
poisons; ``target_success`` for targeted ones). Pipeline, runner, benchmark and demo
never name an attack: they ask :func:`variant_identity` which (task, attack) a variant
is and dispatch through :func:`get_attack` (DESIGN.md, "Tasks and attacks").

An attack is any object with these members::

    name                       the record's ``attack`` ("gaussian", "targeted", ...)
    tasks                      the task names it supports
    supports(task) -> bool
    repo_name(task) -> str     "poisoned-<task>-<attack>", the dataset repo / folder name
    parse_config(name[, task]) the variant's parameters from its config name (ValueError if not one)
    config_class               their class (or config_class_for(task) when it differs per task)
    columns                    columns every split of its variants has besides the task's input,
                               label, index, is_poison (Gaussian: ("noise",))
    build(source, cfg, out_dir, *, task) -> Path           one variant into a Hub-layout folder
    evaluate(model, splits, *, task, config, null_draws, seed, batch_size=256)
        -> Mapping of metrics, or AttackEvaluation(metrics, scores)

The same attack name may be implemented by different modules for different tasks (the
paper's "targeted" attack is gradient matching on CIFAR-10 and the "Disney" trigger on
IMDb), so entries are keyed by (attack, task). Lazy entries name a module that defines
``ATTACK`` (or registers itself) and is imported on first use.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# The attack a CLI verb builds when ``--attack`` is not given (the registry's default, not a dispatch constant).
DEFAULT_ATTACK = "gaussian"

_ATTACKS: dict[tuple[str, str], Any] = {}  # (attack name, task name) -> attack object
_LAZY: dict[tuple[str, str], str] = {}  # (attack name, task name) -> module path, until first use

REPO_RE = re.compile(r"^poisoned-(?P<task>[a-z0-9_]+)-(?P<attack>[a-z0-9_]+)$")


@dataclass
class AttackEvaluation:
    """What ``evaluate`` returns when it has more than metrics to give (e.g. the per-poison scores the demo plots)."""

    metrics: dict[str, Any]
    scores: Any = None  # attack-specific detail, e.g. hf_unlearn.scoring.GaussianScores
    extra: dict[str, Any] = field(default_factory=dict)


class AttackBase:
    """What every attack answers the same way: which tasks it supports and its repo name (subclass it)."""

    name: str
    tasks: tuple[str, ...]

    def supports(self, task: Any) -> bool:
        return getattr(task, "name", task) in self.tasks

    def repo_name(self, task: Any) -> str:
        """``poisoned-<task>-<attack>``: the dataset repo / default folder name of its variants."""
        return f"poisoned-{getattr(task, 'name', task)}-{self.name}"


def predict_logits(model: Any, split: Any, batch_size: int = 256):
    """Logits (a CPU tensor, one row per example) of ``model`` on a split's clean inputs (``split.inputs(rows,
    noisy=False)``), in eval mode, the model's train/eval state restored."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(split)))
            out.append(model(split.inputs(rows, noisy=False).to(device)).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


def predict(model: Any, split: Any, batch_size: int = 256):
    """Arg-max predictions (int64 numpy) of ``predict_logits``: what targeted attacks score."""
    import numpy as np

    logits = predict_logits(model, split, batch_size)
    return logits.argmax(1).numpy() if len(logits) else np.zeros(0, dtype=np.int64)


def as_evaluation(result: Any) -> AttackEvaluation:
    """``evaluate``'s result as an AttackEvaluation (a plain mapping of metrics is accepted)."""
    if isinstance(result, AttackEvaluation):
        return result
    if isinstance(result, Mapping):
        return AttackEvaluation(dict(result))
    raise TypeError(f"an attack's evaluate() must return a mapping of metrics or an AttackEvaluation, "
                    f"got {type(result).__name__}")


def register_attack(attack: Any, *, replace: bool = False) -> Any:
    """Add ``attack`` for each of ``attack.tasks`` (returns it, for ``ATTACK = register_attack(...)``)."""
    name, tasks = getattr(attack, "name", None), tuple(getattr(attack, "tasks", ()) or ())
    if not isinstance(name, str) or not name or not tasks:
        raise TypeError(f"an attack needs a string `name` and a non-empty `tasks`, got {name!r}, {tasks!r}")
    for task in tasks:
        have = _ATTACKS.get((name, task))
        if have is not None and have is not attack and not replace:
            raise ValueError(f"attack {name!r} for task {task!r} is already registered by {type(have).__module__}")
        _ATTACKS[(name, task)] = attack
        _LAZY.pop((name, task), None)
    return attack


def register_lazy_attack(name: str, module: str, tasks: tuple[str, ...]) -> None:
    """Register attack ``name`` for ``tasks`` as provided by ``module`` (imported on first use; defines ``ATTACK``)."""
    for task in tasks:
        if (name, task) not in _ATTACKS:
            _LAZY[(name, task)] = module


def list_attacks(task: str | None = None) -> list[str]:
    """Registered attack names (for ``task`` only, if given), sorted."""
    keys = set(_ATTACKS) | set(_LAZY)
    return sorted({a for a, t in keys if task is None or t == task})


def attack_tasks(name: str) -> list[str]:
    """The tasks attack ``name`` is registered for."""
    return sorted({t for a, t in set(_ATTACKS) | set(_LAZY) if a == name})


def get_attack(name: Any, task: str | None = None) -> Any:
    """The attack ``name`` for ``task`` (``task`` may be omitted when one module implements ``name``)."""
    if not isinstance(name, str):
        if hasattr(name, "evaluate") and hasattr(name, "name"):
            return name
        raise TypeError(f"expected an attack name such as {list_attacks()}, got {type(name).__name__}")
    tasks = attack_tasks(name)
    if not tasks:
        raise ValueError(f"unknown attack {name!r}; known attacks: {list_attacks()}")
    if task is None:
        modules = {_LAZY.get((name, t)) or id(_ATTACKS[(name, t)]) for t in tasks}
        if len(modules) > 1:
            raise ValueError(f"attack {name!r} differs per task ({tasks}); say which task")
        task = tasks[0]
    key = (name, task)
    if key in _ATTACKS:
        return _ATTACKS[key]
    if key not in _LAZY:
        raise ValueError(f"attack {name!r} is not available for task {task!r}; it exists for tasks {tasks} "
                         f"(attacks for {task!r}: {list_attacks(task)})")
    module = _LAZY[key]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"attack {name!r} for task {task!r} lives in {module}, which failed to import ({exc}); "
                         "is that file there and are its dependencies installed?") from exc
    if key not in _ATTACKS:
        attack = getattr(mod, "ATTACK", None)
        if attack is None or getattr(attack, "name", None) != name or task not in tuple(getattr(attack, "tasks", ())):
            raise ValueError(f"{module} neither registers attack {name!r} for task {task!r} nor defines ATTACK "
                             "with that name and task")
        register_attack(attack)
    return _ATTACKS[key]


def config_class(attack: Any, task: str) -> type:
    """The class of ``attack``'s variant parameters for ``task`` (``config_class_for(task)`` if the attack's
    parameters differ per task, else ``config_class``)."""
    attack = get_attack(attack, task) if isinstance(attack, str) else attack
    if hasattr(attack, "config_class_for"):
        return attack.config_class_for(task)
    return attack.config_class


def parse_config(attack: Any, name: str, task: str) -> Any:
    """``attack.parse_config(name)``, passing ``task`` when the attack's parser takes it."""
    import inspect

    attack = get_attack(attack, task) if isinstance(attack, str) else attack
    if "task" in inspect.signature(attack.parse_config).parameters:
        return attack.parse_config(name, task=task)
    return attack.parse_config(name)


# ----------------------------------------------------------------------------- which variant is this?
def _name_of(dataset: str) -> str:
    text = str(dataset).rstrip("/\\")
    text = text.split("@", 1)[0] if "://" not in text and not Path(text).exists() else text
    return re.split(r"[/\\]", text)[-1]


def _from_card(dataset: str) -> tuple[str | None, str | None]:
    """(task, attack) from a local folder's dataset card: ``hf_unlearn: {task, attack}`` or the pretty name."""
    readme = Path(dataset) / "README.md"
    if not readme.is_file():
        return None, None
    from huggingface_hub import DatasetCard

    data = DatasetCard.load(readme).data.to_dict()
    meta = data.get("hf_unlearn") or {}
    if isinstance(meta, dict) and meta.get("task") and meta.get("attack"):
        return str(meta["task"]), str(meta["attack"])
    m = REPO_RE.match(str(data.get("pretty_name") or ""))
    return (m.group("task"), m.group("attack")) if m else (None, None)


def variant_identity(dataset: str | Path, config: str | None = None, *, task: str | None = None,
                     attack: str | None = None) -> tuple[str, str]:
    """The (task, attack) of a variant, from its repo or folder name ``poisoned-<task>-<attack>``, else its card.

    ``task``/``attack`` given explicitly win (a folder with another name). Both names must be registered, the
    attack must support the task, and ``config`` (if given) must be one of the attack's variant names; every
    failure says what is known and how to fix it.
    """
    found_task, found_attack = None, None
    m = REPO_RE.match(_name_of(str(dataset)))
    if m:
        found_task, found_attack = m.group("task"), m.group("attack")
    elif task is None or attack is None:
        found_task, found_attack = _from_card(str(dataset))
    task, attack = task or found_task, attack or found_attack
    if task is None or attack is None:
        from hf_unlearn.tasks import list_tasks

        raise ValueError(
            f"cannot tell the task and attack of dataset {str(dataset)!r}: its name is not poisoned-<task>-<attack> "
            f"and its card does not say (known tasks: {list_tasks()}, attacks: {list_attacks()}); "
            "use the builder's folder name, e.g. poisoned-cifar10-gaussian, or pass --task and --attack"
        )
    from hf_unlearn.tasks import get_task

    get_task(task)  # unknown names fail here, listing the known ones
    spec = get_attack(attack, task)
    if config is not None:
        try:
            parse_config(spec, config, task)
        except ValueError as exc:
            raise ValueError(f"dataset {str(dataset)!r} holds {task}/{attack} variants, but {exc}") from None
    return task, attack


def _register_builtin() -> None:
    from hf_unlearn.attacks.gaussian import ATTACK as gaussian

    register_attack(gaussian)
    register_lazy_attack("targeted", "hf_unlearn.attacks.trigger", tasks=("imdb",))  # the "Disney" trigger
    register_lazy_attack("targeted", "hf_unlearn.attacks.targeted", tasks=("cifar10",))  # gradient matching
    register_lazy_attack("indiscriminate", "hf_unlearn.attacks.indiscriminate", tasks=("cifar10",))  # gradient canceling


_register_builtin()
