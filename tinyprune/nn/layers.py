"""Layers: each owns its parameters and the activations its backward needs.

A layer's `forward(x)` caches what `backward(dout)` needs; `backward` fills the
gradients of its parameters and returns the gradient with respect to its input.
The arithmetic lives in `tinyprune.kernels`; the optimizer lives in `optim.py`; a
convolution with its pooling and ReLU as one faster layer, in `conv_pool.py`.
"""

from __future__ import annotations

import numpy as np

from tinyprune.kernels.conv import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from tinyprune.kernels.conv_gemm import conv2d_backward_input_gemm
from tinyprune.kernels.matmul import matmul
from tinyprune.kernels.pool import maxpool2x2_backward, maxpool2x2_forward


class Param:
    """A trainable array, its gradient and, once pruned, its mask (1 keeps, 0 prunes)."""

    def __init__(self, value: np.ndarray, prunable: bool):
        self.value = value
        self.grad = np.zeros_like(value)
        self.prunable = prunable
        self.mask: np.ndarray | None = None


class Layer:
    """A step of the network. `params` names its trainable arrays (none for most layers)."""

    def __init__(self) -> None:
        self.params: dict[str, Param] = {}  # each layer its own dict, never a shared one

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _uniform(rng: np.random.Generator, fan_in: int, shape: tuple, dtype) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights and biases alike.

    On a held-out tenth of the MNIST training set, LeNet-5 reached 99.1% with it against 98.8%
    with He's larger sqrt(6/fan_in) bound, after the same 10 epochs at lr 0.05.
    """
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


# A convolution with at least this many taps per filter (C * K * K) computes its backward to
# the input as a matrix product (kernels/conv_gemm.py), one with fewer on the direct loops of
# kernels/conv.py, as do all forwards and backwards to the weights. At batch 128 on two threads:
# the product took 0.59x the direct loops' time for lenet5-caffe's conv2 (500 taps, 50
# filters), but 1.4x for lenet5's conv2 (150 taps, 16 filters) and 2.4x for its conv1 (25 taps).
GEMM_MIN_TAPS = 256


class Conv2d(Layer):
    """x (N, C, H, W) -> (N, F, H+2p-K+1, W+2p-K+1); stride 1, zero padding p.

    `input_grad=False` skips the gradient with respect to the input: the first
    layer's input is the image, and no one needs its gradient.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int,
        rng: np.random.Generator,
        dtype=np.float32,
        input_grad: bool = True,
    ):
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = Param(_uniform(rng, fan_in, shape, dtype), prunable=True)
        self.bias = Param(_uniform(rng, fan_in, (out_channels,), dtype), prunable=False)
        self.params = {"weight": self.weight, "bias": self.bias}
        self.padding = padding
        self.input_grad = input_grad
        self.gemm = fan_in >= GEMM_MIN_TAPS

    def forward(self, x):
        self.x = x
        return conv2d_forward(x, self.weight.value, self.bias.value, self.padding)

    def backward(self, dout):
        dw, db = conv2d_backward_weight(self.x, dout, self.padding)
        self.weight.grad[...] = dw
        self.bias.grad[...] = db
        if not self.input_grad:
            return None
        _, _, h, w = self.x.shape
        backward_input = conv2d_backward_input_gemm if self.gemm else conv2d_backward_input
        return backward_input(dout, self.weight.value, self.padding, h, w)


class MaxPool2d(Layer):
    """2x2 window, stride 2: x (N, C, H, W) -> (N, C, H//2, W//2)."""

    def forward(self, x):
        self.input_hw = x.shape[2:]
        out, self.argmax = maxpool2x2_forward(x)
        return out

    def backward(self, dout):
        return maxpool2x2_backward(dout, self.argmax, *self.input_hw)


class ReLU(Layer):
    """max(x, 0), elementwise; any shape."""

    def forward(self, x):
        self.out = np.maximum(x, 0)  # kept for backward: out > 0 exactly where x > 0
        return self.out

    def backward(self, dout):
        return dout * (self.out > 0)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W)."""

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self.input_shape)


class Linear(Layer):
    """x (N, in) -> x @ W.T + b (N, out); W is (out, in) as in PyTorch.

    Its products are BLAS's, large ones split between the cores (kernels/matmul.py).
    `input_grad=False` skips the gradient with respect to the input, as for Conv2d: in
    LeNet-300-100 that is the image, and the product a third of the backward pass.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rng: np.random.Generator,
        dtype=np.float32,
        input_grad: bool = True,
    ):
        shape = (out_features, in_features)
        self.weight = Param(_uniform(rng, in_features, shape, dtype), prunable=True)
        self.bias = Param(_uniform(rng, in_features, (out_features,), dtype), prunable=False)
        self.params = {"weight": self.weight, "bias": self.bias}
        self.input_grad = input_grad

    def forward(self, x):
        self.x = x
        out = matmul(x, self.weight.value.T)
        out += self.bias.value
        return out

    def backward(self, dout):
        self.weight.grad[...] = matmul(dout.T, self.x)
        self.bias.grad[...] = dout.sum(axis=0)
        return matmul(dout, self.weight.value) if self.input_grad else None
