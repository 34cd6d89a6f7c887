"""How big tinyprune is: lines of code per folder, against the budget in pyproject.toml.

    python tools/line_budget.py

A line of code is a line that is not blank and not only a comment; docstrings count (they are
read as much as the code). The commands are the modules of tinyprune/cli/ that have a main()
and the shims that run them as `python -m tinyprune.<name>`; the library is everything else in
tinyprune/. Exit status 1 if either is over its budget.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def lines_of_code(path: Path) -> int:
    return sum(
        1
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    )


def is_command(path: Path) -> bool:
    """A command of tinyprune/cli/ (it has a main()), or a shim that runs one as
    `python -m tinyprune.<name>`."""
    text = path.read_text()
    in_cli = path.parent.name == "cli" and "\ndef main(" in text
    return in_cli or 'if __name__ == "__main__":' in text or path.name == "__main__.py"


def main() -> int:
    budget = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["tinyprune"]
    sizes: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for path in sorted((ROOT / "tinyprune").rglob("*.py")):
        kind = "commands" if is_command(path) else "library"
        folder = path.parent.relative_to(ROOT).as_posix()
        n = lines_of_code(path)
        sizes[f"{folder}/{path.name}" if kind == "commands" else folder + "/"] += n
        totals[kind] += n
    for name, n in sizes.items():
        print(f"{name:32} {n:6,}")
    over = False
    for kind in ("library", "commands"):
        limit = budget[f"{kind}_lines"]
        print(f"{kind:32} {totals[kind]:6,} of a budget of {limit:,}")
        over |= totals[kind] > limit
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
