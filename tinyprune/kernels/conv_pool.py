"""A convolution, the 2x2 max pooling after it and the ReLU after that, as one pass.

LeNet-5 runs conv -> pool -> ReLU twice. As three layers, the convolution writes its whole
output out of the core's caches (2.4 MB for conv1 at batch 128), pooling reads it back, and the
backward does the same in reverse: pooling's backward writes a gradient of that size, mostly
zeros, for the convolution's backward to read. Here each output plane of a block of LANES
images is pooled while it is still in cache (_pool_lanes), and on the way back the pooled
gradient goes straight into the convolution's own layout, each value at its window's argmax
pixel (_unpool_lanes). The arithmetic between is kernels/conv.py's own pieces (filter_pair,
weight_terms, input_terms), so the results are those of the three layers, bit for bit: the
same sums in the same order (tests/test_conv_pool.py). numba's cache sees edits to this file
only: after editing those pieces, delete tinyprune/kernels/__pycache__. nn/conv_pool.py's
ConvPool layer runs these kernels, in a model whose definition names it (nn/model.py).

argmax is pooling's (kernels/pool.py: 0..3, row-major in the window), plus 4 where the ReLU
zeroed the output (no gradient flows back there), kept in the kernels' layout: (blocks, F, h,
w, LANES) uint8 for output (N, F, h, w), image block * LANES + b at [block, ..., b]; places of
images past N (in the last block) mean nothing. argmax_planes gives it as (N, F, h, w).
"""

import numpy as np
from numba import njit

from tinyprune.kernels.conv import (
    LANES,
    backward_input_by_blocks,
    backward_weight_by_blocks,
    blocks,
    conv2d_backward_input_numpy,
    conv2d_backward_weight_numpy,
    conv2d_forward_numpy,
    fill_lanes,
    filter_pair,
    forward_setup,
    input_terms,
    unfill_lanes,
    weight_terms,
)
from tinyprune.kernels.pool import maxpool2x2_backward_numpy, maxpool2x2_forward_numpy
from tinyprune.kernels.threads import over_images


def argmax_planes(argmax: np.ndarray, N: int) -> np.ndarray:
    """argmax (blocks, F, h, w, LANES) -> (N, F, h, w), as pooling's own."""
    blocks, F, h, w, _ = argmax.shape
    return argmax.transpose(0, 4, 1, 2, 3).reshape(blocks * LANES, F, h, w)[:N]


def conv2d_pool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int, relu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W), w (F, C, K, K), b (F,), one float dtype; pad >= 0 -> out (N, F, Ho // 2,
    Wo // 2), Ho, Wo the convolution's output size, and argmax (above):
    out = maxpool2x2(conv2d_forward(x, w, b, pad)), then max(out, 0) with relu.

        as conv2d_forward, but each pair of output planes acc_f, acc_g, before it leaves:
            out[block, f], argmax[block, f] = _pool_lanes(acc_f)     # and the same for g
    """
    x, wt, b, offs, Ho, Wo = forward_setup(x, w, b, pad)
    N, F = len(x), len(wt)
    out = np.empty((N, F, Ho // 2, Wo // 2), dtype=x.dtype)
    argmax = np.empty((blocks(N), F, Ho // 2, Wo // 2, LANES), dtype=np.uint8)
    over_images(_forward_blocks, blocks(N), x, wt, b, offs, pad, Ho, Wo, relu, out, argmax)
    return out, argmax


@njit(cache=True, fastmath=True, nogil=True)
def _forward_blocks(x, wt, b, offs, pad, Ho, Wo, relu, out, argmax, lo, hi):
    """conv2d_pool_forward of blocks lo..hi-1 (images lo * LANES .. hi * LANES - 1)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    F = out.shape[1]
    Wp = W + 2 * pad
    xw = np.zeros(C * (H + 2 * pad) * Wp * LANES, dtype=x.dtype)
    acc_f = np.empty(((Ho - 1) * Wp + Wo) * LANES, dtype=x.dtype)
    acc_g = np.empty(((Ho - 1) * Wp + Wo) * LANES, dtype=x.dtype)
    pooled = np.empty(Ho // 2 * (Wo // 2) * LANES, dtype=x.dtype)
    for block in range(lo, hi):
        n0 = block * LANES
        fill_lanes(x, n0, pad, Wp, xw)
        for f in range(0, F, 2):
            g = min(f + 1, F - 1)  # an odd F computes its last filter twice
            filter_pair(xw, wt, b, offs, f, g, acc_f, acc_g)
            _pool_lanes(acc_f, Wp, relu, pooled, argmax[block, f])
            unfill_lanes(pooled, n0, f, Wo // 2, out)
            _pool_lanes(acc_g, Wp, relu, pooled, argmax[block, g])
            unfill_lanes(pooled, n0, g, Wo // 2, out)


@njit(cache=True, nogil=True)
def _pool_lanes(acc, stride, relu, pooled, where):
    """2x2 max pooling of one output plane of a block, in the lanes layout: where (h, w, LANES)
    uint8 gets at [i, k, b] the place 0..3 (as in kernels/pool.py) of the largest of acc at
    rows 2i, 2i+1 and columns 2k, 2k+1 of image b (pixel (row, col) at (row * stride + col) *
    LANES + b), and pooled (h * w * LANES,) that value at (i * w + k) * LANES + b. With relu, a
    maximum not above 0 becomes 0 (NaN stays NaN, as with np.maximum) and its place 4: no
    gradient flows back through it."""
    h, w = where.shape[0], where.shape[1]
    zero = pooled.dtype.type(0)
    row = stride * LANES
    for i in range(h):
        # Rows as slices: indices from 0 within them compile to plain loads (kernels/conv.py).
        top = acc[2 * i * row : (2 * i + 1) * row]
        bottom = acc[(2 * i + 1) * row : (2 * i + 2) * row]
        out, places = pooled[i * w * LANES : (i + 1) * w * LANES], where[i]
        for k in range(w):
            for b in range(LANES):
                v0, v1 = top[2 * k * LANES + b], top[(2 * k + 1) * LANES + b]
                v2, v3 = bottom[2 * k * LANES + b], bottom[(2 * k + 1) * LANES + b]
                # Strict > keeps the first of equal values, as the pooling kernel does.
                best, arg = v0, 0
                best, arg = (v1, 1) if v1 > best else (best, arg)
                best, arg = (v2, 2) if v2 > best else (best, arg)
                best, arg = (v3, 3) if v3 > best else (best, arg)
                killed = relu and not best > 0
                out[k * LANES + b] = zero if killed and best == best else best
                places[k, b] = 4 if killed else arg


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
    -> (dw (F, C, K, K), db (F,)), as conv2d_backward_weight of the unpooled gradient:
    conv2d_backward_weight's loops with g = _unpool_lanes(dout[block], argmax[block])."""
    N, C, H, W = x.shape
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    if len(dout) != N or K < 1 or not _fits(dout, argmax, Ho, Wo):
        raise ValueError("conv2d_pool_backward_weight: x, dout, pad do not fit together")
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    return backward_weight_by_blocks(_backward_weight_blocks, x, K, pad, dout, argmax, Ho, Wo)


@njit(cache=True, fastmath=True, nogil=True)
def _backward_weight_blocks(x, dout, argmax, Ho, Wo, offs, pad, dw_b, db_b, lo, hi):
    """conv2d_pool_backward_weight's terms of blocks lo..hi-1 into dw_b[lo:hi], db_b[lo:hi]."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    F = dout.shape[1]
    Wp = W + 2 * pad
    xw = np.zeros(C * (H + 2 * pad) * Wp * LANES, dtype=x.dtype)
    P = Ho * Wp * LANES
    gw = np.zeros(F * P, dtype=x.dtype)  # junk columns zero, as in conv.py
    gp = np.empty(dout[:1].size * LANES, dtype=x.dtype)  # a block of dout
    for block in range(lo, hi):
        fill_lanes(x, block * LANES, pad, Wp, xw)
        _fill_unpooled(dout, argmax, block, Wp, gp, gw)
        for f in range(F):  # here, not in a helper: see conv.py's _backward_weight_blocks
            total = x.dtype.type(0)  # a loop, not .sum(): faster to compile
            for q in range(f * P, (f + 1) * P):
                total += gw[q]
            db_b[block, f] = total
        weight_terms(xw, gw, offs, ((Ho - 1) * Wp + Wo) * LANES, F, dw_b[block])


def conv2d_pool_backward_input(
    dout: np.ndarray, argmax: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """dout, argmax (N, F, Ho // 2, Wo // 2) as above, w (F, C, K, K), pad, H, W the
    convolution's -> dx (N, C, H, W), as conv2d_backward_input of the unpooled gradient:
    conv2d_backward_input's loops with g = _unpool_lanes(dout[block], argmax[block])."""
    K = w.shape[2]
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    if w.shape[0] != dout.shape[1] or not _fits(dout, argmax, Ho, Wo):
        raise ValueError("conv2d_pool_backward_input: dout, w, pad, H, W do not fit together")
    dout = np.ascontiguousarray(dout)
    return backward_input_by_blocks(_backward_input_blocks, w, pad, H, W, dout, argmax, Ho, Wo)


@njit(cache=True, fastmath=True, nogil=True)
def _backward_input_blocks(dout, argmax, Ho, Wo, wt, offs, pad, dx, lo, hi):
    """conv2d_pool_backward_input of blocks lo..hi-1 into dx."""
    F = dout.shape[1]
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Wp = W + 2 * pad
    P = Ho * Wp * LANES
    gw = np.zeros(wt.shape[1] * P, dtype=dx.dtype)  # planes F..F8-1 stay zero
    gp = np.empty(dout[:1].size * LANES, dtype=dx.dtype)  # a block of dout
    dxw = np.empty(C * (H + 2 * pad) * Wp * LANES, dtype=dx.dtype)
    for block in range(lo, hi):
        _fill_unpooled(dout, argmax, block, Wp, gp, gw[: F * P])
        input_terms(gw, wt, offs, pad, Ho, Wo, dxw, block * LANES, dx)


def _fits(dout: np.ndarray, argmax: np.ndarray, Ho: int, Wo: int) -> bool:
    """Whether dout (N, F, h, w) is the gradient of an Ho x Wo output pooled, with argmax of
    dout's shape in the kernels' layout."""
    N, F, h, w = dout.shape
    return (h, w) == (Ho // 2, Wo // 2) and argmax.shape == (blocks(N), F, h, w, LANES)


@njit(cache=True, nogil=True)
def _fill_unpooled(dout, argmax, block, stride, gp, gw):
    """The gradient of the convolution's output for a block of images into gw (F planes,
    lanes layout, row stride `stride`): dout's block unpooled, by way of gp (its size)."""
    F, h, w = dout.shape[1], dout.shape[2], dout.shape[3]
    if h == 0 or w == 0:  # an output too small to pool: no gradient (gw stays zero)
        return
    fill_lanes(dout, block * LANES, 0, w, gp)
    plane, small = gw.shape[0] // F, h * w * LANES
    for f in range(F):
        pooled, where = gp[f * small : (f + 1) * small], argmax[block, f]
        _unpool_lanes(pooled, where, stride, gw[f * plane : (f + 1) * plane])


@njit(cache=True, nogil=True)
def _unpool_lanes(gp, where, stride, gw):
    """Pooling's backward for one plane of a block, in the lanes layout: gw (rows * stride *
    LANES,) becomes 0 but for each window's argmax pixel (where, as _pool_lanes made it), which
    gets the pooled gradient gp (h * w * LANES,) at (i * w + k) * LANES + b (argmax 4: none)."""
    h, w = where.shape[0], where.shape[1]
    zero = gw.dtype.type(0)
    for j in range(gw.shape[0]):
        gw[j] = zero
    for i in range(h):
        for k in range(w):
            for b in range(LANES):
                # No branches: argmax follows the data, and mispredicted branches took 4x as long.
                arg = int(where[i, k, b])  # int: uint8 arithmetic would wrap past 255
                g = gp[(i * w + k) * LANES + b] if arg < 4 else zero
                row, col = 2 * i + (arg & 3) // 2, 2 * k + (arg & 1)
                gw[(row * stride + col) * LANES + b] = g


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
