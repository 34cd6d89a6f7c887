"""Sparse inference: CSR by hand; each sparse kernel against its NumPy twin and against the dense
conv or matrix product on the same (pruned) weights; a whole pruned model against model.forward."""

import numpy as np
import pytest
from helpers import assert_close, conv_cases
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.deploy.sparse_model import SparseModel, sparse_stages
from tinyprune.kernels.conv import conv2d_forward_numpy
from tinyprune.kernels.sparse import (
    conv_taps,
    csr_from_dense,
    sparse_conv2d_numpy,
    sparse_linear_numpy,
)
from tinyprune.nn.layers import Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential, lenet5, lenet5_caffe
from tinyprune.prune.criteria import prune


def sparse_uniform(rng, shape, sparsity, dtype):
    """Uniform in [-1, 1) with a `sparsity` fraction of the entries set to exactly 0."""
    a = rng.uniform(-1, 1, size=shape)
    a[rng.random(shape) < sparsity] = 0
    return a.astype(dtype)


# --- by hand ------------------------------------------------------------------------------------


def test_csr_by_hand():
    w = np.array([[0, 2, 0, 3], [0, 0, 0, 0], [1, 0, 0, 0]], np.float32)
    ptr, index, values = csr_from_dense(w)
    np.testing.assert_array_equal(ptr, [0, 2, 2, 3])  # row 1 is empty
    np.testing.assert_array_equal(index, [1, 3, 0])
    np.testing.assert_array_equal(values, [2, 3, 1])


def test_conv_taps_index_the_wide_padded_input():
    w = np.zeros((2, 3, 5, 5), np.float32)
    w[0, 2, 1, 4] = 7.0  # c=2, kh=1, kw=4
    w[1, 0, 0, 0] = -1.0
    ptr, index, values = conv_taps(w, H=10, W=12, pad=2)  # Hp, Wp = 14, 16
    np.testing.assert_array_equal(ptr, [0, 1, 2])
    np.testing.assert_array_equal(index, [2 * 14 * 16 + 1 * 16 + 4, 0])
    np.testing.assert_array_equal(values, [7.0, -1.0])


# --- kernels against twins and against the dense computation ----------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(deadline=None, max_examples=40)
@given(case=conv_cases(), sparsity=st.sampled_from([0.0, 0.5, 0.9, 1.0]))
def test_sparse_conv_twin_matches_dense(dtype, case, sparsity):
    x_shape, w_shape, pad, seed = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=x_shape).astype(dtype)
    w = sparse_uniform(rng, w_shape, sparsity, dtype)
    b = rng.uniform(-1, 1, size=w_shape[0]).astype(dtype)
    taps = conv_taps(w, x_shape[2], x_shape[3], pad)
    K = w_shape[2]
    dense = conv2d_forward_numpy(x, w, b, pad)
    assert_close(sparse_conv2d_numpy(x, *taps, b, K, pad), dense)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(deadline=None, max_examples=40)
@given(
    N=st.integers(1, 5),
    M=st.integers(1, 30),
    R=st.integers(1, 12),
    sparsity=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_sparse_linear_twin_matches_dense(dtype, N, M, R, sparsity, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(N, M)).astype(dtype)
    w = sparse_uniform(rng, (R, M), sparsity, dtype)
    b = rng.uniform(-1, 1, size=R).astype(dtype)
    csr = csr_from_dense(w)
    dense = x @ w.T + b
    assert_close(sparse_linear_numpy(x, *csr, b), dense)


# --- whole models --------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [lenet5, lenet5_caffe])
@pytest.mark.parametrize("sparsity", [0.0, 0.9, 0.99])
def test_sparse_model_matches_dense_forward(build, sparsity):
    model = build(seed=3)
    prune(model, sparsity)
    sparse = SparseModel(model)
    x = np.random.default_rng(0).standard_normal((5, 1, 28, 28)).astype(np.float32)
    dense = model.forward(x)
    assert_close(sparse.forward(x), dense)  # parallel over images
    assert_close(sparse.forward(x[2:3]), dense[2:3])  # batch 1: the serial path
    assert_close(sparse.forward_numpy(x), dense)
    kept = sum(int(np.count_nonzero(p.value)) for p in model.prunable().values())
    assert sparse.nonzero == kept


def test_sparse_model_keeps_its_own_copy_of_the_weights():
    model = lenet5()
    prune(model, 0.5)
    sparse = SparseModel(model)
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    before = sparse.forward(x)
    model.layers["fc1"].weight.value[...] = 0
    np.testing.assert_array_equal(sparse.forward(x), before)


def test_sparse_model_refuses_other_layouts_and_shapes():
    rng = np.random.default_rng(0)
    mlp = Sequential("mlp", {"fc1": Linear(784, 10, rng), "relu": ReLU()})
    with pytest.raises(ValueError, match="sparse inference runs conv blocks.*'mlp'"):
        sparse_stages(mlp)
    two_pools = lenet5()
    two_pools.layers["pool1b"] = MaxPool2d()
    with pytest.raises(ValueError, match="fc3 is followed by more than one ReLU or by a pool"):
        sparse_stages(two_pools)
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 1, 28, 28\), got \(2, 28, 28\)"):
        SparseModel(lenet5()).forward(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="conv1 takes 1 channels, gets 3"):
        SparseModel(lenet5(), input_shape=(3, 28, 28))
    with pytest.raises(
        ValueError,
        match=r"fc1 takes 400 inputs, gets 784 \(for inputs of shape "
        r"\(1, 36, 36\)\)",
    ):
        SparseModel(lenet5(), input_shape=(1, 36, 36))


def test_stages_of_lenet5():
    stages = sparse_stages(lenet5())
    assert [(s.name, s.relu) for s in stages] == [
        ("conv1", True),
        ("conv2", True),
        ("fc1", True),
        ("fc2", True),
        ("fc3", False),
    ]
    assert [(s.name, s.relu) for s in sparse_stages(lenet5_caffe())] == [
        ("conv1", False),
        ("conv2", False),
        ("fc1", True),
        ("fc2", False),
    ]
