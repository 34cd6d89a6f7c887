"""Group lasso (Yuan & Lin 2006; on filters, Wen et al. 2016): a penalty that zeroes whole
filters and neurons, not single weights. A group is one unit's incoming weights and its bias (a
conv filter's (C, K, K) row or an fc neuron's (in,) row), in every weighted layer but the last,
whose outputs are the classes. The penalty is lam * sum_g sqrt(|g|) ||w_g||_2: the norm of a
group grows as the square root of its size, and Yuan & Lin's sqrt(|g|) weighs groups to match.
A unit whose group is all zero outputs exactly 0: prune/structured.py removes it.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Conv2d, Linear
from tinyprune.nn.model import Sequential
from tinyprune.nn.model import unit_layers as model_unit_layers
from tinyprune.prune.filters import weighted_layers


def unit_layers(model: Sequential) -> dict[str, Conv2d | Linear]:
    """The layers whose units may go (nn/model.py's unit_layers), by name."""
    layers = weighted_layers(model)
    return {name: layers[name] for name in model_unit_layers(model)}


def group_norms(layer: Conv2d | Linear) -> np.ndarray:
    """(out,): the L2 norm of each unit's row of weights and its bias together."""
    w, b = layer.weight.value, layer.bias.value
    return np.sqrt((w.reshape(len(w), -1) ** 2).sum(axis=1) + b**2)


def _size_weight(layer: Conv2d | Linear) -> float:
    """sqrt(|g|): |g| = one row's weights + 1 bias."""
    return float(np.sqrt(layer.weight.value[0].size + 1))


def layer_lams(model: Sequential, lam) -> dict[str, float]:
    """lam: one strength for every unit layer, or one each (in layer order) -> name -> lam."""
    units = unit_layers(model)
    return dict(zip(units, np.broadcast_to(np.asarray(lam, float), (len(units),)).tolist()))


def penalty(model: Sequential, lam) -> float:
    """sum over groups of lam sqrt(|g|) ||w_g||; lam as layer_lams takes it."""
    lams, units = layer_lams(model, lam), unit_layers(model)
    return sum(lams[n] * _size_weight(u) * float(group_norms(u).sum()) for n, u in units.items())


def penalty_gradient(layer: Conv2d | Linear, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """d penalty / d (weight, bias) of one layer: lam sqrt(|g|) w_g / ||w_g||; 0 for a group
    at 0. Training takes the proximal step below; tests check this by finite differences."""
    norms = group_norms(layer)
    scale = lam * _size_weight(layer) * np.divide(1.0, norms, np.zeros_like(norms), where=norms > 0)
    w = layer.weight.value
    return w * scale.reshape((-1,) + (1,) * (w.ndim - 1)), layer.bias.value * scale


def proximal_step(model: Sequential, lam, lr: float) -> None:
    """After a gradient step at rate lr: each group w_g <- w_g max(0, 1 - t / ||w_g||), t =
    lr lam sqrt(|g|), the minimiser of ||w - w_g||^2 / 2 + t ||w||. A group shorter than t
    becomes exactly 0, which a subgradient step would only make oscillate around 0.
    lam as layer_lams takes it."""
    lams = layer_lams(model, lam)
    for name, layer in unit_layers(model).items():
        norms = group_norms(layer)
        t = np.divide(
            lr * lams[name] * _size_weight(layer), norms, where=norms > 0, out=norms * 0 + np.inf
        )
        factor = np.maximum(0.0, 1.0 - t)
        w = layer.weight.value
        w *= factor.reshape((-1,) + (1,) * (w.ndim - 1)).astype(w.dtype)
        layer.bias.value *= factor.astype(w.dtype)
