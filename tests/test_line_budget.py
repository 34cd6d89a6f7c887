"""The size budget of the README: `python tools/line_budget.py` passes."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_library_and_commands_are_within_their_line_budget():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "line_budget.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "library" in result.stdout and "commands" in result.stdout
