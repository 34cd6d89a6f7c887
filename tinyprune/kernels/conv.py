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

The kernels also serve kernels/conv_pool.py: given a pooling's argmax, the forward pools each
output plane of a block as it leaves the accumulators (_pool_lanes), and the backwards put
the pooled gradient straight into their lanes layout (_unpool_lanes) instead of reading a
whole-size one; without, an empty argmax. One compiled kernel serves both.

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


# Images side by side in the lanes layout: 8 float32 are one 256-bit vector register.
LANES = 8
# Output positions (times LANES) per chunk in the backward to the input: see there.
CHUNK = 512
# The argmax of a kernel run without pooling: no blocks, but of a real one's type, so that
# numba compiles each kernel once for both (never written: it has no elements).
NO_ARGMAX = np.empty((0, 0, 0, 0, 0), dtype=np.uint8)


def _blocks(N: int) -> int:
    """How many blocks of LANES images hold N images (the last one may be short)."""
    return (N + LANES - 1) // LANES


@njit(cache=True, nogil=True)
def _fill_lanes(planes, n0, pad, stride, wide):
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
def _unfill_lanes(wide, n0, plane, stride, out):
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
        # Rows as slices: indices from 0 within them compile to plain loads (see the top).
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
                acc_f, acc_g = b[f], b[g]       # (L * LANES,) two output planes, wide
                for t in groups of 4 taps:
                    acc_f[q] += sum over the 4 taps of wt[f, t] * xw[offs[t] + q]
                    acc_g[q] += the same with wt[g, t]               for q < L * LANES
                out[block, f], out[block, g] = acc_f, acc_g without their junk columns
    """
    return forward(x, w, b, pad, pool=False, relu=False)[0]


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int, pool: bool, relu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """conv2d_forward, or with pool its output 2x2 max-pooled (and with relu, then ReLU'd) block
    by block as it is made -> (out, argmax: the pooling's, as kernels/conv_pool.py says, or
    empty)."""
    N, C, H, W = x.shape
    F, _, K, _ = w.shape
    if w.shape[1] != C:
        raise ValueError("conv2d_forward: w.shape[1] must equal x.shape[1]")
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - K + 1, Wp - K + 1
    T = C * K * K
    groups = (T + 3) // 4
    wt = np.zeros((F, groups * 4), dtype=x.dtype)
    wt[:, :T] = w.reshape(F, T)
    out = np.empty((N, F, Ho // 2, Wo // 2) if pool else (N, F, Ho, Wo), dtype=x.dtype)
    lanes_shape = (_blocks(N), F, Ho // 2, Wo // 2, LANES)
    argmax = np.empty(lanes_shape, dtype=np.uint8) if pool else NO_ARGMAX
    offs = _tap_offsets(C, K, Hp, Wp)
    bias = np.ascontiguousarray(b, dtype=x.dtype)
    x = np.ascontiguousarray(x)
    over_images(_forward_blocks, _blocks(N), x, wt, bias, offs, pad, Ho, Wo, relu, out, argmax)
    return out, argmax


@njit(cache=True, fastmath=True, nogil=True)
def _forward_blocks(x, wt, b, offs, pad, Ho, Wo, relu, out, argmax, lo, hi):
    """forward of blocks lo..hi-1 (images lo * LANES .. hi * LANES - 1) into out (and argmax,
    if it is not empty: then each output plane is pooled on its way out)."""
    N, C, H, W = x.shape
    F = out.shape[1]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    L = ((Ho - 1) * Wp + Wo) * LANES
    G = wt.shape[1]
    xw = np.zeros(C * Hp * Wp * LANES, dtype=x.dtype)
    # Plain 1-D accumulators: LLVM vectorises them better than rows of a 2-D buffer.
    acc_f = np.empty(L, dtype=x.dtype)
    acc_g = np.empty(L, dtype=x.dtype)
    pooled = np.empty(Ho // 2 * (Wo // 2) * LANES, dtype=x.dtype)
    for block in range(lo, hi):
        n0 = block * LANES
        _fill_lanes(x, n0, pad, Wp, xw)
        for f in range(0, F, 2):
            g = min(f + 1, F - 1)  # an odd F computes its last filter twice
            for q in range(L):
                acc_f[q] = b[f]
                acc_g[q] = b[g]
            for t in range(0, G, 4):
                x0 = xw[offs[t] : offs[t] + L]
                x1 = xw[offs[t + 1] : offs[t + 1] + L]
                x2 = xw[offs[t + 2] : offs[t + 2] + L]
                x3 = xw[offs[t + 3] : offs[t + 3] + L]
                f0, f1, f2, f3 = wt[f, t], wt[f, t + 1], wt[f, t + 2], wt[f, t + 3]
                g0, g1, g2, g3 = wt[g, t], wt[g, t + 1], wt[g, t + 2], wt[g, t + 3]
                for q in range(L):
                    # Every load before the stores: LLVM cannot tell that acc_f is not one of
                    # the inputs, and would load them again after storing it.
                    v0, v1, v2, v3 = x0[q], x1[q], x2[q], x3[q]
                    new_f = acc_f[q] + (f0 * v0 + f1 * v1) + (f2 * v2 + f3 * v3)
                    new_g = acc_g[q] + (g0 * v0 + g1 * v1) + (g2 * v2 + g3 * v3)
                    acc_f[q] = new_f
                    acc_g[q] = new_g
            if argmax.shape[0]:
                _pool_lanes(acc_f, Wp, relu, pooled, argmax[block, f])
                _unfill_lanes(pooled, n0, f, Wo // 2, out)
                _pool_lanes(acc_g, Wp, relu, pooled, argmax[block, g])
                _unfill_lanes(pooled, n0, g, Wo // 2, out)
            else:
                _unfill_lanes(acc_f, n0, f, Wp, out)
                _unfill_lanes(acc_g, n0, g, Wp, out)


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
            dxw = 0                                           # (C * Hp * Wp * LANES,): padded
            for t in taps, for groups of 8 filters f..f+7:
                dxw[offs[t] + q] += sum over the 8 of wt[t, f] * g[f * Ho * Wp * LANES + q]
                                                                      for q < L * LANES
            dx[block] = dxw without its padding

    For LeNet-5's conv2 this does 1.8x fewer multiply-adds than correlating dout, padded by
    K - 1, with the flipped filters (the junk of a 10x10 output padded to 18x18).
    """
    return backward_input(dout, NO_ARGMAX, w, pad, H, W)


def backward_input(
    dout: np.ndarray, argmax: np.ndarray, w: np.ndarray, pad: int, H: int, W: int
) -> np.ndarray:
    """conv2d_backward_input; with an argmax that is not empty, dout is the gradient of the
    pooled output and argmax the pooling's (kernels/conv_pool.py)."""
    N, F = dout.shape[:2]
    C, K = w.shape[1], w.shape[2]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - K + 1, Wp - K + 1
    if w.shape[0] != F or not _fits(dout, argmax, Ho, Wo):
        raise ValueError("conv2d_backward_input: dout, w, pad, H, W do not fit together")
    T, F8 = C * K * K, (F + 7) // 8 * 8
    wt = np.zeros((T, F8), dtype=dout.dtype)
    wt[:, :F] = w.reshape(F, T).T
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    offs = _tap_offsets(C, K, Hp, Wp)
    dout = np.ascontiguousarray(dout)
    over_images(_backward_input_blocks, _blocks(N), dout, argmax, wt, offs, pad, Ho, Wo, dx)
    return dx


def _fits(dout: np.ndarray, argmax: np.ndarray, Ho: int, Wo: int) -> bool:
    """Whether dout (N, F, h, w) is the gradient of an Ho x Wo output or, with an argmax that is
    not empty, of that output pooled, with argmax of dout's shape."""
    if not argmax.shape[0]:
        return dout.shape[2:] == (Ho, Wo)
    N, F, h, w = dout.shape
    return (h, w) == (Ho // 2, Wo // 2) and argmax.shape == (_blocks(N), F, h, w, LANES)


@njit(cache=True, nogil=True)
def _fill_grad(dout, argmax, n0, stride, gp, gw):
    """Block n0 of the gradient of the convolution's output into gw (F planes), lanes layout,
    row stride `stride`: dout itself, or with an argmax that is not empty, dout unpooled (by
    way of gp, the same size as dout's block)."""
    if not argmax.shape[0]:
        _fill_lanes(dout, n0, 0, stride, gw)
        return
    F, h, w = dout.shape[1], dout.shape[2], dout.shape[3]
    if h == 0 or w == 0:  # an output too small to pool: no gradient (gw stays zero)
        return
    _fill_lanes(dout, n0, 0, w, gp)
    plane, small = gw.shape[0] // F, h * w * LANES
    for f in range(F):
        pooled, where = gp[f * small : (f + 1) * small], argmax[n0 // LANES, f]
        _unpool_lanes(pooled, where, stride, gw[f * plane : (f + 1) * plane])


@njit(cache=True, fastmath=True, nogil=True)
def _backward_input_blocks(dout, argmax, wt, offs, pad, Ho, Wo, dx, lo, hi):
    """backward_input of blocks lo..hi-1 (images lo * LANES .. hi * LANES - 1) into dx."""
    F = dout.shape[1]
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    L, P = ((Ho - 1) * Wp + Wo) * LANES, Ho * Wp * LANES
    T, F8 = wt.shape[0], wt.shape[1]
    gw = np.zeros(F8 * P, dtype=dx.dtype)  # planes F..F8-1 stay zero, as do junk columns
    gp = np.empty(dout[:1].size * LANES, dtype=dx.dtype)  # a block of dout, if pooled
    dxw = np.empty(C * Hp * Wp * LANES, dtype=dx.dtype)
    for block in range(lo, hi):
        n0 = block * LANES
        _fill_grad(dout, argmax, n0, Wp, gp, gw[: F * P])
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
                    g2, g3 = (
                        gw[a + 2 * P + q0 : a + 2 * P + q1],
                        gw[a + 3 * P + q0 : a + 3 * P + q1],
                    )
                    g4, g5 = (
                        gw[a + 4 * P + q0 : a + 4 * P + q1],
                        gw[a + 5 * P + q0 : a + 5 * P + q1],
                    )
                    g6, g7 = (
                        gw[a + 6 * P + q0 : a + 6 * P + q1],
                        gw[a + 7 * P + q0 : a + 7 * P + q1],
                    )
                    w0, w1, w2, w3 = wt[t, f], wt[t, f + 1], wt[t, f + 2], wt[t, f + 3]
                    w4, w5, w6, w7 = wt[t, f + 4], wt[t, f + 5], wt[t, f + 6], wt[t, f + 7]
                    for q in range(q1 - q0):
                        first = (w0 * g0[q] + w1 * g1[q]) + (w2 * g2[q] + w3 * g3[q])
                        second = (w4 * g4[q] + w5 * g5[q]) + (w6 * g6[q] + w7 * g7[q])
                        dst[q] += first + second
        for c in range(C):
            _unfill_lanes(dxw[((c * Hp + pad) * Wp + pad) * LANES :], n0, c, Wp, dx)


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
            for f, h in pairs of filters:       # h = f + 1 (or f again if F is odd)
                for t in groups of 4 taps:      # the last group repeats tap T-1 if T % 4 != 0
                    for each of the 4 taps:
                        dw_b[block, f, t] = sum over q < L * LANES of g[f, q] * xw[offs[t] + q]
                        dw_b[block, h, t] = the same with g[h]
            db_b[block, f] = sum(g[f])          # the junk columns and missing images are zeros
        dw, db = sum of dw_b over blocks, sum of db_b over blocks     # in block order
    """
    K = x.shape[2] + 2 * pad - dout.shape[2] + 1
    return backward_weight(x, dout, NO_ARGMAX, pad, K)


def backward_weight(
    x: np.ndarray, dout: np.ndarray, argmax: np.ndarray, pad: int, K: int
) -> tuple[np.ndarray, np.ndarray]:
    """conv2d_backward_weight for K x K filters; with an argmax that is not empty, dout is the
    gradient of the pooled output and argmax the pooling's (kernels/conv_pool.py)."""
    N, C, H, W = x.shape
    F = dout.shape[1]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - K + 1, Wp - K + 1
    if dout.shape[0] != N or K < 1 or not _fits(dout, argmax, Ho, Wo):
        raise ValueError("conv2d_backward_weight: x, dout, pad do not fit together")
    T = C * K * K
    blocks = _blocks(N)
    dw_b = np.empty((blocks, F * T), dtype=x.dtype)
    db_b = np.empty((blocks, F), dtype=x.dtype)
    offs = _tap_offsets(C, K, Hp, Wp)
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    x = np.ascontiguousarray(x)
    over_images(_backward_weight_blocks, blocks, x, dout, argmax, offs, pad, Ho, Wo, dw_b, db_b)
    # Rows added in block order (NumPy adds along a non-contiguous axis row by row).
    return dw_b.sum(axis=0).reshape(F, C, K, K), db_b.sum(axis=0)


@njit(cache=True, fastmath=True, nogil=True)
def _backward_weight_blocks(x, dout, argmax, offs, pad, Ho, Wo, dw_b, db_b, lo, hi):
    """backward_weight's terms of blocks lo..hi-1 into dw_b[lo:hi], db_b[lo:hi]."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    F = dout.shape[1]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    L, P = ((Ho - 1) * Wp + Wo) * LANES, Ho * Wp * LANES
    T = dw_b.shape[1] // F
    xw = np.zeros(C * Hp * Wp * LANES, dtype=x.dtype)
    # The junk columns of g must be zero: they meet real pixels of xw in the sums.
    gw = np.zeros(F * P, dtype=x.dtype)
    gp = np.empty(dout[:1].size * LANES, dtype=x.dtype)  # a block of dout, if pooled
    for block in range(lo, hi):
        n0 = block * LANES
        _fill_lanes(x, n0, pad, Wp, xw)
        _fill_grad(dout, argmax, n0, Wp, gp, gw)
        for f in range(F):
            total = x.dtype.type(0)  # a loop, not .sum(): faster to compile
            for q in range(f * P, (f + 1) * P):
                total += gw[q]
            db_b[block, f] = total
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
                f0 = f1 = f2 = f3 = h0 = h1 = h2 = h3 = x.dtype.type(0)
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
                dw_b[block, row_f + t0], dw_b[block, row_f + t1] = f0, f1
                dw_b[block, row_f + t2], dw_b[block, row_f + t3] = f2, f3
                dw_b[block, row_h + t0], dw_b[block, row_h + t1] = h0, h1
                dw_b[block, row_h + t2], dw_b[block, row_h + t3] = h2, h3


def conv2d_backward_weight_numpy(
    x: np.ndarray, dout: np.ndarray, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin: dw[f, c, kh, kw] = sum over n, oh, ow of dout times that tap's input pixel."""
    K = x.shape[2] + 2 * pad - dout.shape[2] + 1
    windows = sliding_window_view(_pad_planes(x, pad), (K, K), axis=(2, 3))  # (N, C, Ho, Wo, K, K)
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, K, K)
    return dw, dout.sum(axis=(0, 2, 3))
