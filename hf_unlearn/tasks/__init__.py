"""The task registry: one module per modality (``cifar10``, ``imdb``), looked up by name.

A task knows how a variant's splits become tensors, which model family it trains and
loads, and the input space its Gaussian noise lives in (DESIGN.md, "Tasks and
attacks"). Pipeline, runner, benchmark and scoring never name a task; they ask this
registry for the one a variant names (``hf_unlearn.attacks.variant_identity``).

A task is any object with these members (``Task`` below documents them; subclassing it
is optional)::

    name, hub_id, input_column, label_names
    load_splits(dataset_dict, config_name) -> {"train", "forget", "test", ...: Split}
    build_model(train_config, num_classes) -> nn.Module
    load_model(folder_or_repo, revision=None) -> (nn.Module, summary dict)
    input_gradients(model, split) -> FloatTensor (N, D)
    noise_matrix(split) -> FloatTensor (N, D)

Optional members the core reads with a default: ``split_class`` (to find a split's
task), ``image_augmentation`` (False: ``train`` skips flips/crops), ``accuracy`` and
``model_title``.

Tasks register eagerly (``register_task(TASK)``) or lazily by module path
(``register_lazy_task("imdb", "hf_unlearn.tasks.imdb", split_class="hf_unlearn.tasks.imdb:TextSplit")``):
the module is imported on the first ``get_task("imdb")`` and must define a module-level
``TASK`` (or register itself). The built-in tasks are lazy, so listing them (the CLI's
help) imports neither torch nor transformers, and the registry lists a task before its
file exists.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Mapping

# The task a CLI verb builds when ``--task`` is not given (the registry's default, not a dispatch constant).
DEFAULT_TASK = "cifar10"

_TASKS: dict[str, Any] = {}  # name -> task object
_LAZY: dict[str, str] = {}  # name -> module path, until first use
_LAZY_SPLITS: dict[str, str] = {}  # name -> "module:Class" of a lazy task's split class (for task_of_split)
# A checkpoint's config.json "model_type" -> the task that loads it (None: no model_type, a PyTorchModelHubMixin
# config such as the ResNet's).
_MODEL_TYPES: dict[str | None, str] = {}


class Task:
    """Documentation of the task interface, with the optional members' defaults.

    Subclassing is optional: the core duck-types tasks. See the module docstring.
    """

    name: str = ""
    hub_id: str = ""
    input_column: str = ""
    label_names: tuple[str, ...] = ()
    split_class: type | None = None
    image_augmentation: bool = False  # train's flip/crop augmentation applies to this task's inputs
    model_title: str = "model"  # used in model-card titles, e.g. "ResNet-18"

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def load_splits(self, dataset_dict: Mapping[str, Any], config_name: str) -> dict[str, Any]:
        raise NotImplementedError

    def build_model(self, train_config: Any, num_classes: int):
        raise NotImplementedError

    def load_model(self, folder_or_repo: str, revision: str | None = None):
        raise NotImplementedError

    def input_gradients(self, model, split):
        raise NotImplementedError

    def noise_matrix(self, split):
        raise NotImplementedError

    def accuracy(self, model, split, batch_size: int = 512, device=None) -> float:
        from hf_unlearn.train import accuracy

        return accuracy(model, split, batch_size, device)


def register_task(task: Any, *, replace: bool = False) -> Any:
    """Add ``task`` under ``task.name`` (returns it, so a module can write ``TASK = register_task(...)``)."""
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"a task needs a non-empty string `name`, got {name!r} on {type(task).__name__}")
    if name in _TASKS and _TASKS[name] is not task and not replace:
        raise ValueError(f"task {name!r} is already registered by {type(_TASKS[name]).__module__}")
    _TASKS[name] = task
    _LAZY.pop(name, None)
    return task


def register_lazy_task(name: str, module: str, split_class: str | None = None) -> None:
    """Register ``name`` as provided by ``module`` (imported on first use; it defines ``TASK``).

    ``split_class`` ("module:Class") lets ``task_of_split`` recognise the task's splits without importing it.
    """
    if name not in _TASKS:
        _LAZY[name] = module
        if split_class:
            _LAZY_SPLITS[name] = split_class


def register_model_type(model_type: str | None, task: str) -> None:
    """Checkpoints whose config.json has this ``model_type`` (None: none) are loaded by ``task``."""
    _MODEL_TYPES[model_type] = task


def task_for_checkpoint(config: Mapping[str, Any]) -> Any:
    """The task that loads a checkpoint with this ``config.json``: by ``model_type`` (transformers configs);
    a config without one is a PyTorchModelHubMixin model (the ResNet)."""
    model_type = config.get("model_type") if isinstance(config, Mapping) else None
    if model_type not in _MODEL_TYPES:
        known = sorted(str(k) for k in _MODEL_TYPES if k is not None)
        raise ValueError(f"checkpoint config.json has model_type {model_type!r}; hf-unlearn loads {known} "
                         "or its own ResNet checkpoints (no model_type)")
    return get_task(_MODEL_TYPES[model_type])


def list_tasks() -> list[str]:
    """Every registered task name, loaded or not, sorted."""
    return sorted(set(_TASKS) | set(_LAZY))


def check_task_name(name: str) -> str:
    """``name`` if a task is registered under it (nothing is imported), else the unknown-task error."""
    if name not in _TASKS and name not in _LAZY:
        raise ValueError(f"unknown task {name!r}; known tasks: {list_tasks()}")
    return name


def get_task(name: Any) -> Any:
    """The task registered as ``name`` (a task object passes through unchanged)."""
    if not isinstance(name, str):
        if isinstance(getattr(name, "name", None), str):  # already a task object
            return name
        raise TypeError(f"expected a task name such as {list_tasks()}, got {type(name).__name__}")
    if name in _TASKS:
        return _TASKS[name]
    module = _LAZY[check_task_name(name)]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"task {name!r} lives in {module}, which failed to import ({exc}); "
                         f"is that file there and are its dependencies installed?") from exc
    if name not in _TASKS:
        task = getattr(mod, "TASK", None)
        if task is None or getattr(task, "name", None) != name:
            raise ValueError(f"{module} neither registers task {name!r} nor defines TASK with name {name!r}")
        register_task(task)
    return _TASKS[name]


def task_of_split(split: Any) -> Any:
    """The task whose split class ``split`` is an instance of (loaded tasks, then lazily registered tasks whose
    split class's module is already imported: a split object exists only once its module is)."""
    for name in list(_LAZY):
        module, _, cls = _LAZY_SPLITS.get(name, _LAZY[name] + ":").partition(":")
        if module in sys.modules and (not cls or isinstance(split, getattr(sys.modules[module], cls, ()))):
            get_task(name)
    for task in _TASKS.values():
        cls = getattr(task, "split_class", None)
        if cls is not None and isinstance(split, cls):
            return task
    raise ValueError(f"no registered task has split class {type(split).__name__}; known tasks: {list_tasks()} "
                     "(pass the task explicitly)")


def _register_builtin() -> None:
    # Lazy, so that importing the registry (the CLI does, to list names) imports neither torch nor transformers.
    register_lazy_task("cifar10", "hf_unlearn.tasks.cifar10", split_class="hf_unlearn.variant:ImageSplit")
    register_model_type(None, "cifar10")  # ResNet checkpoints: a PyTorchModelHubMixin config.json, no model_type
    register_lazy_task("imdb", "hf_unlearn.tasks.imdb", split_class="hf_unlearn.tasks.imdb:TextSplit")
    register_model_type("gpt2", "imdb")  # transformers GPT-2 folders (hf_unlearn.models.text)


_register_builtin()
