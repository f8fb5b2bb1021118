"""Unlearning methods: the registry, configs, each method's defining behaviour, budget and determinism.

Everything runs on a width-4 ResNet-18 and 16x16 random images (the network pools
adaptively), a few optimiser steps each, so the whole file takes seconds per test.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

import pytest
import torch

from hf_unlearn.models.resnet import ResNet18
from hf_unlearn.train import TrainConfig
from hf_unlearn.unlearn import build_config, get_method, list_methods, load_method_preset, mean_loss, run_method

from synthetic import make_split

PAPER_METHODS = ["none", "retrain", "gd", "ngd", "ga", "euk", "cfk", "scrub", "neggrad_plus", "ssd"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models, one thread


@pytest.fixture(scope="module")
def data():
    return make_split(48, poisoned=False, seed=1), make_split(16, poisoned=True, seed=2)


@pytest.fixture(scope="module")
def model(data):
    """A tiny model that has seen the data a little, so losses are not all at chance."""
    torch.manual_seed(0)
    net = ResNet18(width=4)
    retain, forget = data
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x = torch.cat([retain.inputs(torch.arange(len(retain))), forget.inputs(torch.arange(len(forget)))])
    y = torch.cat([retain.y, forget.y])
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- registry and configs
def test_registry_lists_the_paper_methods_and_rejects_unknown_names():
    assert list_methods() == PAPER_METHODS
    with pytest.raises(ValueError, match="known methods: .*'scrub'"):
        get_method("scurb")


def test_a_new_method_is_one_new_file(tmp_path, monkeypatch):
    import hf_unlearn.unlearn as package
    from hf_unlearn.unlearn import base

    (tmp_path / "toy.py").write_text(
        "from dataclasses import dataclass\n"
        "from hf_unlearn.unlearn.base import UnlearnContext, register_method\n"
        "@dataclass\nclass ToyConfig:\n    lr: float = 0.1\n"
        "@register_method('toy')\ndef toy(ctx: UnlearnContext, cfg: ToyConfig):\n    return ctx.model\n"
    )
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.delitem(sys.modules, "hf_unlearn.unlearn.toy", raising=False)
    try:
        assert list_methods() == [*PAPER_METHODS, "toy"], "new methods sort after the paper's"
        assert build_config("toy", ["lr=0.5"]).lr == 0.5
    finally:
        sys.modules.pop("hf_unlearn.unlearn.toy", None)


def test_unknown_config_key_lists_valid_keys_and_values_are_typed():
    with pytest.raises(ValueError, match=r"valid keys: \['lr', 'momentum'"):
        build_config("gd", {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="expected int"):
        build_config("gd", ["epochs=2.5"])
    # the same checks as the pipeline's --set (config.typed_value), naming method and key
    with pytest.raises(ValueError, match=r"gd\.lr='abc': expected float"):
        build_config("gd", ["lr=abc"])
    with pytest.raises(ValueError, match=r"scrub\.stop_on_plateau='maybe': expected bool"):
        build_config("scrub", ["stop_on_plateau=maybe"])
    cfg = build_config("scrub", ["lr=1e-3", "max_epochs=1"])  # YAML reads 1e-3 as a string: still a float
    assert (cfg.lr, cfg.max_epochs, cfg.epochs) == (1e-3, 1, None)  # None: until the budget ends the run


@pytest.mark.parametrize("method", PAPER_METHODS)
def test_every_method_has_a_preset_that_loads(method):
    overrides = load_method_preset(method)
    assert isinstance(build_config(method, yaml_path="preset"), get_method(method).config_cls)
    assert set(overrides) <= {f.name for f in dataclasses.fields(get_method(method).config_cls)}


# ----------------------------------------------------------------------------- the generic test
@pytest.mark.parametrize("method", PAPER_METHODS)
def test_every_method_keeps_the_architecture_respects_the_budget_and_repeats(method, model, data):
    retain, forget = data
    limit = 3.0 * 64 * 2  # two forward+backward passes over 64 examples
    recipe = TrainConfig(epochs=1, batch_size=32, width=4, seed=0)
    before = state(model)
    runs = [run_method(model, retain, forget, method, limit=limit, seed=3, train_config=recipe) for _ in range(2)]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the caller's model must not change"
    a, b = (state(r.model) for r in runs)
    assert type(runs[0].model) is ResNet18 and list(a) == list(before)
    assert all(a[k].shape == before[k].shape for k in a)
    if get_method(method).budgeted:
        assert 0 <= runs[0].compute_used <= limit, f"{method} used {runs[0].compute_used} of {limit}"
    else:  # retrain: one full training of the recipe on the retain set, recorded
        assert runs[0].compute_used == 3.0 * len(retain) * recipe.epochs
    assert all(torch.equal(a[k], b[k]) for k in a), f"{method} is not deterministic for a fixed seed"
    assert runs[0].steps == runs[1].steps and runs[0].compute_used == runs[1].compute_used


def test_a_method_stops_before_the_first_step_it_cannot_afford(model, data):
    retain, forget = data
    result = run_method(model, retain, forget, "gd", overrides={"batch_size": 16}, limit=3 * 16 * 2.5)
    assert result.steps == ["retain", "retain"] and result.compute_used == 96 and result.stopped_by_budget


# ----------------------------------------------------------------------------- defining behaviours
def test_gd_lowers_the_retain_loss(model, data):
    retain, forget = data
    result = run_method(model, retain, forget, "gd", overrides={"lr": 0.05, "epochs": 3, "batch_size": 48})
    assert mean_loss(result.model, retain) < mean_loss(model, retain)
    assert set(result.steps) == {"retain"} and result.compute_used == 3 * 3 * len(retain)


def test_ga_raises_the_forget_loss(model, data):
    retain, forget = data
    result = run_method(model, retain, forget, "ga", overrides={"lr": 0.05, "epochs": 3})
    assert mean_loss(result.model, forget) > mean_loss(model, forget) + 0.1
    assert result.compute_used == 3 * 3 * len(forget)  # GA touches the forget set only


def test_ngd_adds_noise_of_the_configured_scale(model, data):
    retain, forget = data
    # lr = 0: the gradient moves nothing, so each parameter's change is the noise alone.
    sigma, steps = 0.01, 2
    result = run_method(model, retain, forget, "ngd",
                        overrides={"lr": 0.0, "noise_std": sigma, "epochs": 1, "batch_size": len(retain) // steps})
    before, after = state(model), state(result.model)
    delta = torch.cat([(after[n] - before[n]).flatten() for n, _ in model.named_parameters()])
    expected = sigma * steps**0.5  # independent draws add in variance
    assert abs(delta.std().item() / expected - 1) < 0.05, f"update std {delta.std():.5f}, expected {expected:.5f}"
    assert abs(delta.mean().item()) < 4 * expected / delta.numel() ** 0.5


def test_euk_reinitialises_the_last_k_blocks_and_leaves_the_others_untouched(model, data):
    retain, forget = data
    result = run_method(model, retain, forget, "euk", overrides={"k": 3, "epochs": 1})
    new_blocks, old_blocks = result.model.blocks(), model.blocks()
    for new, old in zip(new_blocks[:-3], old_blocks[:-3]):  # stem and first 6 residual blocks, BN statistics included
        assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values()))
    # Every conv/linear weight of the last 3 blocks was re-drawn: a relative change one epoch
    # at lr 1e-3 cannot produce (BatchNorm affine weights re-initialise to 1 and 0, near their old values).
    for new, old in zip(new_blocks[-3:], old_blocks[-3:]):
        for (name, a), b in zip(new.named_parameters(), old.parameters()):
            if a.dim() >= 2:
                rel = ((a - b).norm() / b.norm()).item()
                assert rel > 0.5, f"{name}: relative change {rel:.3f}, expected a fresh initialisation"


def test_cfk_trains_only_the_last_k_blocks(model, data):
    retain, forget = data
    result = run_method(model, retain, forget, "cfk", overrides={"k": 2, "lr": 0.05, "epochs": 2})
    new_blocks, old_blocks = result.model.blocks(), model.blocks()
    for new, old in zip(new_blocks[:-2], old_blocks[:-2]):
        assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values()))
    changed = [not torch.equal(a, b) for a, b in zip(new_blocks[-1].parameters(), old_blocks[-1].parameters())]
    assert all(changed)
    assert result.compute_used == 3 * 2 * len(retain), "frozen layers earn no discount"


def test_scrub_alternates_max_and_min_steps_in_the_configured_pattern(model, data):
    retain, forget = data
    cfg = {"epochs": 3, "max_epochs": 2, "batch_size": 24, "forget_batch_size": 8}
    result = run_method(model, retain, forget, "scrub", overrides=cfg)
    max_pass, min_pass = ["max"] * 2, ["min"] * 2  # 16 forget / 8, 48 retain / 24
    assert result.steps == max_pass + min_pass + max_pass + min_pass + min_pass
    # every step also runs the teacher forward: 3 + 1 per example
    assert result.compute_used == 4 * (2 * len(forget) + 3 * len(retain))


def test_neggrad_plus_combines_retain_descent_and_forget_ascent(model, data):
    retain, forget = data
    common = {"lr": 0.05, "epochs": 2, "batch_size": 16}
    only_retain = run_method(model, retain, forget, "neggrad_plus", overrides={**common, "alpha": 1.0})
    only_forget = run_method(model, retain, forget, "neggrad_plus", overrides={**common, "alpha": 0.0})
    gd = run_method(model, retain, forget, "gd", overrides=common)
    # (parameters only: the forget forward still updates BatchNorm's running statistics)
    assert all(torch.equal(a, b) for a, b in zip(only_retain.model.parameters(), gd.model.parameters())), \
        "alpha = 1 is plain descent on the retain batches"
    assert mean_loss(only_forget.model, forget) > mean_loss(model, forget), "alpha = 0 ascends on the forget set"
    # each step charges its retain and its forget batch
    assert only_retain.compute_used == 3 * (len(retain) * 2 + 16 * len(only_retain.steps))


def test_ssd_dampens_only_parameters_whose_forget_importance_dominates(model, data):
    from hf_unlearn.unlearn.base import UnlearnContext, concat_splits
    from hf_unlearn.unlearn.ssd import importances

    retain, forget = data
    cfg = {"alpha": 1.0, "lam": 1.0, "batch_size": 64}
    result = run_method(model, retain, forget, "ssd", overrides=cfg)
    ctx = UnlearnContext(copy.deepcopy(model), retain, forget, seed=0)
    i_f = importances(ctx, forget, 64, "forget")
    i_d = importances(ctx, concat_splits(retain, forget), 64, "full")
    after = dict(result.model.named_parameters())
    n_selected = 0
    for name, p in model.named_parameters():
        selected = i_f[name] > cfg["alpha"] * i_d[name]
        n_selected += int(selected.sum())
        moved = after[name].detach() != p.detach()
        assert not (moved & ~selected).any(), f"{name}: a parameter without dominant forget importance changed"
        shrunk = after[name].detach().abs() <= p.detach().abs()
        assert shrunk[selected].all(), f"{name}: dampening must never grow a parameter"
    assert n_selected > 0
    assert result.compute_used == 3 * (len(forget) + len(retain) + len(forget)) and result.steps == ["forget", "full"]


# ----------------------------------------------------------------------------- budgets that bind
ITERATIVE = [m for m in PAPER_METHODS if m not in ("none", "retrain", "ssd")]
LARGEST_STEP = 4 * 64  # the costliest single step any method takes on this data (SCRUB: 48 retain rows x (3 + 1))


def params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("method", ITERATIVE)
def test_every_iterative_method_spends_its_budget_and_more_budget_changes_the_result(method, model, data):
    retain, forget = data
    limit = 3.0 * 64 * 4  # four passes' worth over the 64 examples
    small, large = (run_method(model, retain, forget, method, limit=lim, seed=0) for lim in (limit, 2 * limit))
    for run, lim in ((small, limit), (large, 2 * limit)):
        assert run.stopped_by == "budget", f"{method} stopped by {run.stopped_by!r}, not by its budget"
        assert lim - LARGEST_STEP < run.compute_used <= lim, \
            f"{method} used {run.compute_used} of {lim}: the budget, not an epoch count, must end the run"
    assert len(large.steps) > len(small.steps)
    assert not torch.equal(params(small.model), params(large.model)), f"{method}: twice the budget, same weights"


def test_ssd_is_one_shot_and_says_so(model, data):
    retain, forget = data
    runs = [run_method(model, retain, forget, "ssd", overrides={"alpha": 1.0}, limit=lim) for lim in (3.0 * 200, 3.0 * 400)]
    assert [r.stopped_by for r in runs] == ["one_shot", "one_shot"]
    assert runs[0].compute_used == runs[1].compute_used == 3 * (2 * len(forget) + len(retain))
    assert torch.equal(params(runs[0].model), params(runs[1].model))
    cut = run_method(model, retain, forget, "ssd", limit=3.0 * len(forget) + 1)  # no room for the second pass
    assert cut.stopped_by == "budget" and torch.equal(params(cut.model), params(model))


def test_explicit_epochs_cap_a_run_below_its_budget(model, data):
    retain, forget = data
    result = run_method(model, retain, forget, "gd", overrides={"epochs": 1}, limit=1e9)
    assert result.compute_used == 3 * len(retain) and result.stopped_by is None


def test_a_budget_bound_method_without_a_limit_is_an_error(model, data):
    retain, forget = data
    with pytest.raises(ValueError, match="runs until its budget ends"):
        run_method(model, retain, forget, "ga")
    assert run_method(model, retain, forget, "ga", overrides={"epochs": 1}).compute_used == 3 * len(forget)


def test_scrub_repeats_its_max_min_cycle_until_the_budget_ends(model, data):
    retain, forget = data
    cfg = {"batch_size": 48, "forget_batch_size": 16, "max_epochs": 2, "cycle_epochs": 3}
    one_cycle = ["max", "min", "max", "min", "min"]  # 1 forget batch, 1 retain batch per pass
    cycle_cost = 4 * (2 * len(forget) + 3 * len(retain))
    result = run_method(model, retain, forget, "scrub", overrides=cfg, limit=2.5 * cycle_cost)
    assert result.steps[: 2 * len(one_cycle)] == one_cycle * 2 and result.steps[10:] == one_cycle[: len(result.steps) - 10]
    assert result.stopped_by == "budget" and len(result.steps) > 2 * len(one_cycle)


# ----------------------------------------------------------------------------- opt-in early stops
@pytest.fixture(scope="module")
def fitted(data):
    """A tiny model that has memorised its 64 rows (accuracy far above chance), for the collapse rule."""
    torch.manual_seed(1)
    net = ResNet18(width=4)
    retain, forget = data
    x = torch.cat([retain.inputs(torch.arange(len(retain))), forget.inputs(torch.arange(len(forget)))])
    y = torch.cat([retain.y, forget.y])
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    assert (net(x).argmax(1) == y).float().mean() > 0.6, "the fixture must fit its data"
    return net


def test_stop_on_plateau_ends_a_run_whose_loss_is_flat(model, data):
    from hf_unlearn.unlearn.base import PLATEAU_WINDOW

    retain, forget = data
    # lr 0 and one batch holding the whole retain set: every step has the same loss.
    flat = {"lr": 0.0, "batch_size": len(retain), "stop_on_plateau": True}
    result = run_method(model, retain, forget, "gd", overrides=flat, limit=3.0 * len(retain) * 5 * PLATEAU_WINDOW)
    assert result.stopped_by == "converged" and len(result.steps) == 2 * PLATEAU_WINDOW
    moving = run_method(model, retain, forget, "ga", overrides={"lr": 0.05, "stop_on_plateau": True}, limit=3.0 * 16 * 30)
    assert moving.stopped_by == "budget", "an ascending loss never plateaus"


def test_stop_on_collapse_ends_a_run_at_chance_accuracy_and_charges_its_checks(fitted, data):
    from hf_unlearn.unlearn.base import COLLAPSE_CHECK_EVERY

    retain, forget = data
    limit = 3.0 * 16 * 60
    wrecked = run_method(fitted, retain, forget, "ga", overrides={"lr": 1.0, "stop_on_collapse": True}, limit=limit)
    assert wrecked.stopped_by == "collapsed" and len(wrecked.steps) % COLLAPSE_CHECK_EVERY == 0
    checks = len(wrecked.steps) // COLLAPSE_CHECK_EVERY
    assert wrecked.compute_used == 3 * 16 * len(wrecked.steps) + checks * (len(retain) + len(forget))
    kept = run_method(fitted, retain, forget, "gd", overrides={"lr": 1e-3, "stop_on_collapse": True}, limit=3.0 * 48 * 25)
    assert kept.stopped_by == "budget", "a model that keeps its accuracy must not be called collapsed"


# ----------------------------------------------------------------------------- tuning grids
@pytest.mark.parametrize("method", ITERATIVE + ["ssd"])
def test_every_budgeted_method_declares_a_small_tuning_grid(method):
    from hf_unlearn.unlearn.base import load_method_grid

    grid = load_method_grid(method)
    assert 2 <= len(grid) <= 6 and len({json_key(c) for c in grid}) == len(grid)


def json_key(cell) -> str:
    import json

    return json.dumps(cell, sort_keys=True)


def test_paper_grids_for_euk_and_cfk_and_bad_grids_fail(tmp_path):
    from hf_unlearn.unlearn.base import load_method_grid

    for m in ("euk", "cfk"):
        assert sorted({c["lr"] for c in load_method_grid(m)}) == [1e-5, 1e-4, 1e-3]  # paper A.2.4 / A.2.5
    bad = tmp_path / "ga.yaml"
    bad.write_text("method: ga\nconfig: {}\ngrid:\n  lr: [1, 2, 3]\n  momentum: [0.0, 0.5, 0.9]\n")
    with pytest.raises(ValueError, match="9 cells"):
        load_method_grid("ga", str(bad))
    bad.write_text("method: ga\nconfig: {}\ngrid:\n  learning_rate: [1, 2]\n")
    with pytest.raises(ValueError, match="valid keys"):
        load_method_grid("ga", str(bad))
