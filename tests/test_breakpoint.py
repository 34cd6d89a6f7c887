"""The layers a student reads are the ones that run: a breakpoint in Conv2d.forward stops a run.

Real MNIST (via TINYPRUNE_DATA_DIR), 64 images; pdb stops at the first convolution, in warm_up,
before any training, and quits there. Under a second with numba's cache warm.
"""

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tinyprune.nn.layers import Conv2d

ROOT = Path(__file__).resolve().parent.parent


def first_line_of_body(function) -> tuple[str, int]:
    """-> (its file, the line of its first statement after the docstring): where pdb stops."""
    lines, start = inspect.getsourcelines(function)
    definition = ast.parse(textwrap.dedent("".join(lines))).body[0]
    assert isinstance(definition, ast.FunctionDef)
    body = definition.body[1:] if ast.get_docstring(definition) else definition.body
    return inspect.getsourcefile(function) or "", start + body[0].lineno - 1


def test_pdb_stops_in_conv2d_forward_during_a_run(tmp_path):
    path, line = first_line_of_body(Conv2d.forward)
    run = ["-m", "tinyprune.run", "--limit", "64", "--test-limit", "64", "--epochs", "1"]
    run += ["--finetune-epochs", "0", "--sparsity", "0", "--out", str(tmp_path / "run")]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, "-m", "pdb", *run],
        input=f"b {path}:{line}\nc\nwhere\nq\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    stopped = f"> {path}({line})forward()"
    assert stopped in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert "warm_up" in done.stdout.split(stopped)[1]  # `where`: called by the run's warm_up
    assert not (tmp_path / "run" / "result.json").exists()  # quit there, before training
