"""Learned structured pruning: train with a penalty that drives whole filters and neurons to
zero, remove them, and carry on with the smaller dense model (no positions to store).

    small = learn_structure(lenet5_caffe(0), data, "group-lasso", 2e-4, TrainConfig(...))
    fit(small, data, MaskedSGD(small.params(), ...), ...)  # fine-tune what is left

group-lasso: prune/group_lasso.py; slimming: prune/slimming.py. Both apply their penalty as a
proximal step after each optimizer step, at the step's learning rate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyprune.config import TrainConfig
from tinyprune.nn.model import Sequential
from tinyprune.prune import group_lasso, slimming
from tinyprune.prune.filters import shrink, unit_masks
from tinyprune.prune.masks import apply_masks
from tinyprune.train.dense_cache import train_dense

METHODS = ("group-lasso", "slimming")
TOL = 1e-3  # remove_dead_units' tol: a unit below 1/1000 of its layer's largest is dead


def remove_dead_units(model: Sequential, tol: float = TOL) -> Sequential:
    """The model shrunk (prune/filters.py) without the units whose group norm (weights and
    bias) is at most tol times the largest of their layer; the largest always stays."""
    keep = {}
    for name, layer in group_lasso.unit_layers(model).items():
        norms = group_lasso.group_norms(layer)
        keep[name] = norms > tol * norms.max()
        keep[name][np.argmax(norms)] = True
    apply_masks(model.params(), unit_masks(model, keep))
    return shrink(model)


def proximal_step(model: Sequential, method: str, lam) -> Callable[[float], None]:
    """-> step(lr): method's penalty as a proximal step on model at learning rate lr, to run
    after each optimizer step (train_dense's penalty). lam: one, or one a unit layer."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    penalty = slimming if method == "slimming" else group_lasso
    return lambda lr: penalty.proximal_step(model, lam, lr)


def learn_structure(
    model: Sequential, data, method: str, lam, train: TrainConfig, tol: float = TOL
) -> Sequential:
    """Train `model` on data (an Mnist) as `train` says with `method`'s penalty of strength lam
    (one, or one a unit layer), then -> the smaller dense model without the units it zeroed
    (remove_dead_units)."""
    net = slimming.with_scales(model) if method == "slimming" else model
    train_dense(train, data, net, phase=method, penalty=proximal_step(net, method, lam))
    if method == "slimming":
        net = slimming.fold_scales(net)
    return remove_dead_units(net, tol)
