"""A run killed (SIGKILL) or interrupted (Ctrl-C, SIGINT) and then resumed ends exactly as an
uninterrupted one: the same result.json and results.json numbers, to the last digit, whether
it stopped in training or in fine-tuning. (schedules.py's own tests stop every schedule after
every epoch.)"""

import shlex
import signal
import subprocess
import sys
import time

import pytest
from helpers import results

from tinyprune.train.checkpoint import CHECKPOINT, checkpoint_phase

# Real MNIST (via TINYPRUNE_DATA_DIR), 1,000 training images: 2 epochs, then 2 rounds of
# pruning and fine-tuning, of 1 and 2 epochs.
RUN = [
    sys.executable,
    "-m",
    "tinyprune.run",
    "--limit",
    "1000",
    "--epochs",
    "2",
    "--finetune-epochs",
    "3",
    "--schedule",
    "iterative",
    "--rounds",
    "2",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(RUN + ["--out", str(out)], check=True, capture_output=True)
    assert not (out / CHECKPOINT).exists()  # a complete run leaves no checkpoint
    return results(out)


def default_sigint() -> None:
    """In the child, before it starts Python: Ctrl-C's default action, even when these tests
    run where SIGINT is ignored (a shell's background job), which the child would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(out, saved: tuple[str, int], sig: int) -> subprocess.CompletedProcess:
    """Start the run, send `sig` once the checkpoint `saved` = (phase, epoch) exists."""
    proc = subprocess.Popen(
        RUN + ["--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 300
    while checkpoint_phase(out / CHECKPOINT) != saved:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.slow
def test_killed_after_training_then_resumed_ends_as_uninterrupted(tmp_path, uninterrupted):
    """SIGKILL once training's last epoch is saved: while it prunes or fine-tunes round 1.
    The resumed run redoes those from the trained model."""
    killed = interrupt(tmp_path, ("train", 2), signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "results.json").exists()

    rerun = subprocess.run(RUN + ["--out", str(tmp_path)], capture_output=True, text=True)
    assert rerun.returncode == 2 and "by adding --resume" in rerun.stderr  # the saved work is kept
    assert checkpoint_phase(tmp_path / CHECKPOINT) == ("train", 2)

    resumed = subprocess.run(
        RUN + ["--out", str(tmp_path), "--resume"], capture_output=True, text=True, check=True
    )
    assert "resuming from" in resumed.stdout and "train epoch" not in resumed.stdout
    assert results(tmp_path) == uninterrupted
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / CHECKPOINT).exists()


@pytest.mark.slow
def test_ctrl_c_in_training_then_resumed_ends_as_uninterrupted(tmp_path, uninterrupted):
    """SIGINT (Ctrl-C) during training's second epoch: one line saying where and how to go
    on, exit status 130, no temporary file; the command it gives finishes the run."""
    stopped = interrupt(tmp_path, ("train", 1), signal.SIGINT)
    assert stopped.returncode == 130
    assert "Traceback" not in stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted in training epoch 2 of 2; resume with: python -m ")
    assert not list(tmp_path.glob("*.tmp"))
    assert checkpoint_phase(tmp_path / CHECKPOINT) == ("train", 1)

    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[-1] == "--resume"
    resumed = subprocess.run(
        [sys.executable] + command[1:], capture_output=True, text=True, check=True
    )
    assert "train epoch  1/2" not in resumed.stdout and "train epoch  2/2" in resumed.stdout
    assert results(tmp_path) == uninterrupted
    assert not (tmp_path / CHECKPOINT).exists()

    again = subprocess.run([sys.executable] + command[1:], capture_output=True, text=True)
    assert again.returncode == 0 and "complete" in again.stdout
    assert results(tmp_path) == uninterrupted


@pytest.mark.slow
def test_killed_in_fine_tuning_then_resumed_ends_as_uninterrupted(tmp_path, uninterrupted):
    """SIGKILL once fine-tuning's first epoch (all of round 1) is saved: the resumed run
    neither trains nor fine-tunes round 1 again."""
    killed = interrupt(tmp_path, ("fine-tune", 1), signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run(
        RUN + ["--out", str(tmp_path), "--resume"], capture_output=True, text=True, check=True
    )
    assert "1 of 3 fine-tuning epochs done" in resumed.stdout
    assert "train epoch" not in resumed.stdout and "fine-tune 1 epoch" not in resumed.stdout
    assert results(tmp_path) == uninterrupted
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / CHECKPOINT).exists()


@pytest.mark.slow
def test_ctrl_c_in_fine_tuning_then_resumed_ends_as_uninterrupted(tmp_path, uninterrupted):
    """SIGINT inside round 2's fine-tuning: the message names the fine-tuning epoch, and the
    resumed run goes on with round 2's second epoch, pruned as it was, momentum and all."""
    stopped = interrupt(tmp_path, ("fine-tune", 2), signal.SIGINT)
    assert stopped.returncode == 130
    line = stopped.stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted in fine-tuning epoch 3 of 3; resume with: ")
    resumed = subprocess.run(
        RUN + ["--out", str(tmp_path), "--resume"], capture_output=True, text=True, check=True
    )
    assert "round 2/2: pruned" not in resumed.stdout
    assert "fine-tune 2 epoch  1/2" not in resumed.stdout
    assert "fine-tune 2 epoch  2/2" in resumed.stdout
    assert results(tmp_path) == uninterrupted


@pytest.mark.slow
def test_resumed_fine_tuning_needs_the_trained_model(tmp_path):
    """Fine-tuning's report includes the trained model (model.npz); if it is gone, say so."""
    interrupt(tmp_path, ("fine-tune", 1), signal.SIGKILL)
    (tmp_path / "model.npz").unlink()
    resumed = subprocess.run(
        RUN + ["--out", str(tmp_path), "--resume"], capture_output=True, text=True
    )
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr
    assert "model.npz cannot be read" in resumed.stderr and "start over" in resumed.stderr
