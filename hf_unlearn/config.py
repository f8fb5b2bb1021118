"""Pipeline configuration: dataclasses holding the only defaults, YAML presets overriding them.

A preset names the data source, the task and attack (registry names), the poison
variant (the attack's own config class), the training recipe and the scoring settings. Unknown keys are errors that list the valid ones, so a typo
in a YAML file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
FREE_FORM = (("train", "model"),)


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

    def __post_init__(self) -> None:
        get_task(self.task)  # unknown names fail here, listing the known ones
        cls = config_class(get_attack(self.attack, self.task), self.task)
        if not isinstance(self.poison, cls):
            raise ValueError(f"poison={self.poison!r}: attack {self.attack!r} takes a {cls.__name__}")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a dict, recursing into dataclass fields; unknown keys raise."""
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
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
            kwargs[name] = value
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


def apply_overrides(cfg: PipelineConfig, overrides: list[str]) -> PipelineConfig:
    """``section.key=value`` strings (YAML-parsed values), e.g. ``train.epochs=10``.

    ``task=...`` / ``attack=...`` that switch to an attack with other variant parameters start ``poison`` from
    that attack's defaults (``poison.*`` overrides then apply to them)."""
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
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section; sections: {[k for k, v in data.items() if isinstance(v, dict)]}")
            node = node[p]
        if leaf not in node and tuple(parents) not in FREE_FORM:
            raise ValueError(f"override {item!r}: unknown key {leaf!r}; valid keys here: {sorted(node)}")
        node[leaf] = yaml.safe_load(raw)
    return from_dict(PipelineConfig, data)


def to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
