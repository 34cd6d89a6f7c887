"""A convolution, the 2x2 max pooling after it and the ReLU after that, as one pass.

LeNet-5 runs conv -> pool -> ReLU twice. As three layers, the convolution writes its whole
output out of the core's caches (2.4 MB for conv1 at batch 128), pooling reads it back, and the
backward does the same in reverse: pooling's backward writes a gradient of that size, mostly
zeros, for the convolution's backward to read. Here the convolution's kernels (kernels/conv.py)
pool each output plane of a block of LANES images while it is still in cache, and on the way
back put the pooled gradient straight into their own layout, each value at its window's argmax
pixel. The results are those of the three layers, bit for bit: the same sums in the same
order (tests/test_conv_pool.py).

argmax is pooling's (kernels/pool.py: 0..3, row-major in the window), plus 4 where the ReLU
zeroed the output (no gradient flows back there), kept in the kernels' layout: (blocks, F, h,
w, LANES) uint8 for output (N, F, h, w), image block * LANES + b at [block, ..., b]; places of
images past N (in the last block) mean nothing. argmax_planes gives it as (N, F, h, w).
"""

import numpy as np

from tinyprune.kernels.conv import (
    LANES,
    backward_input,
    backward_weight,
    conv2d_backward_input_numpy,
    conv2d_backward_weight_numpy,
    conv2d_forward_numpy,
    forward,
)
from tinyprune.kernels.pool import maxpool2x2_backward_numpy, maxpool2x2_forward_numpy


def argmax_planes(argmax: np.ndarray, N: int) -> np.ndarray:
    """argmax (blocks, F, h, w, LANES) -> (N, F, h, w), as pooling's own."""
    blocks, F, h, w, _ = argmax.shape
    return argmax.transpose(0, 4, 1, 2, 3).reshape(blocks * LANES, F, h, w)[:N]


def conv2d_pool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int, relu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W), w (F, C, K, K), b (F,), one float dtype; pad >= 0 -> out (N, F, Ho // 2,
    Wo // 2), Ho, Wo the convolution's output size, and argmax (above):
    out = maxpool2x2(conv2d_forward(x, w, b, pad)), then max(out, 0) with relu."""
    return forward(x, w, b, pad, pool=True, relu=relu)


def conv2d_pool_forward_numpy(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int, relu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin of conv2d_pool_forward: the three steps one after the other."""
    out, argmax = maxpool2x2_forward_numpy(conv2d_forward_numpy(x, w, b, pad))
    if relu:
        argmax[~(out > 0)] = 4
        out = np.maximum(out, 0)
    N, F, h, w = out.shape
    blocks = -(-N // LANES)
    lanes = np.full((blocks * LANES, F, h, w), 4, dtype=np.uint8)
    lanes[:N] = argmax
    return out, np.ascontiguousarray(lanes.reshape(blocks, LANES, F, h, w).transpose(0, 2, 3, 4, 1))


def conv2d_pool_backward_weight(
    x: np.ndarray, dout: np.ndarray, argmax: np.ndarray, pad: int, K: int
) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) the convolution's input, dout and argmax (N, F, Ho // 2, Wo // 2) the
    gradient of conv2d_pool_forward's out and its argmax; pad, K the convolution's
    -> (dw (F, C, K, K), db (F,)), as conv2d_backward_weight of the unpooled gradient."""
    return backward_weight(x, np.ascontiguousarray(dout, dtype=x.dtype), argmax, pad, K)


def conv2d_pool_backward_input(
    dout: np.ndarray, argmax: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """dout, argmax (N, F, Ho // 2, Wo // 2) as above, w (F, C, K, K), pad, H, W the
    convolution's -> dx (N, C, H, W), as conv2d_backward_input of the unpooled gradient."""
    return backward_input(dout, argmax, w, pad, H, W)


def conv2d_pool_backward_weight_numpy(
    x: np.ndarray, dout: np.ndarray, argmax: np.ndarray, pad: int, K: int
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin of conv2d_pool_backward_weight: pooling's backward (which sends argmax 4
    nowhere), then the convolution's."""
    Ho, Wo = x.shape[2] + 2 * pad - K + 1, x.shape[3] + 2 * pad - K + 1
    unpooled = maxpool2x2_backward_numpy(dout, argmax_planes(argmax, len(x)), Ho, Wo)
    return conv2d_backward_weight_numpy(x, unpooled, pad)


def conv2d_pool_backward_input_numpy(
    dout: np.ndarray, argmax: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """NumPy twin of conv2d_pool_backward_input, as the one above."""
    K = w.shape[2]
    planes = argmax_planes(argmax, len(dout))
    unpooled = maxpool2x2_backward_numpy(dout, planes, H + 2 * pad - K + 1, W + 2 * pad - K + 1)
    return conv2d_backward_input_numpy(unpooled, w, pad, H, W)
