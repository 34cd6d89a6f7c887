"""2-D convolution, stride 1, zero padding, square K x K filters: forward and both backwards.

"Convolution" here is what deep learning means by it, a cross-correlation:

    out[n, f, oh, ow] = b[f] + sum over c, kh, kw of w[f, c, kh, kw] * xp[n, c, oh + kh, ow + kw]

where xp is x with `pad` zeros around each plane. Each numba kernel is followed by its NumPy
twin (`<kernel>_numpy`): same signature, obviously correct, and the dense baseline in benchmarks.

The numba kernels share one trick, explained once here. Copy one image's planes into flat
"wide" buffers with zero borders, so padded pixel (h, w) lives at h * Wp + w (Wp = W + 2*pad).
Output pixel (oh, ow) then reads input position j + kh * Wp + kw, where j = oh * Wp + ow. If the
output is kept in the same layout (row stride Wp, not Wo), each filter tap (kh, kw) is one
contiguous multiply-add over j = 0 .. L-1, L = (Ho - 1) * Wp + Wo:

    acc[j] += w[f, c, kh, kw] * x_wide[c, j + kh * Wp + kw]

Positions with ow >= Wo are junk that is never copied out. Why bother: LeNet's rows are short
(Wo = 10 for conv2) and a loop over one row barely vectorises; the wide loop runs 136 long.
At LeNet-5's batch-128 shapes that is 3x (conv1) to 7x (conv2) faster than looping row by row,
for (Wp / Wo) extra arithmetic and a per-image copy that is small beside the real work.
Padding is thus the zero border of that copy; the batch itself is never padded.

Inner loops index a slice, `x_tap[j]`, rather than `x_c[j + shift]`: numba would have to check
`j + shift` for a negative (wrap-around) index, and that check stops LLVM from vectorising.
"""
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view


@njit(cache=True)
def _to_wide(planes, pad, rows, stride):
    """planes (P, h, w) -> (P, rows * stride), zero but for planes[p, i, k] at
    (i + pad) * stride + pad + k."""
    P, h, w = planes.shape
    wide = np.zeros((P, rows * stride), dtype=planes.dtype)
    for p in range(P):
        for i in range(h):
            start = (i + pad) * stride + pad
            wide[p, start:start + w] = planes[p, i]
    return wide


@njit(cache=True)
def _sum_rows(a):
    """a (N, M) -> (M,), adding rows in the order 0, 1, ..., N-1 whatever the thread count."""
    total = np.zeros(a.shape[1], dtype=a.dtype)
    for n in range(a.shape[0]):
        total += a[n]
    return total


def _pad_planes(x: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


# --- forward -----------------------------------------------------------------------------------

@njit(cache=True, fastmath=True, parallel=True)
def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """out = conv(x, w) + b.

    x (N, C, H, W), w (F, C, K, K), b (F,), one float dtype; pad >= 0
    -> out (N, F, Ho, Wo) of that dtype, Ho = H + 2*pad - K + 1, Wo = W + 2*pad - K + 1.

        for n in prange(N):                     # parallel over images; thread writes out[n] only
            xw = wide(x[n], pad)                # (C, Hp * Wp), zero border
            for f:
                acc = b[f]                      # (Ho * Wp,) one output plane, wide
                for c, kh, kw:
                    acc[j] += w[f, c, kh, kw] * xw[c, j + kh*Wp + kw]     for j < L
                out[n, f] = acc without its junk columns
    """
    N, C, H, W = x.shape
    F, _, K, _ = w.shape
    if w.shape[1] != C:
        raise ValueError("conv2d_forward: w.shape[1] must equal x.shape[1]")
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - K + 1, Wp - K + 1
    L = (Ho - 1) * Wp + Wo
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for n in prange(N):
        xw = _to_wide(x[n], pad, Hp, Wp)
        # One plain 1-D accumulator: LLVM vectorises it better than a row of a 2-D buffer.
        acc = np.empty(Ho * Wp, dtype=x.dtype)
        for f in range(F):
            acc[:] = b[f]
            for c in range(C):
                x_c = xw[c]
                for kh in range(K):
                    for kw in range(K):
                        w_tap = w[f, c, kh, kw]
                        x_tap = x_c[kh * Wp + kw:kh * Wp + kw + L]
                        for j in range(L):
                            acc[j] += w_tap * x_tap[j]
            for oh in range(Ho):
                out[n, f, oh] = acc[oh * Wp:oh * Wp + Wo]
    return out


def conv2d_forward_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """NumPy twin of conv2d_forward: im2col by sliding_window_view, then one tensordot (GEMM)."""
    K = w.shape[2]
    windows = sliding_window_view(_pad_planes(x, pad), (K, K), axis=(2, 3))  # (N, C, Ho, Wo, K, K)
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))              # (N, Ho, Wo, F)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + b[:, None, None]


# --- backward to the input ---------------------------------------------------------------------

@njit(cache=True, fastmath=True, parallel=True)
def conv2d_backward_input(dout: np.ndarray, w: np.ndarray, pad: int, H: int, W: int) -> np.ndarray:
    """dx = d(sum(out * dout)) / dx for out = conv2d_forward(x, w, b, pad).

    dout (N, F, Ho, Wo), w (F, C, K, K), one float dtype; pad, H, W ints (x's padding and size)
    -> dx (N, C, H, W) of that dtype. Where the forward's tap read xw[c, j + kh*Wp + kw], this
    sends the gradient back to that same position (a scatter, the transpose of the gather):

        for n in prange(N):                     # parallel over images; thread writes dx[n] only
            g = wide(dout[n], 0)                # (F, Ho * Wp), zero in the junk columns
            for c:
                acc = 0                         # (Hp * Wp,) one padded input plane, wide
                for f, kh, kw:
                    acc[j + kh*Wp + kw] += w[f, c, kh, kw] * g[f, j]      for j < L
                dx[n, c] = acc without its zero border
    """
    N, F, Ho, Wo = dout.shape
    C, K = w.shape[1], w.shape[2]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    if w.shape[0] != F or Ho != Hp - K + 1 or Wo != Wp - K + 1:
        raise ValueError("conv2d_backward_input: dout, w, pad, H, W do not fit together")
    L = (Ho - 1) * Wp + Wo
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    for n in prange(N):
        # The junk columns of g must be zero: the scatter runs over them too.
        g = _to_wide(dout[n], 0, Ho, Wp)
        acc = np.empty(Hp * Wp, dtype=dout.dtype)
        for c in range(C):
            acc[:] = 0
            for f in range(F):
                g_f = g[f]
                for kh in range(K):
                    for kw in range(K):
                        w_tap = w[f, c, kh, kw]
                        acc_tap = acc[kh * Wp + kw:kh * Wp + kw + L]
                        for j in range(L):
                            acc_tap[j] += w_tap * g_f[j]
            for h in range(H):
                start = (h + pad) * Wp + pad
                dx[n, c, h] = acc[start:start + W]
    return dx


def conv2d_backward_input_numpy(dout: np.ndarray, w: np.ndarray, pad: int,
                                H: int, W: int) -> np.ndarray:
    """NumPy twin: tap (kh, kw) of the forward read the padded input's window shifted by
    (kh, kw), so its gradient goes back to that same window; then crop the padding."""
    N, F, Ho, Wo = dout.shape
    C, K = w.shape[1], w.shape[2]
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dout.dtype)
    for kh in range(K):
        for kw in range(K):
            dxp[:, :, kh:kh + Ho, kw:kw + Wo] += np.einsum("nfhw,fc->nchw", dout, w[:, :, kh, kw],
                                                           optimize=True)
    return np.ascontiguousarray(dxp[:, :, pad:pad + H, pad:pad + W])


# --- backward to the weights -------------------------------------------------------------------

@njit(cache=True, fastmath=True, parallel=True)
def conv2d_backward_weight(x: np.ndarray, dout: np.ndarray,
                           pad: int) -> tuple[np.ndarray, np.ndarray]:
    """(dw, db) = d(sum(out * dout)) / (dw, db) for out = conv2d_forward(x, w, b, pad).

    x (N, C, H, W), dout (N, F, Ho, Wo), one float dtype; pad int -> dw (F, C, K, K) with
    K = H + 2*pad - Ho + 1, and db (F,), both of that dtype. Each image writes its own terms to
    per-image buffers, summed afterwards in a fixed order: the same bits for any thread count.

        for n in prange(N):                     # parallel over images
            xw, g = wide(x[n], pad), wide(dout[n], 0)
            for f, c, kh, kw:                   # thread writes dw_n[n], db_n[n] only
                dw_n[n, f, c, kh, kw] = sum over j < L of g[f, j] * xw[c, j + kh*Wp + kw]
            db_n[n, f] = sum(dout[n, f])
        dw, db = sum of dw_n over n, sum of db_n over n      # in the order n = 0, 1, ..., N-1
    """
    N, C, H, W = x.shape
    F, Ho, Wo = dout.shape[1], dout.shape[2], dout.shape[3]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    K = Hp - Ho + 1
    if dout.shape[0] != N or K < 1 or Wo != Wp - K + 1:
        raise ValueError("conv2d_backward_weight: x, dout, pad do not fit together")
    L = (Ho - 1) * Wp + Wo
    dw_n = np.empty((N, F, C, K, K), dtype=x.dtype)
    db_n = np.empty((N, F), dtype=x.dtype)
    for n in prange(N):
        xw = _to_wide(x[n], pad, Hp, Wp)
        # The junk columns of g must be zero: they meet real pixels of xw in the sums.
        g = _to_wide(dout[n], 0, Ho, Wp)
        for f in range(F):
            g_f = g[f]
            db_n[n, f] = dout[n, f].sum()
            for c in range(C):
                x_c = xw[c]
                for kh in range(K):
                    for kw in range(K):
                        x_tap = x_c[kh * Wp + kw:kh * Wp + kw + L]
                        total = x.dtype.type(0)
                        for j in range(L):
                            total += g_f[j] * x_tap[j]
                        dw_n[n, f, c, kh, kw] = total
    dw = _sum_rows(dw_n.reshape(N, F * C * K * K)).reshape(F, C, K, K)
    db = _sum_rows(db_n)
    return dw, db


def conv2d_backward_weight_numpy(x: np.ndarray, dout: np.ndarray,
                                 pad: int) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin: dw[f, c, kh, kw] = sum over n, oh, ow of dout times that tap's input pixel."""
    K = x.shape[2] + 2 * pad - dout.shape[2] + 1
    windows = sliding_window_view(_pad_planes(x, pad), (K, K), axis=(2, 3))  # (N, C, Ho, Wo, K, K)
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))           # (F, C, K, K)
    return dw, dout.sum(axis=(0, 2, 3))
