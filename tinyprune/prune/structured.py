"""Learned structured pruning: train with a penalty that drives whole filters and neurons to
zero, remove them, and carry on with the smaller dense model (no positions to store).

    small = learn_structure(lenet5_caffe(0), data, "group-lasso", 2e-4, TrainConfig(...))
    fit(small, data, MaskedSGD(small.params(), ...), ...)  # fine-tune what is left

group-lasso: prune/group_lasso.py; slimming: prune/slimming.py. Both apply their penalty as a
proximal step after each optimizer step, at the step's learning rate.
"""

from __future__ import annotations

import numpy as np

from tinyprune.config import TrainConfig
from tinyprune.nn.model import Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune import group_lasso, slimming
from tinyprune.prune.filters import shrink, unit_masks
from tinyprune.prune.masks import apply_masks
from tinyprune.train.loop import fit

METHODS = ("group-lasso", "slimming")


def widths(model: Sequential) -> tuple[int, ...]:
    """How many units each layer whose units may go has: LeNet-5-Caffe's (conv1, conv2, fc1)."""
    return tuple(len(layer.bias.value) for layer in group_lasso.unit_layers(model).values())


def remove_dead_units(model: Sequential, tol: float) -> Sequential:
    """The model shrunk (prune/filters.py) without the units whose group norm (weights and
    bias) is at most tol times the largest of their layer; the largest always stays."""
    keep = {}
    for name, layer in group_lasso.unit_layers(model).items():
        norms = group_lasso.group_norms(layer)
        keep[name] = norms > tol * norms.max()
        keep[name][np.argmax(norms)] = True
    apply_masks(model.params(), unit_masks(model, keep))
    return shrink(model)


def learn_structure(
    model: Sequential, data, method: str, lam, train: TrainConfig, tol=1e-3, warmup_steps=0
) -> Sequential:
    """Train `model` on data (an Mnist) as `train` says with `method`'s penalty of strength lam
    (one, or one a unit layer), then -> the smaller dense model without the units it zeroed
    (remove_dead_units). warmup_steps: see train/loop.py's cosine_lr."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    net = slimming.with_scales(model) if method == "slimming" else model
    penalty = slimming if method == "slimming" else group_lasso
    optimizer = MaskedSGD(net.params(), train.lr, train.momentum, train.weight_decay)

    def prox(step: int, total_steps: int) -> None:  # after each optimizer step, at its rate
        penalty.proximal_step(net, lam, optimizer.lr)

    steps = (train.epochs, train.batch_size, train.seed, train.shift, method)
    fit(net, data, optimizer, *steps, after_step=prox, warmup_steps=warmup_steps)
    if method == "slimming":
        net = slimming.fold_scales(net)
    return remove_dead_units(net, tol)
