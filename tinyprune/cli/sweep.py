"""Sweep: test accuracy against sparsity, for each pruning schedule.

Every point starts from the same trained dense model (cached, see train/dense_cache.py), prunes it
to one sparsity on one schedule, fine-tunes it for the same number of epochs, and measures
test accuracy. The result shows where pruning starts to cost accuracy, and which schedule
postpones that.

    python -m tinyprune.sweep [--model lenet5] [--out runs/sweep] [--finetune-epochs 2] ...

With --seeds 0,1,2 every point is run for each seed (each its own dense model) and the table
shows mean ± std over them; --jobs N runs the points on N local processes, --scheduler ADDRESS
on a Dask cluster, with the same results to the last bit. Each point is saved in --out/points
as it finishes: the same command after an interruption runs only the points still missing.
Writes sweep.json and sweep.png (if matplotlib is there) into --out, and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.cli.options import (
    add_dense_cache_options,
    add_parallel_options,
    check_folders,
    check_parallel,
    from_options,
    load_data_or_say_why,
    seeds_config,
)
from tinyprune.cli.types import non_negative_int, positive_float, positive_int, sparsity_list
from tinyprune.config import PruneConfig
from tinyprune.experiments.dense_study import dense_summary, over_seeds, run_sweep
from tinyprune.files import write_json
from tinyprune.prune.criteria import METHODS
from tinyprune.prune.schedules import SCHEDULES
from tinyprune.report.plots import sweep_plot, sweep_size_plot
from tinyprune.report.tables import print_sweep

DEFAULT_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


def schedule_list(text: str) -> list[str]:
    names = text.split(",")
    unknown = [n for n in names if n not in SCHEDULES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown schedule {', '.join(unknown)}; choose from {', '.join(SCHEDULES)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.sweep",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dense_cache_options(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/sweep"),
        help="folder for sweep.json, sweep.png and points/ (each point as it finishes)",
    )
    parser.add_argument(
        "--sparsities",
        type=sparsity_list,
        default=list(DEFAULT_SPARSITIES),
        help="the sparsities to prune to, comma-separated",
    )
    parser.add_argument(
        "--schedules",
        type=schedule_list,
        default=list(SCHEDULES),
        help="the pruning schedules to compare, comma-separated",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="layerwise",
        help="pruning criterion of every point (see tinyprune/prune/criteria.py)",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=non_negative_int,
        default=2,
        help="fine-tuning epochs of every point, whatever its schedule",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=2, help="rounds of the iterative schedule"
    )
    parser.add_argument(
        "--finetune-lr",
        type=positive_float,
        default=0.01,
        help="initial learning rate of fine-tuning (cosine decay to 0)",
    )
    add_parallel_options(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_folders(parser, args, args.out, args.cache_dir)
    check_parallel(parser, args)
    if args.rounds > max(args.finetune_epochs, 1):
        parser.error(f"--rounds must be at most --finetune-epochs ({args.finetune_epochs})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = seeds_config(args)
    data = load_data_or_say_why(config.data)
    if data is None:
        return 1
    prunes = [
        from_options(PruneConfig, args, sparsity=sparsity, schedule=schedule)
        for schedule in args.schedules
        for sparsity in args.sparsities
    ]
    try:
        dense, points, failures = run_sweep(config, prunes, len(data.train_images))
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the points finished are saved in {args.out / 'points'} and the "
            f"same command goes on from there",
            file=sys.stderr,
        )
        return 130
    result = {
        "model": args.model,
        "method": args.method,
        "seeds": list(config.seeds),
        **dense_summary(config, dense),
        "finetune_epochs": args.finetune_epochs,
        "finetune_lr": args.finetune_lr,
        "rounds": args.rounds,
        "train_images": len(data.train_images),
        "schedules": {
            s: over_seeds([p for p in points if p["schedule"] == s]) for s in args.schedules
        },
        "points": points,
    }
    write_json(args.out / "sweep.json", result)
    print_sweep(result)
    print(f"\nresults: {args.out / 'sweep.json'} (each point also in {args.out / 'points'})")
    sweep_plot(result, args.out / "sweep.png")
    sweep_size_plot(result, args.out / "sweep-size.png")
    for failure in failures:
        print(f"error: {failure.describe()}", file=sys.stderr)
    return 1 if failures else 0
