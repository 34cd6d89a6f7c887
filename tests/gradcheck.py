"""Central finite differences in float64, for checking backward passes."""
import numpy as np


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
