"""Export a pruned model as one dependency-free C99 source file and its header.

    python -m tinyprune.export_c runs/latest/pruned.npz --out DIR [--int8]

writes DIR/lenet5.c and DIR/lenet5.h (named after the model), float32. With --int8,
DIR/lenet5_int8.c: integers only, TFLite's int8 arithmetic, activation scales calibrated on
training images; from a shared.tpz (python -m tinyprune.deep_compress), DIR/lenet5_shared.c,
which keeps each layer's codebook and packed indices (deploy/c_export.py, both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.cli.options import check_data_dir, load_data_or_say_why
from tinyprune.cli.types import positive_int
from tinyprune.config import DataConfig
from tinyprune.data.datasets import DATASETS
from tinyprune.deploy.c_export import export_c, export_c_int8, load_model
from tinyprune.deploy.int8_model import Int8Model
from tinyprune.nn.model import MODELS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.export_c",
        description="Write a pruned model as one C99 source file and header, weights in "
        "sparse (CSR) form.",
    )
    parser.add_argument(
        "model_file", type=Path, help="pruned.npz (as python -m tinyprune.run writes) or a .tpz"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for <model>.c and .h")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="integers only: int8 weights (or shared values) and activations",
    )
    parser.add_argument(
        "--calibration",
        type=positive_int,
        default=2000,
        help="--int8: the first N training images set the activation scales",
    )
    parser.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default="mnist",
        help="the data set the model was trained on (its pixel normalisation)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="--int8: folder with the training images; default: "
        "$TINYPRUNE_DATA_DIR/<dataset>, else data/<dataset>",
    )
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="lenet5",
        help="the model an .npz holds (a .tpz names its own)",
    )
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model_file.is_file():
        parser.error(
            f"{args.model_file} does not exist; train and prune one with "
            f"python -m tinyprune.run --out DIR, then pass DIR/pruned.npz"
        )
    check_data_dir(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = args.model_file.name
    try:
        model, shared = load_model(args.model_file, args.model)
        if args.int8:
            config = DataConfig(dataset=args.dataset, data_dir=args.data_dir)
            data = load_data_or_say_why(config)
            if data is None:
                return 1
            calibration = data.train_images[: args.calibration]
            q = Int8Model(model, calibration, shared, DATASETS[args.dataset])
            written = export_c_int8(q, args.out, source=source)
        else:
            written = export_c(model, args.out, source=source, dataset=DATASETS[args.dataset])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {written['c']} ({written['c'].stat().st_size:,} bytes, of which the weight "
        f"arrays take {written['weight_bytes']:,} bytes once compiled) and {written['h']}"
    )
    return 0
