"""`python -m tinyprune.run`: the command is tinyprune/cli/run.py."""

import sys

from tinyprune.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
