"""The backward pass to a convolution's input lowered to a matrix product, for layers with many
taps per filter (C * K * K) and many filters, where one BLAS product and a scatter beat conv.py's
direct loops. Same contract as conv.conv2d_backward_input.

im2col would copy each output pixel's receptive field into one column of a matrix:

    cols[t, n*P + p] = xp[n, c, oh + kh, ow + kw]     p = oh*Wo + ow,  t = (c*K + kh)*K + kw

(xp: x with `pad` zeros around each plane; P = Ho*Wo pixels per image), so that with wm = w as
an (F, T) matrix and dout as an (F, N*P) one, the forward is out = wm @ cols + b. Its backward
to the input is then dcols = wm.T @ dout, one (T, F) @ (F, N*P) product, and col2im, the
adjoint of im2col, adds each dcols[t, n*P + p] back onto the pixel it was copied from and
crops the padding.

Only that pass is lowered. At batch 128 on two threads, for lenet5-caffe's conv2 (T = 500 taps,
F = 50 filters) it took 4.7 ms against 8.0 ms for conv.py's scatter, while conv.py's forward and
backward to the weights beat their own lowered forms (3.0 ms against 5.3 ms, 3.6 against 4.7:
im2col's 16 MB of columns cost more than they save). For lenet5's conv2 (150 taps, 16 filters)
the direct loops win all three (0.9 ms against 1.3 ms here): a product of 16 rows is too thin
for BLAS. GEMM_MIN_TAPS in tinyprune/nn/layers.py picks the layers.

col2im is a numba kernel over a range of images with its NumPy twin; im2col_numpy, the
operation it is the adjoint of, stays as the reference its tests use. The products run on BLAS
(one thread each while training, see train/loop.py), one per block of images, the blocks
split between the cores (threads.over_images).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view

from tinyprune.kernels.threads import over_images

# Images per product: their columns (T x IMAGES*P floats, 1 MB for lenet5-caffe's conv2) stay
# in the core's second-level cache for col2im. At batch 128 on one thread that took 7.4 ms
# against 12 ms for the whole batch in one product. Fixed, not one block per thread, so that
# each image's gradient comes from the same product whatever the number of threads.
IMAGES = 8

# --- im2col and col2im -------------------------------------------------------------------------


def im2col_numpy(x: np.ndarray, K: int, pad: int) -> np.ndarray:
    """x (N, C, H, W), K, pad ints -> cols (C*K*K, N*Ho*Wo) as above: the K x K windows of the
    padded input, one column per pixel. col2im is its adjoint; the tests check it against this."""
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, (K, K), axis=(2, 3))  # (N, C, Ho, Wo, K, K)
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * K * K, -1)


def col2im(dcols: np.ndarray, N: int, C: int, H: int, W: int, K: int, pad: int) -> np.ndarray:
    """dcols (C*K*K, N*Ho*Wo) float -> dx (N, C, H, W) of its dtype: the adjoint of im2col,
    each dcols[t, n*P + p] added onto the pixel of x that im2col copied there (the padding
    dropped).

        for n in 0..N-1, images split between threads:       # a thread writes dx[n] only
            dxp = zeros (C, H + 2*pad, W + 2*pad)
            for c, kh, kw (t), oh:
                dxp[c, oh + kh, kw : kw + Wo] += dcols[t, n*P + oh*Wo : n*P + (oh+1)*Wo]
            dx[n] = dxp without its border
    """
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    if dcols.shape != (C * K * K, N * Ho * Wo):
        raise ValueError("col2im: dcols, N, C, H, W, K, pad do not fit together")
    dx = np.empty((N, C, H, W), dtype=dcols.dtype)
    over_images(_col2im_images, N, np.ascontiguousarray(dcols), K, pad, Ho, Wo, dx, 0)
    return dx


@njit(cache=True, nogil=True)
def _col2im_images(dcols, K, pad, Ho, Wo, dx, first, lo, hi):
    """col2im of images lo..hi-1 into dx[lo:hi]; image n's columns start at (n - first) * P."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    P = Ho * Wo
    dxp = np.empty((C, H + 2 * pad, W + 2 * pad), dtype=dx.dtype)
    flat = dxp.reshape(-1)
    for n in range(lo, hi):
        for i in range(flat.shape[0]):
            flat[i] = 0
        base = (n - first) * P
        for c in range(C):
            for kh in range(K):
                for kw in range(K):
                    t = (c * K + kh) * K + kw
                    for oh in range(Ho):
                        src = dcols[t, base + oh * Wo : base + oh * Wo + Wo]
                        dst = dxp[c, oh + kh, kw : kw + Wo]
                        for ow in range(Wo):
                            dst[ow] += src[ow]
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = dxp[c, pad + i, pad + j]


def col2im_numpy(dcols: np.ndarray, N: int, C: int, H: int, W: int, K: int, pad: int) -> np.ndarray:
    """NumPy twin of col2im: tap (kh, kw) of every output pixel goes back to its window."""
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    d = dcols.reshape(C, K, K, N, Ho, Wo)
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dcols.dtype)
    for kh in range(K):
        for kw in range(K):
            dxp[:, :, kh : kh + Ho, kw : kw + Wo] += d[:, kh, kw].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(dxp[:, :, pad : pad + H, pad : pad + W])


# --- the backward to the input ----------------------------------------------------------------


def conv2d_backward_input_gemm(
    dout: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """conv2d_backward_input by one product and col2im per block of IMAGES images.

    dout (N, F, Ho, Wo), w (F, C, K, K), one float dtype; pad, H, W ints -> dx (N, C, H, W).

        for blocks of IMAGES images, split between threads:  # a thread writes its images only
            dcols = wm.T @ dout[block] as (F, m)              # (T, m), BLAS
            dx[block] = col2im(dcols)
    """
    N, F, Ho, Wo = dout.shape
    C, K = w.shape[1], w.shape[2]
    if w.shape[0] != F or Ho != H + 2 * pad - K + 1 or Wo != W + 2 * pad - K + 1:
        raise ValueError("conv2d_backward_input_gemm: dout, w, pad, H, W do not fit together")
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    dout = np.ascontiguousarray(dout).reshape(N, F, Ho * Wo)
    wm_t = np.ascontiguousarray(w.reshape(F, -1).T)
    blocks = (N + IMAGES - 1) // IMAGES
    over_images(_input_blocks, blocks, dout, wm_t, K, pad, Ho, Wo, dx)
    return dx


def _input_blocks(dout, wm_t, K, pad, Ho, Wo, dx, lo, hi):
    N, F, P = dout.shape
    for block in range(lo, hi):
        a, z = block * IMAGES, min((block + 1) * IMAGES, N)
        d = np.ascontiguousarray(dout[a:z].transpose(1, 0, 2)).reshape(F, (z - a) * P)
        _col2im_images(wm_t @ d, K, pad, Ho, Wo, dx, a, a, z)  # (T, m) by BLAS, then scattered
