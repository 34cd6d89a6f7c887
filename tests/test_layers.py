"""Every layer, the loss and the whole model against float64 finite differences."""

import numpy as np
import pytest
from helpers import numerical_gradient

from tinyprune.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5
from tinyprune.train.loop import SECOND_PROCESS, warm_up


def check_layer(layer, x, rng):
    """backward() of loss = sum(forward(x) * G) against finite differences, for x and params."""
    g = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float((layer.forward(x) * g).sum())

    layer.forward(x)
    dx = layer.backward(g)
    analytic = {name: p.grad.copy() for name, p in layer.params.items()}
    if dx is not None:
        np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for name, p in layer.params.items():
        np.testing.assert_allclose(
            analytic[name], numerical_gradient(loss, p.value), rtol=1e-6, atol=1e-8, err_msg=name
        )


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv2d_gradients(padding):
    rng = np.random.default_rng(padding)
    layer = Conv2d(2, 3, 3, padding=padding, rng=rng, dtype=np.float64)
    check_layer(layer, rng.standard_normal((2, 2, 6, 5)), rng)


@pytest.mark.slow  # minutes as plain Python: 8-image blocks, and finite differences
@pytest.mark.parametrize("padding", [0, 2])
def test_conv2d_gradients_as_matrix_products(padding):
    # 16 channels x 4 x 4 = 256 taps per filter: this layer runs on kernels/conv_gemm.py.
    rng = np.random.default_rng(padding)
    layer = Conv2d(16, 2, 4, padding=padding, rng=rng, dtype=np.float64)
    assert layer.gemm
    check_layer(layer, rng.standard_normal((2, 16, 5, 4)), rng)


def test_conv2d_without_input_gradient_still_fills_weight_gradients():
    rng = np.random.default_rng(0)
    layer = Conv2d(1, 2, 3, padding=1, rng=rng, dtype=np.float64, input_grad=False)
    layer.forward(rng.standard_normal((2, 1, 5, 5)))
    assert layer.backward(np.ones((2, 2, 5, 5))) is None
    assert np.abs(layer.weight.grad).sum() > 0


def test_maxpool_gradients():
    rng = np.random.default_rng(1)
    # A permutation: all values distinct, so no window has a tie that would make
    # the function non-differentiable there.
    x = rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / (2 * 3 * 6 * 6)
    check_layer(MaxPool2d(), x, rng)


def test_relu_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink at 0
    check_layer(ReLU(), x, rng)


def test_flatten_gradients():
    rng = np.random.default_rng(3)
    check_layer(Flatten(), rng.standard_normal((2, 3, 2, 2)), rng)


def test_linear_gradients():
    rng = np.random.default_rng(4)
    check_layer(Linear(5, 4, rng, dtype=np.float64), rng.standard_normal((3, 5)), rng)


def test_softmax_cross_entropy_by_hand():
    loss = SoftmaxCrossEntropy()
    # Two equal logits: softmax is (1/2, 1/2), so the loss is log 2 and the
    # gradient is (p - onehot) / N.
    assert loss.forward(np.array([[0.0, 0.0]]), np.array([1])) == pytest.approx(np.log(2))
    np.testing.assert_allclose(loss.backward(), [[0.5, -0.5]])


def test_softmax_cross_entropy_gradients_and_stability():
    rng = np.random.default_rng(5)
    logits, labels = rng.standard_normal((4, 10)) * 3, rng.integers(0, 10, 4)
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    np.testing.assert_allclose(
        loss.backward(),
        numerical_gradient(lambda: loss.forward(logits, labels), logits),
        rtol=1e-6,
        atol=1e-9,
    )
    assert np.isfinite(loss.forward(np.array([[1000.0, -1000.0]]), np.array([1])))


def test_lenet5_has_61706_parameters():
    assert lenet5().num_params() == 61_706


@pytest.mark.slow  # 800 forward passes: minutes as plain Python
def test_lenet5_gradients_end_to_end():
    """The whole model in float64: every parameter's gradient against finite differences."""
    rng = np.random.default_rng(6)
    model = lenet5(seed=6, dtype=np.float64)
    x, labels = rng.standard_normal((2, 1, 28, 28)), np.array([3, 7])
    loss_fn = SoftmaxCrossEntropy()

    def loss():
        return loss_fn.forward(model.forward(x), labels)

    loss()
    model.backward(loss_fn.backward())
    for name, p in model.params().items():
        # 40 coordinates of each parameter keep the test fast and still touch every layer.
        picks = rng.choice(p.value.size, size=min(p.value.size, 40), replace=False)
        np.testing.assert_allclose(
            p.grad.reshape(-1)[picks],
            numerical_gradient(loss, p.value, indices=picks),
            rtol=1e-5,
            atol=1e-8,
            err_msg=name,
        )


def test_linear_without_input_grad_gives_the_same_weight_gradients():
    """LeNet-300-100's fc1 skips the gradient to the image; its own gradients do not change."""
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((5, 8)), rng.standard_normal((5, 3))
    full, first = (
        Linear(8, 3, np.random.default_rng(1), np.float64, input_grad=flag)
        for flag in (True, False)
    )
    for layer in (full, first):
        layer.forward(x)
    assert full.backward(dout).shape == (5, 8) and first.backward(dout) is None
    np.testing.assert_array_equal(full.weight.grad, first.weight.grad)
    np.testing.assert_array_equal(full.bias.grad, first.bias.grad)


@pytest.mark.parametrize("fused", [False, True])
def test_warm_up_runs_every_layer_forward_then_backward_and_reports_each(fused):
    model = lenet5(fused=fused)
    reported = []
    seconds = warm_up(model, lambda name, s: reported.append(name))
    reported = [name for name in reported if name != SECOND_PROCESS]  # on a first run only
    names = ["conv1", "pool1", "relu1", "conv2", "pool2", "relu2", "flatten", "fc1", "relu3", "fc2"]
    names += ["relu4", "fc3"]
    if fused:  # conv, pool and ReLU as one layer, named for the convolution
        names = [n for n in names if n not in ("pool1", "relu1", "pool2", "relu2")]
    assert reported == [f"{n} forward" for n in names] + [f"{n} backward" for n in names[::-1]]
    assert seconds >= 0 and np.abs(model.layers["conv1"].params["weight"].grad).sum() > 0
