"""`python -m tinyprune.export_c`: the command is tinyprune/cli/export_c.py."""

import sys

from tinyprune.cli.export_c import main

if __name__ == "__main__":
    sys.exit(main())
