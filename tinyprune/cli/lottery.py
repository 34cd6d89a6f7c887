"""The lottery-ticket experiment (Frankle & Carbin, ICLR 2019) on LeNet-300-100.

Train, prune 20% of each hidden layer's weights and 10% of the output layer's by magnitude,
rewind the survivors to their initial values (--rewind-iteration k: to their values after k
iterations), train again, for --rounds rounds and every seed; and as the control, train each
round's masks from weights drawn afresh. Prints per round the weights remaining, the
early-stopping iteration (lowest validation loss) and test accuracy, mean ± std over seeds.

    python -m tinyprune.lottery --seeds 0,1,2 --rounds 12 --jobs 2

Each training is saved in --out/points/ as it finishes: run the same command again after an
interruption and it goes on where it stopped. Writes lottery.json and lottery.png to --out.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from tinyprune.cli.options import check_data_dir, check_parallel
from tinyprune.cli.types import non_negative_int, positive_float, positive_int, seed_list
from tinyprune.experiments.lottery import LotteryConfig, run_lottery, summary
from tinyprune.files import write_json
from tinyprune.report.plots import lottery_plot
from tinyprune.report.tables import print_lottery, print_ticket


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.lottery",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    experiment = parser.add_argument_group("the experiment")
    add = experiment.add_argument
    add("--seeds", type=seed_list, default=(0, 1, 2), help="the seeds, comma-separated")
    add("--rounds", type=positive_int, default=12, help="pruning rounds after the dense one")
    add("--iterations", type=positive_int, default=5000, help="training iterations per round")
    add("--batch-size", type=positive_int, default=60, help="images per training iteration")
    add("--lr", type=positive_float, default=1.2e-3, help="Adam's constant learning rate")
    add(
        "--eval-every",
        type=positive_int,
        default=100,
        help="iterations between two measurements of the validation loss",
    )
    add(
        "--rewind-iteration",
        type=non_negative_int,
        default=0,
        help="rewind survivors to their values after this many iterations (0: to the init)",
    )
    add(
        "--reinit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train each round's masks from weights drawn afresh, the control "
        "(--no-reinit skips it)",
    )
    add_data_and_output(parser)
    return parser


def add_data_and_output(parser: argparse.ArgumentParser) -> None:
    """The groups "data" and "output and workers"."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--validation",
        type=positive_int,
        default=5000,
        help="the last N training images, held out to find the early-stopping iteration",
    )
    data.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="train on the first N of the other training images only (quick looks)",
    )
    data.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the MNIST files; default: $TINYPRUNE_DATA_DIR, else data/mnist",
    )
    output = parser.add_argument_group("output and workers")
    output.add_argument(
        "--out",
        type=Path,
        default=Path("runs/lottery"),
        help="folder for lottery.json, lottery.png and points/ (each training as it finishes)",
    )
    output.add_argument("--jobs", type=positive_int, default=1, help="local worker processes")
    output.add_argument(
        "--scheduler",
        default=None,
        help="address of a Dask scheduler (tcp://host:8786) whose workers run the trainings",
    )


def parse_args(argv: list[str] | None) -> LotteryConfig:
    """The options, checked (exit status 2 and one line on a bad one), as a LotteryConfig."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rewind_iteration >= args.iterations:
        parser.error(f"--rewind-iteration must be below --iterations ({args.iterations})")
    check_data_dir(parser, args)
    check_parallel(parser, args)
    data_dir = None if args.data_dir is None else str(args.data_dir)
    return LotteryConfig(**{**vars(args), "data_dir": data_dir})


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    print(
        f"lottery tickets, lenet-300-100: seeds {config.seeds}, {config.rounds} rounds, "
        f"{config.iterations} iterations each; results in {config.out}/",
        flush=True,
    )
    try:
        run = run_lottery(config, report=print_ticket)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the trainings finished are saved in {config.out / 'points'} and "
            f"the same command goes on from there",
            file=sys.stderr,
        )
        return 130
    rows = summary(run.results)
    record = {k: v for k, v in asdict(config).items() if k not in ("out", "scheduler")}
    write_json(
        config.out / "lottery.json", {"config": record, "summary": rows, "points": run.results}
    )
    print_lottery(rows)
    print(
        f"\nresults: {config.out / 'lottery.json'} ({run.ran} trainings run now, "
        f"{len(run.results) - run.ran} read from {config.out / 'points'})"
    )
    lottery_plot(
        rows,
        config.out / "lottery.png",
        f"lenet-300-100 lottery tickets, {len(config.seeds)} seeds",
    )
    for failure in run.failures:
        print(f"error: {failure.describe()}", file=sys.stderr)
    if run.skipped:
        print(f"not run, their masks lost to a failure: {', '.join(run.skipped)}", file=sys.stderr)
    return 1 if run.failures else 0
