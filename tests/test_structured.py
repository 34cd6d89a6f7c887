"""Learned structured pruning: the channel scale's gradients, group lasso's penalty and
proximal step, slimming's scales folded away, and dead units removed without changing outputs."""

import numpy as np
import pytest
from helpers import numerical_gradient
from test_layers import check_layer

from tinyprune.config import TrainConfig
from tinyprune.data.datasets import MNIST
from tinyprune.data.mnist import Mnist
from tinyprune.data.transforms import to_input
from tinyprune.nn.channel_scale import ChannelScale
from tinyprune.nn.model import lenet5_caffe
from tinyprune.nn.widths import lenet5_caffe_widths
from tinyprune.prune import group_lasso, slimming
from tinyprune.prune.structured import learn_structure, remove_dead_units, widths


def images(n=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return to_input(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)).astype(dtype)


@pytest.mark.parametrize("shape", [(3, 4, 5, 5), (6, 7)])
def test_channel_scale_gradients(shape):
    rng = np.random.default_rng(len(shape))
    layer = ChannelScale(shape[1], np.float64)
    layer.scale.value[...] = rng.uniform(-2, 2, shape[1])
    check_layer(layer, rng.standard_normal(shape), rng)


def test_widths_builder_at_caffe_widths_is_lenet5_caffe():
    a, b = lenet5_caffe_widths(seed=7), lenet5_caffe(seed=7)
    for (name, p), q in zip(a.params().items(), b.params().values()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=name)
    small = lenet5_caffe_widths((3, 4, 5))
    assert widths(small) == (3, 4, 5) and small.forward(images(2, dtype=np.float32)).shape == (
        2,
        10,
    )
    with pytest.raises(ValueError, match="at least 1"):
        lenet5_caffe_widths((3, 0, 5))


def test_group_lasso_gradient_is_the_penalty_derivative():
    model = lenet5_caffe_widths((2, 3, 4), seed=1, dtype=np.float64)
    lam = 0.3
    for name, layer in group_lasso.unit_layers(model).items():
        dw, db = group_lasso.penalty_gradient(layer, lam)
        for analytic, p in ((dw, layer.weight), (db, layer.bias)):
            numeric = numerical_gradient(lambda: group_lasso.penalty(model, lam), p.value)
            np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_group_lasso_proximal_step_by_hand():
    """fc1 (in 16) groups have 17 entries: t = lr lam sqrt(17) = 1 exactly when lr lam =
    1 / sqrt(17). A group of norm 5 keeps 1 - 1/5 of itself; one of norm 0.5 < t goes to 0."""
    model = lenet5_caffe_widths((1, 1, 3), seed=2, dtype=np.float64)
    fc1 = model.layers["fc1"]
    fc1.weight.value[...] = 0
    fc1.weight.value[0, :2], fc1.bias.value[0] = (3.0, 4.0), 0.0
    fc1.weight.value[1, 5], fc1.bias.value[1] = 0.3, 0.4
    fc1.weight.value[2, 1], fc1.bias.value[2] = 0.0, 0.0
    lam = 1e-3
    group_lasso.proximal_step(model, lam, lr=1 / (lam * np.sqrt(17)))
    np.testing.assert_allclose(fc1.weight.value[0, :2], [2.4, 3.2])
    assert not fc1.weight.value[1:].any() and not fc1.bias.value[1:].any()
    assert not np.isnan(fc1.weight.value).any()  # a group already at 0 stays 0, no 0/0


def test_group_lasso_proximal_step_minimises_its_objective():
    """prox(v) = argmin ||w - v||^2 / 2 + t ||w||: no nearby w does better, group by group."""
    model = lenet5_caffe_widths((3, 2, 2), seed=3, dtype=np.float64)
    conv1 = model.layers["conv1"]
    conv1.weight.value[1] *= 0.01  # a short group, which goes to 0
    conv1.bias.value[1] *= 0.01
    v = np.concatenate([conv1.weight.value.reshape(3, -1), conv1.bias.value[:, None]], axis=1)
    lam, lr = 0.01, 0.5
    t = lr * lam * np.sqrt(26)
    group_lasso.proximal_step(model, lam, lr)
    w = np.concatenate([conv1.weight.value.reshape(3, -1), conv1.bias.value[:, None]], axis=1)
    assert not w[1].any() and w[0].any() and w[2].any()
    rng = np.random.default_rng(0)
    for g in range(3):

        def objective(x, g=g):
            return 0.5 * np.sum((x - v[g]) ** 2) + t * np.linalg.norm(x)

        for _ in range(20):
            assert objective(w[g]) <= objective(w[g] + 1e-3 * rng.standard_normal(26)) + 1e-15


def test_slimming_scales_follow_each_unit_and_start_as_the_identity():
    model = lenet5_caffe_widths((3, 4, 5), seed=4, dtype=np.float64)
    x = images()
    before = model.forward(x)
    scaled = slimming.with_scales(model)
    names = list(scaled.layers)
    for unit, after in (("conv1", "pool1"), ("conv2", "pool2"), ("fc1", "relu1")):
        assert names[names.index(after) + 1] == f"{unit}_scale"
    assert "fc2_scale" not in names
    np.testing.assert_array_equal(scaled.forward(x), before)


def test_slimming_proximal_step_soft_thresholds_and_keeps_scales_nonnegative():
    scaled = slimming.with_scales(lenet5_caffe_widths((3, 2, 2), seed=5))
    scales = slimming.scales(scaled)
    scales["conv1"][...] = [1.0, 0.05, -0.2]
    slimming.proximal_step(scaled, lam=0.1, lr=1.0)
    np.testing.assert_allclose(scales["conv1"], [0.9, 0.0, 0.0])


def test_folding_scales_and_removing_zeroed_units_keep_the_outputs():
    model = lenet5_caffe_widths((6, 8, 10), seed=6, dtype=np.float64)
    scaled = slimming.with_scales(model)
    rng = np.random.default_rng(6)
    for s in slimming.scales(scaled).values():
        s[...] = rng.uniform(0.5, 2.0, s.shape) * (rng.random(s.shape) > 0.4)
    zeros = tuple(int((s == 0).sum()) for s in slimming.scales(scaled).values())
    x = images()
    expected = scaled.forward(x)
    folded = slimming.fold_scales(scaled)
    np.testing.assert_allclose(folded.forward(x), expected, rtol=1e-12, atol=1e-12)
    small = remove_dead_units(folded, tol=1e-3)
    assert widths(small) == tuple(w - z for w, z in zip((6, 8, 10), zeros))
    np.testing.assert_allclose(small.forward(x), expected, rtol=1e-10, atol=1e-10)


def test_a_layer_with_every_group_at_zero_keeps_its_largest_unit():
    model = lenet5_caffe_widths((4, 5, 6), seed=8, dtype=np.float64)
    model.layers["conv2"].weight.value[...] = 0
    model.layers["conv2"].bias.value[...] = 0
    assert widths(remove_dead_units(model, tol=1e-3)) == (4, 1, 6)


def random_data(n=64, seed=0) -> Mnist:
    rng = np.random.default_rng(seed)
    x, y = (
        rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
        rng.integers(0, 10, n).astype(np.uint8),
    )
    return Mnist(x, y, x[:16], y[:16], MNIST)  # one batch: a single step, fast without numba


@pytest.mark.parametrize("method", ["group-lasso", "slimming"])
def test_learn_structure_removes_units_only_under_a_penalty(method):
    """Without penalty every unit stays; a penalty far too strong leaves one unit a layer."""
    data, train = random_data(), TrainConfig("lenet5-caffe", epochs=1, lr=0.01, seed=0)
    assert widths(learn_structure(lenet5_caffe_widths((4, 5, 6)), data, method, 0.0, train)) == (
        4,
        5,
        6,
    )
    small = learn_structure(lenet5_caffe_widths((4, 5, 6)), data, method, 1e3, train)
    assert widths(small) == (1, 1, 1)


def test_learn_structure_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="group-lasso, slimming"):
        learn_structure(lenet5_caffe_widths((1, 1, 1)), random_data(), "l2", 0.1, TrainConfig())


@pytest.mark.parametrize("method", [group_lasso, slimming])
def test_one_strength_each_layer_presses_only_the_layers_given_one(method):
    model = lenet5_caffe_widths((3, 4, 5), seed=9, dtype=np.float64)
    net = slimming.with_scales(model) if method is slimming else model
    before = {name: p.value.copy() for name, p in net.params().items()}
    method.proximal_step(net, (0.0, 0.0, 1e3), lr=1.0)
    changed = {
        name for name, p in net.params().items() if not np.array_equal(p.value, before[name])
    }
    assert changed == ({"fc1_scale.scale"} if method is slimming else {"fc1.weight", "fc1.bias"})
