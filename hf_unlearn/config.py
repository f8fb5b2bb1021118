"""Pipeline configuration: dataclasses holding the only defaults, YAML presets overriding them.

A preset names the data source, the poison variant, the training recipe and the
scoring settings. Unknown keys are errors that list the valid ones, so a typo
in a YAML file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from hf_unlearn.poisons.gaussian import GaussianPoisonConfig
from hf_unlearn.train import TrainConfig

PRESETS_DIR = Path(__file__).parent / "configs"
T = TypeVar("T")


@dataclass
class ScoringConfig:
    null_draws: int = 200  # fresh noise draws per poison; 50 poisons x 200 = 10,000 nulls: 0.001 x nulls >= 10 (docs/statistics.md)
    seed: int = 0  # seed of the null noise
    batch_size: int = 256


@dataclass
class PipelineConfig:
    """Everything a run needs, with the demo's defaults."""

    source: str = "samples"  # Hub id, local folder/parquet, or "samples"
    poison: GaussianPoisonConfig = field(default_factory=lambda: GaussianPoisonConfig(0.15, 5.0, 0, 1000))
    train: TrainConfig = field(default_factory=TrainConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a dict, recursing into dataclass fields; unknown keys raise."""
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where or cls.__name__}; valid keys: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
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
    """``section.key=value`` strings (YAML-parsed values), e.g. ``train.epochs=10``."""
    data = dataclasses.asdict(cfg)
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
        if leaf not in node:
            raise ValueError(f"override {item!r}: unknown key {leaf!r}; valid keys here: {sorted(node)}")
        node[leaf] = yaml.safe_load(raw)
    return from_dict(PipelineConfig, data)


def to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
