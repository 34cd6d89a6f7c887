"""Structured pruning: remove whole conv filters and fc neurons, leaving a smaller dense model.

A conv filter f of layer i makes output channel f; an fc neuron makes one output. To remove
one, three things go: its row of weights, its bias, and what the next weighted layer reads
from it (input channel f of a conv; the f-th block of H x W columns of an fc after Flatten).
While fine-tuning, that is all expressed as masks (so training code is unchanged); `shrink`
then copies the surviving rows and columns into smaller layers, which compute the same outputs
with fewer multiply-adds. The last layer's outputs are the classes and are never removed.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d, Linear
from tinyprune.nn.model import Sequential
from tinyprune.prune.masks import keep_mask


def weighted_layers(model: Sequential) -> dict[str, Conv2d | Linear]:
    """The conv and fc layers, by name, in order (a ConvPool's convolution under its name)."""
    layers = {n: x.conv if isinstance(x, ConvPool) else x for n, x in model.layers.items()}
    return {name: layer for name, layer in layers.items() if isinstance(layer, (Conv2d, Linear))}


def kept_units(layer) -> np.ndarray:
    """bool (out,): which filters/neurons are still there (a removed one has its bias masked)."""
    mask = layer.bias.mask
    return np.ones(len(layer.bias.value), bool) if mask is None else mask.copy()


def _input_keep(layer, kept_before: np.ndarray | None) -> np.ndarray:
    """Expand the previous layer's kept outputs (C,) to this layer's inputs: (C,) for a conv,
    (in_features,) for an fc after Flatten, where channel c feeds in_features // C columns.
    The first weighted layer (kept_before None) keeps all its inputs."""
    if kept_before is None:
        return np.ones(layer.weight.value.shape[1], bool)
    if isinstance(layer, Conv2d):
        return kept_before
    return np.repeat(kept_before, layer.weight.value.shape[1] // len(kept_before))


def filter_masks(model: Sequential, sparsity: float) -> dict[str, np.ndarray]:
    """Masks removing round(sparsity * out) filters/neurons of smallest L1 norm in each
    weighted layer but the last: {'<layer>.weight': (out, in, ...), '<layer>.bias': (out,)}.

    Units removed before score -inf, so they stay removed: masks only lose ones.
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    layers = weighted_layers(model)
    names = list(layers)
    keep = {}
    for name in names[:-1]:
        layer = layers[name]
        w = layer.weight.value
        l1 = np.abs(w).reshape(len(w), -1).sum(axis=1)
        score = np.where(kept_units(layer), l1, -np.inf)
        keep[name] = keep_mask(score, int(round(sparsity * len(w))))
    return unit_masks(model, keep)


def unit_masks(model: Sequential, keep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The masks removing, in each weighted layer named in `keep`, the units whose entry of
    keep (out,) bool is False, and what the next layer reads from them; the last layer's
    units (the classes) always stay. Keys as filter_masks's."""
    layers = weighted_layers(model)
    names = list(layers)
    keep = {name: keep.get(name, np.ones(len(layers[name].bias.value), bool)) for name in names}
    keep[names[-1]] = np.ones(layers[names[-1]].weight.value.shape[0], bool)
    masks = {}
    kept_before = None
    for name, layer in layers.items():
        w = layer.weight.value
        rows = keep[name].reshape((-1,) + (1,) * (w.ndim - 1))
        cols = _input_keep(layer, kept_before).reshape((1, -1) + (1,) * (w.ndim - 2))
        masks[f"{name}.weight"] = np.broadcast_to(rows & cols, w.shape).copy()
        if name != names[-1]:
            masks[f"{name}.bias"] = keep[name].copy()
        kept_before = keep[name]
    return masks


def shrink(model: Sequential) -> Sequential:
    """A new, smaller dense model without the removed filters/neurons; same outputs."""
    rng = np.random.default_rng(0)  # the initial values are overwritten right away
    layers = {}
    kept_before = None
    for name, outer in model.layers.items():
        layer = outer.conv if isinstance(outer, ConvPool) else outer
        if not isinstance(layer, (Conv2d, Linear)):
            layers[name] = type(layer)()  # ReLU, MaxPool2d, Flatten: no parameters
            continue
        out_keep = kept_units(layer)
        w = layer.weight.value[out_keep][:, _input_keep(layer, kept_before)]
        dtype = w.dtype
        small: Conv2d | Linear
        if isinstance(layer, Conv2d):
            small = Conv2d(
                w.shape[1],
                w.shape[0],
                w.shape[2],
                layer.padding,
                rng,
                dtype,
                input_grad=layer.input_grad,
            )
        else:
            small = Linear(w.shape[1], w.shape[0], rng, dtype)
        small.weight.value[...] = w
        small.bias.value[...] = layer.bias.value[out_keep]
        layers[name] = small
        if isinstance(outer, ConvPool) and isinstance(small, Conv2d):  # fused stays fused
            layers[name] = ConvPool(small, outer.relu)
        kept_before = out_keep
    return Sequential(model.name, layers)
