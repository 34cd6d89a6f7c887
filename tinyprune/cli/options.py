"""The options the commands share, and the config objects built from them.

Each command adds the groups it needs (`add_data_options`, `add_training_options`), checks
them, builds its configs once (`from_options`) and passes those on: nothing below reads a Namespace.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TypeVar

from tinyprune.cli.types import (
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    seed_list,
)
from tinyprune.config import (
    DEFAULT_LR,
    VALIDATION_IMAGES,
    WARMUP_STEPS,
    DataConfig,
    ShareConfig,
    TrainConfig,
)
from tinyprune.data.datasets import DATASETS
from tinyprune.data.idx import IdxError
from tinyprune.data.mnist import Mnist, MnistError, load_data
from tinyprune.deploy.weight_sharing import parse_bits
from tinyprune.experiments.dense_study import SeedsConfig
from tinyprune.nn.model import MODELS

Config = TypeVar("Config")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The group "data": --dataset, --data-dir, --limit, --test-limit and --validation."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default="mnist",
        help="mnist: digits; fashion-mnist: clothes (Zalando); kmnist: "
        "cursive Japanese characters. All 28x28 grey, 10 classes",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the data set's four files (downloaded there if "
        "missing); default: $TINYPRUNE_DATA_DIR/<dataset>, else "
        "data/<dataset> (see data/README.md)",
    )
    group.add_argument(
        "--limit",
        type=positive_int,
        help="train on the first N training images only (for quick looks)",
    )
    group.add_argument(
        "--test-limit",
        type=positive_int,
        help="measure on the first N test images only (for quick looks and "
        "debugging; every accuracy printed is then on those N only)",
    )
    group.add_argument(
        "--validation",
        action="store_true",
        help=f"train on the first {VALIDATION_IMAGES:,} training images and "
        f"measure on the other {60_000 - VALIDATION_IMAGES:,} instead of "
        f"the test set (to choose a recipe)",
    )


def add_training_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The group "training": the options that shape the trained dense model (-> the group,
    for a command to add its own)."""
    group = parser.add_argument_group("training")
    group.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="lenet5",
        help="lenet5: 61,706 parameters; lenet5-caffe: 431,080 (Han et al.); "
        "lenet-300-100: 266,610, fully connected",
    )
    group.add_argument("--epochs", type=non_negative_int, default=10, help="training epochs")
    group.add_argument(
        "--lr",
        type=positive_float,
        default=DEFAULT_LR,
        help="initial learning rate of training (cosine decay to 0)",
    )
    group.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        default=WARMUP_STEPS,
        help="raise the learning rate linearly over the first N training steps (0: none); "
        "without it lenet5-caffe diverged on 3 of 20 seeds (train/loop.py says why)",
    )
    group.add_argument(
        "--batch-size", type=positive_int, default=128, help="images per training step"
    )
    group.add_argument(
        "--momentum", type=fraction, default=0.9, help="SGD momentum, of training and fine-tuning"
    )
    group.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=5e-4,
        help="L2 penalty on the weights, of training and fine-tuning",
    )
    group.add_argument(
        "--shift",
        type=non_negative_int,
        default=0,
        help="shift each training image at random by up to this many pixels "
        "(data augmentation; 0 turns it off)",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="seeds the initial weights and the order of the batches"
    )
    return group


def check_data_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with one line (status 2) if --data-dir names no folder."""
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(
            f"--data-dir {args.data_dir} does not exist; create it (the data set is "
            f"downloaded into it) or leave the option out"
        )


def from_options(cls: type[Config], args: argparse.Namespace, **fields) -> Config:
    """The config dataclass cls, each field taken from the option of its name in args unless
    given in fields. The one place options become configs: a field and its option share a
    name, so a new option reaches its config without a line more."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{**{k: v for k, v in vars(args).items() if k in names}, **fields})


def add_share_options(parser: argparse.ArgumentParser) -> None:
    """Weight sharing after pruning, and the compressed file it is written to."""
    group = parser.add_argument_group("weight sharing (after pruning)")
    group.add_argument(
        "--bits",
        default=ShareConfig.bits,
        help="bits per shared-value index: N for every layer, conv=N,fc=M, or "
        "per layer (conv1=6,fc1=4,...); conv=8,fc=5 is Deep Compression's",
    )
    group.add_argument(
        "--bias-bits",
        type=positive_int,
        help="share each layer's biases too, in this many bits (default: biases stay float32)",
    )
    group.add_argument(
        "--share-epochs",
        type=non_negative_int,
        default=ShareConfig.epochs,
        help="epochs fine-tuning the shared values",
    )
    group.add_argument(
        "--share-lr",
        type=positive_float,
        default=ShareConfig.lr,
        help="learning rate of the shared values (cosine decay to 0); their "
        "gradient sums those of all their weights, hence small",
    )


def check_bits(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--bits must give every weighted layer of --model 1 to 8 bits (one line and exit 2)."""
    try:
        parse_bits(args.bits, MODELS[args.model]())
    except ValueError as error:
        parser.error(f"--bits: {error}")


def share_config(args: argparse.Namespace) -> ShareConfig:
    """--share-epochs and --share-lr are ShareConfig's epochs and lr."""
    return from_options(ShareConfig, args, epochs=args.share_epochs, lr=args.share_lr)


def load_data_or_say_why(config: DataConfig) -> Mnist | None:
    """The data set, or None after printing why it could not be had (missing, corrupt, a
    failed download) and what to do. Says so when --test-limit cuts the test set."""
    try:
        data = load_data(config)
    except (MnistError, IdxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    if config.test_limit is not None:
        print(
            f"--test-limit {config.test_limit}: every test accuracy below is on the first "
            f"{len(data.test_images):,} test images only"
        )
    return data


def add_dense_cache_options(parser: argparse.ArgumentParser) -> None:
    """Data, training and --cache-dir: the trained dense model that sweep and sensitivity
    start from (train/dense_cache.py)."""
    add_data_options(parser)
    add_training_options(parser)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("runs/dense-cache"),
        help="where trained dense models are kept for reuse",
    )


def check_folders(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *folders: Path
) -> None:
    """--data-dir must exist; the given output folders are created (one line and exit
    status 2 if one cannot be)."""
    check_data_dir(parser, args)
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"{folder} cannot be created: {error.strerror}")


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    """--seeds, --jobs and --scheduler: several seeds, their points on several workers."""
    group = parser.add_argument_group("seeds and workers")
    group.add_argument(
        "--seeds",
        type=seed_list,
        help="comma-separated seeds, each its own dense model and points; "
        "tables show mean ± std over them (default: --seed alone)",
    )
    group.add_argument(
        "--jobs", type=positive_int, default=1, help="local worker processes that run the points"
    )
    group.add_argument(
        "--scheduler",
        help="address of a Dask scheduler (tcp://host:8786) whose workers run "
        "the points instead (pip install -e '.[cluster]')",
    )


def check_parallel(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.scheduler is not None and args.jobs > 1:
        parser.error("--jobs and --scheduler exclude each other: the cluster has its workers")


def seeds_config(args: argparse.Namespace) -> SeedsConfig:
    return from_options(
        SeedsConfig,
        args,
        data=from_options(DataConfig, args),
        train=from_options(TrainConfig, args),
        seeds=args.seeds or (args.seed,),
    )
