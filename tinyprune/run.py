"""Train LeNet-5 on MNIST, prune it by magnitude, fine-tune it, and report.

    python -m tinyprune.run [--epochs 10] [--sparsity 0.5] [--finetune-epochs 5] ...
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .idx import IdxError
from .mnist import Mnist, MnistError, load_mnist
from .model import Sequential, lenet5
from .prune import prune_layerwise, sparsity_report
from .train import Diverged, evaluate, fit, to_input


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.run",
        description="Train LeNet-5 on MNIST, prune the smallest weights of each layer, "
                    "fine-tune the rest, and report accuracy and sparsity.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST files (downloaded there if missing); "
                             "default: $TINYPRUNE_DATA_DIR, else data/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/latest"),
                        help="folder for result.json, results.json, model.npz, pruned.npz")
    parser.add_argument("--epochs", type=non_negative_int, default=10, help="training epochs")
    parser.add_argument("--finetune-epochs", type=non_negative_int, default=5,
                        help="fine-tuning epochs after pruning")
    parser.add_argument("--sparsity", type=fraction, default=0.5,
                        help="fraction of each layer's weights to prune (biases are kept)")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--lr", type=positive_float, default=0.05,
                        help="initial learning rate of training (cosine decay to 0)")
    parser.add_argument("--finetune-lr", type=positive_float, default=0.01,
                        help="initial learning rate of fine-tuning (cosine decay to 0)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights and the order of the batches")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="train on the first N training images only (for quick looks); "
                             "the test set is always complete")
    args = parser.parse_args(argv)
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist; create it (MNIST is "
                     f"downloaded into it) or leave the option out")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        parser.error(f"--out {args.out} cannot be written: {error.strerror}")
    return args


def write_json(path: Path, obj: dict) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def warm_up(model: Sequential) -> float:
    """Run one tiny forward and backward so numba compiles (or loads its cache) now, not
    inside the first timed epoch. -> seconds taken."""
    start = time.perf_counter()
    x = to_input(np.zeros((2, 28, 28), np.uint8))
    model.backward(model.forward(x))
    return time.perf_counter() - start


def print_layers(rows: list[dict]) -> None:
    print(f"{'layer':8} {'weights':>8} {'non-zero':>9} {'sparsity':>9}")
    for r in rows:
        print(f"{r['name']:8} {r['weights']:8d} {r['nonzero']:9d} {r['sparsity']:9.2%}")
    weights = sum(r["weights"] for r in rows)
    nonzero = sum(r["nonzero"] for r in rows)
    print(f"{'total':8} {weights:8d} {nonzero:9d} {1 - nonzero / weights:9.2%}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = load_mnist(args.data_dir)
    except (MnistError, IdxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.limit is not None:
        data = Mnist(data.train_images[:args.limit], data.train_labels[:args.limit],
                     data.test_images, data.test_labels)
    model = lenet5(args.seed)
    print(f"LeNet-5, {model.num_params():,} parameters; {len(data.train_images):,} training "
          f"and {len(data.test_images):,} test images; results in {args.out}/")
    print(f"numba kernels ready in {warm_up(model):.1f}s (compiled on the first run, "
          f"then loaded from numba's cache)")
    train = dict(batch_size=args.batch_size, momentum=args.momentum,
                 weight_decay=args.weight_decay)
    try:
        history = fit(model, data, args.epochs, lr=args.lr, seed=args.seed, **train)
        test_loss, test_accuracy = evaluate(model, data.test_images, data.test_labels)
        model.save(args.out / "model.npz")
        write_json(args.out / "result.json", {
            "model": model.name, "epochs": args.epochs, "batch_size": args.batch_size,
            "seed": args.seed, "lr": args.lr, "momentum": args.momentum,
            "weight_decay": args.weight_decay, "train_images": len(data.train_images),
            "test_loss": test_loss, "test_accuracy": test_accuracy, "history": history})

        prune_layerwise(model.params(), args.sparsity)
        after_loss, after_accuracy = evaluate(model, data.test_images, data.test_labels)
        print(f"pruned {args.sparsity:.0%} of each layer's weights: test accuracy "
              f"{test_accuracy:.2%} -> {after_accuracy:.2%} before fine-tuning")
        finetune_history = fit(model, data, args.finetune_epochs, lr=args.finetune_lr,
                               seed=args.seed + 1, phase="fine-tune", **train)
    except Diverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    final_loss, final_accuracy = evaluate(model, data.test_images, data.test_labels)
    layers = sparsity_report(model.params())
    zeros = sum(r["weights"] - r["nonzero"] for r in layers)
    model.save(args.out / "pruned.npz", with_masks=True)
    write_json(args.out / "results.json", {
        "model": model.name, "target_sparsity": args.sparsity,
        "sparsity": zeros / sum(r["weights"] for r in layers),
        "after_prune": {"test_loss": after_loss, "test_accuracy": after_accuracy},
        "test_loss": final_loss, "test_accuracy": final_accuracy,
        "finetune_epochs": args.finetune_epochs, "finetune_lr": args.finetune_lr,
        "history": finetune_history, "layers": layers})

    print()
    print_layers(layers)
    print(f"\ntest accuracy: dense {test_accuracy:.2%}, pruned {after_accuracy:.2%}, "
          f"fine-tuned {final_accuracy:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
