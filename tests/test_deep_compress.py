"""`python -m tinyprune.deep_compress` (`python -m tinyprune.run` with Deep Compression's
defaults): bad --bits refused; a short real run on the validation split, from the dense cache,
writes a file whose reported accuracy is that of its decoded model."""

import json
import subprocess
import sys

import pytest

from tinyprune.config import DataConfig
from tinyprune.data.mnist import load_data
from tinyprune.deep_compress import main
from tinyprune.deploy import tpz
from tinyprune.nn.model import lenet5
from tinyprune.train.loop import evaluate


@pytest.mark.parametrize(
    "bits, message", [("9", "1 to 8"), ("conv=5", "gets no bits"), ("fc7=3", "not N or NAME=N")]
)
def test_bad_bits_exit_2_with_one_line(bits, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinyprune.deep_compress", "--bits", bits, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_validation_split_is_the_last_10000_training_images():
    data = load_data(DataConfig(validation=True))
    full = load_data(DataConfig())
    assert len(data.train_images) == 50_000 and len(data.test_images) == 10_000
    assert (data.test_images == full.train_images[50_000:]).all()
    assert (data.test_labels == full.train_labels[50_000:]).all()


@pytest.mark.slow
def test_short_run_on_the_validation_split(tmp_path, capsys):
    """2,000 images, 1 epoch, 2 rounds to 90%, shared in 4 bits, 1 epoch on the codebooks."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert (
        main(
            [
                "--validation",
                "--limit",
                "2000",
                "--epochs",
                "1",
                "--sparsity",
                "0.9",
                "--rounds",
                "2",
                "--finetune-epochs",
                "2",
                "--bits",
                "4",
                "--bias-bits",
                "3",
                "--out",
                str(out),
                "--cache-dir",
                str(cache),
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "global" and results["schedule"] == "iterative"
    assert results["shared"]["file_bytes"] == (out / "shared.tpz").stat().st_size
    assert [r["round"] for r in results["rounds"]] == [1, 2]
    data = load_data(DataConfig(validation=True))
    decoded = tpz.decoded_model(lenet5(), out / "shared.tpz")
    accuracy = evaluate(decoded, data.test_images, data.test_labels)[1]
    assert accuracy == results["shared"]["file_accuracy"]
    assert len(list(cache.glob("lenet5-*.npz"))) == 1
    assert "10,000 validation images" in capsys.readouterr().out
