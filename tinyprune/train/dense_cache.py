"""The trained dense model that sensitivity analyses and sweeps start from, trained once.

Every point of a sweep prunes a copy of the same trained model. Training it is the costly
part, so it is saved under a name made of everything that shaped it, and the next command with
the same settings loads it instead of training again. Also: the options and data loading the
`sensitivity` and `sweep` commands share.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tinyprune.cli.types import non_negative_int, positive_float, positive_int
from tinyprune.data.mnist import Mnist, load_mnist
from tinyprune.nn.model import MODELS, Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.loop import evaluate, fit

# Training's initial learning rate, for both models. Chosen on a validation split (trained on
# the first 50,000 training images, tested on the other 10,000): lenet5-caffe reached 99.23%
# there at 0.05 against 98.95% at 0.01.
DEFAULT_LR = 0.05


def add_dense_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose the data and the dense model (and so its cache file)."""
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST files; default: $TINYPRUNE_DATA_DIR, "
                             "else data/mnist")
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    parser.add_argument("--epochs", type=non_negative_int, default=10,
                        help="training epochs of the dense model")
    parser.add_argument("--lr", type=positive_float, default=DEFAULT_LR,
                        help="training learning rate")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--shift", type=non_negative_int, default=0,
                        help="random shift of training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="train on the first N training images only (quick looks); the "
                             "test set is always complete")
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/dense-cache"),
                        help="where trained dense models are kept for reuse")


def check_dense_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a one-line message on a bad value."""
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist")
    for folder in (args.out, args.cache_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"{folder} cannot be created: {error.strerror}")


def load_data(args: argparse.Namespace) -> Mnist:
    """MNIST from --data-dir, its training set cut to the first --limit images if given."""
    data = load_mnist(args.data_dir)
    if args.limit is not None:
        data = Mnist(data.train_images[:args.limit], data.train_labels[:args.limit],
                     data.test_images, data.test_labels)
    return data


def dense_options(args: argparse.Namespace) -> dict:
    """The options the dense model was trained with, for the JSON that reports on it."""
    return {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "shift", "seed", "limit")}


def trained_dense(args: argparse.Namespace, data: Mnist) -> tuple[Sequential, float]:
    """-> (the trained dense model, its test accuracy), from the cache if it is there."""
    model = MODELS[args.model](args.seed)
    path = args.cache_dir / (f"{args.model}-epochs{args.epochs}-lr{args.lr:g}-batch"
                             f"{args.batch_size}-shift{args.shift}-seed{args.seed}-"
                             f"images{len(data.train_images)}.npz")
    if path.exists():
        model.load(path)
        print(f"dense {args.model} loaded from {path}")
    else:
        print(f"training dense {args.model} ({args.epochs} epochs); it is cached in {path}")
        optimizer = MaskedSGD(model.params(), args.lr, momentum=0.9, weight_decay=5e-4)
        fit(model, data, optimizer, args.epochs, args.batch_size, args.seed,
            max_shift=args.shift, phase="dense")
        model.save(path)
    _, accuracy = evaluate(model, data.test_images, data.test_labels)
    print(f"dense test accuracy {accuracy:.2%}")
    return model, accuracy


def fresh_copy(model: Sequential, seed: int = 0) -> Sequential:
    """A new model of the same kind holding copies of model's weights, without masks."""
    copy = MODELS[model.name](seed)  # a model's name is its key in MODELS
    copy.load_state({k: v.copy() for k, v in model.state().items()})
    return copy
