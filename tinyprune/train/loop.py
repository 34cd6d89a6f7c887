"""Training and evaluation loops."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from tinyprune.data.datasets import MNIST, Dataset
from tinyprune.data.transforms import random_shift, to_input
from tinyprune.kernels import precompile
from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import Sequential
from tinyprune.nn.optim import MaskedAdam, MaskedSGD

# The kernels use every core (kernels/threads.py). A multithreaded BLAS (for the fc products) would
# leave its threads spinning on those same cores and slow the kernels after it by 2-3x, so
# the BLAS runs on one thread while we train or evaluate.
ONE_BLAS_THREAD = dict(limits=1, user_api="blas")


class Diverged(FloatingPointError):
    """The loss became NaN or infinite."""


def warm_up(model: Sequential, report: Callable[[str, float], None] | None = None) -> float:
    """Run two blank images forward and back through the model, one layer at a time, so that
    numba compiles the kernels of its layers now (the first run on a machine: a few seconds) or
    loads them from its cache (a fraction of a second), not inside the first timed epoch: a
    plain model's conv and pool kernels, a fused one's ConvPool kernels. Each kernel is
    compiled for the dtype it is first called with, here the model's, on first use; on a first
    run some backward kernels compile meanwhile in a second process (kernels/precompile.py).
    After each layer's pass, report(f"{name} forward" or "... backward", seconds) if given,
    so a caller can show the progress; and report(SECOND_PROCESS, seconds) for the wait for that
    process, if one ran. -> seconds in all."""
    start = time.perf_counter()
    dtype = next(iter(model.params().values())).value.dtype
    fused = [layer.conv for layer in model.layers.values() if isinstance(layer, ConvPool)]
    convs = [layer for layer in model.layers.values() if isinstance(layer, Conv2d)] + fused
    helper = precompile.start(dtype, bool(fused)) if convs else None
    x = to_input(np.zeros((2, 28, 28), np.uint8)).astype(dtype)
    for name, layer in model.layers.items():
        x = _timed(f"{name} forward", layer.forward, x, report)
    if helper is not None:
        input_grad = any(conv.input_grad and not conv.gemm for conv in convs)
        finish = functools.partial(
            precompile.finish, dtype=dtype, fused=bool(fused), input_grad=input_grad
        )
        _timed(SECOND_PROCESS, finish, helper, report)
    for name, layer in reversed(model.layers.items()):
        x = _timed(f"{name} backward", layer.backward, x, report)
        if x is None:  # a layer with input_grad=False: the layers before it need no gradient
            break
    return time.perf_counter() - start


SECOND_PROCESS = "the backward kernels, half of them in a second process,"


def _timed(name: str, run_pass: Callable, x, report: Callable[[str, float], None] | None):
    """-> run_pass(x); report(name, the seconds it took) if report is given."""
    begun = time.perf_counter()
    x = run_pass(x)
    if report is not None:
        report(name, time.perf_counter() - begun)
    return x


def print_progress(name: str, seconds: float) -> None:
    """A `report` for warm_up: print each layer pass that took a while (it compiled)."""
    if seconds >= 0.1:
        print(f"  numba compiled {name} in {seconds:.1f}s", flush=True)


# Why a warm-up (config.WARMUP_STEPS, 100 steps by default): at the full rate from the first
# step, lenet5-caffe diverged within its first 40 steps on seeds 1 and 4 of 0-9 with --shift 1
# and on seed 1 without (validation split; seed 4 at step 38 on the full training set). Its
# conv1, pool1, conv2, pool2 and fc1 have no ReLU between them, so a step on conv1 scales all
# after it. At lr 0.05 and momentum 0.9 the logits grow from 0.4 to 20-50 in 25 steps; on seed 4
# a batch the model then got confidently wrong (loss 3.8, then 9.6) gave conv1 a gradient 20x
# its usual one (57.7), momentum carried it, conv1's weights went from norm 2.6 to 5.3 in two
# steps and the logits from 130 to 28,000: NaN three steps later. Healthy seeds show smaller
# spikes then. Rising from lr/100 over 100 steps, the rate is a third of its peak at step 30 and
# full once the loss is well down: no seed of 0-9 of any recipe diverged in its first epoch
# (benchmarks/seed_stability.py). 50, 100 and 200 steps all held seeds 1, 4 and 6 over 150
# steps; 100 is the middle one, and lenet5's validation accuracy after 10 epochs was the same
# with it as without, within the spread between seeds. A short run (--limit) warms up over a
# third of its steps at most, so that it still trains at its full rate for most of them.
def cosine_lr(base_lr: float, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Learning rate of step `step` (from 0): decayed from base_lr to 0 along half a cosine over
    total_steps, and over the first w = min(warmup_steps, total_steps // 3) steps also scaled
    by (step + 1) / w, a linear warm-up (Goyal et al. 2017)."""
    cosine = 0.5 * base_lr * (1 + math.cos(math.pi * step / total_steps))
    warmup = min(warmup_steps, total_steps // 3)
    return cosine * min(1.0, (step + 1) / warmup) if warmup else cosine


@threadpool_limits.wrap(**ONE_BLAS_THREAD)
def evaluate(
    model: Sequential,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 1000,
    dataset: Dataset = MNIST,
) -> tuple[float, float]:
    """-> (mean loss, accuracy as a fraction) over all images (N, 28, 28) uint8, normalised
    as `dataset`'s (data.dataset of a loaded data set)."""
    loss_fn = SoftmaxCrossEntropy()
    total_loss, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = to_input(images[start : start + batch_size], dataset)
        y = labels[start : start + batch_size].astype(np.int64)
        logits = model.forward(x)
        total_loss += loss_fn.forward(logits, y) * len(y)
        correct += int((logits.argmax(axis=1) == y).sum())
    return total_loss / len(images), correct / len(images)


def train_step(
    model: Sequential,
    loss_fn: SoftmaxCrossEntropy,
    optimizer: MaskedSGD | MaskedAdam,
    x: np.ndarray,
    y: np.ndarray,
    phase: str,
    where: str,
) -> tuple[np.ndarray, float]:
    """One optimizer step on the batch x (N, 1, 28, 28), y (N,) -> (logits (N, classes), loss).
    Diverged, naming the phase and where in it, if the loss is NaN or infinite."""
    # A learning rate too high overflows the activations; the check below says so in one
    # line, so numpy's own overflow warnings would only add noise before it.
    with np.errstate(over="ignore", invalid="ignore"):
        logits = model.forward(x)
        loss = loss_fn.forward(logits, y)
    if not math.isfinite(loss):
        raise Diverged(
            f"{phase}: the loss became {loss} {where}; the learning rate "
            f"{optimizer.base_lr:g} is too high, try {optimizer.base_lr / 10:g}"
        )
    model.backward(loss_fn.backward())
    optimizer.step()
    return logits, loss


def train_epoch(
    model: Sequential,
    optimizer: MaskedSGD,
    data,
    epoch: int,
    epochs: int,
    batch_size: int,
    seed: int,
    max_shift: int,
    phase: str,
    after_step: Callable[[int, int], None] | None,
    warmup_steps: int = 0,
) -> tuple[float, float, float]:
    """Epoch `epoch` of `epochs`' steps, as `fit` describes them -> (mean train loss, train
    accuracy as a fraction, wall seconds of the steps)."""
    loss_fn = SoftmaxCrossEntropy()
    n = len(data.train_images)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    total_loss, correct = 0.0, 0
    desc = f"{phase} epoch {epoch}/{epochs}"
    bar = tqdm(range(steps_per_epoch), desc=desc, leave=False, disable=None, unit="batch")
    start = time.perf_counter()
    for step in bar:
        idx = order[step * batch_size : (step + 1) * batch_size]
        x = to_input(random_shift(data.train_images[idx], max_shift, rng), data.dataset)
        y = data.train_labels[idx].astype(np.int64)
        global_step = (epoch - 1) * steps_per_epoch + step
        optimizer.lr = cosine_lr(optimizer.base_lr, global_step, total_steps, warmup_steps)
        where = f"at epoch {epoch}, step {step + 1}"
        logits, loss = train_step(model, loss_fn, optimizer, x, y, phase, where)
        if after_step is not None:
            after_step(global_step + 1, total_steps)
        total_loss += loss * len(y)
        correct += int((logits.argmax(axis=1) == y).sum())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
    return total_loss / n, correct / n, time.perf_counter() - start


def print_epoch(phase: str, epochs: int, entry: dict) -> None:
    """One line for a history entry of `fit`: its losses, accuracies and seconds."""
    print(
        f"{phase} epoch {entry['epoch']:2d}/{epochs}: train loss {entry['train_loss']:.4f}, "
        f"train acc {entry['train_accuracy']:.2%}, test loss {entry['test_loss']:.4f}, "
        f"test acc {entry['test_accuracy']:.2%}, {entry['seconds']:.1f}s",
        flush=True,
    )


@threadpool_limits.wrap(**ONE_BLAS_THREAD)
def fit(
    model: Sequential,
    data,
    optimizer: MaskedSGD,
    epochs: int,
    batch_size: int,
    seed: int,
    max_shift: int = 0,
    phase: str = "train",
    start_epoch: int = 1,
    after_step: Callable[[int, int], None] | None = None,
    after_epoch: Callable[[dict], None] | None = None,
    warmup_steps: int = 0,
) -> list[dict]:
    """Train epochs start_epoch..epochs; evaluate on the test set after each one.

    data: an `Mnist` tuple (uint8 images, labels, data set). The learning rate follows a cosine
    from the optimizer's base_lr down to 0 over all `epochs`, and rises linearly to it over the
    first warmup_steps steps (see cosine_lr; 0: no warm-up, as fine-tuning has). Each
    training image is shifted at random by up to max_shift pixels (see random_shift). Epoch e
    draws its batches from a generator seeded by (seed, e) alone, so a run resumed at any epoch
    (start_epoch, with the model and optimizer as they were) takes the same steps as one
    never interrupted.
    after_step(step, total_steps) runs after each optimizer step (steps count from 1 over the
    whole run); after_epoch(entry) after each epoch's history entry is made.
    Returns the history entries of the epochs run; `seconds` is the wall time of the
    training steps alone.
    """
    history = []
    for epoch in range(start_epoch, epochs + 1):
        run = (epoch, epochs, batch_size, seed, max_shift, phase, after_step, warmup_steps)
        train_loss, train_accuracy, seconds = train_epoch(model, optimizer, data, *run)
        test_loss, test_accuracy = evaluate(
            model, data.test_images, data.test_labels, dataset=data.dataset
        )
        entry = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "seconds": seconds,
        }
        history.append(entry)
        print_epoch(phase, epochs, entry)
        if after_epoch is not None:
            after_epoch(entry)
    return history


def inference_seconds(
    model: Sequential, x: np.ndarray, batch_size: int = 1000, repeats: int = 3
) -> float:
    """Best of `repeats` wall times of a forward pass over x (N, 1, 28, 28), in batches."""
    best = float("inf")
    with threadpool_limits(**ONE_BLAS_THREAD):  # as in training
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, len(x), batch_size):
                model.forward(x[i : i + batch_size])
            best = min(best, time.perf_counter() - start)
    return best
