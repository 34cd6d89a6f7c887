"""python -m tinyprune.report RUN_DIR [--out FILE]: one self-contained HTML page about a run.

The page (RUN_DIR/report.html unless --out says otherwise) holds the run's accuracy, its
layers, its model files, its pictures and its options; the pictures are embedded, so the one
file is all there is to copy or open offline. `python -m tinyprune.run` writes it too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyprune.data.mnist import MnistError
from tinyprune.report.html import ReportError, write_page
from tinyprune.report.run_pictures import redraw


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinyprune.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", type=Path, help="the --out folder of a run")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the page (default: RUN_DIR/report.html)",
    )
    parser.add_argument(
        "--redraw",
        action="store_true",
        help="draw the run's pictures again first (needs its data set: "
        "--data-dir or $TINYPRUNE_DATA_DIR, as for the run)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="--redraw: the folder with the run's data set, as the run's --data-dir (default: "
        "where the run looks without one)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        parser.error(f"{args.run_dir} is not a folder; give the --out folder of a run")
    try:
        if args.redraw:
            redraw(args.run_dir, args.data_dir)
        path = write_page(args.run_dir, args.out)
    except (ReportError, MnistError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"report written: {path}")
    return 0
