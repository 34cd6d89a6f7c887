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
    state = {
        f: [w.copy(), np.zeros_like(w), np.zeros_like(w)]
        for f in (masked_adam_step, masked_adam_step_numpy)
    }
    for t in range(1, 6):
        g = rng.standard_normal(shape).astype(dtype)
        correction = np.sqrt(1 - 0.999**t)
        for f, (w_, m, v) in state.items():
            f(w_, g, m, v, keep, 0.9, 0.999, 1e-3 * correction / (1 - 0.9**t), 1e-8 * correction)
    (w1, m1, v1), (w2, m2, v2) = state.values()
    for a, b in ((w1, w2), (m1, m2), (v1, v2)):  # the same IEEE operations in the same order
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
        assert np.all(a[~keep] == 0.0)
    assert np.all(w1[keep] != w[keep])


def test_adam_kernel_refuses_a_non_contiguous_weight():
    """A strided view would be updated in a copy: refused rather than silently lost."""
    w = np.zeros((4, 4))[:, ::2]
    with pytest.raises((ValueError, numba.core.errors.TypingError), match="contiguous"):
        masked_adam_step(w, w, w.copy(), w.copy(), np.ones(w.shape, bool), 0.9, 0.999, 0.1, 1e-8)


def test_adam_kernel_gives_the_same_bits_for_any_thread_count():
    """Workers with 1 thread and a run with all cores must train the same network."""
    rng = np.random.default_rng(1)
    w, g = (rng.standard_normal(10_007).astype(np.float32) for _ in range(2))
    keep = rng.random(10_007) < 0.5

    def steps():
        w_, m, v = w.copy(), np.zeros_like(w), np.full_like(w, 1e-12)
        for _ in range(3):
            masked_adam_step(w_, g, m, v, keep, 0.9, 0.999, 1e-3, 1e-8)
        return w_, m, v

    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = steps()
    finally:
        numba.set_num_threads(threads)
    for got, want in zip(steps(), one_thread):
        np.testing.assert_array_equal(got, want)
