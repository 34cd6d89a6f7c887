"""`python -m tinyprune.report`: the command is tinyprune/cli/report.py."""

import sys

from tinyprune.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
