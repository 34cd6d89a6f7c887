"""Filter pruning: whole filters and neurons go, and the smaller model computes the same."""

import numpy as np
import pytest

from tinyprune.data.transforms import to_input
from tinyprune.nn.model import lenet5, lenet5_caffe
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import prune
from tinyprune.prune.filters import filter_masks, shrink
from tinyprune.train.loop import inference_seconds


def images(n=6, seed=0):
    return to_input(np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8))


def test_lowest_l1_filters_go_whole():
    model = lenet5(seed=1)
    conv1 = model.layers["conv1"].weight.value
    conv1[2] *= 0.01  # the smallest filter by far
    masks = filter_masks(model, 0.2)  # round(0.2 * 6) = 1 filter of 6
    kept_rows = masks["conv1.weight"].reshape(6, -1).all(axis=1)
    np.testing.assert_array_equal(kept_rows, [True, True, False, True, True, True])
    assert not masks["conv1.weight"][2].any()  # the whole filter, not some weights
    np.testing.assert_array_equal(masks["conv1.bias"], kept_rows)
    assert not masks["conv2.weight"][:, 2].any()  # nor does conv2 read its channel


def test_fc_after_flatten_loses_the_columns_of_removed_channels():
    model = lenet5(seed=2)
    masks = filter_masks(model, 0.5)  # conv2: 8 of 16 channels, each 5 x 5 = 25 fc1 inputs
    kept_channels = masks["conv2.bias"]
    np.testing.assert_array_equal(masks["fc1.weight"].any(axis=0), np.repeat(kept_channels, 25))
    assert "fc3.bias" not in masks and masks["fc3.weight"].any(axis=1).all()  # 10 classes stay


@pytest.mark.parametrize("build", [lenet5, lenet5_caffe])
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_smaller_model_has_fewer_parameters_and_the_same_outputs(build, sparsity):
    model = build(seed=3, dtype=np.float64)
    prune(model, sparsity, "filter")
    small = shrink(model)
    for name in ("conv1", "conv2"):
        out = model.layers[name].weight.value.shape[0]
        assert small.layers[name].weight.value.shape[0] == out - round(sparsity * out)
    assert small.num_params() < model.num_params()
    assert sum(p.value.size for p in small.prunable().values()) == sum(
        int(np.count_nonzero(p.mask)) for p in model.prunable().values()
    )
    x = images().astype(np.float64)
    np.testing.assert_allclose(small.forward(x), model.forward(x), rtol=1e-10, atol=1e-10)


def test_removed_filters_stay_removed_through_training():
    """The bias of a removed filter is masked too: a bias left to train would feed the next
    layer a constant, and the smaller model would compute something else."""
    model = lenet5(seed=4)
    prune(model, 0.5, "filter")
    optimizer = MaskedSGD(model.params(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        model.forward(images())
        for p in model.params().values():
            p.grad[...] = rng.normal(size=p.grad.shape)  # gradients everywhere, pruned or not
        optimizer.step()
    x = images(seed=1)
    np.testing.assert_allclose(shrink(model).forward(x), model.forward(x), rtol=1e-4, atol=1e-5)
    assert inference_seconds(shrink(model), x, repeats=1) > 0


def test_unpruned_model_shrinks_to_itself():
    model = lenet5(seed=5)
    small = shrink(model)
    assert small.num_params() == model.num_params()
    x = images()
    np.testing.assert_array_equal(small.forward(x), model.forward(x))


@pytest.mark.slow
def test_run_with_filter_pruning_reports_the_smaller_model(tmp_path, capsys):
    """Real MNIST (via TINYPRUNE_DATA_DIR): 2,000 images; filters removed gradually (agp)."""
    import json

    from tinyprune.run import main

    assert (
        main(
            [
                "--limit",
                "2000",
                "--epochs",
                "1",
                "--finetune-epochs",
                "1",
                "--method",
                "filter",
                "--schedule",
                "agp",
                "--sparsity",
                "0.5",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "results.json").read_text())
    removed = results["filters_removed"]
    assert removed["params"] == 61_706 and removed["params_after"] < 61_706 / 2
    assert removed["layers"]["conv1"] == [3, 1, 5, 5] and removed["layers"]["fc3"] == [10, 42]
    assert removed["inference_seconds_smaller"] > 0
    assert results["after_prune"]["test_accuracy"] is None  # agp never prunes all at once
    assert all(r["mult_adds_kept"] <= r["mult_adds"] for r in results["layers"])
    out = capsys.readouterr().out
    assert "filters removed: 61,706 ->" in out and "mult-adds kept" in out
