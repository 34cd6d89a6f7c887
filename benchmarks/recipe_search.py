"""Choose a recipe on a validation split, never on the test set.

    python benchmarks/recipe_search.py --dataset fashion-mnist --epochs 10 20 --shift 0 1 \
        [--lr 0.05] [--sparsity 0.9 --method global --schedule agp --finetune-epochs 5 10] \
        [--json FILE]

Each recipe (every combination of the listed values) trains a dense model on the first 50,000
training images and measures it on the other 10,000; with --sparsity it then prunes a copy
and fine-tunes it for each --finetune-epochs value, and measures again. The test set is not
loaded. Prints one table row a recipe and writes them all as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

from tinyprune.config import PruneConfig, TrainConfig  # noqa: E402
from tinyprune.data.datasets import DATASETS  # noqa: E402
from tinyprune.data.mnist import Mnist, load_mnist  # noqa: E402
from tinyprune.nn.model import MODELS  # noqa: E402
from tinyprune.nn.optim import MaskedSGD  # noqa: E402
from tinyprune.prune.criteria import METHODS  # noqa: E402
from tinyprune.prune.schedules import SCHEDULES, prune_and_finetune  # noqa: E402
from tinyprune.train.dense_cache import fresh_copy
from tinyprune.train.loop import evaluate, fit  # noqa: E402

TRAIN = 50_000  # the first TRAIN training images train; the rest validate


def validation_split(data: Mnist) -> Mnist:
    """Training images [:50000] to train on, [50000:] in the place of the test set."""
    return Mnist(
        data.train_images[:TRAIN],
        data.train_labels[:TRAIN],
        data.train_images[TRAIN:],
        data.train_labels[TRAIN:],
        data.dataset,
    )


def one_recipe(
    data: Mnist, args: argparse.Namespace, epochs: int, lr: float, shift: int
) -> list[dict]:
    """Train one dense recipe, then prune a copy of it for each --finetune-epochs value (if
    --sparsity); -> a row per pruning recipe (one row without --sparsity)."""
    model = MODELS[args.model](args.seed)
    optimizer = MaskedSGD(model.params(), lr, momentum=0.9, weight_decay=args.weight_decay)
    start = time.perf_counter()
    fit(model, data, optimizer, epochs, args.batch_size, args.seed, max_shift=shift, phase="dense")
    _, dense = evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)
    row = {
        "epochs": epochs,
        "lr": lr,
        "shift": shift,
        "seed": args.seed,
        "dense_val_accuracy": dense,
        "seconds": time.perf_counter() - start,
    }
    if args.sparsity is None:
        return [row]
    rows = []
    for finetune_epochs in args.finetune_epochs:
        pruned_model, start = fresh_copy(model, args.seed), time.perf_counter()
        prune = PruneConfig(
            args.sparsity,
            args.method,
            args.schedule,
            args.rounds,
            finetune_epochs=finetune_epochs,
            finetune_lr=args.finetune_lr,
        )
        train = TrainConfig(shift=shift, seed=args.seed, batch_size=args.batch_size)
        prune_and_finetune(pruned_model, data, prune, train)
        _, pruned = evaluate(pruned_model, data.test_images, data.test_labels, dataset=data.dataset)
        rows.append(
            {
                **row,
                "sparsity": args.sparsity,
                "method": args.method,
                "schedule": args.schedule,
                "finetune_epochs": finetune_epochs,
                "finetune_lr": args.finetune_lr,
                "pruned_val_accuracy": pruned,
                "finetune_seconds": time.perf_counter() - start,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    parser.add_argument("--epochs", type=int, nargs="+", default=[10])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.05])
    parser.add_argument("--shift", type=int, nargs="+", default=[0])
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sparsity", type=float, default=None)
    parser.add_argument("--method", choices=METHODS, default="global")
    parser.add_argument("--schedule", choices=SCHEDULES, default="oneshot")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, nargs="+", default=[5])
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    data = validation_split(load_mnist(args.data_dir, dataset=args.dataset))
    rows = []
    for epochs, lr, shift in itertools.product(args.epochs, args.lr, args.shift):
        rows += one_recipe(data, args, epochs, lr, shift)
        print(f"recipe {rows[-1]}", flush=True)
    print(
        f"\n{args.model} on {data.dataset.title}: trained on the first {TRAIN:,} training "
        f"images, accuracy on the other {len(data.test_labels):,} (validation)"
    )
    print(f"{'epochs':>6} {'lr':>6} {'shift':>5} {'dense':>7} {'fine-tune':>9} {'pruned':>7}")
    for r in rows:
        pruned = f"{r['pruned_val_accuracy']:7.2%}" if "pruned_val_accuracy" in r else "      -"
        print(
            f"{r['epochs']:6d} {r['lr']:6g} {r['shift']:5d} {r['dense_val_accuracy']:7.2%} "
            f"{r.get('finetune_epochs', '-'):>9} {pruned}"
        )
    if args.json is not None:
        write_json(
            args.json,
            {
                "dataset": args.dataset,
                "model": args.model,
                "options": {k: str(v) for k, v in vars(args).items()},
                "recipes": rows,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
