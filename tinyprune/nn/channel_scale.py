"""A learned scale per channel or neuron: the gate that network slimming (Liu et al. 2017)
pushes to zero with an L1 penalty, removing whole filters and neurons (prune/slimming.py)."""

from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Layer, Param


class ChannelScale(Layer):
    """x (N, C, H, W) or (N, C) -> x * scale[c] for each channel c; scale (C,) starts at 1.

    Not decayed (prunable=False): its penalty is slimming's L1, applied as a proximal step."""

    def __init__(self, channels: int, dtype=np.float32):
        super().__init__()
        self.scale = Param(np.ones(channels, dtype), prunable=False)
        self.params = {"scale": self.scale}

    def _view(self, ndim: int) -> np.ndarray:
        """scale shaped to broadcast over (N, C, ...): (1, C, 1, 1) or (1, C)."""
        return self.scale.value.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x):
        self.x = x
        return x * self._view(x.ndim)

    def backward(self, dout):
        axes = (0,) + tuple(range(2, dout.ndim))  # all but the channel axis
        self.scale.grad[...] = (dout * self.x).sum(axis=axes)
        return dout * self._view(dout.ndim)
