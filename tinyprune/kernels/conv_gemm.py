"""2-D convolution lowered to matrix products (im2col): the same three passes as conv.py, with
the same contract, for layers with many taps per filter (C * K * K), where one BLAS product
beats conv.py's direct loops.

im2col copies each output pixel's receptive field into one column of a matrix:

    cols[t, n*P + p] = xp[n, c, oh + kh, ow + kw]     p = oh*Wo + ow,  t = (c*K + kh)*K + kw

(xp: x with `pad` zeros around each plane; P = Ho*Wo pixels per image), so that with wm = w
as an (F, T) matrix and dout as an (F, N*P) one,

    forward:              out = wm @ cols + b               one (F, T) @ (T, N*P) product
    backward to weights:  dw = dout @ cols.T                one (F, N*P) @ (N*P, T) product
    backward to input:    dcols = wm.T @ dout, then col2im adds each dcols[t, n*P + p] back
                          onto the pixel it was copied from, and crops the padding.

Timed in turn with conv.py's direct loops (batch 128, one thread, on a busy machine; the loops
then ran under numba's prange, a little faster than now), the three passes took 26 ms against
44 ms for lenet5-caffe's conv2 (T = 500 taps, F = 50 filters), but 7.3 ms against 5.8 ms for
lenet5's conv2 (T = 150, F = 16): a product of 16 rows is too thin for BLAS.
So only layers with many taps use them (GEMM_MIN_TAPS in tinyprune/nn/layers.py). The cost: the
forward keeps cols for the backward (16 MB for lenet5-caffe's conv2 at batch 128).

im2col and col2im are numba kernels over a range of images, each with its NumPy twin; the
products run on BLAS (one thread each while training, see train/loop.py), one per thread's share
of the images (threads.over_images), so both cores work.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view

from tinyprune.kernels.threads import over_images

# Images per partial sum of the weight gradient. Fixed, not one per thread: the partial sums,
# added in block order, then give the same bits for any number of threads.
BLOCK = 16


# --- im2col and col2im -------------------------------------------------------------------------


def im2col(x: np.ndarray, K: int, pad: int) -> np.ndarray:
    """x (N, C, H, W) float, K, pad ints -> cols (C*K*K, N*Ho*Wo) of x's dtype (see above).

    for n in 0..N-1, images split between threads:  # a thread writes cols[:, n*P:(n+1)*P]
        xp = x[n] with a border of pad zeros
        for c, kh, kw (t), oh:
            cols[t, n*P + oh*Wo : n*P + (oh+1)*Wo] = xp[c, oh + kh, kw : kw + Wo]
    """
    N, C, H, W = x.shape
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    if Ho < 1 or Wo < 1:
        raise ValueError("im2col: the filter is larger than the padded input")
    cols = np.empty((C * K * K, N * Ho * Wo), dtype=x.dtype)
    over_images(_im2col_images, N, np.ascontiguousarray(x), K, pad, Ho, Wo, cols)
    return cols


@njit(cache=True, nogil=True)
def _im2col_images(x, K, pad, Ho, Wo, cols, lo, hi):
    """im2col of images lo..hi-1 into their columns of cols. Each image is first copied into a
    zero-bordered buffer: every row of a tap is then one contiguous copy, with no bounds tests."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    P = Ho * Wo
    xp = np.zeros((C, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    for n in range(lo, hi):
        # Plain loops rather than slice assignments: numba compiles them several times faster.
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    xp[c, pad + i, pad + j] = x[n, c, i, j]
        for c in range(C):
            for kh in range(K):
                for kw in range(K):
                    t = (c * K + kh) * K + kw
                    for oh in range(Ho):
                        src = xp[c, oh + kh, kw : kw + Wo]
                        dst = cols[t, n * P + oh * Wo : n * P + oh * Wo + Wo]
                        for ow in range(Wo):
                            dst[ow] = src[ow]


def im2col_numpy(x: np.ndarray, K: int, pad: int) -> np.ndarray:
    """NumPy twin of im2col: the K x K windows of the padded input, one column per pixel."""
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


# --- the three passes --------------------------------------------------------------------------


def conv2d_forward_gemm(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """conv2d_forward by im2col and one product per thread.

    x (N, C, H, W), w (F, C, K, K), b (F,), one float dtype -> (out (N, F, Ho, Wo), cols), cols
    as im2col(x, K, pad), for conv2d_backward_weight_gemm.

        cols = im2col(x)                                      # (T, N*P)
        for each thread's images lo..hi-1:                    # a thread writes out[lo:hi]
            y = wm @ cols[:, lo*P:hi*P]                       # (F, m), BLAS
            out[lo:hi] = y as (F, n, P) transposed to (n, F, P), + b
    """
    N, C, H, W = x.shape
    F, _, K, _ = w.shape
    if w.shape[1] != C:
        raise ValueError("conv2d_forward_gemm: w.shape[1] must equal x.shape[1]")
    cols = im2col(x, K, pad)
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    over_images(
        _forward_part,
        N,
        cols,
        np.ascontiguousarray(w.reshape(F, -1)),
        b.astype(x.dtype)[:, None],
        out,
    )
    return out, cols


def _forward_part(cols, wm, b_col, out, lo, hi):
    N, F, Ho, Wo = out.shape
    n, P = hi - lo, Ho * Wo
    y = wm @ cols[:, lo * P : hi * P]  # (F, n*P), BLAS
    np.add(y.reshape(F, n, P).transpose(1, 0, 2), b_col, out=out[lo:hi].reshape(n, F, P))


def conv2d_backward_weight_gemm(
    cols: np.ndarray, dout: np.ndarray, K: int
) -> tuple[np.ndarray, np.ndarray]:
    """conv2d_backward_weight from the forward's cols.

    cols (C*K*K, N*P), dout (N, F, Ho, Wo) with P = Ho*Wo, one float dtype; K int
    -> dw (F, C, K, K), db (F,).

        for blocks of BLOCK images, split between threads:   # a thread writes part[blk] only
            part[blk] = dout[blk] as (F, m) @ cols[:, blk's columns].T
        dw = part[0] + part[1] + ...                          # in block order: same bits for
        db = sum over n of dout[n].sum(axis=(1, 2))           # any number of threads
    """
    T, NP = cols.shape
    N, F = dout.shape[:2]
    P = dout.shape[2] * dout.shape[3]
    if NP != N * P or T % (K * K):
        raise ValueError("conv2d_backward_weight_gemm: cols, dout, K do not fit together")
    blocks = (N + BLOCK - 1) // BLOCK
    parts = np.empty((blocks, F, T), dtype=cols.dtype)
    over_images(_weight_part, blocks, cols, np.ascontiguousarray(dout).reshape(N, F, P), parts)
    dw = parts[0].copy()
    for part in parts[1:]:
        dw += part
    db = dout.sum(axis=(2, 3))  # (N, F): per image, then added in image order
    total = db[0].copy()
    for row in db[1:]:
        total += row
    return dw.reshape(F, T // (K * K), K, K), total


def _weight_part(cols, dout, parts, lo, hi):
    N, F, P = dout.shape
    for blk in range(lo, hi):
        a, z = blk * BLOCK, min((blk + 1) * BLOCK, N)
        d = np.ascontiguousarray(dout[a:z].transpose(1, 0, 2)).reshape(F, (z - a) * P)
        np.matmul(d, cols[:, a * P : z * P].T, out=parts[blk])


def conv2d_backward_input_gemm(
    dout: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """conv2d_backward_input by one product per thread and col2im.

    dout (N, F, Ho, Wo), w (F, C, K, K), one float dtype; pad, H, W ints -> dx (N, C, H, W).

        for each thread's images lo..hi-1:                    # a thread writes dx[lo:hi]
            dcols = wm.T @ dout[lo:hi] as (F, m)              # (T, m), BLAS
            dx[lo:hi] = col2im(dcols)
    """
    N, F, Ho, Wo = dout.shape
    C, K = w.shape[1], w.shape[2]
    if w.shape[0] != F or Ho != H + 2 * pad - K + 1 or Wo != W + 2 * pad - K + 1:
        raise ValueError("conv2d_backward_input_gemm: dout, w, pad, H, W do not fit together")
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    over_images(
        _input_part,
        N,
        np.ascontiguousarray(dout).reshape(N, F, Ho * Wo),
        np.ascontiguousarray(w.reshape(F, -1).T),
        K,
        pad,
        Ho,
        Wo,
        dx,
    )
    return dx


def _input_part(dout, wm_t, K, pad, Ho, Wo, dx, lo, hi):
    F, P = dout.shape[1], dout.shape[2]
    d = np.ascontiguousarray(dout[lo:hi].transpose(1, 0, 2)).reshape(F, (hi - lo) * P)
    dcols = wm_t @ d  # (T, n*P), BLAS
    _col2im_images(dcols, K, pad, Ho, Wo, dx, lo, lo, hi)
