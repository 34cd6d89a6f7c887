"""Export a pruned model as one dependency-free C99 source file and its header.

    python -m tinyprune.export_c runs/latest/pruned.npz --out DIR [--quantize]

writes DIR/lenet5.c and DIR/lenet5.h (named after the model); see tinyprune/deploy/c_export.py
for what they hold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.data.datasets import DATASETS
from tinyprune.deploy.c_export import export_c, load_model
from tinyprune.nn.model import MODELS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.export_c",
        description="Write a pruned model as one C99 source file and header, weights in "
                    "sparse (CSR) form.")
    parser.add_argument("model_file", type=Path,
                        help="pruned.npz (as python -m tinyprune.run writes) or a .tpz")
    parser.add_argument("--out", type=Path, required=True, help="folder for <model>.c and .h")
    parser.add_argument("--quantize", action="store_true",
                        help="store weights as int8 with one float scale per layer")
    parser.add_argument("--dataset", choices=list(DATASETS), default="mnist",
                        help="the data set the model was trained on (its pixel normalisation)")
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet5",
                        help="the model an .npz holds (a .tpz names its own)")
    args = parser.parse_args(argv)
    if not args.model_file.is_file():
        parser.error(f"{args.model_file} does not exist; train and prune one with "
                     f"python -m tinyprune.run --out DIR, then pass DIR/pruned.npz")
    try:
        model = load_model(args.model_file, args.model)
        written = export_c(model, args.out, args.quantize, source=args.model_file.name,
                           dataset=DATASETS[args.dataset])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written['c']} ({written['c_bytes']:,} bytes, of which the weight arrays "
          f"take {written['weight_bytes']:,} bytes once compiled) and {written['h']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
