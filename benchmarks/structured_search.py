"""Learned structured pruning of LeNet-5-Caffe, chosen on the validation split.

    python benchmarks/structured_search.py --method group-lasso --lam 1e-2,2e-3,2e-3 \
        --epochs 10 --finetune-epochs 5 --warmup-steps 200 --scratch [--test] [--json FILE]

Each point (every method x lam) trains lenet5-caffe for --epochs with the method's penalty
(prune/structured.py), removes the units it zeroed, and fine-tunes the smaller dense network
for --finetune-epochs. With --scratch, the same widths are also trained from scratch for
--epochs + --finetune-epochs (Liu et al., ICLR 2019: the honest baseline). Training is on the
first 50,000 training images and every accuracy on the other 10,000 (validation); only with
--test, for a recipe already chosen, on all 60,000 and the test set. Prints a table, writes JSON.
The 4-bit column shares each layer's weights in 16 values (k-means, no fine-tuning); its bytes
are an estimate (4 bits a weight, float32 codebooks and biases), not a file written.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

from tinyprune.config import DataConfig, TrainConfig  # noqa: E402
from tinyprune.data.mnist import load_data  # noqa: E402
from tinyprune.deploy.weight_sharing import share_weights  # noqa: E402
from tinyprune.nn.model import layer_of, lenet5_caffe, model_widths  # noqa: E402
from tinyprune.nn.optim import MaskedSGD  # noqa: E402
from tinyprune.prune.structured import METHODS, learn_structure  # noqa: E402
from tinyprune.train.loop import Diverged, evaluate, fit  # noqa: E402


def weights(model) -> int:
    """Conv and fc weights, biases aside."""
    return sum(p.value.size for p in model.prunable().values())


def accuracy(model, data) -> float:
    return evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)[1]


def train(model, data, args, epochs: int, lr: float, phase: str) -> None:
    optimizer = MaskedSGD(model.params(), lr, 0.9, args.weight_decay)
    steps = (epochs, 128, args.seed, args.shift, phase)
    fit(model, data, optimizer, *steps, warmup_steps=args.warmup_steps)


def shared_4bit(model, data) -> tuple[float, int]:
    """Accuracy of a copy with each layer's weights shared in 16 values (k-means, no
    fine-tuning; deploy/weight_sharing.py), and the bytes that would take: 4 bits a weight, a
    float32 codebook of 16 a layer, float32 biases. An estimate, not a file written."""
    shared = copy.deepcopy(model)
    layers = {layer_of(name) for name in shared.prunable()}
    share_weights(shared, dict.fromkeys(layers, 4))
    biases = shared.num_params() - weights(shared)
    return accuracy(shared, data), (weights(shared) + 1) // 2 + 4 * (16 * len(layers) + biases)


def one_point(data, args, method: str, lam: tuple[float, ...]) -> dict:
    """Learn the widths with `method` at `lam`, fine-tune them (and train them from scratch
    with --scratch) -> a table row."""
    recipe = TrainConfig(
        "lenet5-caffe",
        args.epochs,
        args.lr,
        128,
        0.9,
        args.weight_decay,
        args.shift,
        args.seed,
        args.warmup_steps,
    )
    start = time.perf_counter()
    model = lenet5_caffe(args.seed)
    small = learn_structure(model, data, method, lam, recipe, args.tol)
    row = {
        "method": method,
        "lam": ",".join(f"{v:g}" for v in lam),
        "widths": model_widths(small),
        "weights": weights(small),
    }
    row["params"] = small.num_params()
    print(f"learned widths {row['widths']}: {row['weights']:,} weights", flush=True)
    row["removed_accuracy"] = accuracy(small, data)
    train(small, data, args, args.finetune_epochs, args.finetune_lr, "fine-tune")
    row["finetuned_accuracy"] = accuracy(small, data)
    row["shared_4bit_accuracy"], row["bytes_4bit_estimate"] = shared_4bit(small, data)
    row["seconds"] = time.perf_counter() - start
    if args.scratch:
        scratch = lenet5_caffe(args.seed, widths=row["widths"])
        try:
            train(scratch, data, args, args.epochs + args.finetune_epochs, args.lr, "scratch")
            row["scratch_accuracy"] = accuracy(scratch, data)
            row["scratch_shared_4bit_accuracy"] = shared_4bit(scratch, data)[0]
        except Diverged as e:  # recorded, not hidden: the table shows it as nan
            print(e, flush=True)
            row["scratch_accuracy"] = row["scratch_shared_4bit_accuracy"] = float("nan")
    print(f"point {row}", flush=True)
    return row


def print_table(rows: list[dict], where: str) -> None:
    print(f"\nlenet5-caffe, accuracy on {where}")
    print(
        f"{'method':>11} {'lam':>18} {'widths':>14} {'weights':>8} {'removed':>8} "
        f"{'tuned':>7} {'4-bit':>7} {'bytes':>7} {'scratch':>8}"
    )
    for r in rows:
        scratch = f"{r['scratch_accuracy']:8.2%}" if "scratch_accuracy" in r else "       -"
        print(
            f"{r['method']:>11} {r['lam']:>18} {'-'.join(map(str, r['widths'])):>14} "
            f"{r['weights']:8,} {r['removed_accuracy']:8.2%} {r['finetuned_accuracy']:7.2%} "
            f"{r['shared_4bit_accuracy']:7.2%} {r['bytes_4bit_estimate']:7,} {scratch}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--method", choices=METHODS, nargs="+", default=["group-lasso"])
    parser.add_argument(
        "--lam",
        type=lambda text: tuple(float(v) for v in text.split(",")),
        nargs="+",
        default=[(1e-3,)],
        help="penalty strengths: one (1e-3), or one each for conv1, conv2, fc1 (4e-3,1e-3,1e-3)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="training with the penalty")
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--shift", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--warmup-steps", type=int, default=0, help="learning-rate ramp (see cosine_lr)"
    )
    parser.add_argument("--tol", type=float, default=1e-3, help="see remove_dead_units")
    parser.add_argument("--scratch", action="store_true", help="also train the widths from scratch")
    parser.add_argument("--limit", type=int, default=None, help="train on N images (pilots)")
    parser.add_argument(
        "--test", action="store_true", help="train on 60,000, measure on the test set"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    data = load_data(DataConfig(args.data_dir, args.limit, validation=not args.test))
    rows = [one_point(data, args, m, lam) for m, lam in itertools.product(args.method, args.lam)]
    where = "the test set" if args.test else f"validation ({len(data.test_labels):,} images)"
    print_table(rows, where)
    if args.json is not None:
        options = {k: str(v) for k, v in vars(args).items()}
        write_json(args.json, {"model": "lenet5-caffe", "options": options, "points": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
