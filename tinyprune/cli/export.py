"""Export a pruned model for the runtimes engineers deploy with.

    python -m tinyprune.export RUN_DIR --format {c,tflite,onnx} --out DIR [--int8] [--file NAME]

RUN_DIR is a run's --out (its result.json names the model and the data set; --file picks the
model file, pruned.npz by default, or shared.tpz, pruned-int8.tpz ...), or a model file itself
(with --model and --dataset). The formats:

    c       DIR/<model>.c, .h and _main.c (an example): C99, no malloc, float32
            (deploy/c_export.py; docs/firmware.md says how to use them); with --int8,
            DIR/<model>_int8.c: integers only, TFLite's int8 arithmetic (or <model>_shared.c
            from a shared.tpz, which keeps each layer's codebook and packed indices)
    tflite  DIR/<model>.tflite: the int8 model as a TFLite flatbuffer (deploy/tflite.py)
    onnx    DIR/<model>.onnx: the float model as an ONNX graph (deploy/to_onnx.py)

The int8 exports (c --int8, tflite) calibrate their activation scales on the first
--calibration training images. tflite and onnx need `pip install -e '.[export]'`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinyprune.cli.options import check_data_dir, load_data_or_say_why
from tinyprune.cli.types import positive_int
from tinyprune.config import DataConfig
from tinyprune.data.datasets import DATASETS
from tinyprune.deploy.c_export import export_c, export_c_int8, load_model
from tinyprune.deploy.int8_model import Int8Model
from tinyprune.nn.model import MODELS

FORMATS = ("c", "tflite", "onnx")


def build_parser(prog: str = "python -m tinyprune.export") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "source", type=Path, help="a run's folder (its --out), or a pruned.npz or .tpz file"
    )
    parser.add_argument("--format", choices=FORMATS, default="c", help="what to write (default: c)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the exported files")
    parser.add_argument(
        "--file", default="pruned.npz", help="with a run's folder: the model file in it to export"
    )
    parser.add_argument(
        "--int8", action="store_true", help="--format c: integers only (int8), as --format tflite"
    )
    parser.add_argument(
        "--calibration",
        type=positive_int,
        default=2000,
        help="int8: the first N training images set the activation scales (default: 2000)",
    )
    parser.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default=None,
        help="the data set the model was trained on (its pixel normalisation); default: the "
        "run's, else mnist",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="int8: folder with the training images; default: $TINYPRUNE_DATA_DIR/<dataset>, "
        "else data/<dataset>",
    )
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=None,
        help="the model an .npz holds (default: the run's, else lenet5; a .tpz names its own)",
    )
    return parser


def parse_args(
    argv: list[str] | None, prog: str = "python -m tinyprune.export"
) -> argparse.Namespace:
    """The options, with a run folder resolved to its model file, model and data set."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    run: dict = {}
    if args.source.is_dir():
        result = args.source / "result.json"
        if not result.is_file():
            parser.error(f"{args.source} is not a run's folder: it has no result.json")
        run = json.loads(result.read_text())
        args.source = args.source / args.file
    if not args.source.is_file():
        parser.error(
            f"{args.source} does not exist; train and prune one with "
            f"python -m tinyprune.run --out DIR, then pass DIR"
        )
    args.model = args.model or run.get("model", "lenet5")
    args.dataset = args.dataset or run.get("dataset", "mnist")
    check_data_dir(parser, args)
    return args


def int8_model(args: argparse.Namespace, model, shared) -> Int8Model | None:
    """The model in integers, its activations calibrated on training images (None: no data)."""
    data = load_data_or_say_why(DataConfig(dataset=args.dataset, data_dir=args.data_dir))
    if data is None:
        return None
    calibration = data.train_images[: args.calibration]
    return Int8Model(model, calibration, shared, DATASETS[args.dataset])


def export(args: argparse.Namespace) -> dict[Path, str] | None:
    """Write the export args ask for -> {file written: what to say of it} (None: the
    calibration images were missing)."""
    model, shared = load_model(args.source, args.model)
    dataset = DATASETS[args.dataset]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.format == "onnx":
        from tinyprune.deploy.to_onnx import export_onnx  # onnx is an optional extra

        return {export_onnx(model, args.out / f"{model.name}.onnx", dataset): ""}
    if args.format == "c" and not args.int8:
        return c_files(export_c(model, args.out, source=args.source.name, dataset=dataset))
    q = int8_model(args, model, shared)
    if q is None:
        return None
    if args.format == "tflite":
        from tinyprune.deploy import tflite  # flatbuffers is an optional extra

        path = args.out / f"{model.name}.tflite"
        tflite.write(q, path)
        return {path: ""}
    return c_files(export_c_int8(q, args.out, source=args.source.name))


def c_files(written: dict) -> dict[Path, str]:
    """A C export's files (the model, its header, an example main), and what its weights take
    in flash."""
    note = f", of which the weight arrays take {written['weight_bytes']:,} bytes once compiled"
    return {written["c"]: note, written["h"]: ", the API", written["main"]: ", an example"}


def main(argv: list[str] | None = None, prog: str = "python -m tinyprune.export") -> int:
    args = parse_args(argv, prog)
    try:
        written = export(args)
    except (ImportError, ValueError) as error:  # an extra not installed; a file not a model
        print(f"error: {error}", file=sys.stderr)
        return 1
    if written is None:
        return 1
    for path, note in written.items():
        print(f"wrote {path} ({path.stat().st_size:,} bytes{note})")
    return 0
