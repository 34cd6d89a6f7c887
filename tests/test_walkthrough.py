"""The classroom walkthrough (notebooks/walkthrough.py, a notebook in jupytext's percent
format) runs top to bottom in a Jupyter kernel; any cell that raises fails the test."""

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

WALKTHROUGH = Path(__file__).resolve().parent.parent / "notebooks" / "walkthrough.py"


@pytest.mark.slow
def test_walkthrough_runs_top_to_bottom(tmp_path):
    notebook = jupytext.read(WALKTHROUGH)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on a failure
    outputs = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "finite difference" in outputs and "fine-tuned" in outputs
    assert "exit status 0" in outputs
