"""`python -m tinyprune.run`: its options, and a short real run on an MNIST subset."""

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from tinyprune.cli.run import ctrl_c, kernels_ready, main, parse_args, run_config
from tinyprune.kernels.pool import maxpool2x2_forward
from tinyprune.nn.model import lenet5
from tinyprune.nn.optim import MaskedSGD
from tinyprune.report.run_pictures import redraw
from tinyprune.train.checkpoint import CHECKPOINT, save_checkpoint
from tinyprune.train.resume import resume_options


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--sparsity", "1.0", "must be in [0, 1)"),
        ("--sparsity", "-0.1", "must be in [0, 1)"),
        ("--epochs", "-1", "must be 0 or more"),
        ("--batch-size", "0", "must be at least 1"),
        ("--lr", "0", "must be greater than 0"),
        ("--epochs", "ten", "invalid non_negative_int value"),
        ("--data-dir", "/nonexistent/mnist", "does not exist"),
    ],
)
def test_bad_options_exit_2_with_one_line(option, value, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinyprune.run", option, value, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(blocker / "run")])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_short_run_learns_prunes_and_writes_its_results(tmp_path, capsys):
    """Real MNIST (via TINYPRUNE_DATA_DIR): 6,000 images, 2 epochs, prune 50%, 1 epoch; no
    warm-up, whose third of these 94 steps would leave it just short of the 0.9 below."""
    options = ["--limit", "6000", "--epochs", "2", "--finetune-epochs", "1", "--warmup-steps", "0"]
    assert main([*options, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    results = json.loads((tmp_path / "results.json").read_text())

    assert result["model"] == "lenet5" and result["epochs"] == 2 and result["seed"] == 0
    assert result["warmup_steps"] == 0
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["history"][1]["train_loss"] < result["history"][0]["train_loss"]
    assert result["test_accuracy"] > 0.9  # chance is 0.1; two epochs on 6,000 images give ~0.92
    assert all(h["seconds"] > 0 for h in result["history"])

    assert results["target_sparsity"] == 0.5 and results["sparsity"] == 0.5
    assert results["test_accuracy"] > 0.9
    assert 0 <= results["after_prune"]["test_accuracy"] <= 1
    assert [row["name"] for row in results["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]

    with np.load(tmp_path / "pruned.npz") as pruned:
        weights = [pruned[f"{row['name']}.weight"] for row in results["layers"]]
        masks = [pruned[f"{row['name']}.mask"] for row in results["layers"]]
        assert sum(np.count_nonzero(w == 0) for w in weights) == sum(w.size for w in weights) // 2
        assert all(np.all(w[m == 0] == 0) for w, m in zip(weights, masks))
    with np.load(tmp_path / "model.npz") as dense:
        assert set(dense) == {
            f"{n}.{p}" for n in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")
        }
    out = capsys.readouterr().out
    assert "fine-tuned" in out and "report written" in out
    for picture in ("curves", "conv1_filters", "fc1_mask", "feature_maps", "weights"):
        assert (tmp_path / f"{picture}.png").stat().st_size > 10_000, picture
    assert f"fine-tuned {results['test_accuracy']:.2%}" in (tmp_path / "report.html").read_text()

    # The weight-sharing phase: shared.tpz (conv=8,fc=5 by default), measured decoded
    shared = results["shared"]
    assert shared["file_bytes"] == (tmp_path / "shared.tpz").stat().st_size
    assert [r["name"] for r in shared["layers"]] == [
        "conv1",
        "conv2",
        "fc1",
        "fc2",
        "fc3",
        "header",
        "total",
    ]
    bits = [r["value_bits"] for r in shared["layers"][:5]]  # ceil(log2 k), k <= 2^bits
    assert all(0 < b <= most for b, most in zip(bits, [8, 8, 5, 5, 5])), bits
    assert shared["layers"][-1]["kept"] == 30_735 and shared["file_accuracy"] > 0.9
    assert f"{shared['file_bytes']:,} bytes" in out and "Huffman" in out


@pytest.mark.slow
def test_test_limit_measures_on_the_first_images_and_says_so(tmp_path, capsys):
    assert (
        main(
            [
                "--limit",
                "500",
                "--test-limit",
                "300",
                "--epochs",
                "1",
                "--finetune-epochs",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "every test accuracy below is on the first 300 test images only" in out
    assert "test accuracy (on the first 300 test images only): dense" in out
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["test_images"] == 300 and result["test_limit"] == 300
    assert "on the first 300 test images only" in (tmp_path / "report.html").read_text()
    import matplotlib.image

    drawn = matplotlib.image.imread(tmp_path / "conv1_filters.png")
    redraw(tmp_path)  # from the folder alone, as `python -m tinyprune.report --redraw` does
    np.testing.assert_array_equal(matplotlib.image.imread(tmp_path / "conv1_filters.png"), drawn)


def test_the_run_says_when_numba_runs_plain_python(monkeypatch):
    import numba

    monkeypatch.setattr(numba.config, "DISABLE_JIT", 1, raising=False)
    assert "kernels run as plain Python" in kernels_ready(0.0)
    monkeypatch.setattr(numba.config, "DISABLE_JIT", 0, raising=False)
    assert kernels_ready(0.25).startswith("numba kernels ready in 0.2s")


def assert_no_nan_or_inf_in(out):
    for path in out.iterdir():
        if path.suffix == ".json":
            text = path.read_text()
            assert "NaN" not in text and "Infinity" not in text, path
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                assert all(np.isfinite(arrays[k]).all() for k in arrays.files), path


@pytest.mark.slow
def test_diverging_training_stops_naming_epoch_and_step(tmp_path, capsys):
    assert (
        main(
            [
                "--lr",
                "1e6",
                "--limit",
                "500",
                "--epochs",
                "1",
                "--finetune-epochs",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: train: the loss became ")
    assert "at epoch 1, step " in error and "too high" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no result, no nan accuracy
    assert_no_nan_or_inf_in(tmp_path)


@pytest.mark.slow
def test_diverging_fine_tuning_stops_and_leaves_no_checkpoint(tmp_path, capsys):
    assert (
        main(
            [
                "--finetune-lr",
                "1e6",
                "--limit",
                "500",
                "--epochs",
                "1",
                "--finetune-epochs",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: fine-tune") and "at epoch 1, step " in error
    # Training's results stay; resuming would only diverge again, so no checkpoint stays.
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model.npz", "result.json"} <= names and not {"results.json", CHECKPOINT} & names
    assert_no_nan_or_inf_in(tmp_path)


def test_resume_without_a_run_to_resume_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--resume"])
    assert exit_info.value.code == 2
    assert "no interrupted run in --out" in capsys.readouterr().err


def saved_checkpoint(out, **options):
    model = lenet5()
    save_checkpoint(
        out / CHECKPOINT,
        model,
        MaskedSGD(model.params(), 0.05),
        "train",
        1,
        [],
        {**resume_options(run_config(parse_args(["--out", str(out)]))), **options},
    )


def test_a_checkpoint_is_not_overwritten_without_resume(tmp_path, capsys):
    saved_checkpoint(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "holds an interrupted run (train epoch 1 done); continue it by adding --resume" in (
        capsys.readouterr().err
    )
    assert (tmp_path / CHECKPOINT).exists()


def test_resume_with_other_options_is_refused(tmp_path, capsys):
    saved_checkpoint(tmp_path, lr=0.1)
    assert main(["--out", str(tmp_path), "--resume"]) == 2
    assert "other options (lr=0.1 there, 0.05 now)" in capsys.readouterr().err
    assert (tmp_path / CHECKPOINT).exists()


def test_ctrl_c_inside_a_numba_kernel_is_recognised():
    """numba hands a KeyboardInterrupt that lands inside a compiled call back as a SystemError
    caused by it; main must still see Ctrl-C there, not a crash."""
    x = np.random.default_rng(0).random((128, 6, 28, 28), dtype=np.float32)
    maxpool2x2_forward(x)  # compiled (or loaded) before the clock starts
    # Python's own Ctrl-C handler, even where the tests run with SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(BaseException) as caught:
            for _ in range(10**6):
                maxpool2x2_forward(x)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ctrl_c(caught.value)
    assert not ctrl_c(SystemError("a real bug"))
