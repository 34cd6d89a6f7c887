"""The masked optimizer: plain SGD arithmetic, and pruned weights that stay exactly zero."""

import numpy as np

from tinyprune.nn.layers import Param
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5
from tinyprune.nn.optim import MaskedAdam, MaskedSGD
from tinyprune.prune.criteria import prune


def test_one_step_by_hand():
    w = Param(np.array([1.0, -2.0]), prunable=True)
    opt = MaskedSGD({"w": w}, lr=0.1, momentum=0.9, weight_decay=0.5)
    w.grad[...] = [1.0, 1.0]
    opt.step()  # v = g + 0.5 w = [1.5, 0.0]; w -= 0.1 v
    np.testing.assert_allclose(w.value, [0.85, -2.0])
    w.grad[...] = [0.0, 0.0]
    opt.step()  # v = 0.9 [1.5, 0] + 0.5 [0.85, -2] = [1.775, -1.0]
    np.testing.assert_allclose(w.value, [0.85 - 0.1775, -1.9])


def test_bias_is_not_decayed():
    b = Param(np.array([1.0]), prunable=False)
    MaskedSGD({"b": b}, lr=0.1, weight_decay=0.5).step()
    assert b.value[0] == 1.0


def test_pruned_weights_stay_exactly_zero_through_training():
    """Momentum built up before pruning and weight decay after it cannot revive a weight."""
    rng = np.random.default_rng(0)
    model = lenet5(seed=0)
    loss_fn = SoftmaxCrossEntropy()
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    opt = MaskedSGD(model.params(), lr=0.05, momentum=0.9, weight_decay=1e-2)

    def step():
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        opt.step()

    for _ in range(3):  # build up velocity in every weight
        step()
    prune(model, 0.5)
    masks = {name: p.mask.copy() for name, p in model.prunable().items()}
    assert all(np.abs(opt.velocity[name][~m]).max() > 0 for name, m in masks.items())
    for _ in range(20):
        step()
    for name, p in model.prunable().items():
        assert np.all(p.value[~masks[name]] == 0.0), name
        assert np.all(p.value[masks[name]] != 0.0), name
        assert np.count_nonzero(p.value) == p.value.size // 2, name


def adam_reference(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Textbook Adam (Kingma & Ba, Algorithm 1) in float64, one weight array."""
    w, m, v = w.astype(np.float64), np.zeros_like(w, np.float64), np.zeros_like(w, np.float64)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


def test_adam_matches_the_textbook():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(5)] + [np.zeros(7), 1e-9 * np.ones(7)]
    w = Param(w0.copy(), prunable=True)
    opt = MaskedAdam({"w": w}, lr=0.01)
    for g in grads:
        w.grad[...] = g
        opt.step()
    np.testing.assert_allclose(w.value, adam_reference(w0, grads, 0.01), rtol=1e-12, atol=1e-15)


def test_adam_first_step_moves_each_weight_by_lr():
    """With bias correction the first step is lr * g / (|g| + eps): about lr, sign of -g."""
    w = Param(np.array([1.0, 1.0, 1.0]), prunable=False)
    w.grad[...] = [3.0, -0.5, 1e-3]
    MaskedAdam({"w": w}, lr=0.1).step()
    np.testing.assert_allclose(w.value, [0.9, 1.1, 0.9], rtol=1e-5)


def test_adam_keeps_pruned_weights_exactly_zero():
    """Moments built up before pruning cannot move a pruned weight, nor revive it."""
    rng = np.random.default_rng(0)
    model = lenet5(seed=0)
    loss_fn = SoftmaxCrossEntropy()
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    opt = MaskedAdam(model.params(), lr=1e-3)

    def step():
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        opt.step()

    for _ in range(3):  # build up both moments in every weight
        step()
    prune(model, 0.5)
    masks = {name: p.mask.copy() for name, p in model.prunable().items()}
    assert all(np.abs(opt.m[name][~m]).max() > 0 for name, m in masks.items())
    before = {name: p.value.copy() for name, p in model.prunable().items()}
    for _ in range(20):
        step()
    for name, p in model.prunable().items():
        assert np.all(p.value[~masks[name]] == 0.0), name
        moved = p.value[masks[name]] != before[name][masks[name]]
        assert moved.mean() > 0.5, name  # the others learn (not those of units ReLU keeps off)
        assert np.all(opt.m[name][~masks[name]] == 0.0) and np.all(opt.v[name][~masks[name]] == 0)
