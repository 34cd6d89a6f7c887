"""`python -m tinyprune.lottery`: the command is tinyprune/cli/lottery.py."""

import sys

from tinyprune.cli.lottery import main

if __name__ == "__main__":
    sys.exit(main())
