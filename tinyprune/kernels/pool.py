"""2x2 max pooling with stride 2: forward and backward, each numba kernel beside its NumPy twin.

An odd trailing row or column is dropped (PyTorch's floor mode). The forward also returns where
each maximum was, as argmax in 0..3 in row-major order inside the window:

    0: (0, 0)   1: (0, 1)
    2: (1, 0)   3: (1, 1)

Ties go to the first maximum in that order. After a ReLU, all-zero windows are common, and the
kernel and its twin must route their gradient to the same pixel.
"""

import numpy as np
from numba import njit

from tinyprune.kernels.threads import over_images


def maxpool2x2_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) float -> out (N, C, H//2, W//2) of x's dtype, argmax (same shape) uint8.

    for n in 0..N-1, images split between threads:       # a thread writes out[n],
        for c, oh, ow:                                   # argmax[n] only
            k = first k in 0..3 with the largest x[n, c, 2*oh + k // 2, 2*ow + k % 2]
            out[n, c, oh, ow] = that value; argmax[n, c, oh, ow] = k
    """
    N, C, H, W = x.shape
    out = np.empty((N, C, H // 2, W // 2), dtype=x.dtype)
    argmax = np.empty((N, C, H // 2, W // 2), dtype=np.uint8)
    over_images(_forward_images, N, np.ascontiguousarray(x), out, argmax)
    return out, argmax


@njit(cache=True, nogil=True)
def _forward_images(x, out, argmax, lo, hi):
    """maxpool2x2_forward of images lo..hi-1 into out[lo:hi], argmax[lo:hi]."""
    C, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    for n in range(lo, hi):
        for c in range(C):
            for oh in range(Ho):
                top, bottom = x[n, c, 2 * oh], x[n, c, 2 * oh + 1]
                for ow in range(Wo):
                    # Strict > keeps the first of equal values.
                    best, k = top[2 * ow], 0
                    if top[2 * ow + 1] > best:
                        best, k = top[2 * ow + 1], 1
                    if bottom[2 * ow] > best:
                        best, k = bottom[2 * ow], 2
                    if bottom[2 * ow + 1] > best:
                        best, k = bottom[2 * ow + 1], 3
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = k


def _windows(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H//2, W//2, 4): each 2x2 window flattened in row-major order."""
    N, C, H, W = x.shape
    Ho, Wo = H // 2, W // 2
    blocks = x[:, :, : 2 * Ho, : 2 * Wo].reshape(N, C, Ho, 2, Wo, 2)
    return blocks.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, 4)


def maxpool2x2_forward_numpy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin of maxpool2x2_forward; np.argmax also returns the first of equal maxima."""
    windows = _windows(x)
    return windows.max(axis=-1), windows.argmax(axis=-1).astype(np.uint8)


def maxpool2x2_backward(dout: np.ndarray, argmax: np.ndarray, H: int, W: int) -> np.ndarray:
    """dout (N, C, Ho, Wo) float, argmax (N, C, Ho, Wo) uint8, H, W ints (the input's size)
    -> dx (N, C, H, W) of dout's dtype: each dout goes to its window's argmax pixel, 0 elsewhere
    (argmax 4, which conv_pool.py uses for a ReLU's zeros, sends it nowhere).

        for n in 0..N-1, images split between threads:       # a thread writes dx[n] only
            dx[n] = 0
            for c, oh, ow:
                k = argmax[n, c, oh, ow]
                if k < 4: dx[n, c, 2*oh + k // 2, 2*ow + k % 2] = dout[n, c, oh, ow]
    """
    N, C, Ho, Wo = dout.shape
    if argmax.shape != dout.shape or Ho != H // 2 or Wo != W // 2:
        raise ValueError("maxpool2x2_backward: dout, argmax, H, W do not fit together")
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    over_images(_backward_images, N, np.ascontiguousarray(dout), np.ascontiguousarray(argmax), dx)
    return dx


@njit(cache=True, nogil=True)
def _backward_images(dout, argmax, dx, lo, hi):
    """maxpool2x2_backward of images lo..hi-1 into dx[lo:hi]."""
    C, Ho, Wo = dout.shape[1], dout.shape[2], dout.shape[3]
    H, W = dx.shape[2], dx.shape[3]
    for n in range(lo, hi):
        for c in range(C):  # loops, not dx[n] = 0: faster to compile
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = 0
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    k = int(argmax[n, c, oh, ow])  # int: uint8 arithmetic would wrap past 255
                    if k < 4:  # 4: a ReLU after the pooling zeroed it (kernels/conv_pool.py)
                        dx[n, c, 2 * oh + k // 2, 2 * ow + k % 2] = dout[n, c, oh, ow]


def maxpool2x2_backward_numpy(dout: np.ndarray, argmax: np.ndarray, H: int, W: int) -> np.ndarray:
    """NumPy twin of maxpool2x2_backward: a one-hot of argmax times dout, put back into windows."""
    N, C, Ho, Wo = dout.shape
    routed = np.where(argmax[..., None] == np.arange(4), dout[..., None], 0)  # (N, C, Ho, Wo, 4)
    dx = np.zeros((N, C, H, W), dtype=dout.dtype)
    dx[:, :, : 2 * Ho, : 2 * Wo] = (
        routed.reshape(N, C, Ho, Wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, 2 * Ho, 2 * Wo)
    )
    return dx
