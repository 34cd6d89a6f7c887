"""Train LeNet-5 on MNIST (or Fashion-MNIST, KMNIST), prune it, fine-tune it, and report.

    python -m tinyprune.run [--epochs 10] [--sparsity 0.5] [--finetune-epochs 5] ...

After every epoch, of training and of fine-tuning, the run is saved to --out/checkpoint.npz;
if it is interrupted (Ctrl-C, a crash, a closed laptop), the same command with --resume goes
on from there and ends with the same numbers. The checkpoint is deleted when the run
completes. With --cache-dir the run starts from the dense model cached there (trained and
cached first if missing), as `python -m tinyprune.deep_compress` does: that command is this
one with Deep Compression's recipe as defaults (DEEP_COMPRESS). The work itself is in
pipeline.py; this module reads the options and prints.
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numba

from tinyprune.cli.options import (
    add_data_options,
    add_share_options,
    add_training_options,
    check_bits,
    check_data_dir,
    check_folders,
    from_options,
    load_data_or_say_why,
    share_config,
)
from tinyprune.cli.pipeline import (
    RunError,
    Trained,
    package_phase,
    prune_phase,
    report_phase,
    share_phase,
    structure_phase,
    train_phase,
)
from tinyprune.cli.recipes import RECIPES, recipe_list
from tinyprune.cli.types import (
    float_list,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    seed_list,
)
from tinyprune.config import DataConfig, PruneConfig, RunConfig, StructureConfig, TrainConfig
from tinyprune.deploy.size_report import format_size_table
from tinyprune.experiments.seeds import format_seeds_table, headlines, seeds_summary
from tinyprune.files import write_json
from tinyprune.nn.model import MODELS, Sequential, unit_layers
from tinyprune.prune.criteria import METHODS
from tinyprune.prune.schedules import SCHEDULES
from tinyprune.report.tables import print_layers
from tinyprune.train.checkpoint import CHECKPOINT, CheckpointError
from tinyprune.train.loop import Diverged, print_progress, warm_up
from tinyprune.train.resume import RunState, already_complete, out_folder_problem, stopped_where

# `python -m tinyprune.deep_compress`: this command with Deep Compression's recipe (Han et al.)
# as its defaults, starting from a cached dense model so that recipes compare without training
# it again.
DEEP_COMPRESS = {
    "prog": "python -m tinyprune.deep_compress",
    "description": "Prune by one global threshold in rounds, share weights, entropy-code: "
    "python -m tinyprune.run with Deep Compression's recipe as defaults, starting from the "
    "dense model cached in --cache-dir.",
    "defaults": {
        "method": "global",
        "schedule": "iterative",
        "sparsity": 0.9,
        "rounds": 4,
        "finetune_epochs": 8,
        "cache_dir": Path("runs/dense-cache"),
        "out": Path("runs/deep-compress"),
    },
}


def build_parser(
    prog: str = "python -m tinyprune.run",
    description: str = "Train LeNet-5 on MNIST, prune the smallest weights of each layer, "
    "fine-tune the rest, and report accuracy and sparsity.",
    defaults: dict | None = None,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--recipe",
        choices=[*RECIPES, "list"],
        default=None,
        help="run a named recipe of the docs (its options first, so yours override them); "
        "'list' prints them",
    )
    add_data_options(parser)
    add_training_options(parser).add_argument(
        "--fused",
        action="store_true",
        help="run each convolution, its pooling and ReLU as one fused layer (same numbers, faster)",
    )
    add_pruning_options(parser)
    add_structure_options(parser)
    add_share_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument(
        "--out",
        type=Path,
        default=Path("runs/latest"),
        help="folder for result.json, results.json, model.npz, pruned.npz, shared.tpz",
    )
    output.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="start from the trained dense model cached in this folder (trained and cached "
        "first if missing); default: train it in the run, no cache",
    )
    output.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out from its last completed "
        "epoch (same options), ending exactly as if never interrupted",
    )
    output.add_argument(
        "--seeds",
        type=seed_list,
        help="run once per seed (0,1,2 or 0-4) in --out/seed-S, as --seed S alone would, then "
        "print the headline numbers' mean ± std and write --out/seeds.json; with --resume, "
        "complete seeds are skipped and an interrupted one goes on",
    )
    parser.set_defaults(**(defaults or {}))
    return parser


def add_pruning_options(parser: argparse.ArgumentParser) -> None:
    """The group "pruning": what to prune, how, and the fine-tuning after it."""
    group = parser.add_argument_group("pruning")
    group.add_argument(
        "--sparsity",
        type=fraction,
        default=0.5,
        help="fraction of each layer's weights to prune (biases are kept)",
    )
    group.add_argument(
        "--method",
        choices=METHODS,
        default="layerwise",
        help="pruning criterion (see tinyprune/prune/criteria.py); filter removes whole "
        "filters and neurons, and --sparsity is then their share",
    )
    group.add_argument(
        "--quality",
        type=positive_float,
        default=None,
        help="--method std only: prune |w| < quality x std of its layer, "
        "measured on the trained model (Han et al.); replaces --sparsity",
    )
    group.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="oneshot",
        help="oneshot: prune, then fine-tune; iterative: --rounds rounds of "
        "prune and fine-tune; agp: prune gradually while fine-tuning",
    )
    group.add_argument(
        "--rounds",
        type=positive_int,
        default=4,
        help="rounds of the iterative schedule; --finetune-epochs are shared among them",
    )
    group.add_argument(
        "--finetune-epochs",
        type=non_negative_int,
        default=5,
        help="fine-tuning epochs after pruning",
    )
    group.add_argument(
        "--finetune-lr",
        type=positive_float,
        default=0.01,
        help="initial learning rate of fine-tuning (cosine decay to 0)",
    )


def add_structure_options(parser: argparse.ArgumentParser) -> None:
    """The group "learned structured pruning": whole filters and neurons, before pruning."""
    group = parser.add_argument_group("learned structured pruning (before pruning)")
    group.add_argument(
        "--structure",
        choices=["group-lasso"],
        default=None,
        help="while training, a group-lasso penalty zeroes whole filters and neurons; they are "
        "removed before pruning, which then prunes the smaller dense model (as the recipes "
        "caffe-99.2, caffe-99.0, lenet-300-100-98.4 and lenet5-mcu do)",
    )
    group.add_argument(
        "--lam",
        type=float_list,
        default=StructureConfig.lam,
        help="--structure's strength: one, or one per layer whose units may go "
        "(lenet5-caffe: conv1,conv2,fc1)",
    )


def parse_args(
    argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """The options, a --recipe's before the command line's, checked one by one (exit status 2
    and one line on a bad one)."""
    parser = parser or build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    recipe = parser.parse_known_args(argv)[0].recipe
    if recipe == "list":
        print(recipe_list())
        raise SystemExit(0)
    args = parser.parse_args(([] if recipe is None else RECIPES[recipe].argv()) + argv)
    if args.quality is not None and args.method != "std":
        parser.error("--quality sets the threshold of --method std; add --method std or drop it")
    if args.fused and "fused" not in inspect.signature(MODELS[args.model]).parameters:
        parser.error(f"--fused: {args.model} has no convolutions to fuse; leave it out")
    check_data_dir(parser, args)
    units = unit_layers(MODELS[args.model]())
    if len(args.lam) not in (1, len(units)):
        parser.error(f"--lam: give one strength, or {len(units)} ({','.join(units)})")
    if args.structure and (args.resume or args.cache_dir):
        parser.error(
            "--structure: a run that learns its structure cannot --resume (its model shrinks "
            "after training) nor start from --cache-dir's dense model; leave those out"
        )
    if args.cache_dir is not None:
        check_folders(parser, args, args.cache_dir)
    check_bits(parser, args)
    return args


def run_config(args: argparse.Namespace) -> RunConfig:
    return from_options(
        RunConfig,
        args,
        data=from_options(DataConfig, args),
        train=from_options(TrainConfig, args),
        prune=from_options(PruneConfig, args),
        share=share_config(args),
        structure=from_options(StructureConfig, args),
    )


def run(config: RunConfig, resume: bool) -> int:
    """The run itself (see main)."""
    if already_complete(config, resume):
        print(f"the run in {config.out}/ is complete (see its results.json); nothing to resume")
        return 0
    data = load_data_or_say_why(config.data)
    if data is None:
        return 1
    t = config.train
    build: Callable[..., Sequential] = MODELS[t.model]  # parse_args checked it takes fused
    model = build(t.seed, fused=True) if config.fused else build(t.seed)
    measured_on = "validation" if config.data.validation else "test"
    print(
        f"{model.name}, {model.num_params():,} parameters; {data.dataset.title}: "
        f"{len(data.train_images):,} training and {len(data.test_images):,} {measured_on} "
        f"images; results in {config.out}/"
    )
    jit_off = numba.config.DISABLE_JIT  # type: ignore[attr-defined]  # set from the environment
    print(kernels_ready(warm_up(model, None if jit_off else print_progress)))
    try:
        state = RunState.open(config, model, resume)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    resuming = state.resuming(config)
    if resuming:
        print(resuming)
    try:
        trained = train_phase(model, data, config, state)
        model = structure_phase(model, config, state)
        pruning = prune_phase(model, trained, data, config, state)
        shared = share_phase(model, data, config)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Diverged as error:
        print(f"error: {error}", file=sys.stderr)
        state.discard()  # resumed, it would diverge at the same step again
        return 1
    results = package_phase(model, data, config, trained, pruning, shared)
    page = report_phase(model, data, config, trained, results)
    print(f"report written: {page} (one page: open it in a browser)")
    print_report(results, trained, config)
    state.discard()  # the run is complete: nothing is left to resume
    return 0


def kernels_ready(seconds: float) -> str:
    """What warm_up did: compiled (or loaded) the numba kernels, or, with NUMBA_DISABLE_JIT=1,
    nothing: the kernels then run as plain Python, which a debugger can step through."""
    if numba.config.DISABLE_JIT:  # type: ignore[attr-defined]  # set from the environment
        return (
            "numba's JIT is off (NUMBA_DISABLE_JIT=1): the kernels run as plain Python, "
            "slowly; keep --limit and --test-limit small"
        )
    return (
        f"numba kernels ready in {seconds:.1f}s (compiled on the first run, then loaded "
        f"from numba's cache)"
    )


def print_report(results: dict, trained: Trained, config: RunConfig) -> None:
    """What package_phase found: sizes, what filter pruning removed, the layer table, and
    accuracy before and after."""
    size = results["bytes"]
    dense, tpz, int8 = (size[k] for k in ("dense_float32", "compressed", "compressed_int8"))
    print(
        f"model size: dense float32 {dense:,} bytes; pruned.tpz {tpz:,} ({dense / tpz:.1f}x "
        f"smaller); pruned-int8.tpz {int8:,} ({dense / int8:.1f}x smaller, test accuracy "
        f"{results['int8_test_accuracy']:.2%})"
    )
    if "filters_removed" in results:
        f = results["filters_removed"]
        masked_s, small_s = f["inference_seconds_masked"], f["inference_seconds_smaller"]
        print(
            f"filters removed: {f['params']:,} -> {f['params_after']:,} parameters; "
            f"inference over the test images {masked_s:.3f}s (masked) -> {small_s:.3f}s "
            f"(smaller model), {masked_s / small_s:.1f}x faster"
        )
    print()
    print_layers(results["layers"])
    after = results["after_prune"]["test_accuracy"]
    pruned = "n/a (agp prunes while it trains)" if after is None else f"{after:.2%}"
    where = (
        ""
        if config.data.test_limit is None
        else f" (on the first {config.data.test_limit:,} test images only)"
    )
    print(
        f"\ntest accuracy{where}: dense {trained.test_accuracy:.2%}, pruned {pruned}, "
        f"fine-tuned {results['test_accuracy']:.2%}"
    )
    print_shared(results["shared"], size["dense_float32"], config.out)


def print_shared(shared: dict, dense: int, out: Path) -> None:
    """share_phase's results: the file's bytes layer by layer, and its own accuracy."""
    print(
        f"\n{out / shared['file']} (pruned, weights shared, entropy-coded): "
        f"{shared['file_bytes']:,} bytes, {dense / shared['file_bytes']:.1f}x smaller than "
        f"dense float32; test accuracy {shared['file_accuracy']:.2%} (of the model decoded "
        f"from the file; {shared['clustered_accuracy']:.2%} before fine-tuning the shared "
        f"values)"
    )
    print(format_size_table(shared["layers"]))


def interrupted(
    argv: list[str] | None, config: RunConfig, resume: bool, prog: str = "python -m tinyprune.run"
) -> str:
    """The one line printed on Ctrl-C: where the run stopped and how to go on."""
    where = stopped_where(config)
    if where is None:  # nothing saved yet, or a run with --structure, which saves nothing
        return "interrupted before the run could be resumed; run the same command again"
    argv = list(sys.argv[1:] if argv is None else argv)
    command = [*prog.split(), *argv] + ([] if resume else ["--resume"])
    return f"interrupted {where}; resume with: {shlex.join(command)}"


def ctrl_c(error: BaseException | None) -> bool:
    """Was error caused by Ctrl-C? A KeyboardInterrupt that arrives while a numba kernel runs
    comes out of the call as a SystemError whose cause (at some depth) is the interrupt."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def deep_compress(argv: list[str] | None = None) -> int:
    """`python -m tinyprune.deep_compress`: main with DEEP_COMPRESS's defaults."""
    return main(argv, **DEEP_COMPRESS)


def main(argv: list[str] | None = None, **parser_options) -> int:
    """-> exit status: 0 done, 1 failed (stderr says why), 2 bad options, 130 Ctrl-C. With
    --seeds, the run once per seed (seed_runs), then the summary over them (experiments/seeds.py).
    parser_options: build_parser's (deep_compress's prog, description and defaults)."""
    parser = build_parser(**parser_options)
    args = parse_args(argv, parser)
    runs = seed_runs(args) if args.seeds else [(run_config(args), args.resume)]
    for problem in filter(None, (out_folder_problem(c.out, resume) for c, resume in runs)):
        parser.error(problem)
    try:
        for config, resume in runs:
            if status := run(config, resume):
                return status
    except (KeyboardInterrupt, SystemError) as error:
        if not ctrl_c(error):
            raise
        print(interrupted(argv, config, args.resume, parser.prog), file=sys.stderr)
        return 130
    if args.seeds:
        summary = seeds_summary({c.train.seed: headlines(c.out) for c, _ in runs})
        write_json(args.out / "seeds.json", summary)
        split = "validation" if args.validation else "test"
        print(f"\nover the runs in {args.out}/seed-* (accuracies in % on the {split} images):")
        print(format_seeds_table(summary))
    return 0


def seed_runs(args: argparse.Namespace) -> list[tuple[RunConfig, bool]]:
    """--seeds: (config, resume) of each seed's run, in --out/seed-S; with --resume, a folder
    that holds a run (complete or not) resumes it, and an empty one starts."""
    runs = []
    for seed in args.seeds:
        one = argparse.Namespace(**{**vars(args), "seed": seed, "out": args.out / f"seed-{seed}"})
        started = (one.out / CHECKPOINT).exists() or (one.out / "results.json").exists()
        runs.append((run_config(one), args.resume and started))
    return runs
