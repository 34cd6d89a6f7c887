"""The masked optimizer: plain SGD arithmetic, and pruned weights that stay exactly zero."""
import numpy as np

from tinyprune.nn.layers import Param
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5
from tinyprune.nn.optim import MaskedSGD
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
