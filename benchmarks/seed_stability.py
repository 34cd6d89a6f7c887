"""Does training hold on every seed? The first epochs of each recipe's dense training, seed by
seed: the loss and accuracy after them, or where the loss became NaN.

    python benchmarks/seed_stability.py [--epochs 1] [--seeds 0-9] [--validation]
                                        [--recipes lenet5 lenet5-caffe-shift1 ...]
                                        [--warmup-steps N] [--limit N] [--json PATH]

A recipe is a model with the options of the default run or of a recipe of the docs (RECIPES).
Each seed trains epochs 1..--epochs of that recipe's schedule (the cosine runs over all its
epochs, so the learning rate is what the full run has in those epochs) with the library's own
train_epoch, as `python -m tinyprune.run` trains the dense model, then is measured on the test
set, or with --validation on the validation split (trained on the first 50,000 training images,
measured on the other 10,000). MNIST (or Fashion-MNIST) comes from $TINYPRUNE_DATA_DIR.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_json  # noqa: E402

from tinyprune.config import DataConfig, TrainConfig  # noqa: E402
from tinyprune.data.mnist import Mnist, load_data  # noqa: E402
from tinyprune.nn.model import MODELS  # noqa: E402
from tinyprune.nn.optim import MaskedSGD  # noqa: E402
from tinyprune.train.loop import ONE_BLAS_THREAD, Diverged, evaluate, train_epoch  # noqa: E402


class Recipe(NamedTuple):
    train: TrainConfig  # its seed is replaced by each seed in turn
    dataset: str
    command: str  # the options that make it (the dense phase of)


RECIPES = {
    "lenet5": Recipe(TrainConfig(), "mnist", "(the default run)"),
    "lenet5-caffe": Recipe(TrainConfig(model="lenet5-caffe"), "mnist", "--model lenet5-caffe"),
    "lenet5-caffe-shift1": Recipe(
        TrainConfig(model="lenet5-caffe", shift=1), "mnist", "--model lenet5-caffe --shift 1"
    ),
    "lenet-300-100": Recipe(TrainConfig(model="lenet-300-100"), "mnist", "--model lenet-300-100"),
    "lenet-300-100-shift1": Recipe(
        TrainConfig(model="lenet-300-100", shift=1), "mnist", "--model lenet-300-100 --shift 1"
    ),
    "fashion-lenet5": Recipe(
        TrainConfig(epochs=20, shift=1),
        "fashion-mnist",
        "--dataset fashion-mnist --epochs 20 --shift 1",
    ),
}


@threadpool_limits.wrap(**ONE_BLAS_THREAD)
def first_epochs(config: TrainConfig, data: Mnist, epochs: int) -> dict:
    """Train epochs 1..epochs of config's schedule from config.seed's initial weights -> the
    losses and accuracy after them, or where the loss diverged."""
    model = MODELS[config.model](config.seed)
    optimizer = MaskedSGD(model.params(), config.lr, config.momentum, config.weight_decay)
    start, train_loss = time.perf_counter(), math.nan
    try:
        for epoch in range(1, epochs + 1):
            train_loss, _, _ = train_epoch(
                model, optimizer, data, epoch, config.epochs, config.batch_size, config.seed,
                config.shift, "train", None, config.warmup_steps,
            )  # fmt: skip
    except Diverged as error:
        return {"diverged": str(error), "seconds": time.perf_counter() - start}
    loss, accuracy = evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)
    return {
        "diverged": None,
        "train_loss": train_loss,
        "loss": loss,
        "accuracy": accuracy,
        "seconds": time.perf_counter() - start,
    }


def seed_list(text: str) -> list[int]:
    """'0-9' or '0,3,4' -> the seeds."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def print_table(name: str, recipe: Recipe, rows: dict[int, dict]) -> None:
    """One line per seed, then how many diverged."""
    print(
        f"\n{name}: {recipe.command}, {recipe.train.epochs} epochs' cosine, lr {recipe.train.lr:g}"
    )
    print(f"{'seed':>6} {'train loss':>11} {'loss':>8} {'accuracy':>9} {'seconds':>8}")
    for seed, row in rows.items():
        if row["diverged"]:
            print(f"{seed:>6}  DIVERGED: {row['diverged']}")
        else:
            print(
                f"{seed:>6} {row['train_loss']:>11.4f} {row['loss']:>8.4f} "
                f"{row['accuracy']:>9.2%} {row['seconds']:>8.1f}"
            )
    diverged = sum(1 for row in rows.values() if row["diverged"])
    print(f"{diverged} of {len(rows)} seeds diverged")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", type=seed_list, default=list(range(10)), help="0-9 or 0,3,4")
    parser.add_argument("--epochs", type=int, default=1, help="the first K epochs of each run")
    parser.add_argument("--validation", action="store_true", help="the validation split")
    parser.add_argument("--limit", type=int, default=None, help="the first N training images")
    parser.add_argument(
        "--warmup-steps", type=int, default=None, help="default: TrainConfig's, as a run has it"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = {}
    for name in args.recipes:
        recipe = RECIPES[name]
        train = recipe.train
        if args.warmup_steps is not None:
            train = replace(train, warmup_steps=args.warmup_steps)
        data = load_data(DataConfig(dataset=recipe.dataset, limit=args.limit,
                                    validation=args.validation))  # fmt: skip
        rows = {
            seed: first_epochs(replace(train, seed=seed), data, args.epochs) for seed in args.seeds
        }
        print_table(name, recipe._replace(train=train), rows)
        results[name] = {"command": recipe.command, "train": asdict(train), "seeds": rows}
    if args.json is not None:
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        write_json(args.json, {"machine": machine_info(0), "options": options, "recipes": results})


if __name__ == "__main__":
    main()
