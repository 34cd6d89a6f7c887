"""`python -m tinyprune.export`: the command is tinyprune/cli/export.py."""

import sys

from tinyprune.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
