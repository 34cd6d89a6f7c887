"""Convolution fused with pooling and ReLU: each kernel against its NumPy twin, and bit for bit
against the separate kernels; a fused model (ConvPool layers) against the plain one."""

import numpy as np
import pytest
from helpers import assert_close, conv_cases
from hypothesis import given, settings

from tinyprune.deploy.sparse_model import SparseModel
from tinyprune.kernels.conv import (
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_forward,
)
from tinyprune.kernels.conv_pool import (
    argmax_planes,
    conv2d_pool_backward_input,
    conv2d_pool_backward_input_numpy,
    conv2d_pool_backward_weight,
    conv2d_pool_backward_weight_numpy,
    conv2d_pool_forward,
    conv2d_pool_forward_numpy,
)
from tinyprune.kernels.pool import maxpool2x2_backward, maxpool2x2_forward
from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d, Flatten, MaxPool2d, ReLU
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5, lenet5_caffe
from tinyprune.prune.criteria import prune
from tinyprune.prune.filters import shrink

LENET_CONVS = [((20, 1, 28, 28), (6, 1, 5, 5), 2), ((20, 6, 14, 14), (16, 6, 5, 5), 0)]


def arrays(rng, dtype, x_shape, w_shape, blank=False):
    """x, w, b uniform in [-1, 1); with blank, x is 0 but for a few pixels, so that many
    windows tie (ties must go to the first maximum, as in pooling)."""
    x = rng.uniform(-1, 1, size=x_shape).astype(dtype)
    if blank:
        x *= rng.random(x_shape) < 0.1
    w = rng.uniform(-1, 1, size=w_shape).astype(dtype)
    return x, w, rng.uniform(-1, 1, size=w_shape[0]).astype(dtype)


def separate(x, w, b, pad, relu, dout):
    """The three kernels one after the other -> out, argmax (N, F, h, w), dw, db, dx."""
    conv = conv2d_forward(x, w, b, pad)
    out, argmax = maxpool2x2_forward(conv)
    if relu:
        dout = dout * (out > 0)  # as ReLU's backward
        out = np.maximum(out, 0)
    dconv = maxpool2x2_backward(dout, argmax, *conv.shape[2:])
    dw, db = conv2d_backward_weight(x, dconv, pad)
    dx = conv2d_backward_input(dconv, w, pad, *x.shape[2:])
    return out, argmax, dw, db, dx


def fused(x, w, b, pad, relu, dout):
    out, argmax = conv2d_pool_forward(x, w, b, pad, relu)
    dw, db = conv2d_pool_backward_weight(x, dout, argmax, pad, w.shape[2])
    dx = conv2d_pool_backward_input(dout, argmax, w, pad, *x.shape[2:])
    return out, argmax, dw, db, dx


def check_against_separate_kernels(dtype, x_shape, w_shape, pad, relu, seed, blank):
    rng = np.random.default_rng(seed)
    x, w, b = arrays(rng, dtype, x_shape, w_shape, blank)
    out, argmax = conv2d_pool_forward(x, w, b, pad, relu)
    dout = rng.uniform(-1, 1, size=out.shape).astype(dtype)
    expected = separate(x, w, b, pad, relu, dout)
    got = fused(x, w, b, pad, relu, dout)
    np.testing.assert_array_equal(got[0], expected[0])
    places = argmax_planes(got[1], len(x))
    if relu:  # 4 marks a ReLU's zero: pooling's own argmax is whatever it was there
        places = np.where(places == 4, expected[1], places)
    np.testing.assert_array_equal(places, expected[1])
    for g, e in zip(got[2:], expected[2:]):
        np.testing.assert_array_equal(g, e)  # the same sums in the same order: the same bits
    return x, w, b, dout, got


@pytest.mark.slow  # a minute as plain Python; the small shapes below run there
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, pad", LENET_CONVS)
def test_lenet_shapes_bit_for_bit_and_against_twins(x_shape, w_shape, pad, relu):
    for blank in (False, True):
        x, w, b, dout, got = check_against_separate_kernels(
            np.float32, x_shape, w_shape, pad, relu, 0, blank
        )
        out, argmax = conv2d_pool_forward_numpy(x, w, b, pad, relu)
        assert_close(got[0], out)
        np.testing.assert_array_equal(argmax_planes(got[1], len(x)), argmax_planes(argmax, len(x)))
        dw, db = conv2d_pool_backward_weight_numpy(x, dout, argmax, pad, w.shape[2])
        assert_close(got[2], dw)
        assert_close(got[3], db)
        assert_close(got[4], conv2d_pool_backward_input_numpy(dout, argmax, w, pad, *x.shape[2:]))


@settings(max_examples=30, deadline=None)
@given(case=conv_cases())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_shape_bit_for_bit(dtype, case):
    """Odd outputs (the last row and column unpooled), outputs too small to pool, short blocks."""
    x_shape, w_shape, pad, seed = case
    for relu in (True, False):
        check_against_separate_kernels(dtype, x_shape, w_shape, pad, relu, seed, blank=seed % 2)


def test_relu_keeps_nan_and_sends_no_gradient_through_zeros():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = np.nan
    w = np.ones((1, 1, 1, 1), np.float32)
    out, argmax = conv2d_pool_forward(x, w, np.array([-1.0], np.float32), 0, relu=True)
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 1, 1] == 0
    assert argmax_planes(argmax, 1)[0, 0, 1, 1] == 4  # max(-1, 0) = 0: no gradient
    dx = conv2d_pool_backward_input(np.ones_like(out), argmax, w, 0, 4, 4)
    assert dx[0, 0, 2:, 2:].sum() == 0


def test_shapes_that_do_not_fit_are_refused():
    rng = np.random.default_rng(0)
    x, w, b = arrays(rng, np.float32, (3, 1, 8, 8), (2, 1, 3, 3))
    out, argmax = conv2d_pool_forward(x, w, b, 0, relu=True)  # conv 6x6 -> pooled 3x3
    with pytest.raises(ValueError, match="do not fit"):
        conv2d_pool_backward_weight(x, out[:, :, :2], argmax, 0, 3)
    with pytest.raises(ValueError, match="do not fit"):
        conv2d_pool_backward_input(out, argmax[:, :1], w, 0, 8, 8)


def logits_and_grads(model, x, y):
    """One forward and backward -> logits, {param: grad}."""
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x)
    loss.forward(logits, y)
    model.backward(loss.backward())
    return logits, {name: p.grad.copy() for name, p in model.params().items()}


def check_fused_equals_plain(build, N, dtype):
    """A fused and a plain model of one seed: the same state, logits and gradients, bit for bit."""
    plain, fused = build(seed=3, dtype=dtype), build(seed=3, dtype=dtype, fused=True)
    kinds = [type(layer) for layer in fused.layers.values()]
    assert kinds[:3] == [ConvPool, ConvPool, Flatten]
    assert not any(isinstance(layer, (MaxPool2d, Conv2d)) for layer in fused.layers.values())
    state = plain.state()
    assert list(fused.state()) == list(state)
    for name, value in fused.state().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, N)
    logits, grads = logits_and_grads(plain, x, y)
    fused_logits, fused_grads = logits_and_grads(fused, x, y)
    np.testing.assert_array_equal(fused_logits, logits)
    for name, grad in grads.items():
        np.testing.assert_array_equal(fused_grads[name], grad, err_msg=name)


# lenet5_caffe: 40 s as plain Python (NUMBA_DISABLE_JIT=1), its convolutions being 3-5x larger
@pytest.mark.parametrize("build", [lenet5, pytest.param(lenet5_caffe, marks=pytest.mark.slow)])
def test_fused_model_equals_plain_model(build):
    check_fused_equals_plain(build, 3, np.float64)


@pytest.mark.slow  # 19 images: three blocks, the last one short
@pytest.mark.parametrize("build", [lenet5, lenet5_caffe])
def test_fused_model_equals_plain_model_in_float32_over_blocks(build):
    check_fused_equals_plain(build, 19, np.float32)


def test_fused_and_plain_models_load_each_others_weights(tmp_path):
    trained = lenet5(seed=1, fused=True)
    trained.save(tmp_path / "fused.npz")
    plain = lenet5(seed=2)
    plain.load(tmp_path / "fused.npz")
    for name, value in trained.state().items():
        np.testing.assert_array_equal(plain.state()[name], value, err_msg=name)
    assert list(lenet5(fused=True).layers) == [
        "conv1",
        "conv2",
        "flatten",
        "fc1",
        "relu3",
        "fc2",
        "relu4",
        "fc3",
    ]
    assert isinstance(lenet5().layers["relu1"], ReLU)


def test_filter_pruning_and_sparse_inference_take_fused_models():
    """prune/filters.py and deploy/sparse_model.py see a ConvPool as its conv block."""
    plain, fused = lenet5(seed=4), lenet5(seed=4, fused=True)
    for model in (plain, fused):
        prune(model, 0.5, "filter")
    small_plain, small_fused = shrink(plain), shrink(fused)
    assert isinstance(small_fused.layers["conv2"], ConvPool)
    assert list(small_fused.state()) == list(small_plain.state())
    for name, value in small_plain.state().items():
        np.testing.assert_array_equal(small_fused.state()[name], value, err_msg=name)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(small_fused.forward(x), small_plain.forward(x))
    np.testing.assert_array_equal(SparseModel(fused).forward(x), SparseModel(plain).forward(x))
