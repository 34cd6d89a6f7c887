"""Sensitivity analysis: how much does each layer alone tolerate pruning?

For each conv and fc layer and each sparsity, prune that layer only (smallest |w| first),
leave the others dense, and measure test accuracy without fine-tuning. A layer whose
accuracy holds up to 90% can be pruned hard; one whose accuracy falls at 50% needs care.

    python -m tinyprune.sensitivity [--model lenet5] [--out runs/sensitivity] [--limit N]

With --seeds 0,1,2 each seed has its own dense model (trained on --jobs local processes or
on the Dask cluster at --scheduler) and the table shows mean ± std over them. Writes
sensitivity.json and sensitivity.png (if matplotlib is there) into --out, and prints the
table. The trained dense models are cached (see train/dense_cache.py).
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
    load_data_or_say_why,
    seeds_config,
)
from tinyprune.cli.types import sparsity_list
from tinyprune.experiments.dense_study import dense_summary, over_seeds, run_sensitivity
from tinyprune.files import write_json
from tinyprune.report.plots import sensitivity_plot
from tinyprune.report.tables import print_sensitivity

DEFAULT_SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.sensitivity",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dense_cache_options(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/sensitivity"),
        help="folder for sensitivity.json and sensitivity.png",
    )
    parser.add_argument(
        "--sparsities",
        type=sparsity_list,
        default=list(DEFAULT_SPARSITIES),
        help="the sparsities each layer is pruned to, comma-separated",
    )
    add_parallel_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_folders(parser, args, args.out, args.cache_dir)
    check_parallel(parser, args)
    config = seeds_config(args)
    data = load_data_or_say_why(config.data)
    if data is None:
        return 1
    dense, per_seed, failures = run_sensitivity(config, data, args.sparsities)
    layers = next(iter(per_seed.values()), {})
    result = {
        "model": args.model,
        "seeds": list(config.seeds),
        **dense_summary(config, dense),
        "layers": {
            layer: over_seeds([p for points in per_seed.values() for p in points[layer]])
            for layer in layers
        },
        "per_seed": [{"seed": seed, "layers": points} for seed, points in per_seed.items()],
    }
    write_json(args.out / "sensitivity.json", result)
    print_sensitivity(result)
    print(f"\nresults: {args.out / 'sensitivity.json'}")
    sensitivity_plot(result, args.out / "sensitivity.png")
    for failure in failures:
        print(f"error: {failure.describe()}", file=sys.stderr)
    return 1 if failures else 0
