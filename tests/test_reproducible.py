"""The same seed (and thread count) gives the same numbers: a run is reproducible to the last
digit, wall times aside."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import without_seconds

RUN = [
    sys.executable,
    "-m",
    "tinyprune.run",
    "--limit",
    "500",
    "--epochs",
    "1",
    "--finetune-epochs",
    "1",
    "--seed",
    "3",
]


@pytest.mark.slow
def test_same_seed_same_numbers(tmp_path):
    """Two fresh processes, same environment (so the same numba thread count)."""
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        subprocess.run(RUN + ["--out", str(out)], check=True, capture_output=True)
    for name in ("result.json", "results.json"):
        first, second = (json.loads((out / name).read_text()) for out in outs)
        assert first["history"] and all(h["seconds"] > 0 for h in first["history"])
        assert without_seconds(first) == without_seconds(second), name
    for name in ("model.npz", "pruned.npz"):
        with np.load(outs[0] / name) as first, np.load(outs[1] / name) as second:
            assert sorted(first.files) == sorted(second.files)
            for key in first.files:
                np.testing.assert_array_equal(first[key], second[key], err_msg=f"{name} {key}")
