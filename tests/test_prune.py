"""Pruning criteria: which weights go, how many, and the report."""

import numpy as np
import pytest

from tinyprune.nn.layers import Param
from tinyprune.nn.model import MODELS, lenet5, lenet5_caffe, lenet_300_100
from tinyprune.prune.criteria import (
    METHODS,
    magnitude_mask,
    prune,
    std_scores,
    std_sparsity,
    weight_masks,
)
from tinyprune.prune.report import sparsity_report, weight_uses

UNSTRUCTURED = [m for m in METHODS if m != "filter"]


def test_smallest_magnitudes_go_first():
    w = np.array([[0.5, -0.1], [-3.0, 0.2]])
    np.testing.assert_array_equal(magnitude_mask(w, 0.5), [[True, False], [True, False]])


def test_exact_count_despite_ties():
    mask = magnitude_mask(np.ones(10), 0.3)
    assert mask.sum() == 7


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.9, 0.99])
def test_lenet5_pruned_to_exact_sparsity(sparsity):
    model = lenet5(seed=1)
    prune(model, sparsity)
    for row in sparsity_report(model.params()):
        assert row["weights"] - row["nonzero"] == round(sparsity * row["weights"]), row
    # Biases are never pruned.
    assert all(p.mask is None for p in model.params().values() if not p.prunable)


def test_report_counts_zeros():
    p = Param(np.array([0.0, 1.0, 0.0, 2.0]), prunable=True)
    assert sparsity_report({"fc.weight": p}) == [
        {"name": "fc", "weights": 4, "nonzero": 2, "sparsity": 0.5}
    ]


def test_saved_masks_round_trip(tmp_path):
    model = lenet5(seed=2)
    prune(model, 0.5)
    model.save(tmp_path / "pruned.npz", with_masks=True)
    other = lenet5(seed=3)
    other.load(tmp_path / "pruned.npz")
    for name, p in model.params().items():
        np.testing.assert_array_equal(other.params()[name].value, p.value)
    for name, p in model.prunable().items():
        np.testing.assert_array_equal(other.params()[name].mask, p.mask)
    assert not list(tmp_path.glob("*.tmp"))


def test_loading_another_models_weights_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", **{"conv1.weight": np.zeros((20, 1, 5, 5))})
    with pytest.raises(ValueError, match="does not hold a lenet5"):
        lenet5().load(tmp_path / "other.npz")
    state = lenet5().state()
    state["fc1.weight"] = np.zeros((500, 800), np.float32)
    np.savez(tmp_path / "shapes.npz", **state)
    with pytest.raises(ValueError, match=r"fc1.weight is \(500, 800\)"):
        lenet5().load(tmp_path / "shapes.npz")


def test_lenet5_caffe_is_hans_network():
    model = lenet5_caffe()
    assert model.num_params() == 431_080  # Han et al. (2015), table 1
    shapes = {name: p.value.shape for name, p in model.prunable().items()}
    assert shapes == {
        "conv1.weight": (20, 1, 5, 5),
        "conv2.weight": (50, 20, 5, 5),
        "fc1.weight": (500, 800),
        "fc2.weight": (10, 500),
    }
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    assert sorted(MODELS) == ["lenet-300-100", "lenet5", "lenet5-caffe"]


def test_lenet_300_100_is_hans_fully_connected_network():
    model = lenet_300_100()
    assert model.num_params() == 266_610  # Han et al. (2015), table 1
    shapes = {name: p.value.shape for name, p in model.prunable().items()}
    assert shapes == {"fc1.weight": (300, 784), "fc2.weight": (100, 300), "fc3.weight": (10, 100)}
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


@pytest.mark.parametrize("method", UNSTRUCTURED)
@pytest.mark.parametrize("build", [lenet5, lenet5_caffe])
def test_each_criterion_reaches_the_exact_sparsity(method, build):
    model = build(seed=4)
    prune(model, 0.9, method, np.random.default_rng(0))
    rows = sparsity_report(model.params())
    if method in ("layerwise", "random"):  # counted per layer
        for row in rows:
            assert row["weights"] - row["nonzero"] == round(0.9 * row["weights"]), row
    else:  # counted over all weights together
        total = sum(r["weights"] for r in rows)
        assert sum(r["weights"] - r["nonzero"] for r in rows) == round(0.9 * total)
    for p in model.prunable().values():
        assert np.all(p.value[~p.mask] == 0)


def test_global_uses_one_threshold_for_all_layers():
    model = lenet5(seed=5)
    prune(model, 0.7, "global")
    before = lenet5(seed=5).prunable()  # the same weights, not yet zeroed
    pruned = np.concatenate([np.abs(before[n].value[~p.mask]) for n, p in model.prunable().items()])
    kept = np.concatenate([np.abs(before[n].value[p.mask]) for n, p in model.prunable().items()])
    assert pruned.max() <= kept.min()
    # ...and the layers end up with different sparsities: conv1's weights are larger.
    sparsities = [r["sparsity"] for r in sparsity_report(model.params())]
    assert max(sparsities) - min(sparsities) > 0.2


def test_std_prunes_below_quality_times_the_layer_std():
    model = lenet5(seed=6)
    quality = 0.8
    stds = {n: float(np.std(p.value)) for n, p in model.prunable().items()}
    before = {n: p.value.copy() for n, p in model.prunable().items()}
    sparsity = std_sparsity(model.prunable(), quality)
    prune(model, sparsity, "std")
    for name, p in model.prunable().items():
        np.testing.assert_array_equal(p.mask, np.abs(before[name]) >= quality * stds[name])


def test_std_score_of_a_pruned_layer_uses_the_surviving_weights():
    p = Param(np.array([0.0, 0.0, 1.0, -1.0, 3.0]), prunable=True)
    p.mask = np.array([False, False, True, True, True])
    np.testing.assert_allclose(std_scores(p), np.abs(p.value) / np.std([1.0, -1.0, 3.0]))


def test_random_is_a_control_not_magnitude():
    model = lenet5(seed=7)
    masks = weight_masks(model.prunable(), 0.5, "random", np.random.default_rng(1))
    again = weight_masks(model.prunable(), 0.5, "random", np.random.default_rng(1))
    magnitude = weight_masks(model.prunable(), 0.5, "layerwise")
    for name in masks:
        np.testing.assert_array_equal(masks[name], again[name])  # reproducible
        agree = np.mean(masks[name] == magnitude[name])
        assert 0.3 < agree < 0.7, (name, agree)  # about half, as chance has it


@pytest.mark.parametrize("method", METHODS)
def test_masks_only_lose_ones_across_rounds(method):
    model = lenet5(seed=8)
    rng = np.random.default_rng(2)
    previous = None
    for sparsity in (0.3, 0.5, 0.8, 0.9):
        prune(model, sparsity, method, rng)
        # Training moves the survivors between rounds; the pruned must stay pruned anyway.
        for p in model.prunable().values():
            p.value += rng.normal(0, 0.05, p.value.shape).astype(p.value.dtype) * p.mask
        masks = {n: p.mask.copy() for n, p in model.prunable().items()}
        if previous is not None:
            for name in masks:
                assert not np.any(masks[name] & ~previous[name]), (method, sparsity, name)
        previous = masks


def test_bad_sparsity_or_method_is_refused():
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        prune(lenet5(), 1.0)
    with pytest.raises(ValueError, match="unknown pruning method 'biggest'; choose one of"):
        prune(lenet5(), 0.5, "biggest")


def test_multiply_adds_per_weight():
    assert weight_uses(lenet5()) == {"conv1": 784, "conv2": 100, "fc1": 1, "fc2": 1, "fc3": 1}
    assert weight_uses(lenet5_caffe()) == {"conv1": 576, "conv2": 64, "fc1": 1, "fc2": 1}
    model = lenet5()
    prune(model, 0.5)
    conv1 = sparsity_report(model.params(), weight_uses(model))[0]
    assert conv1["mult_adds"] == 150 * 784 and conv1["mult_adds_kept"] == 75 * 784
