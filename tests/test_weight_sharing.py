"""Weight sharing: k-means by hand, pruned weights stay 0 and take no shared value, at most 2^b
values per layer, and the shared-value gradient is the sum of its members' (finite differences)."""

import numpy as np
import pytest
from helpers import numerical_gradient

from tinyprune.deploy.kmeans import kmeans_1d, nearest
from tinyprune.deploy.weight_sharing import (
    SharedSGD,
    SharedWeight,
    codebook_grad,
    parse_bits,
    share_weights,
)
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5, lenet_300_100
from tinyprune.prune.criteria import prune


def test_kmeans_by_hand():
    centroids, labels = kmeans_1d(np.array([0.0, 0.1, 1.0, 1.1, 0.2]), 2)
    np.testing.assert_allclose(centroids, [0.1, 1.05], rtol=1e-6)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 0])
    # linear start: 3 centroids at 0, 5, 10; the middle one has no members and is dropped
    centroids, labels = kmeans_1d(np.array([0.0, 1.0, 9.0, 10.0]), 3)
    np.testing.assert_allclose(centroids, [0.5, 9.5])
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    assert kmeans_1d(np.zeros(0), 4)[0].size == 0
    np.testing.assert_array_equal(kmeans_1d(np.full(5, 0.3), 4)[1], 0)  # one value, one centroid
    np.testing.assert_array_equal(
        nearest(np.array([-1.0, 0.4, 0.6, 9.0]), np.array([0.0, 1.0])), [0, 0, 1, 1]
    )


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_kmeans_is_a_fixed_point_within_2_to_the_bits(bits):
    x = np.random.default_rng(bits).normal(size=3000)
    centroids, labels = kmeans_1d(x, 2**bits)
    assert 1 <= len(centroids) <= 2**bits and np.all(np.diff(centroids) > 0)
    np.testing.assert_array_equal(labels, nearest(x, centroids.astype(np.float64)))
    for c in range(len(centroids)):  # each centroid is its members' mean (float32)
        assert abs(centroids[c] - x[labels == c].mean()) < 1e-6


def pruned_shared(bits: str, sparsity: float = 0.8):
    model = lenet5(seed=3)
    prune(model, sparsity)
    zeros = {n: p.value == 0 for n, p in model.prunable().items()}
    return model, share_weights(model, parse_bits(bits, model)), zeros


@pytest.mark.parametrize("bits", ["1", "3", "conv=8,fc=5", "conv1=2,conv=4,fc=3"])
def test_pruned_weights_stay_zero_and_at_most_2_to_the_bits_values(bits):
    model, shared, zeros = pruned_shared(bits)
    per_layer = parse_bits(bits, model)
    optimizer = SharedSGD(model.params(), shared, lr=0.001, momentum=0.9)
    before = {n: s.codebook.copy() for n, s in shared.items()}  # training moves them all
    rng = np.random.default_rng(0)
    loss = SoftmaxCrossEntropy()
    for _ in range(4):  # a few steps of training, with momentum
        x = rng.normal(size=(8, 1, 28, 28)).astype(np.float32)
        loss.forward(model.forward(x), rng.integers(0, 10, 8))
        model.backward(loss.backward())
        optimizer.step()
        for name, p in model.prunable().items():
            s = shared[name]
            assert np.all(p.value[zeros[name]] == 0) and np.all(s.index[zeros[name]] == -1)
            assert np.all(s.index[~zeros[name]] >= 0)  # every kept weight has a shared value
            assert len(s.codebook) <= 2 ** per_layer[name.split(".")[0]]
            assert len(np.unique(p.value[~zeros[name]])) <= len(s.codebook)
            np.testing.assert_array_equal(p.value, s.weight())
    assert all(not np.array_equal(s.codebook, before[n]) for n, s in shared.items())


def test_shared_value_gradient_is_the_sum_of_its_members_finite_differences():
    model = lenet_300_100(seed=0, dtype=np.float64)
    prune(model, 0.9, "global")
    shared = {
        n: SharedWeight(s.codebook.astype(np.float64), s.index)
        for n, s in share_weights(model, {"fc1": 3, "fc2": 2, "fc3": 2}).items()
    }
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 1, 28, 28)), rng.integers(0, 10, 6)
    loss_fn = SoftmaxCrossEntropy()

    def loss() -> float:
        for name, p in model.prunable().items():
            p.value[...] = shared[name].weight()
        return loss_fn.forward(model.forward(x), y)

    loss()
    model.backward(loss_fn.backward())
    for name, p in model.prunable().items():
        analytic = codebook_grad(shared[name], p.grad)
        numeric = numerical_gradient(loss, shared[name].codebook)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9, err_msg=name)
        assert np.abs(analytic).max() > 1e-4  # not trivially zero


def test_one_step_by_hand():
    s = SharedWeight(np.array([1.0, -2.0], np.float32), np.array([[0, -1], [1, 0]], np.int16))
    grad = np.array([[0.5, 9.0], [0.25, 0.125]], np.float32)
    np.testing.assert_allclose(codebook_grad(s, grad), [0.625, 0.25])  # the pruned 9.0: nothing
    model = lenet5()
    p = model.layers["fc3"].weight
    p.value, p.grad = s.weight(), grad
    SharedSGD({"fc3.weight": p}, {"fc3.weight": s}, lr=0.1).step()
    np.testing.assert_allclose(s.codebook, [1 - 0.0625, -2 - 0.025], rtol=1e-6)
    np.testing.assert_allclose(p.value, [[0.9375, 0.0], [-2.025, 0.9375]], rtol=1e-6)


def test_parse_bits():
    model = lenet5()
    assert parse_bits("5", model) == dict.fromkeys(["conv1", "conv2", "fc1", "fc2", "fc3"], 5)
    assert parse_bits("conv=8,fc=5", model) == {
        "conv1": 8,
        "conv2": 8,
        "fc1": 5,
        "fc2": 5,
        "fc3": 5,
    }
    assert parse_bits("fc1=3,conv=6,fc=4", model)["fc1"] == 3
    for bad, words in [
        ("conv=8", "fc1 gets no bits"),
        ("9", "1 to 8"),
        ("fc9=3", "not N"),
        ("x", "not N"),
        ("conv=8,fc=0", "gets 0 bits"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_bits(bad, model)
