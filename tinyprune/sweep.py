"""`python -m tinyprune.sweep`: the command is tinyprune/cli/sweep.py."""

import sys

from tinyprune.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
