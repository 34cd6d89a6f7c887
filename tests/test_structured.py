"""Learned structured pruning: the channel scale's gradients, group lasso's penalty and
proximal step, slimming's scales folded away, and dead units removed without changing outputs."""

import json

import numpy as np
import pytest
from helpers import numerical_gradient
from test_layers import check_layer

from tinyprune.config import DataConfig, TrainConfig
from tinyprune.data.datasets import MNIST
from tinyprune.data.mnist import Mnist, load_data
from tinyprune.data.transforms import to_input
from tinyprune.nn.channel_scale import ChannelScale
from tinyprune.nn.model import lenet5, lenet5_caffe, lenet_300_100, model_for, model_widths
from tinyprune.prune import group_lasso, slimming
from tinyprune.prune.structured import learn_structure, remove_dead_units


def images(n=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return to_input(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)).astype(dtype)


@pytest.mark.parametrize("shape", [(3, 4, 5, 5), (6, 7)])
def test_channel_scale_gradients(shape):
    rng = np.random.default_rng(len(shape))
    layer = ChannelScale(shape[1], np.float64)
    layer.scale.value[...] = rng.uniform(-2, 2, shape[1])
    check_layer(layer, rng.standard_normal(shape), rng)


@pytest.mark.parametrize(
    "build, default, narrow",
    [
        (lenet5, (6, 16, 120, 84), (2, 3, 4, 5)),
        (lenet5_caffe, (20, 50, 500), (3, 4, 5)),
        (lenet_300_100, (300, 100), (7, 3)),
    ],
)
def test_builders_take_widths_and_model_for_reads_them_back(build, default, narrow):
    # the default widths are the model itself, weights and all; narrower ones run and load
    a, b = build(seed=7), build(seed=7, widths=default)
    for (name, p), q in zip(a.params().items(), b.params().values()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=name)
    small = build(seed=3, widths=narrow)
    assert model_widths(small) == narrow
    assert small.forward(images(2, dtype=np.float32)).shape == (2, 10)
    twin = model_for(small.name, small.state())
    twin.load_state(small.state())
    assert model_widths(twin) == narrow
    with pytest.raises(ValueError, match="at least 1"):
        build(widths=(0,) + narrow[1:])
    with pytest.raises(ValueError, match="unknown model"):
        model_for("lenet7", small.state())


def test_group_lasso_gradient_is_the_penalty_derivative():
    model = lenet5_caffe(seed=1, dtype=np.float64, widths=(2, 3, 4))
    lam = 0.3
    for name, layer in group_lasso.unit_layers(model).items():
        dw, db = group_lasso.penalty_gradient(layer, lam)
        for analytic, p in ((dw, layer.weight), (db, layer.bias)):
            numeric = numerical_gradient(lambda: group_lasso.penalty(model, lam), p.value)
            np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_group_lasso_proximal_step_by_hand():
    """fc1 (in 16) groups have 17 entries: t = lr lam sqrt(17) = 1 exactly when lr lam =
    1 / sqrt(17). A group of norm 5 keeps 1 - 1/5 of itself; one of norm 0.5 < t goes to 0."""
    model = lenet5_caffe(seed=2, dtype=np.float64, widths=(1, 1, 3))
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
    model = lenet5_caffe(seed=3, dtype=np.float64, widths=(3, 2, 2))
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
    model = lenet5_caffe(seed=4, dtype=np.float64, widths=(3, 4, 5))
    x = images()
    before = model.forward(x)
    scaled = slimming.with_scales(model)
    names = list(scaled.layers)
    for unit, after in (("conv1", "pool1"), ("conv2", "pool2"), ("fc1", "relu1")):
        assert names[names.index(after) + 1] == f"{unit}_scale"
    assert "fc2_scale" not in names
    np.testing.assert_array_equal(scaled.forward(x), before)


def test_slimming_proximal_step_soft_thresholds_and_keeps_scales_nonnegative():
    scaled = slimming.with_scales(lenet5_caffe(seed=5, widths=(3, 2, 2)))
    scales = slimming.scales(scaled)
    scales["conv1"][...] = [1.0, 0.05, -0.2]
    slimming.proximal_step(scaled, lam=0.1, lr=1.0)
    np.testing.assert_allclose(scales["conv1"], [0.9, 0.0, 0.0])


def test_folding_scales_and_removing_zeroed_units_keep_the_outputs():
    model = lenet5_caffe(seed=6, dtype=np.float64, widths=(6, 8, 10))
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
    assert model_widths(small) == tuple(w - z for w, z in zip((6, 8, 10), zeros))
    np.testing.assert_allclose(small.forward(x), expected, rtol=1e-10, atol=1e-10)


def test_a_layer_with_every_group_at_zero_keeps_its_largest_unit():
    model = lenet5_caffe(seed=8, dtype=np.float64, widths=(4, 5, 6))
    model.layers["conv2"].weight.value[...] = 0
    model.layers["conv2"].bias.value[...] = 0
    assert model_widths(remove_dead_units(model, tol=1e-3)) == (4, 1, 6)


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
    small = learn_structure(lenet5_caffe(widths=(4, 5, 6)), data, method, 0.0, train)
    assert model_widths(small) == (4, 5, 6)
    small = learn_structure(lenet5_caffe(widths=(4, 5, 6)), data, method, 1e3, train)
    assert model_widths(small) == (1, 1, 1)


def test_learn_structure_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="group-lasso, slimming"):
        learn_structure(lenet5_caffe(widths=(1, 1, 1)), random_data(), "l2", 0.1, TrainConfig())


@pytest.mark.parametrize("method", [group_lasso, slimming])
def test_one_strength_each_layer_presses_only_the_layers_given_one(method):
    model = lenet5_caffe(seed=9, dtype=np.float64, widths=(3, 4, 5))
    net = slimming.with_scales(model) if method is slimming else model
    before = {name: p.value.copy() for name, p in net.params().items()}
    method.proximal_step(net, (0.0, 0.0, 1e3), lr=1.0)
    changed = {
        name for name, p in net.params().items() if not np.array_equal(p.value, before[name])
    }
    assert changed == ({"fc1_scale.scale"} if method is slimming else {"fc1.weight", "fc1.bias"})


def test_a_run_with_structure_ships_the_smaller_model(tmp_path, monkeypatch):
    """`run --structure group-lasso`: the penalty removes units, the smaller model is pruned,
    shared and written, and every file reads back at its widths (export, the report); it saves
    no checkpoint, which it could not resume from."""
    from tinyprune.cli.export import main as export
    from tinyprune.cli.run import main
    from tinyprune.deploy.c_export import load_model
    from tinyprune.report.run_pictures import redraw
    from tinyprune.train import resume

    def no_checkpoint(*args, **kwargs):
        raise AssertionError("a run with --structure saved a checkpoint")

    monkeypatch.setattr(resume, "save_checkpoint", no_checkpoint)

    options = "--model lenet5-caffe --limit 1000 --test-limit 300 --epochs 2 --finetune-epochs 1"
    lam = ["--structure", "group-lasso", "--lam", "0.2,0.05,0.05", "--warmup-steps", "0"]
    assert main([*options.split(), *lam, "--bits", "4", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    s = results["structure"]
    assert s["before"] == {"widths": [20, 50, 500], "params": 431_080}
    assert all(a <= b for a, b in zip(s["widths"], s["before"]["widths"]))
    assert s["params"] < 431_080
    for name in ("pruned.npz", "shared.tpz", "pruned.tpz"):
        model, _ = load_model(tmp_path / name, "lenet5-caffe")
        assert (list(model_widths(model)), model.num_params()) == (s["widths"], s["params"])
    # the file's accuracy is the decoded file's own
    data = load_data(DataConfig(limit=10, test_limit=300))
    decoded, _ = load_model(tmp_path / "shared.tpz", "lenet5-caffe")
    predicted = decoded.forward(to_input(data.test_images, data.dataset)).argmax(axis=1)
    assert (predicted == data.test_labels).mean() == results["shared"]["file_accuracy"]
    assert export([str(tmp_path), "--format", "c", "--out", str(tmp_path / "c")]) == 0
    assert redraw(tmp_path).is_file()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--lam", "1,2"], "--lam: give one strength, or 3 (conv1,conv2,fc1)"),
        (["--lam", "-1"], "each must be at least 0"),
        (["--resume"], "cannot --resume"),
    ],
)
def test_structure_options_are_checked(options, message, tmp_path, capsys):
    from tinyprune.cli.run import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--model", "lenet5-caffe", "--structure", "group-lasso", *options])
    assert message in capsys.readouterr().err
