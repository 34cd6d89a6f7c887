"""Training for a number of iterations, watching the validation loss: when is it lowest?

The lottery-ticket experiments (Frankle & Carbin 2019) count iterations, not epochs, train at a
constant learning rate, and measure how fast a network learns by its early-stopping iteration:
the iteration at which the validation loss is lowest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from tinyprune.data.transforms import to_input
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import Sequential
from tinyprune.train.loop import ONE_BLAS_THREAD, evaluate, train_step


class Split(NamedTuple):
    """Images (N, 28, 28) uint8 and their labels (N,) uint8."""

    images: np.ndarray
    labels: np.ndarray


class StepsResult(NamedTuple):
    curve: list[dict]  # {"iteration", "val_loss", "val_accuracy"} every eval_every iterations
    best_iteration: int  # the early-stopping iteration: lowest validation loss
    best_state: dict[str, np.ndarray]  # the weights at that iteration


def batches(n: int, batch_size: int, seed: int, start: int, stop: int) -> Iterator[np.ndarray]:
    """The image indices of iterations start..stop-1 (counted from 0). Epoch e takes full
    batches, in order, of a permutation of range(n) seeded by (seed, e) alone, so training may
    start at any iteration (a rewound ticket) and see what a run from 0 would see there."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch size {batch_size} is larger than the {n} training images")
    order, order_epoch = np.empty(0, np.int64), -1
    for iteration in range(start, stop):
        epoch, step = divmod(iteration, per_epoch)
        if epoch != order_epoch:
            order, order_epoch = np.random.default_rng([seed, epoch]).permutation(n), epoch
        yield order[step * batch_size : (step + 1) * batch_size]


@threadpool_limits.wrap(**ONE_BLAS_THREAD)
def train_steps(
    model: Sequential,
    optimizer,
    train: Split,
    val: Split,
    start: int,
    stop: int,
    batch_size: int,
    seed: int,
    eval_every: int,
) -> StepsResult:
    """Train iterations start..stop-1 (at the optimizer's constant rate) on `train`; measure
    the loss on `val` at iteration `start` and after every `eval_every` iterations (and at
    `stop`). Returns the validation curve and the iteration and weights of its minimum."""
    loss_fn = SoftmaxCrossEntropy()
    curve: list[dict] = []
    best: tuple[float, int, dict[str, np.ndarray]] = (math.inf, start, {})

    def validate(iteration: int) -> None:
        nonlocal best
        loss, accuracy = evaluate(model, val.images, val.labels)
        curve.append({"iteration": iteration, "val_loss": loss, "val_accuracy": accuracy})
        if loss < best[0]:
            best = (loss, iteration, {k: v.copy() for k, v in model.state().items()})

    validate(start)
    for iteration, idx in enumerate(
        batches(len(train.images), batch_size, seed, start, stop), start=start
    ):
        x, y = to_input(train.images[idx]), train.labels[idx].astype(np.int64)
        train_step(model, loss_fn, optimizer, x, y, "training", f"at iteration {iteration + 1}")
        done = iteration + 1
        if done % eval_every == 0 or done == stop:
            validate(done)
    return StepsResult(curve, best[1], best[2])
