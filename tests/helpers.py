"""What several test files share: gradient checks, comparing arrays, drawing conv shapes, and
reading what `python -m tinyprune.run` wrote, and the optional packages some tests need."""

import importlib.util
import json
import os

import numpy as np
import pytest
from hypothesis import strategies as st

from tinyprune.data.mnist import Mnist, load_mnist
from tinyprune.nn.model import Sequential, lenet5
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import prune
from tinyprune.train.loop import fit


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6, indices=None) -> np.ndarray:
    """d f() / d x by central differences; f reads x, which is perturbed in place.

    indices: flat positions to check (default all, and the result has x's shape);
    given, the result holds the derivatives at those positions only.
    """
    flat = x.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous so that perturbing flat moves x"
    grad = []
    for i in range(flat.size) if indices is None else indices:
        saved = flat[i]
        flat[i] = saved + eps
        plus = f()
        flat[i] = saved - eps
        minus = f()
        flat[i] = saved
        grad.append((plus - minus) / (2 * eps))
    grad = np.array(grad)
    return grad.reshape(x.shape) if indices is None else grad


def assert_close(actual, expected):
    """Kernel vs twin. Both sum the same products in different orders; in float32 a sum of
    hundreds of terms loses precision relative to the array's scale, not to each element."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    tol = 1e-5 if actual.dtype == np.float32 else 1e-12
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


@st.composite
def conv_cases(draw):
    """(x shape, w shape, pad, seed) with N <= 12 (so one or two blocks of 8 images, the last
    short), C <= 3, F <= 4, K <= 5, pad <= 2, H, W <= 9."""
    K, pad = draw(st.integers(1, 5)), draw(st.integers(0, 2))
    smallest = max(1, K - 2 * pad)  # the output must be at least 1x1
    H, W = draw(st.integers(smallest, 9)), draw(st.integers(smallest, 9))
    N, C, F = draw(st.integers(1, 12)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    return (N, C, H, W), (F, C, K, K), pad, draw(st.integers(0, 2**32 - 1))


def without_seconds(obj):
    """obj with every "seconds" entry removed, at any depth: the numbers, wall times aside."""
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


def results(out) -> dict:
    """{"result.json": ..., "results.json": ...} of the run in folder out, wall times aside."""
    return {
        name: without_seconds(json.loads((out / name).read_text()))
        for name in ("result.json", "results.json")
    }


def quickly_pruned_lenet5(sparsity: float = 0.9) -> tuple[Sequential, Mnist]:
    """LeNet-5 after 1 epoch on 6,000 real training images, pruned to sparsity, 1 epoch of
    fine-tuning -> (model, the full MNIST): a real pruned model in seconds, for the exports."""
    data = load_mnist()
    subset = Mnist(
        data.train_images[:6000], data.train_labels[:6000], data.test_images, data.test_labels
    )
    model = lenet5(seed=0)
    # lr 0.01: in a single short epoch, run.py's 0.05 does not get going
    fit(model, subset, MaskedSGD(model.params(), 0.01, 0.9, 5e-4), 1, batch_size=64, seed=0)
    prune(model, sparsity)
    fit(model, subset, MaskedSGD(model.params(), 0.01, 0.9, 5e-4), 1, batch_size=64, seed=1)
    return model, data


def skip_without(*modules: str) -> None:
    """Skip the calling test module, saying what to install, when one of `modules` is missing;
    with CI=true fail instead, since CI must run every test."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed: pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so these tests must run, but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
