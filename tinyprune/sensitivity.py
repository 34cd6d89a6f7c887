"""Sensitivity analysis: how much does each layer alone tolerate pruning?

For each conv and fc layer and each sparsity, prune that layer only (smallest |w| first),
leave the others dense, and measure test accuracy without fine-tuning. A layer whose
accuracy holds up to 90% can be pruned hard; one whose accuracy falls at 50% needs care.

    python -m tinyprune.sensitivity [--model lenet5] [--out runs/sensitivity] [--limit N]

Writes sensitivity.json and sensitivity.png (if matplotlib is there) into --out, and prints
the table. The trained dense model is cached (see train/dense_cache.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.cli.types import sparsity_list
from tinyprune.train.dense_cache import (add_dense_options, check_dense_options, dense_options, load_data,
                          trained_dense)
from tinyprune.data.idx import IdxError
from tinyprune.data.mnist import MnistError
from tinyprune.nn.model import Sequential, layer_of
from tinyprune.report.plots import sensitivity_plot
from tinyprune.prune.criteria import magnitude_mask
from tinyprune.run import write_json
from tinyprune.train.loop import evaluate

DEFAULT_SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)


def layer_sensitivity(model: Sequential, data, sparsities: list[float]) -> dict[str, list[dict]]:
    """Layer -> [{"sparsity", "test_accuracy"}], pruning one layer at a time in place and
    restoring its weights afterwards."""
    result = {}
    for name, p in model.prunable().items():
        layer = layer_of(name)
        dense = p.value.copy()
        result[layer] = []
        for sparsity in sparsities:
            p.value[...] = dense * magnitude_mask(dense, sparsity)
            _, accuracy = evaluate(model, data.test_images, data.test_labels)
            result[layer].append({"sparsity": sparsity, "test_accuracy": accuracy})
            print(f"{layer:6} pruned {sparsity:4.0%}: test accuracy {accuracy:.2%}", flush=True)
        p.value[...] = dense
    return result


def print_table(result: dict) -> None:
    sparsities = [p["sparsity"] for p in next(iter(result["layers"].values()))]
    print(f"\ntest accuracy (%) with one layer pruned, dense {result['dense_accuracy']:.2%}")
    print(f"{'layer':8}" + "".join(f"{s:>7.0%}" for s in sparsities))
    for layer, points in result["layers"].items():
        print(f"{layer:8}" + "".join(f"{100 * p['test_accuracy']:7.2f}" for p in points))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.sensitivity", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dense_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/sensitivity"))
    parser.add_argument("--sparsities", type=sparsity_list,
                        default=list(DEFAULT_SPARSITIES), help="comma-separated")
    args = parser.parse_args(argv)
    check_dense_options(parser, args)
    try:
        data = load_data(args)
    except (MnistError, IdxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model, dense_accuracy = trained_dense(args, data)
    result = {"model": args.model, "dense_accuracy": dense_accuracy,
              "dense": dense_options(args),
              "layers": layer_sensitivity(model, data, args.sparsities)}
    write_json(args.out / "sensitivity.json", result)
    print_table(result)
    print(f"\nresults: {args.out / 'sensitivity.json'}")
    sensitivity_plot(result, args.out / "sensitivity.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
