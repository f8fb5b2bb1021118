"""`hf-unlearn`: one verb per arrow of the data flow (build -> train -> unlearn -> score -> submit), plus demo and benchmark.

Verbs are thin wrappers over library functions and read/write folders you can
inspect. Start-up imports neither torch, evaluate nor gradio; a verb imports what
it needs. User errors exit with status 2 and one line naming the problem.

Run under Accelerate for several processes or GPUs:
    accelerate launch -m hf_unlearn.cli train --dataset poisoned-cifar10-gaussian --config eps0.1-b1.5-s0 --preset paper
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """examples:
  hf-unlearn demo                                     # the whole demo on the shipped samples (~10 min on 2 cores)
  hf-unlearn build --source samples --eps 0.1 --budget 1.5 2 2.5
  hf-unlearn train --dataset poisoned-cifar10-gaussian --config eps0.1-b1.5-s0 --output-dir runs/poisoned
  hf-unlearn train --dataset poisoned-cifar10-gaussian --config eps0.1-b1.5-s0 --retrain --output-dir runs/retrain
  hf-unlearn score --checkpoint runs/poisoned --dataset poisoned-cifar10-gaussian --config eps0.1-b1.5-s0
  hf-unlearn unlearn --checkpoint runs/poisoned --dataset poisoned-cifar10-gaussian --config eps0.1-b1.5-s0 \
      --method scrub --budget 0.1 --seed 0 --output results.jsonl
  hf-unlearn benchmark --preset cpu --seeds 0 1 2 --output-dir runs/benchmark
  hf-unlearn benchmark --preset cpu --budgets 0.02 0.04 0.06 0.08 0.1 --tune-at-budget 0.1 --tune-seed 0
  mkdir -p leaderboard-store && hf-unlearn submit results.jsonl --leaderboard ./leaderboard-store
  hf-unlearn board --leaderboard spaces/ORG/NAME --task cifar10 --attack gaussian --format csv
  hf-unlearn publish --namespace ORG --dry-run        # what would go to the Hub (HF_TOKEN)
  accelerate launch -m hf_unlearn.cli benchmark --preset paper   # each process runs its own cells
"""


LEADERBOARD_HELP = ("an existing store folder, hf://datasets/ORG/NAME, or a Space: spaces/ORG/NAME or "
                    "https://ORG-NAME.hf.space")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu", action="store_true", help="force the CPU even if a GPU is visible")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_overrides(p: argparse.ArgumentParser, example: str = "--set train.epochs=10 --set poison.eps=0.1") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=f"override a preset value, e.g. {example} (repeatable)")


def _version() -> str:
    """The installed distribution's version (``pip install`` metadata), read only when asked."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hf-unlearn")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: print ``hf-unlearn <version>`` and exit 0 (metadata read only when the flag is given)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"hf-unlearn {_version()}")
        parser.exit(0)


# What the deprecated ``--revision`` meant in each verb (it changed meaning between verbs; one release of grace).
OLD_REVISION = {"train": "dataset", "score": "dataset", "unlearn": "checkpoint"}


def _add_revisions(p: argparse.ArgumentParser, verb: str, *, checkpoint: bool) -> None:
    """``--dataset-revision`` (and ``--checkpoint-revision`` for verbs that read a checkpoint); the old
    ``--revision`` still works for one release, as the revision it meant in this verb."""
    p.add_argument("--dataset-revision", default=None, metavar="REV",
                   help="the dataset's revision on the Hub: branch, tag or commit")
    if checkpoint:
        p.add_argument("--checkpoint-revision", default=None, metavar="REV",
                       help="the checkpoint's revision on the Hub (or write --checkpoint ORG/NAME@REV)")
    p.add_argument("--revision", dest="old_revision", default=None, metavar="REV",
                   help=f"deprecated: use --{OLD_REVISION[verb]}-revision (what --revision means in `{verb}`)")


def _revisions(args) -> tuple[str | None, str | None]:
    """(dataset revision, checkpoint revision) from the flags; the old ``--revision`` maps to the one it meant in
    this verb, with a warning on stderr naming the new flag."""
    dataset_rev = getattr(args, "dataset_revision", None)
    checkpoint_rev = getattr(args, "checkpoint_revision", None)
    old = getattr(args, "old_revision", None)
    if old is not None:
        which = OLD_REVISION[args.verb]
        new = dataset_rev if which == "dataset" else checkpoint_rev
        if new is not None and new != old:
            raise ValueError(f"--revision {old} and --{which}-revision {new} disagree; pass only --{which}-revision")
        print(f"hf-unlearn {args.verb}: warning: --revision is deprecated and goes in the next release; in "
              f"`{args.verb}` it is the {which}'s revision: use --{which}-revision {old}", file=sys.stderr)
        if which == "dataset":
            dataset_rev = old
        else:
            checkpoint_rev = old
    return dataset_rev, checkpoint_rev


def _checkpoint_ref(name: str, revision: str | None) -> tuple[str, str | None]:
    """(id, revision) of ``--checkpoint`` as a result record names it: ``ORG/NAME@REV`` splits, a folder keeps
    its path (and has no revision)."""
    from hf_unlearn.hub import split_revision

    if Path(name).expanduser().exists() or "@" not in name:
        return name, revision
    repo_id, rev = split_revision(name)
    if revision is not None and rev != revision:
        raise ValueError(f"--checkpoint {name} and --checkpoint-revision {revision} disagree; pass one of them")
    return repo_id, rev


def _add_checkpoint_and_variant(p: argparse.ArgumentParser, verb: str, checkpoint_help: str) -> None:
    p.add_argument("--checkpoint", required=True, help=checkpoint_help)
    p.add_argument("--dataset", required=True, help="dataset folder or Hub repo id")
    p.add_argument("--config", required=True, help="variant name, e.g. eps0.1-b1.5-s0")
    _add_revisions(p, verb, checkpoint=True)


def _add_scoring_flags(p: argparse.ArgumentParser, seed_flag: str) -> None:
    """How a checkpoint is scored and where its record goes (score, unlearn)."""
    p.add_argument("--null-draws", type=int, default=40, help="fresh noise draws per poison (default 40)")
    p.add_argument(seed_flag, dest="score_seed", type=int, default=0, help="seed of the null noise (default 0)")
    p.add_argument("--output", default=None, help="append the result record to this JSONL file")


def _add_preset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="demo", help="YAML preset name (demo, cpu, paper) or path (default: demo)")
    _add_overrides(p)
    _add_run_flags(p)


def _add_task_attack(p: argparse.ArgumentParser, builds: bool) -> None:
    """--task/--attack: what a verb builds (build, demo, benchmark), or which variant it reads when the dataset's
    name does not say (train, score, unlearn; default: the name poisoned-<task>-<attack>)."""
    from hf_unlearn.attacks import DEFAULT_ATTACK, list_attacks
    from hf_unlearn.tasks import DEFAULT_TASK, list_tasks

    if builds:
        p.add_argument("--task", default=None, help=f"task: {', '.join(list_tasks())} (default: the preset's, {DEFAULT_TASK})")
        p.add_argument("--attack", default=None,
                       help=f"attack: {', '.join(list_attacks())} (default: the preset's, {DEFAULT_ATTACK})")
    else:
        p.add_argument("--task", default=None, help=f"task ({', '.join(list_tasks())}); default: from the dataset's "
                       "name poisoned-<task>-<attack> or its card")
        p.add_argument("--attack", default=None, help=f"attack ({', '.join(list_attacks())}); default: from the "
                       "dataset's name or card")


def _task_overrides(args) -> list[str]:
    """``--task``/``--attack`` as preset overrides (``task=...``, ``attack=...``)."""
    return [f"{key}={value}" for key in ("task", "attack") if (value := getattr(args, key, None)) is not None]


def _preset(args, *, builds: bool = False):
    """The preset with its ``--set`` overrides (and, for verbs that build a variant, ``--task``/``--attack``);
    a key the verb does not read is refused (``config.KEY_USERS``)."""
    from hf_unlearn.config import apply_overrides, check_verb_keys, load_preset

    check_verb_keys(args.overrides, args.verb)  # before the preset loads: the refusal names the verb's own flags
    return apply_overrides(load_preset(args.preset), [*args.overrides, *(_task_overrides(args) if builds else [])])


def _load_splits(args, revision: str | None, **kwargs):
    """``pipeline.load_splits`` for ``--dataset``/``--config``, with an unreadable data file (a truncated or
    corrupt parquet shard: datasets raises DatasetGenerationError) as one line naming the dataset."""
    from datasets.exceptions import DatasetGenerationError

    from hf_unlearn.pipeline import load_splits

    try:
        return load_splits(args.dataset, args.config, revision, task=args.task, attack=args.attack, **kwargs)
    except DatasetGenerationError as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        detail = " ".join(str(cause).split())[:300]
        shard = _unreadable_shard(args.dataset)
        what = f"{shard} could not be read" if shard else "a data file could not be read"
        raise ValueError(f"dataset {args.dataset} [{args.config}]: {what} ({type(cause).__name__}: {detail}); a "
                         "truncated or corrupt parquet shard? rebuild the folder with `hf-unlearn build` or download "
                         "it again") from None


def _unreadable_shard(dataset: str) -> str | None:
    """The first parquet file of a local dataset folder whose footer pyarrow cannot read (None if none, or a Hub id)."""
    import pyarrow.parquet as pq

    folder = Path(dataset).expanduser()
    for path in sorted(folder.rglob("*.parquet")) if folder.is_dir() else []:
        try:
            pq.read_metadata(path)
        except Exception:  # noqa: BLE001 - any failure to read is the answer
            return str(path.relative_to(folder))
    return None


def _load_checkpoint(name: str, revision: str | None):
    """``train.load_checkpoint`` with a wrong ``config.json`` (not JSON, not an object, not a ResNet-18 or a
    transformers config hf-unlearn knows, or one its weights do not fit) as one line naming the checkpoint."""
    import json as _json

    from hf_unlearn.train import checkpoint_config, load_checkpoint

    where = f"checkpoint {name}: config.json"
    try:
        config = checkpoint_config(name, revision)
    except _json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON ({exc}); save checkpoints with `hf-unlearn train`/`unlearn` "
                         "or save_pretrained") from None
    if not isinstance(config, dict):
        raise ValueError(f"{where} holds a {type(config).__name__}, not a JSON object of model settings")
    from hf_unlearn.tasks import task_for_checkpoint

    try:
        task_for_checkpoint(config)  # a model_type hf-unlearn does not load
    except ValueError as exc:
        raise ValueError(f"checkpoint {name}: {str(exc).removeprefix('checkpoint ')}") from None
    if "model_type" not in config:  # hf-unlearn's own ResNet-18: its config is ResNet18's constructor arguments
        import inspect

        from hf_unlearn.models.resnet import ResNet18

        accepted = set(inspect.signature(ResNet18.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - accepted)
        if unknown or not config:
            raise ValueError(f"{where} is neither a ResNet-18 config (keys {sorted(accepted)}; got "
                             f"{unknown or 'none'}) nor a transformers config with a model_type")
    try:
        return load_checkpoint(name, revision=revision)
    except RuntimeError as exc:
        if "state_dict" not in str(exc):
            raise
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ValueError(f"checkpoint {name}: the weights do not fit its config.json "
                         f"({' '.join(lines[:2])[:300]})") from None


def _builder(task: str, attack: str):
    """The dataset builder module of (task, attack): ``dataset_builders.poisoned_<task>_<attack>``."""
    import importlib

    from hf_unlearn.attacks import get_attack
    from hf_unlearn.tasks import check_task_name

    check_task_name(task)  # an unknown task fails first, listing the known ones (without importing torch)
    module = "dataset_builders." + get_attack(attack, task).repo_name(task).replace("-", "_")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"--task {task} --attack {attack}: no builder ({module} failed to import: {exc})") from None


def _build_choice(argv: list[str]) -> tuple[str, str]:
    """The (task, attack) a ``build`` command line asks for: its builder adds the verb's other flags."""
    from hf_unlearn.attacks import DEFAULT_ATTACK
    from hf_unlearn.tasks import DEFAULT_TASK

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default=DEFAULT_TASK)
    pre.add_argument("--attack", default=DEFAULT_ATTACK)
    if argv and argv[0] == "build":
        known, _ = pre.parse_known_args(argv[1:])
        return known.task, known.attack
    return DEFAULT_TASK, DEFAULT_ATTACK


def cmd_build(args) -> None:
    _builder(args.task, args.attack).run(args)


def cmd_train(args) -> None:
    from hf_unlearn.pipeline import train_model
    from hf_unlearn.train import RunOptions

    cfg = _preset(args)
    _check_push_target(args)
    revision, _ = _revisions(args)
    splits = _load_splits(args, revision)
    role = "retrain" if args.retrain else "poisoned"
    out = args.output_dir or f"runs/{args.config}-{role}-s{cfg.train.seed}"
    opts = RunOptions(cpu=args.cpu, progress=not args.no_progress, resume=not args.no_resume,
                      mixed_precision=args.mixed_precision)
    result = train_model(splits, {"id": str(args.dataset), "config": args.config, "revision": revision},
                         cfg.train, out, role=role, options=opts)
    print(json.dumps({"checkpoint": out, "test_accuracy": result.test_accuracy,
                      "training_cost": result.training_cost, **_push_checkpoint(args, out)}, indent=2))


def cmd_score(args) -> None:
    from hf_unlearn.pipeline import score_to_record
    from hf_unlearn.results import append_record
    from hf_unlearn.scoring import scoring_device

    dataset_rev, checkpoint_rev = _revisions(args)
    checkpoint_id, checkpoint_rev = _checkpoint_ref(args.checkpoint, checkpoint_rev)
    model, summary = _load_checkpoint(args.checkpoint, checkpoint_rev)
    model.to(scoring_device(cpu=args.cpu))  # gradients and accuracy run where the model is
    splits = _load_splits(args, dataset_rev)
    record, _ = score_to_record(
        model, splits,
        dataset_ref={"id": str(args.dataset), "config": args.config, "revision": dataset_rev},
        model_ref={"id": str(checkpoint_id), "revision": checkpoint_rev},
        method=args.method, null_draws=args.null_draws, seed=int(summary.get("seed", 0)),
        score_seed=args.score_seed, compute_used=float(summary.get("training_cost", 0.0)),
        task=args.task, attack=args.attack,
    )
    if args.output:
        append_record(record, args.output)
    folder = Path(str(checkpoint_id))
    if folder.is_dir() and (folder / "README.md").is_file():  # a local checkpoint: its card gets the results
        from hf_unlearn.cards import add_eval_results

        add_eval_results(folder, record)
    print(json.dumps(record.to_dict()["metrics"], indent=2))


def cmd_demo(args) -> None:
    from hf_unlearn.demo import run_demo

    methods = tuple(args.methods) if args.methods else None
    run_demo(_preset(args, builds=True), args.output_dir, progress=not args.no_progress, cpu=args.cpu, methods=methods,
             budget=args.budget)


def cmd_unlearn(args) -> None:
    from accelerate import Accelerator

    from hf_unlearn.results import append_record
    from hf_unlearn.unlearn import get_method
    from hf_unlearn.unlearn.runner import unlearn_checkpoint

    get_method(args.method)  # an unknown method fails before anything loads, listing the known ones
    _check_push_target(args)
    if args.push_to_hub and args.method == "none":
        raise ValueError("--push-to-hub: method none writes no checkpoint (it scores the input one); publish that "
                         "with `hf-unlearn publish --checkpoint PATH` or pick another method")
    dataset_rev, checkpoint_rev = _revisions(args)
    checkpoint_id, checkpoint_rev = _checkpoint_ref(args.checkpoint, checkpoint_rev)
    # Several processes split every global batch exactly (hf_unlearn.distributed); the meter counts global work once.
    accelerator = Accelerator(cpu=args.cpu, mixed_precision=args.mixed_precision)
    # The checkpoint and the variant load here (the CLI's one-line errors), each at its own revision, which the
    # runner records as the checkpoint's and the dataset's.
    model, summary = _load_checkpoint(args.checkpoint, checkpoint_rev)
    splits = _load_splits(args, dataset_rev)
    outcome = unlearn_checkpoint(
        checkpoint_id, args.dataset, args.config, args.method, budget=args.budget, seed=args.seed,
        overrides=args.overrides, method_config_path=args.method_config, output_dir=args.output_dir,
        results_path=None, null_draws=args.null_draws, score_seed=args.score_seed, dataset_revision=dataset_rev,
        checkpoint_revision=checkpoint_rev,
        accelerator=accelerator, progress=not args.no_progress, task=args.task, attack=args.attack,
        model=model, summary=summary, splits=splits, mixed_precision=args.mixed_precision,
    )
    if not accelerator.is_main_process:  # one record, one checkpoint push, one printout
        return
    record = outcome.record
    if args.output:
        append_record(record, args.output)
    r = outcome.result
    pushed = _push_checkpoint(args, outcome.checkpoint_dir) if outcome.checkpoint_dir is not None else {}
    print(json.dumps({
        "checkpoint": None if outcome.checkpoint_dir is None else str(outcome.checkpoint_dir),
        "method": args.method, "compute_used": r.compute_used, "compute_limit": r.limit,
        "stopped_by": r.stopped_by, "metrics": record.metrics, **pushed,
    }, indent=2))


def cmd_benchmark(args) -> None:
    from hf_unlearn.benchmark import run_benchmark

    from hf_unlearn.unlearn import parse_overrides

    method_overrides: dict[str, dict] = {}
    for item in args.method_set:
        method, dot, rest = item.partition(".")
        if not dot or "=" not in rest:
            raise ValueError(f"--method-set {item!r}: expected METHOD.KEY=VALUE, e.g. --method-set ga.lr=1e-4")
        method_overrides.setdefault(method, {}).update(parse_overrides([rest]))
    if args.tune_seed is not None and not (args.tune or args.tune_at_budget is not None):
        raise ValueError("--tune-seed: only with --tune (or --tune-at-budget)")
    result = run_benchmark(args.preset, args.output_dir, seeds=args.seeds, budgets=args.budgets, methods=args.methods,
                           pipeline_overrides=[*args.overrides, *_task_overrides(args)] or None,
                           method_overrides=method_overrides or None,
                           tune=True if (args.tune or args.tune_at_budget is not None) else None,
                           tune_at_budget=args.tune_at_budget, tune_seed=args.tune_seed,
                           progress=not args.no_progress, cpu=args.cpu, shard=args.shard, stage=args.stage,
                           mixed_precision=args.mixed_precision)
    if not result.merged:
        print(f"shard {result.shard}: done ({len(result.ran)} cells run now); {len(result.missing)} cell(s) still to "
              "come from other shards (the last to finish merges; or: hf-unlearn benchmark --stage merge)")
        return
    print("\n" + result.table + "\n")
    for name, path in result.paths.items():
        print(f"{name:>9}: {path}")


def cmd_submit(args) -> None:
    from leaderboard.submission import SubmissionError
    from leaderboard.submit import submit_file

    new_methods = {}
    for item in args.new_method or []:
        if "=" not in item:
            raise ValueError(f"--new-method {item!r}: expected NAME=DESCRIPTION")
        name, text = item.split("=", 1)
        new_methods[name] = text
    try:
        result = submit_file(args.file, args.leaderboard, submitter=args.submitter, display_name=args.display_name,
                             link=args.link,
                             new_methods=new_methods, checkpoints=args.checkpoint or [], verify=not args.no_verify)
    except SubmissionError as exc:
        raise ValueError(str(exc)) from None
    print(result.summary())


def cmd_board(args) -> None:
    from leaderboard.board import BoardError, render_board

    try:
        text = render_board(args.leaderboard, task=args.task, attack=args.attack, variant=args.variant,
                            budget=args.budget, fmt=args.format)
    except BoardError as exc:
        raise ValueError(str(exc)) from None
    sys.stdout.write(text)


def _check_push_target(args) -> None:
    """``--push-to-hub ORG/NAME`` is checked before any work, so a typo does not cost a training run."""
    if getattr(args, "push_to_hub", None):
        from hf_unlearn.publish import check_repo_id

        check_repo_id(args.push_to_hub, "--push-to-hub")


def _push_checkpoint(args, folder) -> dict:
    """``--push-to-hub``: the saved folder (weights, config, summary, card) to the Hub model repo, by the path
    ``publish`` takes (only changed files go up); ``{"pushed": {...}}`` for the verb's JSON output, {} if not asked."""
    if not getattr(args, "push_to_hub", None):
        return {}
    from hf_unlearn.hub import HubAccessError
    from hf_unlearn.publish import push_checkpoint

    try:
        action = push_checkpoint(folder, args.push_to_hub)
    except HubAccessError as exc:  # the run's work is safe on disk: say so, and how to push it later
        raise HubAccessError(f"{folder} is saved, but pushing it failed (push it later with `hf-unlearn publish "
                             f"--namespace ORG --checkpoint {folder}`): {exc}") from None
    return {"pushed": {"repo_id": args.push_to_hub, "action": action.action, "commit": action.commit}}


def cmd_publish(args) -> None:
    from hf_unlearn.publish import HubTarget, MirrorTarget, publish

    target = MirrorTarget(args.mirror) if args.mirror else HubTarget()
    publish(args.namespace, target, root=args.workspace, datasets=args.dataset, checkpoints=args.checkpoint,
            references=args.references, tag=args.tag, spaces=not args.no_spaces, dry_run=args.dry_run,
            progress=not args.no_progress)


def _add_push_to_hub(p: argparse.ArgumentParser) -> None:
    p.add_argument("--push-to-hub", default=None, metavar="ORG/NAME",
                   help="after saving, upload the checkpoint folder (weights, config, summary, card) to this Hub "
                   "model repo (needs HF_TOKEN; only changed files go up)")


def build_parser(build_for: tuple[str, str] | None = None) -> argparse.ArgumentParser:
    """The CLI; ``build_for`` = (task, attack) whose builder's flags the ``build`` verb takes (default: the
    default variant family's; ``main`` reads it from the command line)."""
    parser = argparse.ArgumentParser(
        prog="hf-unlearn",
        description="Check whether machine unlearning removes poisoned training data (Gaussian Unlearning Score).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print hf-unlearn's version and exit")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    build_task, build_attack = build_for or _build_choice([])
    from hf_unlearn.attacks import get_attack

    _builder(build_task, build_attack)  # checks the names
    repo = get_attack(build_attack, build_task).repo_name(build_task)
    p = sub.add_parser("build", help="build a poisoned dataset folder (Hub layout); default: Gaussian-poisoned CIFAR-10",
                       description=f"Build {repo} variants (choose with --task/--attack; the other flags are that "
                       "builder's): parquet shards + a card whose configs: list every variant, loadable with "
                       "datasets.load_dataset(folder, config).")
    p.add_argument("--task", default=build_task, help=f"task of the variants (default {build_task})")
    p.add_argument("--attack", default=build_attack, help=f"attack of the variants (default {build_attack})")
    _builder(build_task, build_attack).add_arguments(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="train a poisoned model (or retrain without the poisons)",
                       description="Train a CIFAR ResNet-18 on a variant's train split with the preset's recipe; "
                       "saves model.safetensors, config.json, training_summary.json and a model card. "
                       "Resumes from checkpoints/epoch_N in the output folder if a run was interrupted.")
    p.add_argument("--dataset", required=True, help="dataset folder or Hub repo id (e.g. ./poisoned-cifar10-gaussian)")
    p.add_argument("--config", required=True, help="variant name, e.g. eps0.1-b1.5-s0")
    _add_revisions(p, "train", checkpoint=False)
    p.add_argument("--retrain", action="store_true", help="train without the forget rows (the Retrain reference)")
    p.add_argument("--output-dir", default=None, help="checkpoint folder (default runs/<config>-<role>-s<seed>)")
    p.add_argument("--no-resume", action="store_true", help="ignore checkpoints in the output folder")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"], help="GPU mixed precision")
    _add_push_to_hub(p)
    _add_task_attack(p, builds=False)
    _add_preset(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score a checkpoint: GUS, TPR@FPR, AUC, accuracy",
                       description="Gaussian scores of a checkpoint's input gradients against its variant's noise "
                       "(and fresh null noise). Prints the metrics; --output appends a result record (JSONL).")
    _add_checkpoint_and_variant(p, "score", "folder with model.safetensors, or a Hub model id (ORG/NAME[@REV])")
    p.add_argument("--method", default="none", help="method name recorded in the result (default none)")
    _add_task_attack(p, builds=False)
    _add_scoring_flags(p, "--seed")
    p.add_argument("--cpu", action="store_true",
                   help="force the CPU (default: the accelerator, as Accelerate picks it)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("demo", help="the demo benchmark on the shipped samples (build, train, retrain, score, plot)",
                       description="Builds a poisoned variant from the shipped samples, trains a poisoned and a "
                       "retrained model, scores both and writes results.jsonl, summary.md, roc.png and "
                       "scores_hist.png. Finished steps are reused on a second run.")
    p.add_argument("--output-dir", default="demo_output", help="where everything goes (default demo_output/)")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                   help="methods to run (default: none, retrain and every unlearning method)")
    p.add_argument("--budget", type=float, default=0.1,
                   help="unlearning budget as a fraction of the poisoned model's training cost (default 0.1)")
    _add_task_attack(p, builds=True)
    _add_preset(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("unlearn", help="unlearn a poisoned checkpoint's forget split with one method under a budget",
                       description="Runs METHOD on the variant's retain/forget split of --dataset starting from "
                       "--checkpoint; iterative methods run until BUDGET x the checkpoint's training cost "
                       "(forward-equivalents) ends them (cap with --set epochs=N; opt-in early stops: --set "
                       "stop_on_plateau=true / stop_on_collapse=true) and the output says why it stopped (stopped_by); "
                       "saves the unlearned checkpoint (safetensors + card), scores it and prints the metrics. "
                       "Works under `accelerate launch [--num_processes N] -m hf_unlearn.cli unlearn ...`: the global batch "
                       "is split exactly over the processes.")
    _add_checkpoint_and_variant(p, "unlearn", "poisoned checkpoint folder or Hub model id (ORG/NAME[@REV])")
    p.add_argument("--method", required=True,
                   help="none, retrain, gd, ngd, ga, euk, cfk, scrub, neggrad_plus, ssd (or a registered method)")
    p.add_argument("--budget", type=float, default=0.1,
                   help="fraction of the training cost the method may use (default 0.1; ignored by none/retrain)")
    p.add_argument("--seed", type=int, default=0, help="unlearning seed (default 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method hyper-parameter, e.g. --set lr=0.01 (repeatable)")
    p.add_argument("--method-config", default=None, help="YAML preset for the method (default configs/methods/<method>.yaml)")
    p.add_argument("--output-dir", default=None,
                   help="unlearned checkpoint folder (default runs/unlearn/<config>/<method>-b<budget>-s<seed>)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"],
                   help="GPU mixed precision (the first layer, the noise and the scores stay float32)")
    _add_push_to_hub(p)
    _add_task_attack(p, builds=False)
    _add_scoring_flags(p, "--score-seed")
    _add_run_flags(p)
    p.set_defaults(func=cmd_unlearn)

    p = sub.add_parser("benchmark", help="every method x seed x budget of a preset: records, table, Figure 2, report",
                       description="Builds the preset's variants, trains each poisoned model once, then unlearns and "
                       "scores every (variant, method, seed, budget) cell, appending each record to "
                       "OUTPUT_DIR/results.jsonl as it finishes; a rerun skips finished cells. Writes summary.md/.csv "
                       "(mean +- std over seeds), figure_<variant>.png and report.md. Every iterative method runs until "
                       "its budget (BUDGET x the poisoned model's training cost, in forward-equivalents) ends it; each "
                       "record says why it stopped (stopped_by). With --tune, each method's grid "
                       "(configs/methods/<method>.yaml) runs first on a retain set minus a seeded 5%% validation slice, "
                       "every grid cell goes to tuning.jsonl, and the sweep runs at the setting selected by a fixed rule: "
                       "among settings whose validation accuracy is within 2 points of the poisoned model's, the smallest "
                       "|GUS|; if none qualifies, the highest validation accuracy (docs/unlearning.md, \"Tuning\"). "
                       "Tuning compute is reported apart from the budget.")
    p.add_argument("--preset", default="cpu", help="benchmark preset: cpu, demo, paper or a YAML path (default cpu)")
    p.add_argument("--output-dir", default="runs/benchmark", help="where everything goes (default runs/benchmark)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="unlearning seeds (default: the preset's)")
    p.add_argument("--budgets", type=float, nargs="+", default=None, metavar="FRACTION",
                   help="compute budgets; the paper's sweep is --budgets 0.02 0.04 0.06 0.08 0.1")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD", help="methods (default: the preset's)")
    p.add_argument("--method-set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="override a method hyper-parameter, e.g. --method-set ga.lr=1e-4 or "
                   "--method-set ga.stop_on_collapse=true (repeatable)")
    p.add_argument("--tune", action="store_true",
                   help="run each method's tuning grid first, per budget, and the sweep at the selected setting")
    p.add_argument("--tune-at-budget", type=float, default=None, metavar="FRACTION",
                   help="tune once at this budget (implies --tune) and use the selection for every budget, "
                   "e.g. 0.1 (what the CPU run does)")
    p.add_argument("--tune-seed", type=int, default=None, help="the seed the grid runs on (default: the first seed)")
    p.add_argument("--shard", default=None, metavar="K/N", help="run only shard K of N of the grid (0-based: "
                   "--shard $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)); each shard appends to "
                   "results.shard-K-of-N.jsonl, the last to finish merges into results.jsonl. Under accelerate "
                   "launch each process is a shard itself")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"],
                   help="GPU mixed precision for training and unlearning (first layer, noise and scores float32)")
    p.add_argument("--stage", choices=["all", "prepare", "tune", "merge"], default="all", help="prepare: build "
                   "variants and train the poisoned models; tune: also run the tuning grids; merge: run nothing, "
                   "merge every shard's records into results.jsonl and write the report (default all)")
    _add_task_attack(p, builds=True)
    _add_overrides(p, "--set train.epochs=20")
    _add_run_flags(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("submit", help="submit result records (JSONL) to a leaderboard folder, Hub store or Space",
                       description="Validate and submit a JSONL file of result records. --leaderboard is an existing "
                       "store folder, hf://datasets/ORG/NAME (a Hub store; needs HF_TOKEN) or a Space (spaces/ORG/NAME "
                       "or https://ORG-NAME.hf.space). No-unlearning and Retrain rows are references that only the "
                       "maintainers publish; submissions carry unlearning methods. "
                       "Name unlearned checkpoints with --checkpoint INDEX=ID[@REV] to have the scores re-computed "
                       "and the entry marked verified.")
    p.add_argument("file", help="JSONL file of result records (e.g. demo_output/results.jsonl)")
    p.add_argument("--leaderboard", required=True, help=LEADERBOARD_HELP)
    p.add_argument("--submitter", default=None, help="name shown on the leaderboard (default: your Hub login)")
    p.add_argument("--display-name", default=None, help="shown beside the submitter (on a Space: beside your @account)")
    p.add_argument("--link", default=None, help="paper or code URL shown (as text) with the entry")
    p.add_argument("--checkpoint", action="append", metavar="[INDEX=]ID[@REV]",
                   help="unlearned checkpoint of record INDEX (0-based), to verify (repeatable)")
    p.add_argument("--new-method", action="append", metavar="NAME=DESCRIPTION",
                   help="declare a method that is not built in (repeatable)")
    p.add_argument("--no-verify", action="store_true", help="store without re-computing scores")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("board", help="print the ranked leaderboard table (Markdown, CSV or JSON)",
                       description="Print the rows and ranks the leaderboard shows, for scripts and checks. "
                       "For a store, the trusted references and public variants come from LEADERBOARD_REFERENCES "
                       "and LEADERBOARD_DATASETS, as in the Space; a Space is asked for its own table.")
    p.add_argument("--leaderboard", required=True, help=LEADERBOARD_HELP)
    p.add_argument("--task", default=None, help="e.g. cifar10 (default: all)")
    p.add_argument("--attack", default=None, help="gaussian, targeted or indiscriminate (default: all)")
    p.add_argument("--variant", default=None, help="a public variant, e.g. eps0.1-b1.5-s0 (default: all)")
    p.add_argument("--budget", default=None,
                   help="unlearning budget as a fraction of the training compute, e.g. 0.05 (default: all)")
    p.add_argument("--format", choices=["md", "csv", "json"], default="md", help="output format (default: md)")
    p.set_defaults(func=cmd_board)

    p = sub.add_parser("publish", help="push every dataset, checkpoint, metric and the leaderboard to the Hub "
                       "(or a local mirror)",
                       description="Publish a workspace as Hub repos under ORG: every dataset repo folder "
                       "(poisoned-*, all variants), every checkpoint folder (model.safetensors + config.json + "
                       "training_summary.json + card), the references file (dataset repo hf-unlearn-references), the "
                       "metric Spaces gus and tpr_at_fpr, and the Space hf-unlearn-leaderboard. Only files that "
                       "differ are committed, one commit per repo: a second run changes nothing, an interrupted "
                       "one is finished by running it again. Needs HF_TOKEN with write access; --mirror DIR writes "
                       "the same commits as git repos in olah's layout instead "
                       "(DIR/<models|datasets|spaces>/ORG/NAME).")
    p.add_argument("--namespace", required=True, metavar="ORG", help="your Hub user or organisation")
    p.add_argument("--from", dest="workspace", default=None, metavar="DIR",
                   help="workspace searched for dataset repos and checkpoints (default: . when no --dataset or "
                   "--checkpoint is given; skips checkpoints/ and tuning/ folders)")
    p.add_argument("--dataset", action="append", default=[], metavar="PATH", help="a dataset repo folder (repeatable)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="PATH", help="a checkpoint folder (repeatable)")
    p.add_argument("--references", default=None, metavar="FILE",
                   help="the maintainers' reference records (JSONL of none/retrain records; default: "
                   "references.jsonl in the workspace, if any)")
    p.add_argument("--mirror", default=None, metavar="DIR", help="write git repos for olah here instead of the Hub")
    p.add_argument("--tag", default=None, metavar="TAG", help="release tag put on every published repo, e.g. v1.0")
    p.add_argument("--no-spaces", action="store_true", help="skip the metric Spaces and the leaderboard Space")
    p.add_argument("--dry-run", action="store_true", help="list what would be created or changed; write nothing")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hf_unlearn.hub import HubAccessError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(_build_choice(argv))
    except ValueError as exc:  # an unknown --task/--attack for `build`, or a builder that fails to import
        print(f"hf-unlearn build: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, KeyError, ConnectionError, HubAccessError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"hf-unlearn {args.verb}: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
