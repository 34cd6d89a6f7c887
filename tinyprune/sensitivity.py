"""`python -m tinyprune.sensitivity`: the command is tinyprune/cli/sensitivity.py."""

import sys

from tinyprune.cli.sensitivity import main

if __name__ == "__main__":
    sys.exit(main())
