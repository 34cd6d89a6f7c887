"""One Adam step over a masked parameter, in one pass: the numba kernel and its NumPy twin.

Adam touches every weight several times a step (gradient, two moments, the update, the mask).
As NumPy expressions that is a dozen passes over the arrays and as many temporaries: for
LeNet-300-100 at batch 60 it took 2.5x as long as the forward and backward passes together.
Fused into one loop it reads and writes each element once. Both versions work in place (an
optimizer must not allocate new weights every step) on C-contiguous arrays of one float dtype.
"""

import numpy as np
from numba import njit, prange


# No fastmath: it allows approximate square roots and divisions, and fused multiply-adds, in the
# vectorised body of a loop but not in its scalar remainder. Which elements fall in which depends
# on where the threads' chunks start, so the bits would depend on the thread count, and Adam's
# m / sqrt(v) blows such last-bit differences up within a few dozen steps. Plain IEEE
# arithmetic vectorises here just as well, and gives the twin's bits exactly.
@njit(cache=True, parallel=True)
def masked_adam_step(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    keep: np.ndarray,
    b1: float,
    b2: float,
    step_size: float,
    eps: float,
) -> None:
    """w, g, m, v: arrays of one shape and float dtype; keep: bool, same shape (True keeps).
    step_size = lr sqrt(1 - b2^t) / (1 - b1^t) and eps = eps sqrt(1 - b2^t) fold in Adam's
    bias corrections. In place, constants cast to the arrays' dtype:

        for i in prange(w.size):                # parallel over elements; writes w, m, v [i] only
            if keep[i]:
                m[i] = b1 m[i] + (1 - b1) g[i];  v[i] = b2 v[i] + (1 - b2) g[i]^2
                w[i] -= step_size m[i] / (sqrt(v[i]) + eps)
            else:
                m[i] = v[i] = w[i] = 0
    """
    if not (
        w.flags.c_contiguous
        and g.flags.c_contiguous
        and m.flags.c_contiguous
        and v.flags.c_contiguous
        and keep.flags.c_contiguous
    ):
        raise ValueError("masked_adam_step: arrays must be C-contiguous")  # else reshape copies
    wf, gf, kf = w.reshape(-1), g.reshape(-1), keep.reshape(-1)
    mf, vf = m.reshape(-1), v.reshape(-1)
    t = w.dtype.type
    b1_, b2_, c1, c2 = t(b1), t(b2), t(1 - b1), t(1 - b2)
    s, e, zero = t(step_size), t(eps), t(0)
    for i in prange(wf.size):
        mi, vi, wi = zero, zero, zero
        if kf[i]:
            gi = gf[i]
            mi = b1_ * mf[i] + c1 * gi
            vi = b2_ * vf[i] + c2 * gi * gi
            wi = wf[i] - s * mi / (np.sqrt(vi) + e)
        # One store per statement: in a prange loop numba 0.68 dropped tuple stores
        # (mf[i], vf[i] = mi, vi) without a word.
        mf[i] = mi
        vf[i] = vi
        wf[i] = wi


def masked_adam_step_numpy(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    keep: np.ndarray,
    b1: float,
    b2: float,
    step_size: float,
    eps: float,
) -> None:
    """NumPy twin: the same step as whole-array expressions."""
    t = w.dtype.type
    g = np.where(keep, g, t(0))
    m[...] = (t(b1) * m + t(1 - b1) * g) * keep
    v[...] = (t(b2) * v + t(1 - b2) * g * g) * keep
    w[...] = (w - t(step_size) * m / (np.sqrt(v) + t(eps))) * keep
