"""`python -m tinyprune.export_c FILE --out DIR [--int8]`: the older name of
`python -m tinyprune.export FILE --format c` (tinyprune/cli/export.py)."""

import sys

from tinyprune.cli.export import main

if __name__ == "__main__":
    sys.exit(main(["--format", "c", *sys.argv[1:]], prog="python -m tinyprune.export_c"))
