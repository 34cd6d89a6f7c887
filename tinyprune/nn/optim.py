"""SGD with momentum and weight decay that respects pruning masks."""
from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Param


class MaskedSGD:
    """v = momentum * v + (grad + weight_decay * w);  w = w - lr * v.

    For a pruned parameter the gradient, the velocity and the weight are all
    multiplied by the mask at every step, so a pruned weight stays exactly 0.0:
    neither an old velocity nor the decay term can bring it back.
    """

    def __init__(self, params: dict[str, Param], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        self.params = params
        self.base_lr = lr
        self.lr = lr  # the rate of the next step; a schedule may change it
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocity = {name: np.zeros_like(p.value) for name, p in params.items()}

    def step(self) -> None:
        for name, p in self.params.items():
            v = self.velocity[name]
            v *= self.momentum
            v += p.grad
            if self.weight_decay and p.prunable:  # biases are not decayed
                v += self.weight_decay * p.value
            if p.mask is not None:
                v *= p.mask
            p.value -= self.lr * v
            if p.mask is not None:
                p.value *= p.mask
