"""Magnitude pruning: which weights go, how many, and the report."""
import numpy as np
import pytest

from tinyprune.layers import Param
from tinyprune.model import lenet5
from tinyprune.prune import magnitude_mask, prune_layerwise, sparsity_report


def test_smallest_magnitudes_go_first():
    w = np.array([[0.5, -0.1], [-3.0, 0.2]])
    np.testing.assert_array_equal(magnitude_mask(w, 0.5), [[True, False], [True, False]])


def test_exact_count_despite_ties():
    mask = magnitude_mask(np.ones(10), 0.3)
    assert mask.sum() == 7


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.9, 0.99])
def test_lenet5_pruned_to_exact_sparsity(sparsity):
    model = lenet5(seed=1)
    prune_layerwise(model.params(), sparsity)
    for row in sparsity_report(model.params()):
        assert row["weights"] - row["nonzero"] == round(sparsity * row["weights"]), row
    # Biases are never pruned.
    assert all(p.mask is None for p in model.params().values() if not p.prunable)


def test_report_counts_zeros():
    p = Param(np.array([0.0, 1.0, 0.0, 2.0]), prunable=True)
    assert sparsity_report({"fc.weight": p}) == [
        {"name": "fc", "weights": 4, "nonzero": 2, "sparsity": 0.5}]


def test_saved_masks_round_trip(tmp_path):
    model = lenet5(seed=2)
    prune_layerwise(model.params(), 0.5)
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
