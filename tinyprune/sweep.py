"""Sweep: test accuracy against sparsity, for each pruning schedule.

Every point starts from the same trained dense model (cached, see train/dense_cache.py), prunes it
to one sparsity on one schedule, fine-tunes it for the same number of epochs, and measures
test accuracy. The result shows where pruning starts to cost accuracy, and which schedule
postpones that.

    python -m tinyprune.sweep [--model lenet5] [--out runs/sweep] [--finetune-epochs 2] ...

Writes sweep.json (after every point, so a long sweep stopped half-way keeps what it did)
and sweep.png (if matplotlib is there) into --out, and prints the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.cli.types import non_negative_int, positive_float, positive_int, sparsity_list
from tinyprune.train.dense_cache import (add_dense_options, check_dense_options, dense_options, fresh_copy,
                          load_data, trained_dense)
from tinyprune.data.idx import IdxError
from tinyprune.data.mnist import MnistError
from tinyprune.report.plots import sweep_plot
from tinyprune.prune.criteria import METHODS
from tinyprune.prune.report import sparsity_report, weight_uses
from tinyprune.run import write_json
from tinyprune.prune.schedules import SCHEDULES, prune_and_finetune
from tinyprune.train.loop import Diverged

DEFAULT_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


def schedule_list(text: str) -> list[str]:
    names = text.split(",")
    unknown = [n for n in names if n not in SCHEDULES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown schedule {', '.join(unknown)}; choose from "
                                         f"{', '.join(SCHEDULES)}")
    return names


def print_table(result: dict) -> None:
    schedules = list(result["schedules"])
    print(f"\ntest accuracy (%) after {result['finetune_epochs']} fine-tuning epochs, "
          f"{result['method']} pruning; dense {result['dense_accuracy']:.2%}")
    print(f"{'sparsity':>8}" + "".join(f"{s:>11}" for s in schedules))
    sparsities = sorted({p["sparsity"] for points in result["schedules"].values() for p in points})
    for sparsity in sparsities:
        cells = []
        for schedule in schedules:
            hit = [p for p in result["schedules"][schedule] if p["sparsity"] == sparsity]
            cells.append(f"{100 * hit[0]['test_accuracy']:11.2f}" if hit else f"{'':11}")
        print(f"{sparsity:8.0%}" + "".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.sweep", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dense_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--sparsities", type=sparsity_list, default=list(DEFAULT_SPARSITIES),
                        help="comma-separated")
    parser.add_argument("--schedules", type=schedule_list, default=list(SCHEDULES),
                        help="comma-separated")
    parser.add_argument("--method", choices=METHODS, default="layerwise")
    parser.add_argument("--finetune-epochs", type=non_negative_int, default=2,
                        help="fine-tuning epochs of every point, whatever its schedule")
    parser.add_argument("--rounds", type=positive_int, default=2,
                        help="rounds of the iterative schedule")
    parser.add_argument("--finetune-lr", type=positive_float, default=0.01)
    args = parser.parse_args(argv)
    check_dense_options(parser, args)
    if args.rounds > max(args.finetune_epochs, 1):
        parser.error(f"--rounds must be at most --finetune-epochs ({args.finetune_epochs})")
    try:
        data = load_data(args)
    except (MnistError, IdxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    dense, dense_accuracy = trained_dense(args, data)
    result = {"model": args.model, "method": args.method, "dense_accuracy": dense_accuracy,
              "finetune_epochs": args.finetune_epochs, "finetune_lr": args.finetune_lr,
              "rounds": args.rounds, "train_images": len(data.train_images),
              "dense": dense_options(args),
              "schedules": {s: [] for s in args.schedules}}
    for schedule in args.schedules:
        for sparsity in args.sparsities:
            print(f"\n--- {schedule}, {sparsity:.0%} ---", flush=True)
            model = fresh_copy(dense, args.seed)
            try:
                pruning = prune_and_finetune(
                    model, data, sparsity, args.finetune_epochs, method=args.method,
                    schedule=schedule, rounds=args.rounds, lr=args.finetune_lr,
                    batch_size=args.batch_size, max_shift=args.shift, seed=args.seed)
            except Diverged as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            layers = sparsity_report(model.params(), weight_uses(model))
            result["schedules"][schedule].append({
                "sparsity": sparsity, "test_accuracy": pruning["rounds"][-1]["test_accuracy"],
                # differs from sparsity for --method filter, whose sparsity counts filters
                "weight_sparsity": 1 - sum(r["nonzero"] for r in layers) / sum(
                    r["weights"] for r in layers),
                "after_prune": pruning["rounds"][0]["after_prune"], "rounds": pruning["rounds"],
                "layers": layers})
            write_json(args.out / "sweep.json", result)
    print_table(result)
    print(f"\nresults: {args.out / 'sweep.json'}")
    sweep_plot(result, args.out / "sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
