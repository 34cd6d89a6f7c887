"""Inference kernels for pruned weights: only the non-zero weights are stored and multiplied.

A pruned weight matrix is kept row by row in CSR form (compressed sparse rows):

    row r's non-zeros are values[ptr[r]:ptr[r+1]], in columns index[ptr[r]:ptr[r+1]]

For a Linear layer a row is one output unit and a column one input feature. For a conv layer a
row is one output channel f and its non-zeros are its "taps" (c, kh, kw); the column stored is
not (c, kh, kw) but where that tap starts in the image's "wide" copy (see conv.py: padded planes
laid flat, row stride Wp):

    index = c * Hp * Wp + kh * Wp + kw

so each tap is one contiguous multiply-add over the wide plane, exactly as in the dense kernel,
and a tap pruned away is a loop never run. At 90% sparsity conv2 runs 240 taps instead of 2,400
and fc1 reads 4,800 weights instead of 48,000.

`sparse_forward` runs a whole pruned network of conv blocks (conv, pool, relu) and fc layers,
such as LeNet-5, inside one compiled call, so no Python runs between layers (at batch 1 that
overhead would be most of the time): the conv blocks image by image, each thread keeping one
image's activations in its cache, then the fc layers on the whole batch.
Its NumPy twin is the layer twins below run one after another (SparseModel.forward_numpy).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _fill_wide(planes, pad, stride, wide):
    """Copy planes (P, h, w) into wide (P * rows * stride,), planes[p, i, k] going to
    p * rows * stride + (i + pad) * stride + pad + k. The rest of wide is left as it was: zero
    once, it stays the zero border of every image copied in."""
    P, h, w = planes.shape
    plane = wide.shape[0] // P
    for p in range(P):
        for i in range(h):
            start = p * plane + (i + pad) * stride + pad
            for k in range(w):
                wide[start + k] = planes[p, i, k]


def csr_from_dense(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w (R, M) -> (ptr (R+1,) int32, index (nnz,) int32, values (nnz,) w.dtype), row by row,
    columns in increasing order; exact zeros are left out."""
    rows, cols = np.nonzero(w)
    ptr = np.zeros(w.shape[0] + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=ptr[1:])
    return ptr, cols.astype(np.int32), np.ascontiguousarray(w[rows, cols])


def conv_taps(w: np.ndarray, H: int, W: int, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w (F, C, K, K) for inputs (C, H, W) padded by pad -> CSR (ptr, index, values) whose index
    is each tap's start in the wide input, c * Hp * Wp + kh * Wp + kw."""
    F, C, K, _ = w.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    ptr, cols, values = csr_from_dense(w.reshape(F, C * K * K))
    c, kh, kw = np.unravel_index(cols, (C, K, K))
    return ptr, (c * Hp * Wp + kh * Wp + kw).astype(np.int32), values


# --- per-image building blocks (serial; called from the parallel loops below) -----------------


@njit(cache=True, fastmath=True)
def _conv_wide(xw, ptr, index, values, b, r0, L, acc):
    """xw (C * Hp * Wp,) one wide image; acc (F, >= L) <- the conv planes, wide (row stride Wp),
    for the F CSR rows r0 .. r0 + F - 1 (output channels):

        for f:
            r = r0 + f
            acc[f, j] = b[r] + sum over taps t of row r: values[t] * xw[index[t] + j]   for j < L
    """
    for f in range(acc.shape[0]):
        r = r0 + f
        acc_f = acc[f]
        acc_f[:L] = b[r]
        for t in range(ptr[r], ptr[r + 1]):
            v = values[t]
            x_tap = xw[index[t] : index[t] + L]
            for j in range(L):
                acc_f[j] += v * x_tap[j]


@njit(cache=True, fastmath=True)
def _pool_wide(acc, Ho, Wo, Wp, relu, out):
    """acc (F, Ho * Wp) wide conv planes -> out (F, Ho//2 * Wo//2): 2x2 max pool, then
    max(0, .) if relu (the same as relu before the pool)."""
    Hq, Wq = Ho // 2, Wo // 2
    for f in range(acc.shape[0]):
        for i in range(Hq):
            top = acc[f, 2 * i * Wp :]
            bottom = acc[f, (2 * i + 1) * Wp :]
            for k in range(Wq):
                m = max(top[2 * k], top[2 * k + 1], bottom[2 * k], bottom[2 * k + 1])
                out[f, i * Wq + k] = max(m, 0.0) if relu else m


@njit(cache=True, fastmath=True)
def _linear(x, ptr, index, values, b, r0, relu, out):
    """x (M,) -> out (R,) = W x + b for W the CSR rows r0 .. r0 + R - 1, then max(0, .) if relu."""
    for o in range(out.shape[0]):
        r = r0 + o
        acc = b[r]
        for t in range(ptr[r], ptr[r + 1]):
            acc += values[t] * x[index[t]]
        out[o] = max(acc, 0.0) if relu else acc


# --- layer twins: what sparse_forward computes, one layer at a time, in NumPy ---------------


def sparse_conv2d_numpy(x, ptr, index, values, b, K, pad):
    """conv2d_forward with the weights as conv_taps(w, H, W, pad): only non-zero taps are run.

    x (N, C, H, W), values and b of x's dtype; ptr (F+1,), index (nnz,) int32; K, pad ints
    -> out (N, F, Ho, Wo), Ho = H + 2*pad - K + 1, Wo likewise. Each tap's (c, kh, kw) is
    decoded from its index and its shifted window of the padded input added.
    """
    N, C, H, W = x.shape
    F = len(ptr) - 1
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - K + 1, Wp - K + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for f in range(F):
        out[:, f] = b[f]
        for t in range(ptr[f], ptr[f + 1]):
            c, rest = divmod(int(index[t]), Hp * Wp)
            kh, kw = divmod(rest, Wp)
            out[:, f] += values[t] * xp[:, c, kh : kh + Ho, kw : kw + Wo]
    return out


def sparse_linear_numpy(x, ptr, index, values, b):
    """x (N, M) -> x @ W.T + b (N, R) for W (R, M) given as csr_from_dense(W): each output
    unit is a dot product of its non-zeros with the inputs they pick."""
    out = np.empty((x.shape[0], len(ptr) - 1), dtype=x.dtype)
    for r in range(len(ptr) - 1):
        row = slice(ptr[r], ptr[r + 1])
        out[:, r] = b[r] + x[:, index[row]] @ values[row]
    return out


# --- a whole pruned network in one call --------------------------------------------------------
#
# The network's layers are stacked into one CSR matrix: layer l owns the rows rows[l] ..
# rows[l+1] - 1 (its output channels or units), and ptr, index, values and bias are the
# layers' own arrays put end to end (pack_layers). Plain arrays rather than a tuple of
# per-layer arrays, because numba's parallel loops cannot take tuples of arrays.


def pack_layers(csr: list[tuple[np.ndarray, np.ndarray, np.ndarray]], biases: list[np.ndarray]):
    """Per-layer CSR (ptr, index, values) and biases -> (ptr, index, values, bias, rows) of the
    stacked matrix; rows (layers + 1,) int64."""
    nnz = np.cumsum([0] + [len(values) for _, _, values in csr])
    ptr = np.concatenate([p[:-1] + start for (p, _, _), start in zip(csr, nnz)] + [nnz[-1:]])
    rows = np.cumsum([0] + [len(p) - 1 for p, _, _ in csr])
    return (
        ptr.astype(np.int32),
        np.concatenate([i for _, i, _ in csr]).astype(np.int32),
        np.concatenate([v for _, _, v in csr]),
        np.concatenate(biases),
        rows.astype(np.int64),
    )


@njit(cache=True, fastmath=True)
def _conv_blocks(image, ptr, index, values, bias, rows, conv_geometry):
    """image (C, H, W) -> the last conv block's output flattened in (c, h, w) order, as the
    Flatten layer does; see sparse_forward."""
    h = image.copy()
    for i in range(conv_geometry.shape[0]):
        pad, K, relu = conv_geometry[i, 0], conv_geometry[i, 1], conv_geometry[i, 2]
        C, H, W = h.shape
        Hp, Wp = H + 2 * pad, W + 2 * pad
        Ho, Wo = Hp - K + 1, Wp - K + 1
        acc = np.empty((rows[i + 1] - rows[i], Ho * Wp), dtype=image.dtype)
        xw = np.zeros(C * Hp * Wp, dtype=image.dtype)
        _fill_wide(h, pad, Wp, xw)
        _conv_wide(xw, ptr, index, values, bias, rows[i], (Ho - 1) * Wp + Wo, acc)
        pooled = np.empty((acc.shape[0], (Ho // 2) * (Wo // 2)), dtype=image.dtype)
        _pool_wide(acc, Ho, Wo, Wp, relu == 1, pooled)
        h = pooled.reshape(acc.shape[0], Ho // 2, Wo // 2)
    return h.reshape(h.size)


@njit(cache=True, fastmath=True, parallel=True)
def sparse_forward(x, ptr, index, values, bias, rows, conv_geometry, fc_relu):
    """x (N, C, H, W) -> logits (N, R) of a pruned network of B conv blocks (conv, 2x2 max pool,
    optional relu) then fc layers (optional relu); only non-zero weights are multiplied.

    ptr, index, values, bias, rows: pack_layers of the conv_taps of each conv (for its input
    size), then of the csr_from_dense of each fc weight; conv_geometry (B, 3) int64: pad, K,
    relu of each conv block; fc_relu (layers - B,) int64: 1 where a relu follows the fc layer.
    The conv blocks run image by image; the fc layers run on the whole batch at once, one
    column per image, so that each non-zero weight is one multiply-add over N images (a loop
    LLVM vectorises) rather than N gathers of a single input.

        for n in prange(N):                     # parallel over images; thread writes h[n] only
            h[n] = flatten(each conv block: relu?(pool(sparse conv(x[n]))))
        h = h.T                                 # (features, N)
        for each fc layer:
            for o in prange(R):                 # parallel over units; thread writes out[o] only
                out[o, :] = relu?(b[o] + sum over row o's t of values[t] * h[index[t], :])
            h = out
        logits = h.T
    """
    B, N = conv_geometry.shape[0], x.shape[0]
    first = _conv_blocks(x[0], ptr, index, values, bias, rows, conv_geometry)
    features = np.empty((N, first.size), dtype=x.dtype)
    features[0] = first
    for n in prange(1, N):
        features[n] = _conv_blocks(x[n], ptr, index, values, bias, rows, conv_geometry)
    h = np.ascontiguousarray(features.T)
    for layer in range(B, len(rows) - 1):
        r0, relu = rows[layer], fc_relu[layer - B] == 1
        out = np.empty((rows[layer + 1] - r0, N), dtype=x.dtype)
        for o in prange(out.shape[0]):
            acc = out[o]
            acc[:] = bias[r0 + o]
            for t in range(ptr[r0 + o], ptr[r0 + o + 1]):
                v = values[t]
                x_row = h[index[t]]
                for n in range(N):
                    acc[n] += v * x_row[n]
            if relu:
                for n in range(N):
                    acc[n] = max(acc[n], 0.0)
        h = out
    return np.ascontiguousarray(h.T)


@njit(cache=True, fastmath=True)
def sparse_forward_serial(x, ptr, index, values, bias, rows, conv_geometry, fc_relu):
    """sparse_forward for a batch of 1, image by image on one thread: waking the thread pool
    costs more than it saves, and there is no batch to vectorise the fc layers over."""
    B = conv_geometry.shape[0]
    logits = np.empty((x.shape[0], rows[-1] - rows[-2]), dtype=x.dtype)
    for n in range(x.shape[0]):
        h = _conv_blocks(x[n], ptr, index, values, bias, rows, conv_geometry)
        for layer in range(B, len(rows) - 2):
            out = np.empty(rows[layer + 1] - rows[layer], dtype=x.dtype)
            _linear(h, ptr, index, values, bias, rows[layer], fc_relu[layer - B] == 1, out)
            h = out
        last = len(rows) - 2
        _linear(h, ptr, index, values, bias, rows[last], fc_relu[last - B] == 1, logits[n])
    return logits
