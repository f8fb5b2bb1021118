"""Pipeline configuration: dataclasses holding the only defaults, YAML presets overriding them.

A preset names the data source, the task and attack (registry names), the poison
variant (the attack's own config class), the training recipe and the scoring settings. Unknown keys are errors that list the valid ones, so a typo
in a YAML file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from hf_unlearn.attacks import DEFAULT_ATTACK, config_class, get_attack
from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
from hf_unlearn.tasks import DEFAULT_TASK, get_task
from hf_unlearn.train import TrainConfig

PRESETS_DIR = Path(__file__).parent / "configs"
T = TypeVar("T")


@dataclass
class ScoringConfig:
    null_draws: int = 200  # fresh noise draws per poison; 50 poisons x 200 = 10,000 nulls: 0.001 x nulls >= 10 (docs/statistics.md)
    seed: int = 0  # seed of the null noise
    batch_size: int = 256


def _demo_poison() -> GaussianPoisonConfig:
    return GaussianPoisonConfig(0.15, 5.0, 0, 1000)


def _poison_default(data: dict[str, Any]) -> Any:
    """The poison defaults for the attack a preset names: the demo's Gaussian variant, or the attack's own defaults."""
    task = data.get("task", DEFAULT_TASK)
    cls = config_class(get_attack(data.get("attack", DEFAULT_ATTACK), task), task)
    return _demo_poison() if cls is GaussianPoisonConfig else cls()


# Mapping fields whose keys are free (task-specific), so ``--set section.field.key=value`` may add keys.
FREE_FORM = (("train", "model"), ("method_config",))

# Which verbs read each top-level key of a preset. A ``--set`` a verb does not read is refused rather than
# silently ignored (``train --set poison.eps=0.2`` would otherwise train on the variant --config names and
# record nothing of the override).
KEY_USERS: dict[str, tuple[str, ...]] = {
    "source": ("demo", "benchmark"),
    "task": ("demo", "benchmark"),
    "attack": ("demo", "benchmark"),
    "poison": ("demo", "benchmark"),
    "train": ("train", "demo", "benchmark"),
    "scoring": ("demo", "benchmark"),
    "method_config": ("demo",),
}
# What a verb that does not read a key takes instead (the hint in the refusal).
_INSTEAD = {
    ("train", "source"): "train reads the variant named by --dataset/--config",
    ("train", "task"): "pass --task",
    ("train", "attack"): "pass --attack",
    ("train", "poison"): "train reads the variant named by --dataset/--config; build another with `hf-unlearn build`",
    ("train", "scoring"): "score the checkpoint with `hf-unlearn score --null-draws N --seed S`",
}


@dataclass
class PipelineConfig:
    """Everything a run needs, with the demo's defaults."""

    source: str = "samples"  # Hub id, local folder/parquet, or "samples"
    task: str = DEFAULT_TASK  # a registered task (hf_unlearn.tasks.list_tasks())
    attack: str = DEFAULT_ATTACK  # a registered attack for that task (hf_unlearn.attacks.list_attacks(task))
    # the variant's parameters, the attack's config class (GaussianPoisonConfig for "gaussian")
    poison: Any = field(default_factory=_demo_poison, metadata={"default_for": _poison_default})
    train: TrainConfig = field(default_factory=TrainConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    # Per-method settings the demo runs at, over configs/methods/<method>.yaml (e.g. {gd: {lr: 0.003}}): a task
    # whose model trains differently needs other steps (ResNet-18's SGD lr 0.02 takes a small GPT-2 to chance).
    # The IMDb presets carry what their benchmark's tuning selected; the benchmark has its own grids.
    method_config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_task(self.task)  # unknown names fail here, listing the known ones
        if self.method_config:
            from hf_unlearn.unlearn import build_config

            for method, over in self.method_config.items():
                if not isinstance(over, dict):
                    raise ValueError(f"method_config.{method}={over!r}: a mapping of that method's settings, "
                                     "e.g. {lr: 0.003}")
                build_config(method, over)  # unknown methods and keys fail here, listing the valid ones
        cls = config_class(get_attack(self.attack, self.task), self.task)
        if not isinstance(self.poison, cls):
            raise ValueError(f"poison={self.poison!r}: attack {self.attack!r} takes a {cls.__name__}")


def _type_name(tp: Any) -> str:
    """``float``, ``bool or str``, ``int or None``: a field's type as the error shows it."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} keys"
    origin = typing.get_origin(tp)
    return getattr(origin or tp, "__name__", str(tp))


def typed_value(value: Any, tp: Any, key: str) -> Any:
    """``value`` as the field type ``tp`` says, or a ValueError naming the key, the value and the type.

    YAML parses ``--set`` values and presets, so ``lr=abc`` arrives as a string and ``lr=1e-4`` too (YAML 1.1
    floats need a dot); the dataclass field's type decides: a number-shaped string becomes a float, an int
    field takes only whole numbers, a bool field only true/false, and nothing else passes unchecked.
    """
    if tp is Any or isinstance(tp, TypeVar):
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return typed_value(value, arg, key)
            except ValueError:
                continue
        raise ValueError(f"{key}={value!r}: expected {_type_name(tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}={value!r}: expected bool (true or false)")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{key}={value!r}: expected int (a whole number, e.g. 10)")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{key}={value!r}: expected float (a number, e.g. 0.05 or 1e-4)")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{key}={value!r}: expected str")
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return value
        raise ValueError(f"{key}={value!r}: expected a mapping (dict)")
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, (list, tuple)):
            return (origin or tp)(value)
        raise ValueError(f"{key}={value!r}: expected a list")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        raise ValueError(f"{key}={value!r}: expected {_type_name(tp)}")
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a dict, recursing into dataclass fields; unknown keys raise, and every
    value is checked against its field's type (``typed_value``)."""
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where or cls.__name__}; valid keys: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        meta = names[name].metadata
        if "default_for" in meta:  # a default that depends on other keys (the attack's poison config)
            default = meta["default_for"](data)
        else:
            default = names[name].default_factory() if names[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            base = dataclasses.asdict(default)
            base.update(value)
            kwargs[name] = from_dict(type(default), base, f"{where}.{name}".strip("."))
        else:
            kwargs[name] = typed_value(value, hints.get(name, Any), f"{where}.{name}".strip("."))
    return cls(**kwargs)


def load_preset(name_or_path: str | os.PathLike) -> PipelineConfig:
    """A preset by name (``demo``, ``cpu``, ``paper``) or a YAML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no preset {str(name_or_path)!r}; known presets: {known} (or pass a YAML path)")
    return from_dict(PipelineConfig, yaml.safe_load(path.read_text()) or {}, str(path.name))


def check_verb_keys(overrides: list[str], verb: str) -> None:
    """Refuse ``section.key=value`` overrides whose section ``verb`` does not read (``KEY_USERS``)."""
    for item in overrides:
        top = item.partition("=")[0].split(".")[0]
        users = KEY_USERS.get(top)
        if users is not None and verb not in users:
            hint = _INSTEAD.get((verb, top))
            raise ValueError(f"--set {item}: `hf-unlearn {verb}` does not use {top}"
                             f"{'' if top in ('source', 'task', 'attack') else '.*'} ({', '.join(users)} do)"
                             + (f"; {hint}" if hint else ""))


def apply_overrides(cfg: PipelineConfig, overrides: list[str], verb: str | None = None) -> PipelineConfig:
    """``section.key=value`` strings (YAML-parsed values, then typed by the field), e.g. ``train.epochs=10``.

    ``verb`` (a CLI verb) refuses keys that verb does not read. ``task=...`` / ``attack=...`` that switch to an
    attack with other variant parameters start ``poison`` from that attack's defaults (``poison.*`` overrides
    then apply to them)."""
    if verb is not None:
        check_verb_keys(overrides, verb)
    data = dataclasses.asdict(cfg)
    chosen = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in overrides) if k in ("task", "attack")}
    if chosen:
        new = {"task": cfg.task, "attack": cfg.attack, **chosen}
        default = _poison_default(new)
        if not isinstance(cfg.poison, type(default)):
            data["poison"] = dataclasses.asdict(default)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value, e.g. train.epochs=10")
        key, raw = item.split("=", 1)
        node = data
        *parents, leaf = key.split(".")
        for depth, p in enumerate(parents):
            if node.get(p) is None and depth > 0 and tuple(parents[:depth]) in FREE_FORM:
                node[p] = {}  # a free-form section grows keys, e.g. method_config.gd.lr=0.003
            if not isinstance(node.get(p), dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section; sections: {[k for k, v in data.items() if isinstance(v, dict)]}")
            node = node[p]
        if leaf not in node and not any(tuple(parents[:k]) in FREE_FORM for k in range(1, len(parents) + 1)):
            raise ValueError(f"override {item!r}: unknown key {leaf!r}; valid keys here: {sorted(node)}")
        node[leaf] = yaml.safe_load(raw)
    return from_dict(PipelineConfig, data)


def to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
