"""Conv and max-pool kernels: hand-computed cases; each numba kernel against its NumPy twin over
hypothesis-drawn shapes in float32 and float64; each twin against float64 finite differences."""

import numpy as np
import pytest
from helpers import assert_close, conv_cases, numerical_gradient
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.kernels.conv import (
    conv2d_backward_input,
    conv2d_backward_input_numpy,
    conv2d_backward_weight,
    conv2d_backward_weight_numpy,
    conv2d_forward,
    conv2d_forward_numpy,
)
from tinyprune.kernels.conv_gemm import (
    col2im,
    col2im_numpy,
    conv2d_backward_input_gemm,
    im2col_numpy,
)
from tinyprune.kernels.pool import (
    maxpool2x2_backward,
    maxpool2x2_backward_numpy,
    maxpool2x2_forward,
    maxpool2x2_forward_numpy,
)
from tinyprune.kernels.threads import get_threads, set_threads

DTYPES = [np.float32, np.float64]
# LeNet-5's layers at batch 2: (x shape, w shape, pad) and pool input shapes.
LENET_CONVS = [((2, 1, 28, 28), (6, 1, 5, 5), 2), ((2, 6, 14, 14), (16, 6, 5, 5), 0)]
LENET_POOLS = [(2, 6, 28, 28), (2, 16, 10, 10)]


def conv_arrays(rng, dtype, x_shape, w_shape):
    """x, w and b for conv2d, uniform in [-1, 1)."""

    def uniform(*shape):
        return rng.uniform(-1, 1, size=shape).astype(dtype)

    return uniform(*x_shape), uniform(*w_shape), uniform(w_shape[0])


# --- hand-computed cases -----------------------------------------------------------------------

X3 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
W2 = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_numpy])
def test_conv_forward_by_hand(forward):
    # out[0, 0] = 1*1 + 2*2 + 3*4 + 4*5 = 37, and so on, plus the bias 0.5.
    out = forward(X3, W2, np.array([0.5]), 0)
    np.testing.assert_array_equal(out[0, 0], [[37.5, 47.5], [67.5, 77.5]])
    # pad 1: the centre is unchanged; a corner sees one pixel through the opposite tap.
    out = forward(X3, W2, np.array([0.0]), 1)
    assert out.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(out[0, 0, 1:3, 1:3], [[37, 47], [67, 77]])
    assert (out[0, 0, 0, 0], out[0, 0, 0, 3], out[0, 0, 3, 0], out[0, 0, 3, 3]) == (
        4 * 1,
        3 * 3,
        2 * 7,
        1 * 9,
    )


@pytest.mark.parametrize("backward_input", [conv2d_backward_input, conv2d_backward_input_numpy])
def test_conv_backward_input_by_hand(backward_input):
    # With dout all ones, dx[i, j] sums the taps w[kh, kw] whose window covers pixel (i, j).
    dx = backward_input(np.ones((1, 1, 2, 2)), W2, 0, 3, 3)
    np.testing.assert_array_equal(dx[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


@pytest.mark.parametrize("backward_weight", [conv2d_backward_weight, conv2d_backward_weight_numpy])
def test_conv_backward_weight_by_hand(backward_weight):
    # With dout all ones, dw[kh, kw] sums the 2x2 block of x starting at (kh, kw).
    dw, db = backward_weight(X3, np.ones((1, 1, 2, 2)), 0)
    np.testing.assert_array_equal(dw[0, 0], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(db, [4])


# A 3x7 input: three 2x2 windows; row 2 and column 6 (with their 99s) are dropped.
POOL_X = np.array(
    [
        [0.0, 0.0, 1.0, 3.0, -1.0, -2.0, 99.0],
        [0.0, 0.0, 3.0, 2.0, -0.5, -0.5, 99.0],
        [99.0, 99.0, 99.0, 99.0, 99.0, 99.0, 99.0],
    ]
).reshape(1, 1, 3, 7)


@pytest.mark.parametrize("forward", [maxpool2x2_forward, maxpool2x2_forward_numpy])
def test_pool_forward_by_hand_ties_go_to_the_first_maximum(forward):
    out, argmax = forward(POOL_X)
    np.testing.assert_array_equal(out[0, 0], [[0.0, 3.0, -0.5]])
    np.testing.assert_array_equal(argmax[0, 0], [[0, 1, 2]])  # all tied; 1 before 2; 2 before 3
    assert argmax.dtype == np.uint8


@pytest.mark.parametrize("backward", [maxpool2x2_backward, maxpool2x2_backward_numpy])
def test_pool_backward_by_hand(backward):
    dx = backward(np.array([[[[10.0, 20.0, 30.0]]]]), np.array([[[[0, 1, 2]]]], np.uint8), 3, 7)
    expected = np.zeros((3, 7))
    expected[0, 0], expected[0, 3], expected[1, 4] = 10, 20, 30
    np.testing.assert_array_equal(dx[0, 0], expected)


# --- each kernel equals its twin ---------------------------------------------------------------


def check_conv_against_twin(dtype, x_shape, w_shape, pad, seed):
    rng = np.random.default_rng(seed)
    x, w, b = conv_arrays(rng, dtype, x_shape, w_shape)
    out = conv2d_forward(x, w, b, pad)
    assert_close(out, conv2d_forward_numpy(x, w, b, pad))
    g = rng.uniform(-1, 1, size=out.shape).astype(dtype)
    H, W = x_shape[2:]
    assert_close(
        conv2d_backward_input(g, w, pad, H, W), conv2d_backward_input_numpy(g, w, pad, H, W)
    )
    dw, db = conv2d_backward_weight(x, g, pad)
    dw_twin, db_twin = conv2d_backward_weight_numpy(x, g, pad)
    assert_close(dw, dw_twin)
    assert_close(db, db_twin)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(deadline=None, max_examples=50)
@given(case=conv_cases())
def test_conv_kernels_match_twins(dtype, case):
    check_conv_against_twin(dtype, *case)


@pytest.mark.parametrize("x_shape, w_shape, pad", LENET_CONVS)
def test_conv_kernels_match_twins_at_lenet_shapes(x_shape, w_shape, pad):
    check_conv_against_twin(np.float32, x_shape, w_shape, pad, seed=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "x_shape, w_shape, pad",
    [
        ((2, 1, 5, 6), (3, 1, 1, 1), 2),  # pad > K - 1: backward to the input crops its result
        ((1, 2, 4, 3), (1, 2, 2, 2), 2),  # F = 1: the filter pair is one filter twice
        ((3, 3, 6, 6), (5, 3, 3, 3), 1),  # odd F; C*K*K = 27 taps, a group of 4 left short
        ((2, 1, 8, 8), (4, 1, 2, 2), 0),  # 4 taps exactly: one group, no padding taps
    ],
)
def test_conv_kernels_match_twins_at_block_edges(dtype, x_shape, w_shape, pad):
    check_conv_against_twin(dtype, x_shape, w_shape, pad, seed=1)


def check_pool_against_twin(x):
    """Exact equality: pooling only compares and copies."""
    out, argmax = maxpool2x2_forward(x)
    out_twin, argmax_twin = maxpool2x2_forward_numpy(x)
    np.testing.assert_array_equal(out, out_twin)
    np.testing.assert_array_equal(argmax, argmax_twin)
    g = np.random.default_rng(0).uniform(-1, 1, size=out.shape).astype(x.dtype)
    H, W = x.shape[2:]
    np.testing.assert_array_equal(
        maxpool2x2_backward(g, argmax, H, W), maxpool2x2_backward_numpy(g, argmax, H, W)
    )


def relu_of_small_integers(rng, shape, dtype):
    """Plenty of tied windows, all-zero ones included, as after a ReLU."""
    return np.maximum(rng.integers(-2, 3, size=shape), 0).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(deadline=None, max_examples=50)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9)),
    seed=st.integers(0, 2**32 - 1),
)
def test_pool_kernels_match_twins(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    check_pool_against_twin(relu_of_small_integers(rng, shape, dtype))
    check_pool_against_twin(rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("shape", LENET_POOLS)
def test_pool_kernels_match_twins_at_lenet_shapes(shape):
    check_pool_against_twin(relu_of_small_integers(np.random.default_rng(0), shape, np.float32))


@pytest.mark.parametrize(
    "forward, backward",
    [
        (maxpool2x2_forward, maxpool2x2_backward),
        (maxpool2x2_forward_numpy, maxpool2x2_backward_numpy),
    ],
)
def test_relu_after_pool_is_relu_before_pool_forward_and_backward(forward, backward):
    # lenet5 pools first and applies ReLU to 4x fewer numbers; this is why that is the same
    # network, ties and all-negative windows included.
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(3, 4, 6, 6)).astype(np.float32)
    g = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    before, argmax_before = forward(np.maximum(x, 0))  # conv -> ReLU -> pool
    dx_before = backward(g, argmax_before, 6, 6) * (x > 0)
    pooled, argmax_after = forward(x)  # conv -> pool -> ReLU
    after = np.maximum(pooled, 0)
    dx_after = backward(g * (pooled > 0), argmax_after, 6, 6)
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(dx_after, dx_before)
    assert (dx_after != 0).any() and (x <= 0).any()


def test_kernels_give_the_same_bits_for_any_thread_count():
    # Each block of 8 images is one thread's work, and backward_weight sums blocks in a fixed
    # order. 37 images: 5 blocks, the last short, shared unevenly by 1, 2 or 3 threads.
    rng = np.random.default_rng(0)
    x, w, b = conv_arrays(rng, np.float32, (37, 2, 7, 7), (3, 2, 3, 3))
    g = rng.uniform(-1, 1, size=(37, 3, 7, 7)).astype(np.float32)

    def run_all():
        return [
            conv2d_forward(x, w, b, 1),
            conv2d_backward_input(g, w, 1, 7, 7),
            *conv2d_backward_weight(x, g, 1),
            *maxpool2x2_forward(x),
        ]

    threads = get_threads()
    try:
        set_threads(1)
        one_thread = run_all()
        for n in (2, 3):
            set_threads(n)
            for got, want in zip(run_all(), one_thread):
                np.testing.assert_array_equal(got, want)
    finally:
        set_threads(threads)


# --- each twin against float64 finite differences ----------------------------------------------


@pytest.mark.parametrize("K, pad", [(3, 1), (2, 2), (1, 0), (5, 2)])
def test_conv_twins_match_finite_differences(K, pad):
    rng = np.random.default_rng(K * 10 + pad)
    x, w, b = conv_arrays(rng, np.float64, (2, 2, 5, 4), (3, 2, K, K))
    g = rng.standard_normal(conv2d_forward_numpy(x, w, b, pad).shape)

    def loss():
        return float((conv2d_forward_numpy(x, w, b, pad) * g).sum())

    dw, db = conv2d_backward_weight_numpy(x, g, pad)
    np.testing.assert_allclose(
        conv2d_backward_input_numpy(g, w, pad, 5, 4),
        numerical_gradient(loss, x),
        rtol=1e-6,
        atol=1e-8,
    )
    np.testing.assert_allclose(dw, numerical_gradient(loss, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_gradient(loss, b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 2, 5, 7)])
def test_pool_twins_match_finite_differences(shape):
    rng = np.random.default_rng(0)
    # Distinct values 0.1 apart: no ties, so nudging by 1e-6 never moves a maximum.
    x = 0.1 * rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)
    out, argmax = maxpool2x2_forward_numpy(x)
    g = rng.standard_normal(out.shape)

    def loss():
        return float((maxpool2x2_forward_numpy(x)[0] * g).sum())

    np.testing.assert_allclose(
        maxpool2x2_backward_numpy(g, argmax, *shape[2:]),
        numerical_gradient(loss, x),
        rtol=1e-6,
        atol=1e-8,
    )


# --- dtypes and shape checks -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("twin", [False, True])
def test_every_kernel_keeps_the_float_dtype(dtype, twin):
    forward, backward_input, backward_weight, pool, pool_backward = (
        (
            conv2d_forward_numpy,
            conv2d_backward_input_numpy,
            conv2d_backward_weight_numpy,
            maxpool2x2_forward_numpy,
            maxpool2x2_backward_numpy,
        )
        if twin
        else (
            conv2d_forward,
            conv2d_backward_input,
            conv2d_backward_weight,
            maxpool2x2_forward,
            maxpool2x2_backward,
        )
    )
    x, w, b = conv_arrays(np.random.default_rng(0), dtype, (2, 2, 6, 6), (3, 2, 3, 3))
    out = forward(x, w, b, 1)
    dw, db = backward_weight(x, out, 1)
    pooled, argmax = pool(x)
    results = [
        out,
        backward_input(out, w, 1, 6, 6),
        dw,
        db,
        pooled,
        pool_backward(pooled, argmax, 6, 6),
    ]
    assert [r.dtype for r in results] == [dtype] * len(results)
    assert argmax.dtype == np.uint8


def test_kernels_reject_shapes_that_do_not_fit():
    # The numba kernels do not check bounds, so a wrong H or W would read past the arrays.
    w = np.ones((2, 1, 3, 3))
    with pytest.raises(ValueError):
        conv2d_backward_input(np.ones((1, 2, 4, 4)), w, 0, 7, 6)
    with pytest.raises(ValueError):
        conv2d_forward(np.ones((1, 3, 5, 5)), w, np.ones(2), 0)
    with pytest.raises(ValueError):
        maxpool2x2_backward(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.uint8), 6, 6)


# --- the convolution lowered to matrix products (conv_gemm.py) ---------------------------------


def check_gemm_against_twins(dtype, x_shape, w_shape, pad, seed):
    """col2im against its twin; the lowered backward to the input against conv's twin."""
    rng = np.random.default_rng(seed)
    x, w, b = conv_arrays(rng, dtype, x_shape, w_shape)
    K, (C, H, W) = w_shape[2], x_shape[1:]
    g = rng.uniform(-1, 1, size=conv2d_forward_numpy(x, w, b, pad).shape).astype(dtype)
    assert_close(
        conv2d_backward_input_gemm(g, w, pad, H, W), conv2d_backward_input_numpy(g, w, pad, H, W)
    )
    dcols = rng.uniform(-1, 1, size=im2col_numpy(x, K, pad).shape).astype(dtype)
    N = x_shape[0]
    assert_close(col2im(dcols, N, C, H, W, K, pad), col2im_numpy(dcols, N, C, H, W, K, pad))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(deadline=None, max_examples=50)
@given(case=conv_cases())
def test_gemm_conv_kernels_match_twins(dtype, case):
    check_gemm_against_twins(dtype, *case)


@pytest.mark.parametrize("x_shape, w_shape, pad", LENET_CONVS + [((33, 2, 6, 6), (3, 2, 3, 3), 1)])
def test_gemm_conv_kernels_match_twins_at_lenet_shapes_and_uneven_shares(x_shape, w_shape, pad):
    # 33 images: the threads' shares differ by one image.
    check_gemm_against_twins(np.float32, x_shape, w_shape, pad, seed=0)


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), d> = <x, col2im(d)>: col2im sends each gradient back where im2col took it from.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    d = rng.standard_normal(im2col_numpy(x, 3, 2).shape)
    assert np.isclose((im2col_numpy(x, 3, 2) * d).sum(), (x * col2im(d, 2, 3, 5, 4, 3, 2)).sum())


def test_gemm_kernels_give_the_same_bits_for_any_thread_count():
    rng = np.random.default_rng(0)
    x, w, b = conv_arrays(rng, np.float32, (37, 6, 14, 14), (16, 6, 5, 5))
    g = rng.uniform(-1, 1, size=(37, 16, 10, 10)).astype(np.float32)

    def run_all():
        return [conv2d_backward_input_gemm(g, w, 0, 14, 14)]

    threads = get_threads()
    try:
        set_threads(1)
        one_thread = run_all()
        set_threads(3)
        three_threads = run_all()
    finally:
        set_threads(threads)
    for got, want in zip(three_threads, one_thread):
        np.testing.assert_array_equal(got, want)
