"""kernels/matmul.py: large products split between threads, the same as one BLAS call."""

import warnings

import numpy as np

from tinyprune.kernels.matmul import SPLIT_MACS, matmul
from tinyprune.kernels.threads import get_threads, set_threads


def test_split_products_equal_numpy_and_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 800)).astype(np.float32)  # 200 rows: 3 full blocks, 1 short
    b = rng.standard_normal((800, 500)).astype(np.float32)
    assert a.shape[0] * a.shape[1] * b.shape[1] >= SPLIT_MACS  # this one is split
    threads = get_threads()
    try:
        results = []
        for n in (1, 2, 3):
            set_threads(n)
            results.append(matmul(a, b))
    finally:
        set_threads(threads)
    np.testing.assert_allclose(results[0], a @ b, rtol=1e-5, atol=1e-4)
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])


def test_small_products_are_plain_numpy():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(matmul(a, b), a @ b)


def test_the_callers_floating_point_error_handling_holds_in_every_thread():
    a = np.full((256, 400), 1e30, np.float32)
    b = np.full((400, 300), 1e30, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"):
            assert np.isinf(matmul(a, b)).all()  # no warning from any thread
