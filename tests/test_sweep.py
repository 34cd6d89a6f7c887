"""`python -m tinyprune.sensitivity` and `python -m tinyprune.sweep`, and their plots."""

import json
import sys

import numpy as np
import pytest

from tinyprune.cli import sensitivity, sweep
from tinyprune.data.mnist import Mnist
from tinyprune.experiments import study
from tinyprune.experiments.study import layer_sensitivity
from tinyprune.nn.model import lenet5
from tinyprune.report import plots


def test_sensitivity_prunes_one_layer_and_puts_it_back(monkeypatch):
    model = lenet5(seed=1)
    before = {n: p.value.copy() for n, p in model.params().items()}
    seen = []

    def fake_evaluate(model, images, labels, dataset):  # records the layers pruned at each point
        seen.append([n for n, p in model.prunable().items() if np.any(p.value == 0)])
        return 0.0, 0.5

    monkeypatch.setattr(study, "evaluate", fake_evaluate)
    data = Mnist(*(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)) * 2)
    result = layer_sensitivity(model, data, [0.0, 0.5])
    assert list(result) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert result["fc1"] == [
        {"sparsity": 0.0, "test_accuracy": 0.5},
        {"sparsity": 0.5, "test_accuracy": 0.5},
    ]
    assert seen[1::2] == [[f"{n}.weight"] for n in result]  # one layer at a time
    for name, p in model.params().items():
        np.testing.assert_array_equal(p.value, before[name])


@pytest.mark.parametrize(
    "module, option, value, message",
    [
        ("sweep", "--sparsities", "0.5,1.2", "each sparsity must be in [0, 1)"),
        ("sweep", "--schedules", "oneshot,sudden", "unknown schedule sudden"),
        ("sweep", "--rounds", "3", "--rounds must be at most --finetune-epochs"),
        ("sweep", "--finetune-lr", "0", "argument --finetune-lr: must be greater than 0"),
        ("sensitivity", "--sparsities", "half", "expected numbers separated by commas"),
        ("sensitivity", "--limit", "0", "argument --limit: must be at least 1, got 0"),
        ("sensitivity", "--shift", "-1", "argument --shift: must be 0 or more, got -1"),
    ],
)
def test_bad_options_exit_2_with_one_line(module, option, value, message, tmp_path, capsys):
    main = {"sweep": sweep.main, "sensitivity": sensitivity.main}[module]
    with pytest.raises(SystemExit) as exit_info:
        main([option, value, "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_without_matplotlib_plots_are_skipped_with_a_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    result = {"model": "lenet5", "dense_accuracy": 0.99, "layers": {"fc1": []}}
    assert plots.sensitivity_plot(result, tmp_path / "s.png") is None
    assert "pip install -e '.[plots]'" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    result = {
        "model": "lenet5",
        "method": "layerwise",
        "dense_accuracy": 0.99,
        "finetune_epochs": 1,
        "schedules": {
            "oneshot": [
                {"sparsity": 0.5, "test_accuracy": 0.99},
                {"sparsity": 0.9, "test_accuracy": 0.98},
            ]
        },
    }
    assert plots.sweep_plot(result, tmp_path / "sweep.png").stat().st_size > 1000
    w = np.random.default_rng(0).normal(size=(20, 20))
    path = plots.weight_histograms({"fc": w}, {"fc": w * (np.abs(w) > 1)}, tmp_path / "w.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.slow
def test_sensitivity_and_sweep_on_real_mnist_share_one_dense_model(tmp_path, capsys):
    """Real MNIST (via TINYPRUNE_DATA_DIR): 3,000 images, 2 epochs (48 steps: no warm-up);
    tiny sweeps."""
    common = ["--limit", "3000", "--epochs", "2", "--warmup-steps", "0"]
    common += ["--cache-dir", str(tmp_path / "cache")]
    assert (
        sensitivity.main(common + ["--out", str(tmp_path / "sens"), "--sparsities", "0.5,0.95"])
        == 0
    )
    out = capsys.readouterr().out
    assert "training dense lenet5" in out and "test accuracy (%) with one layer pruned" in out
    result = json.loads((tmp_path / "sens" / "sensitivity.json").read_text())
    assert [p["sparsity"] for p in result["layers"]["conv2"]] == [0.5, 0.95]
    assert len(list((tmp_path / "cache").iterdir())) == 1

    assert (
        sweep.main(
            common
            + [
                "--out",
                str(tmp_path / "sweep"),
                "--finetune-epochs",
                "1",
                "--rounds",
                "1",
                "--sparsities",
                "0.9",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "loaded from" in out and "training dense" not in out  # the cache was used
    result = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert result["dense_accuracy"] > 0.5
    assert list(result["schedules"]) == ["oneshot", "iterative", "agp"]
    for points in result["schedules"].values():
        assert [p["sparsity"] for p in points] == [0.9]
        assert all(0 <= p["test_accuracy"] <= 1 for p in points)
    if plots.pyplot() is not None:
        assert (tmp_path / "sweep" / "sweep.png").exists()
        assert (tmp_path / "sweep" / "sweep-size.png").exists()
        assert all("bytes" in p for points in result["schedules"].values() for p in points)
        assert (tmp_path / "sens" / "sensitivity.png").exists()


SWEEP = [
    "--limit",
    "1000",
    "--epochs",
    "1",
    "--finetune-epochs",
    "1",
    "--rounds",
    "1",
    "--schedules",
    "oneshot",
    "--sparsities",
    "0.5,0.9",
]


@pytest.mark.slow
def test_sweep_points_give_the_same_bits_on_one_two_or_a_dask_cluster(tmp_path, capsys):
    """A 2-point sweep (1,000 images, 1 epoch) three ways, each training its own dense model."""

    def run(name: str, *extra: str) -> dict:
        out = tmp_path / name
        assert (
            sweep.main(SWEEP + ["--out", str(out), "--cache-dir", str(out / "cache"), *extra]) == 0
        )
        result = json.loads((out / "sweep.json").read_text())
        assert len(result["points"]) == 2 and [p["sparsity"] for p in result["points"]] == [
            0.5,
            0.9,
        ]
        return result

    one = run("one")
    assert run("two", "--jobs", "2") == one
    distributed = pytest.importorskip("dask.distributed", reason="pip install -e '.[cluster]'")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert run("dask", "--scheduler", cluster.scheduler_address) == one
    # Run again: every point is read back from --out/points, none is trained.
    capsys.readouterr()
    assert (
        sweep.main(
            SWEEP + ["--out", str(tmp_path / "one"), "--cache-dir", str(tmp_path / "one" / "cache")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "loaded from" in out and "test accuracy" in out and "seed0-oneshot" not in out


@pytest.mark.slow
def test_sweep_and_sensitivity_over_seeds_show_mean_and_std(tmp_path, capsys):
    common = [
        "--limit",
        "1000",
        "--epochs",
        "1",
        "--seeds",
        "0,1",
        "--jobs",
        "2",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert (
        sweep.main(
            common
            + [
                "--out",
                str(tmp_path / "sweep"),
                "--finetune-epochs",
                "1",
                "--rounds",
                "1",
                "--schedules",
                "oneshot",
                "--sparsities",
                "0.9",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "mean ± std over seeds [0, 1]" in out
    assert any(line.lstrip().startswith("90%") and " ± " in line for line in out.splitlines())
    result = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    [row] = result["schedules"]["oneshot"]
    accuracies = [p["test_accuracy"] for p in result["points"]]
    assert [p["seed"] for p in result["points"]] == [0, 1] and row["n"] == 2
    assert row["test_accuracy"] == pytest.approx(np.mean(accuracies))
    assert row["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert sensitivity.main(common + ["--out", str(tmp_path / "sens"), "--sparsities", "0.5"]) == 0
    assert "loaded from" in capsys.readouterr().out  # the two dense models were cached
    result = json.loads((tmp_path / "sens" / "sensitivity.json").read_text())
    assert result["layers"]["fc1"][0]["n"] == 2 and len(result["per_seed"]) == 2
