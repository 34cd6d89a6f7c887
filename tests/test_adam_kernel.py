"""The fused Adam kernel against its NumPy twin, pruned elements included."""
import numba
import numpy as np
import pytest

from tinyprune.kernels.adam import masked_adam_step, masked_adam_step_numpy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (30, 41), (3, 4, 5)])
def test_adam_kernel_matches_twin_over_steps(dtype, shape):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape).astype(dtype)
    keep = rng.random(shape) < 0.6
    state = {f: [w.copy(), np.zeros_like(w), np.zeros_like(w)]
             for f in (masked_adam_step, masked_adam_step_numpy)}
    for t in range(1, 6):
        g = rng.standard_normal(shape).astype(dtype)
        correction = np.sqrt(1 - 0.999 ** t)
        for f, (w_, m, v) in state.items():
            f(w_, g, m, v, keep, 0.9, 0.999, 1e-3 * correction / (1 - 0.9 ** t), 1e-8 * correction)
    (w1, m1, v1), (w2, m2, v2) = state.values()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for a, b in ((w1, w2), (m1, m2), (v1, v2)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        assert np.all(a[~keep] == 0.0)
    assert np.all(w1[keep] != w[keep])


def test_adam_kernel_refuses_a_non_contiguous_weight():
    """A strided view would be updated in a copy: refused rather than silently lost."""
    w = np.zeros((4, 4))[:, ::2]
    with pytest.raises((ValueError, numba.core.errors.TypingError), match="contiguous"):
        masked_adam_step(w, w, w.copy(), w.copy(), np.ones(w.shape, bool), 0.9, 0.999, 0.1, 1e-8)
