"""`python -m tinyprune.deep_compress`: `python -m tinyprune.run` with Deep Compression's recipe
as its defaults (tinyprune/cli/run.py, DEEP_COMPRESS)."""

import sys

from tinyprune.cli.run import deep_compress as main

if __name__ == "__main__":
    sys.exit(main())
