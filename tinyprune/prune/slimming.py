"""Network slimming (Liu et al. 2017): a learned scale on each filter's and neuron's output,
pressed to zero by an L1 penalty; a unit whose scale reaches 0 is removed.

Liu et al. put the scale in batch normalisation; LeNet-5-Caffe has none, so a ChannelScale
(nn/channel_scale.py) follows each unit's max-pool or ReLU. The scales are kept >= 0: a scale
s >= 0 passes through max-pool and ReLU (max(s a, s b) = s max(a, b), relu(s a) = s relu(a)),
so after training it folds exactly into the rows and bias of the layer before it.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.channel_scale import ChannelScale
from tinyprune.nn.layers import MaxPool2d, ReLU
from tinyprune.nn.model import Sequential
from tinyprune.prune.group_lasso import layer_lams, unit_layers


def with_scales(model: Sequential) -> Sequential:
    """The model (its layers, not copies) with a ChannelScale '<layer>_scale' after each unit
    layer's output: after the MaxPool2d and ReLU that follow the layer, if any."""
    units = unit_layers(model)
    layers, pending = {}, None
    for name, layer in model.layers.items():
        if pending is not None and not isinstance(layer, (MaxPool2d, ReLU)):
            layers[f"{pending}_scale"] = ChannelScale(
                len(units[pending].bias.value), units[pending].weight.value.dtype
            )
            pending = None
        layers[name] = layer
        if name in units:
            pending = name
    return Sequential(model.name, layers)


def scales(model: Sequential) -> dict[str, np.ndarray]:
    """'<unit layer>' -> its scales (C,), the live arrays."""
    return {
        name.removesuffix("_scale"): layer.scale.value
        for name, layer in model.layers.items()
        if isinstance(layer, ChannelScale)
    }


def proximal_step(model: Sequential, lam, lr: float) -> None:
    """After a gradient step at rate lr: s <- max(0, s - lr lam), the minimiser of
    (s' - s)^2 / 2 + lr lam s' over s' >= 0: L1's soft threshold, kept on the side >= 0.
    lam: one strength, or one each unit layer (as group_lasso.layer_lams takes it)."""
    lams = layer_lams(model, lam)
    for name, s in scales(model).items():
        np.maximum(s - np.asarray(lr * lams[name], s.dtype), 0, out=s)


def fold_scales(model: Sequential) -> Sequential:
    """The model without its ChannelScales, each multiplied into the rows and bias of the
    layer it follows: the same outputs (see the module's docstring)."""
    units = unit_layers(model)
    for name, s in scales(model).items():
        layer = units[name]
        layer.weight.value *= s.reshape((-1,) + (1,) * (layer.weight.value.ndim - 1))
        layer.bias.value *= s
    kept = {k: v for k, v in model.layers.items() if not isinstance(v, ChannelScale)}
    return Sequential(model.name, kept)
