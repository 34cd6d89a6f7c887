"""SGD with momentum and weight decay that respects pruning masks."""

from __future__ import annotations

import numpy as np

from tinyprune.kernels.adam import masked_adam_step
from tinyprune.nn.layers import Param


class MaskedSGD:
    """v = momentum * v + (grad + weight_decay * w);  w = w - lr * v.

    For a pruned parameter the gradient, the velocity and the weight are all
    multiplied by the mask at every step, so a pruned weight stays exactly 0.0:
    neither an old velocity nor the decay term can bring it back.
    """

    def __init__(
        self, params: dict[str, Param], lr: float, momentum: float = 0.9, weight_decay: float = 0.0
    ):
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


class MaskedAdam:
    """Adam (Kingma & Ba 2015) that respects pruning masks:

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w = w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    For a pruned weight the moments and the weight itself are set to 0.0 at every step: a
    moment built up before pruning cannot move it, so it stays exactly 0.0. No weight decay
    (the lottery-ticket experiments use none). The arithmetic is kernels/adam.py.
    """

    def __init__(
        self,
        params: dict[str, Param],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = params
        self.base_lr = lr
        self.lr = lr
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0  # steps taken, for the bias corrections
        self.m = {name: np.zeros_like(p.value) for name, p in params.items()}
        self.v = {name: np.zeros_like(p.value) for name, p in params.items()}
        self.keep_all = {name: np.ones(p.value.shape, bool) for name, p in params.items()}

    def step(self) -> None:
        self.t += 1
        correction = np.sqrt(1 - self.b2**self.t)
        step_size = self.lr * correction / (1 - self.b1**self.t)
        for name, p in self.params.items():
            keep = self.keep_all[name] if p.mask is None else p.mask
            masked_adam_step(
                p.value,
                p.grad,
                self.m[name],
                self.v[name],
                keep,
                self.b1,
                self.b2,
                step_size,
                self.eps * correction,
            )
