"""What pruning left: per layer, the weights kept and the multiply-adds they cost."""

from __future__ import annotations

import numpy as np

from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Param
from tinyprune.nn.model import layer_of


def weight_uses(model, input_shape: tuple = (1, 1, 28, 28)) -> dict[str, int]:
    """Layer name -> multiply-adds per weight per image: output H x W for a conv, 1 for fc.

    Found by running one blank image through the model and reading each layer's output size.
    """
    uses = {}
    x = np.zeros(input_shape, np.float32)
    for name, layer in model.layers.items():
        if isinstance(layer, ConvPool):  # its output is pooled: count its convolution's
            uses[name] = int(np.prod(layer.conv.forward(x).shape[2:]))
        x = layer.forward(x)
        if "weight" in layer.params and name not in uses:
            uses[name] = int(np.prod(x.shape[2:])) if x.ndim == 4 else 1
    return uses


def sparsity_report(params: dict[str, Param], uses: dict[str, int] | None = None) -> list[dict]:
    """Per prunable weight: name, weights, nonzero, sparsity; with `uses` (see weight_uses)
    also mult_adds (dense, per image) and mult_adds_kept (those of nonzero weights)."""
    rows = []
    for name, p in params.items():
        if p.prunable:
            layer = layer_of(name)
            nonzero = int(np.count_nonzero(p.value))
            row = {
                "name": layer,
                "weights": p.value.size,
                "nonzero": nonzero,
                "sparsity": 1 - nonzero / p.value.size,
            }
            if uses is not None:
                row["mult_adds"] = p.value.size * uses[layer]
                row["mult_adds_kept"] = nonzero * uses[layer]
            rows.append(row)
    return rows
