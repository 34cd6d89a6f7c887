"""2-D convolution, stride 1, zero padding, square K x K filters: forward and both backwards.

"Convolution" here is what deep learning means by it, a cross-correlation:

    out[n, f, oh, ow] = b[f] + sum over c, kh, kw of w[f, c, kh, kw] * xp[n, c, oh + kh, ow + kw]

where xp is x with `pad` zeros around each plane. Each numba kernel is followed by its NumPy
twin (`<kernel>_numpy`): same signature, obviously correct, and the dense baseline in benchmarks.

The numba kernels share three tricks, explained once here. First, the wide layout. Copy an
image's planes into a flat "wide" buffer with zero borders, so padded pixel (h, w) lives at
h * Wp + w (Wp = W + 2*pad). Output pixel (oh, ow) then reads input position j + kh * Wp + kw,
where j = oh * Wp + ow. If the output is kept in the same layout (row stride Wp, not Wo), each
filter tap (kh, kw) is one contiguous multiply-add over j = 0 .. L-1, L = (Ho - 1) * Wp + Wo:

    acc[j] += w[f, c, kh, kw] * x_wide[c, j + kh * Wp + kw]

Positions with ow >= Wo are junk that is never copied out. Why bother: LeNet's rows are short
(Wo = 10 for conv2) and a loop over one row barely vectorises; the wide loop runs 136 long.
Padding is thus the zero border of that copy; the batch itself is never padded.

Second, lanes: 136 is still short. Setting up a loop (LLVM first checks at run time that the
arrays do not overlap) and finishing its last odd elements one at a time cost about as much as
the work itself. So the kernels take the batch LANES = 8 images at a time and put those images
side by side: every pixel of the wide layout becomes 8 floats, one per image, at
(position * LANES + image). A tap is still one contiguous multiply-add, now over q = 0 ..
L * LANES - 1 (1,088 for conv2), a whole number of vectors; offsets are simply LANES times
larger. Copying a block of images into this layout and the results back out is a transposition
that is small beside the arithmetic. At LeNet-5's batch-128 shapes, on one thread, this took
conv2's forward to about half the time of one image at a time, and its backward to the weights
to about 0.6x; it gains least for
conv1, whose planes are long already (L = 892) and whose outputs, with only 25 taps each, make
the copy back out a larger share.

Third, register blocking. In the plain loop above each multiply-add costs two loads
and a store (acc[j] in and out), and the store port, not the arithmetic, sets the pace. So one
pass over q takes 4 taps and 2 filters at once: it loads 4 inputs and 2 accumulators, does 8
multiply-adds, and stores 2. Taps are numbered t = (c * K + kh) * K + kw, and tap t sits at
offset offs[t] = (c * Hp * Wp + kh * Wp + kw) * LANES in the block's flat wide buffer, so the 4
taps of a group may come from different rows or channels: the blocking works for any C and K.
A last group short of 4 taps is filled with zero-weight taps (forward) or repeats a tap
(backward to the weights). At LeNet-5's batch-128 shapes this made conv2's forward and backward
to the weights 1.8-1.9x faster than one tap and one filter at a time (one thread). The backward
to the input scatters instead: one tap and 8 filters per pass (see its docstring).

Each kernel's block loop is short: it copies a block in (fill_lanes), calls the arithmetic of one
block (filter_pair, weight_terms, input_terms) and copies the result out. kernels/conv_pool.py,
a convolution with the pooling after it, calls the same pieces and differs only in its copies.

Inner loops index a slice, `x_tap[j]`, rather than `x_c[j + shift]`: numba would have to check
`j + shift` for a negative (wrap-around) index, and that check stops LLVM from vectorising.
Copies are written as plain loops, not slice assignments (`a[i:j] = b`): numba compiles its
general slice assignment slowly, and a first run compiles every kernel before its first step.
"""

import functools

import numpy as np
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view

from tinyprune.kernels.threads import over_images

# Images side by side in the lanes layout: 8 float32 are one 256-bit vector register.
LANES = 8
# Output positions (times LANES) per chunk in the backward to the input: see there.
CHUNK = 512


def blocks(N: int) -> int:
    """How many blocks of LANES images hold N images (the last one may be short)."""
    return (N + LANES - 1) // LANES


@njit(cache=True, nogil=True)
def fill_lanes(planes, n0, pad, stride, wide):
    """Copy images n0 .. n0+LANES-1 of planes (N, P, h, w) into wide (P * rows * stride * LANES,),
    planes[n0 + b, p, i, k] going to ((p * rows + i + pad) * stride + pad + k) * LANES + b.
    Lanes of images past N get zeros; the rest of wide is left as it was (zero once, it stays
    the zero border, and the junk columns, of every block copied in)."""
    N, P, h, w = planes.shape
    rows = wide.shape[0] // (P * stride * LANES)
    images = min(LANES, N - n0)
    for b in range(LANES):  # image by image: each of its rows is read in one run
        for p in range(P):
            for i in range(h):
                start = ((p * rows + i + pad) * stride + pad) * LANES + b
                if b < images:
                    row = planes[n0 + b, p, i]
                    for k in range(w):
                        wide[start + k * LANES] = row[k]
                else:
                    for k in range(w):
                        wide[start + k * LANES] = 0


@njit(cache=True, nogil=True)
def unfill_lanes(wide, n0, plane, stride, out):
    """The inverse for one output plane: out[n0 + b, plane, i, k] = wide[(i * stride + k) *
    LANES + b] for out (N, F, h, w) and the images of the block that exist."""
    N, h, w = out.shape[0], out.shape[2], out.shape[3]
    # Image by image: each row of out is then one run of stores; loads may stride, stores
    # should not (a core does fewer stores than loads per cycle).
    for b in range(min(LANES, N - n0)):
        for i in range(h):
            row = out[n0 + b, plane, i]
            for k in range(w):
                row[k] = wide[(i * stride + k) * LANES + b]


def _pad_planes(x: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


@functools.lru_cache(maxsize=64)
def _tap_offsets(C: int, K: int, Hp: int, Wp: int) -> np.ndarray:
    """-> offs (groups * 4,) int64, groups = ceil(C*K*K / 4): offs[t] = (c * Hp * Wp + kh * Wp +
    kw) * LANES for tap t = (c*K + kh)*K + kw < C*K*K, and 0 for the padding taps that fill the
    last group of 4. Read-only and cached: each pass of each layer asks again, every step."""
    c, kh, kw = np.meshgrid(np.arange(C), np.arange(K), np.arange(K), indexing="ij")
    offs = np.zeros((C * K * K + 3) // 4 * 4, dtype=np.int64)
    offs[: C * K * K] = (c * Hp * Wp + kh * Wp + kw).reshape(-1) * LANES
    offs.flags.writeable = False
    return offs


# --- forward -----------------------------------------------------------------------------------


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """out = conv(x, w) + b.

    x (N, C, H, W), w (F, C, K, K), b (F,), one float dtype; pad >= 0
    -> out (N, F, Ho, Wo) of that dtype, Ho = H + 2*pad - K + 1, Wo = W + 2*pad - K + 1.

        wt = w as (F, T) taps, zero-padded to a multiple of 4 taps  # padding taps add 0
        for blocks of LANES images, split between threads:   # a thread writes its images only
            xw = lanes(x[block], pad), flat     # (C * Hp * Wp * LANES,), zero border
            for f, g in pairs of filters:       # g = f + 1 (or f again if F is odd)
                acc_f, acc_g = filter_pair: b[f], b[g], then    # (L * LANES,) two planes, wide
                for t in groups of 4 taps:
                    acc_f[q] += sum over the 4 taps of wt[f, t] * xw[offs[t] + q]
                    acc_g[q] += the same with wt[g, t]               for q < L * LANES
                out[block, f], out[block, g] = acc_f, acc_g without their junk columns
    """
    x, wt, b, offs, Ho, Wo = forward_setup(x, w, b, pad)
    out = np.empty((len(x), len(wt), Ho, Wo), dtype=x.dtype)
    over_images(_forward_blocks, blocks(len(x)), x, wt, b, offs, pad, out)
    return out


def forward_setup(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> tuple:
    """What a forward's blocks read: x contiguous, wt (F, groups * 4) the filters' taps padded
    with zero taps, b in x's dtype, offs (_tap_offsets), and the output's Ho, Wo."""
    N, C, H, W = x.shape
    F, _, K, _ = w.shape
    if w.shape[1] != C:
        raise ValueError("conv2d_forward: w.shape[1] must equal x.shape[1]")
    T = C * K * K
    wt = np.zeros((F, (T + 3) // 4 * 4), dtype=x.dtype)
    wt[:, :T] = w.reshape(F, T)
    offs = _tap_offsets(C, K, H + 2 * pad, W + 2 * pad)
    bias = np.ascontiguousarray(b, dtype=x.dtype)
    return np.ascontiguousarray(x), wt, bias, offs, H + 2 * pad - K + 1, W + 2 * pad - K + 1


@njit(cache=True, fastmath=True, nogil=True)
def _forward_blocks(x, wt, b, offs, pad, out, lo, hi):
    """conv2d_forward of blocks lo..hi-1 (images lo * LANES .. hi * LANES - 1) into out."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    F, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    Wp = W + 2 * pad
    xw = np.zeros(C * (H + 2 * pad) * Wp * LANES, dtype=x.dtype)
    # Plain 1-D accumulators: LLVM vectorises them better than rows of a 2-D buffer.
    acc_f = np.empty(((Ho - 1) * Wp + Wo) * LANES, dtype=x.dtype)
    acc_g = np.empty(((Ho - 1) * Wp + Wo) * LANES, dtype=x.dtype)
    for block in range(lo, hi):
        n0 = block * LANES
        fill_lanes(x, n0, pad, Wp, xw)
        for f in range(0, F, 2):
            g = min(f + 1, F - 1)  # an odd F computes its last filter twice
            filter_pair(xw, wt, b, offs, f, g, acc_f, acc_g)
            unfill_lanes(acc_f, n0, f, Wp, out)
            unfill_lanes(acc_g, n0, g, Wp, out)


@njit(cache=True, fastmath=True, nogil=True)
def filter_pair(xw, wt, b, offs, f, g, acc_f, acc_g):
    """Output planes f and g of a block, wide, from its input xw: acc_f[q] = b[f] + sum over
    taps t of wt[f, t] * xw[offs[t] + q] for q below acc_f's length; acc_g the same for g."""
    L = acc_f.shape[0]
    for q in range(L):
        acc_f[q] = b[f]
        acc_g[q] = b[g]
    for t in range(0, wt.shape[1], 4):
        x0 = xw[offs[t] : offs[t] + L]
        x1 = xw[offs[t + 1] : offs[t + 1] + L]
        x2 = xw[offs[t + 2] : offs[t + 2] + L]
        x3 = xw[offs[t + 3] : offs[t + 3] + L]
        f0, f1, f2, f3 = wt[f, t], wt[f, t + 1], wt[f, t + 2], wt[f, t + 3]
        g0, g1, g2, g3 = wt[g, t], wt[g, t + 1], wt[g, t + 2], wt[g, t + 3]
        for q in range(L):
            # Every load before the stores: LLVM cannot tell that acc_f is not one of the
            # inputs, and would load them again after storing it.
            v0, v1, v2, v3 = x0[q], x1[q], x2[q], x3[q]
            new_f = acc_f[q] + (f0 * v0 + f1 * v1) + (f2 * v2 + f3 * v3)
            new_g = acc_g[q] + (g0 * v0 + g1 * v1) + (g2 * v2 + g3 * v3)
            acc_f[q] = new_f
            acc_g[q] = new_g


def conv2d_forward_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """NumPy twin of conv2d_forward: im2col by sliding_window_view, then one tensordot (GEMM)."""
    K = w.shape[2]
    windows = sliding_window_view(_pad_planes(x, pad), (K, K), axis=(2, 3))  # (N, C, Ho, Wo, K, K)
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, F)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + b[:, None, None]


# --- backward to the input ---------------------------------------------------------------------


def conv2d_backward_input(dout: np.ndarray, w: np.ndarray, pad: int, H: int, W: int) -> np.ndarray:
    """dx = d(sum(out * dout)) / dx for out = conv2d_forward(x, w, b, pad).

    dout (N, F, Ho, Wo), w (F, C, K, K), one float dtype; pad, H, W ints (x's padding and size)
    -> dx (N, C, H, W) of that dtype. The forward read the padded input at offs[t] + j for
    output position j (wide layout, row stride Wp), so each tap sends its share of dout back to
    the same place: a scatter, one tap at a time, 8 filters per pass (padded with zero weights).
    dout's wide copy has zero junk columns, so they add nothing.

        wt[t, f] = w[f, t] for the T = C*K*K taps, filters padded to a multiple of 8
        for blocks of LANES images, split between threads:   # a thread writes its images only
            g = lanes(dout[block], 0), row stride Wp, flat    # (F8 * Ho * Wp * LANES,)
            input_terms: dxw = 0                              # (C * Hp * Wp * LANES,): padded
                for t in taps, for groups of 8 filters f..f+7:
                    dxw[offs[t] + q] += sum over the 8 of wt[t, f] * g[f * Ho * Wp * LANES + q]
                                                                      for q < L * LANES
                dx[block] = dxw without its padding

    For LeNet-5's conv2 this does 1.8x fewer multiply-adds than correlating dout, padded by
    K - 1, with the flipped filters (the junk of a 10x10 output padded to 18x18).
    """
    K = w.shape[2]
    if w.shape[0] != dout.shape[1] or dout.shape[2:] != (H + 2 * pad - K + 1, W + 2 * pad - K + 1):
        raise ValueError("conv2d_backward_input: dout, w, pad, H, W do not fit together")
    return backward_input_by_blocks(
        _backward_input_blocks, w, pad, H, W, np.ascontiguousarray(dout)
    )


def backward_input_by_blocks(kernel, w: np.ndarray, pad: int, H: int, W: int, dout, *args):
    """dx (N, C, H, W) of dout's dtype, filled by kernel(dout, *args, wt, offs, pad, dx, lo, hi)
    over dout's blocks of images, wt (T, F8) being w's taps as rows, filters padded to 8."""
    N, F = dout.shape[:2]
    C, K = w.shape[1], w.shape[2]
    T, F8 = C * K * K, (F + 7) // 8 * 8
    wt = np.zeros((T, F8), dtype=dout.dtype)
    wt[:, :F] = w.reshape(F, T).T
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    offs = _tap_offsets(C, K, H + 2 * pad, W + 2 * pad)
    over_images(kernel, blocks(N), dout, *args, wt, offs, pad, dx)
    return dx


@njit(cache=True, fastmath=True, nogil=True)
def _backward_input_blocks(dout, wt, offs, pad, dx, lo, hi):
    """conv2d_backward_input of blocks lo..hi-1 (images lo * LANES .. hi * LANES - 1) into dx."""
    F, Ho, Wo = dout.shape[1], dout.shape[2], dout.shape[3]
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Wp = W + 2 * pad
    P = Ho * Wp * LANES
    gw = np.zeros(wt.shape[1] * P, dtype=dx.dtype)  # planes F..F8-1 stay zero, as do junk columns
    dxw = np.empty(C * (H + 2 * pad) * Wp * LANES, dtype=dx.dtype)
    for block in range(lo, hi):
        fill_lanes(dout, block * LANES, 0, Wp, gw[: F * P])
        input_terms(gw, wt, offs, pad, Ho, Wo, dxw, block * LANES, dx)


@njit(cache=True, fastmath=True, nogil=True)
def input_terms(gw, wt, offs, pad, Ho, Wo, dxw, n0, dx):
    """The gradient of block n0's input, from the gradient of its Ho x Wo output planes gw
    (wt.shape[1] of them, lanes layout, row stride Wp, zero junk columns) by way of dxw (its
    padded input's size) into dx (N, C, H, W)."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    L, P = ((Ho - 1) * Wp + Wo) * LANES, Ho * Wp * LANES
    T, F8 = wt.shape[0], wt.shape[1]
    for i in range(dxw.shape[0]):
        dxw[i] = 0
    # In chunks of the output positions: the chunk's 8 planes of g and its span of dxw stay
    # in the core's first-level cache for all T taps (1.4x faster for LeNet-5's conv2).
    for q0 in range(0, L, CHUNK):
        q1 = min(q0 + CHUNK, L)
        for t in range(T):
            dst = dxw[offs[t] + q0 : offs[t] + q1]
            for f in range(0, F8, 8):
                a = f * P
                g0, g1 = gw[a + q0 : a + q1], gw[a + P + q0 : a + P + q1]
                g2, g3 = gw[a + 2 * P + q0 : a + 2 * P + q1], gw[a + 3 * P + q0 : a + 3 * P + q1]
                g4, g5 = gw[a + 4 * P + q0 : a + 4 * P + q1], gw[a + 5 * P + q0 : a + 5 * P + q1]
                g6, g7 = gw[a + 6 * P + q0 : a + 6 * P + q1], gw[a + 7 * P + q0 : a + 7 * P + q1]
                w0, w1, w2, w3 = wt[t, f], wt[t, f + 1], wt[t, f + 2], wt[t, f + 3]
                w4, w5, w6, w7 = wt[t, f + 4], wt[t, f + 5], wt[t, f + 6], wt[t, f + 7]
                for q in range(q1 - q0):
                    first = (w0 * g0[q] + w1 * g1[q]) + (w2 * g2[q] + w3 * g3[q])
                    second = (w4 * g4[q] + w5 * g5[q]) + (w6 * g6[q] + w7 * g7[q])
                    dst[q] += first + second
    for c in range(C):
        unfill_lanes(dxw[((c * Hp + pad) * Wp + pad) * LANES :], n0, c, Wp, dx)


def conv2d_backward_input_numpy(
    dout: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """NumPy twin: tap (kh, kw) of the forward read the padded input's window shifted by
    (kh, kw), so its gradient goes back to that same window; then crop the padding."""
    N, F, Ho, Wo = dout.shape
    C, K = w.shape[1], w.shape[2]
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dout.dtype)
    for kh in range(K):
        for kw in range(K):
            dxp[:, :, kh : kh + Ho, kw : kw + Wo] += np.einsum(
                "nfhw,fc->nchw", dout, w[:, :, kh, kw], optimize=True
            )
    return np.ascontiguousarray(dxp[:, :, pad : pad + H, pad : pad + W])


# --- backward to the weights -------------------------------------------------------------------


def conv2d_backward_weight(
    x: np.ndarray, dout: np.ndarray, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """(dw, db) = d(sum(out * dout)) / (dw, db) for out = conv2d_forward(x, w, b, pad).

    x (N, C, H, W), dout (N, F, Ho, Wo), one float dtype; pad int -> dw (F, C, K, K) with
    K = H + 2*pad - Ho + 1, and db (F,), both of that dtype. Each block of LANES images writes
    its own terms to its own buffers, summed afterwards in block order: the same bits for any
    thread count.

        for blocks of LANES images, split between threads:   # a thread writes its blocks' rows
            xw, g = lanes(x[block], pad) flat, lanes(dout[block], 0) with row stride Wp
            weight_terms: for f, h in pairs of filters:       # h = f + 1 (or f again if F is odd)
                for t in groups of 4 taps:      # the last group repeats tap T-1 if T % 4 != 0
                    for each of the 4 taps:
                        dw_b[block, f, t] = sum over q < L * LANES of g[f, q] * xw[offs[t] + q]
                        dw_b[block, h, t] = the same with g[h]
                db_b[block, f] = sum(g[f])      # the junk columns and missing images are zeros
        dw, db = sum of dw_b over blocks, sum of db_b over blocks     # in block order
    """
    N, C, H, W = x.shape
    K = H + 2 * pad - dout.shape[2] + 1
    if dout.shape[0] != N or K < 1 or dout.shape[3] != W + 2 * pad - K + 1:
        raise ValueError("conv2d_backward_weight: x, dout, pad do not fit together")
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    return backward_weight_by_blocks(_backward_weight_blocks, x, K, pad, dout)


def backward_weight_by_blocks(kernel, x: np.ndarray, K: int, pad: int, dout, *args):
    """(dw (F, C, K, K), db (F,)) of x's dtype, the terms of each block of images made by
    kernel(x, dout, *args, offs, pad, dw_b, db_b, lo, hi) into its row of dw_b and db_b, then
    added in block order (NumPy adds along a non-contiguous axis row by row)."""
    N, C, H, W = x.shape
    F = dout.shape[1]
    dw_b = np.empty((blocks(N), F * C * K * K), dtype=x.dtype)
    db_b = np.empty((blocks(N), F), dtype=x.dtype)
    offs = _tap_offsets(C, K, H + 2 * pad, W + 2 * pad)
    over_images(kernel, blocks(N), np.ascontiguousarray(x), dout, *args, offs, pad, dw_b, db_b)
    return dw_b.sum(axis=0).reshape(F, C, K, K), db_b.sum(axis=0)


@njit(cache=True, fastmath=True, nogil=True)
def _backward_weight_blocks(x, dout, offs, pad, dw_b, db_b, lo, hi):
    """conv2d_backward_weight's terms of blocks lo..hi-1 into dw_b[lo:hi], db_b[lo:hi]."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    F, Ho, Wo = dout.shape[1], dout.shape[2], dout.shape[3]
    Wp = W + 2 * pad
    xw = np.zeros(C * (H + 2 * pad) * Wp * LANES, dtype=x.dtype)
    # The junk columns of g must be zero: they meet real pixels of xw in the sums.
    gw = np.zeros(F * Ho * Wp * LANES, dtype=x.dtype)
    L, P = ((Ho - 1) * Wp + Wo) * LANES, Ho * Wp * LANES
    for block in range(lo, hi):
        fill_lanes(x, block * LANES, pad, Wp, xw)
        fill_lanes(dout, block * LANES, 0, Wp, gw)
        # The bias terms here, not in a helper both kernels call: numba then compiled the
        # helper's sum in another order on a first run than when loading it from its cache.
        for f in range(F):
            total = x.dtype.type(0)  # a loop, not .sum(): faster to compile
            for q in range(f * P, (f + 1) * P):
                total += gw[q]
            db_b[block, f] = total
        weight_terms(xw, gw, offs, L, F, dw_b[block])


@njit(cache=True, fastmath=True, nogil=True)
def weight_terms(xw, gw, offs, L, F, dw):
    """One block's terms of the gradient to the weights, from its padded input xw and its
    output's gradient gw (F planes, lanes layout, zero junk columns; L a plane's length without
    its last junk): dw[f * T + t] = sum over q < L of plane f at q times xw[offs[t] + q]."""
    T, P = dw.shape[0] // F, gw.shape[0] // F
    for f in range(0, F, 2):
        h = min(f + 1, F - 1)  # an odd F computes its last filter twice
        g_f, g_h = gw[f * P : f * P + L], gw[h * P : h * P + L]
        for t0 in range(0, T, 4):
            # A short last group repeats tap T-1: the same sum, written twice.
            t1, t2, t3 = min(t0 + 1, T - 1), min(t0 + 2, T - 1), min(t0 + 3, T - 1)
            x0 = xw[offs[t0] : offs[t0] + L]
            x1 = xw[offs[t1] : offs[t1] + L]
            x2 = xw[offs[t2] : offs[t2] + L]
            x3 = xw[offs[t3] : offs[t3] + L]
            f0 = f1 = f2 = f3 = h0 = h1 = h2 = h3 = gw.dtype.type(0)
            for q in range(L):
                f0 += g_f[q] * x0[q]
                f1 += g_f[q] * x1[q]
                f2 += g_f[q] * x2[q]
                f3 += g_f[q] * x3[q]
                h0 += g_h[q] * x0[q]
                h1 += g_h[q] * x1[q]
                h2 += g_h[q] * x2[q]
                h3 += g_h[q] * x3[q]
            row_f, row_h = f * T, h * T
            dw[row_f + t0], dw[row_f + t1], dw[row_f + t2], dw[row_f + t3] = f0, f1, f2, f3
            dw[row_h + t0], dw[row_h + t1], dw[row_h + t2], dw[row_h + t3] = h0, h1, h2, h3


def conv2d_backward_weight_numpy(
    x: np.ndarray, dout: np.ndarray, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin: dw[f, c, kh, kw] = sum over n, oh, ow of dout times that tap's input pixel."""
    K = x.shape[2] + 2 * pad - dout.shape[2] + 1
    windows = sliding_window_view(_pad_planes(x, pad), (K, K), axis=(2, 3))  # (N, C, Ho, Wo, K, K)
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, K, K)
    return dw, dout.sum(axis=(0, 2, 3))
