"""ConvPool: a convolution, the 2x2 max pooling after it and, if asked, a ReLU, as one layer.

A speed trick a model takes only where its definition says so (nn/model.py, `fused=True`):

    "conv1": ConvPool(Conv2d(1, 6, 5, padding=2, ...), relu=True)  # -> (N, 6, 14, 14)

stands for the plain model's "conv1": Conv2d(...), "pool1": MaxPool2d(), "relu1": ReLU().
Its kernels (kernels/conv_pool.py) give the same numbers bit for bit, without writing the
convolution's whole output, or its gradient, out of the core's caches. Its parameters are the
convolution's, under the same names (conv1.weight, conv1.bias), so a fused and a plain model
load each other's weights and checkpoints.
"""

from __future__ import annotations

from tinyprune.kernels.conv_gemm import conv2d_backward_input_gemm
from tinyprune.kernels.conv_pool import (
    argmax_planes,
    conv2d_pool_backward_input,
    conv2d_pool_backward_weight,
    conv2d_pool_forward,
)
from tinyprune.kernels.pool import maxpool2x2_backward
from tinyprune.nn.layers import Conv2d, Layer


class ConvPool(Layer):
    """x (N, C, H, W) -> maxpool2x2(conv(x)) (N, F, Ho // 2, Wo // 2), then max(., 0) with
    relu; Ho, Wo the convolution's output size. `conv` gives the parameters, the padding and
    input_grad; its own forward and backward are not used."""

    def __init__(self, conv: Conv2d, relu: bool):
        super().__init__()
        self.conv, self.relu = conv, relu
        self.params = conv.params  # "weight", "bias": the names a plain model gives them

    def forward(self, x):
        self.x = x
        conv = self.conv
        w, b = conv.weight.value, conv.bias.value
        out, self.argmax = conv2d_pool_forward(x, w, b, conv.padding, self.relu)
        return out

    def backward(self, dout):
        conv, x = self.conv, self.x
        K = conv.weight.value.shape[2]
        dw, db = conv2d_pool_backward_weight(x, dout, self.argmax, conv.padding, K)
        conv.weight.grad[...] = dw
        conv.bias.grad[...] = db
        if not conv.input_grad:
            return None
        _, _, h, w = x.shape
        if conv.gemm:  # the lowered backward reads the whole gradient: unpool it first
            size = h + 2 * conv.padding - K + 1, w + 2 * conv.padding - K + 1
            unpooled = maxpool2x2_backward(dout, argmax_planes(self.argmax, len(dout)), *size)
            return conv2d_backward_input_gemm(unpooled, conv.weight.value, conv.padding, h, w)
        return conv2d_pool_backward_input(dout, self.argmax, conv.weight.value, conv.padding, h, w)
