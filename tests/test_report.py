"""The run's pictures and its HTML page, the page rendered by a real browser (Chromium)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser import dom, screenshot

from tinyprune.data.datasets import FASHION_MNIST
from tinyprune.nn.model import lenet5
from tinyprune.prune.criteria import prune
from tinyprune.report.curves import training_curves
from tinyprune.report.html import build_page, write_page
from tinyprune.report.network_plots import conv_filters, feature_maps, mask_image
from tinyprune.report.plots import sweep_size_plot

pytest.importorskip("matplotlib")


def history(epochs: int, start: float) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "train_accuracy": start + 0.01 * e,
            "test_loss": 1.1 / e,
            "test_accuracy": start + 0.009 * e,
            "seconds": 1.0,
        }
        for e in range(1, epochs + 1)
    ]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """A run's folder as `python -m tinyprune.run` leaves it: JSON and every picture, drawn
    from a real (untrained, pruned) lenet5 and made-up histories. Drawn once: slow on a busy
    machine."""
    tmp_path = tmp_path_factory.mktemp("run")
    model = lenet5(0)
    conv1_before = model.layers["conv1"].weight.value.copy()
    prune(model, 0.7, "layerwise")
    train, tune = history(3, 0.80), [{"round": 1, **h} for h in history(2, 0.85)]
    rounds = [
        {"round": 1, "sparsity": 0.7, "after_prune": {"test_loss": 0.5, "test_accuracy": 0.81}}
    ]
    (tmp_path / "result.json").write_text(
        json.dumps(
            {
                "model": "lenet5",
                "dataset": "fashion-mnist",
                "epochs": 3,
                "seed": 0,
                "test_accuracy": 0.827,
                "history": train,
            }
        )
    )
    (tmp_path / "results.json").write_text(
        json.dumps(
            {
                "method": "layerwise",
                "schedule": "oneshot",
                "sparsity": 0.7,
                "rounds": rounds,
                "after_prune": rounds[0]["after_prune"],
                "test_accuracy": 0.8671,
                "int8_test_accuracy": 0.8666,
                "history": tune,
                "bytes": {"dense_float32": 246824, "compressed": 80000, "compressed_int8": 30000},
                "shared": {
                    "bits": "conv=8,fc=5",
                    "file": "shared.tpz",
                    "file_bytes": 20000,
                    "file_accuracy": 0.8650,
                },
                "layers": [
                    {"name": "conv1.weight", "weights": 150, "nonzero": 45, "sparsity": 0.7}
                ],
            }
        )
    )
    assert training_curves(train, tune, rounds, tmp_path / "curves.png", "lenet5")
    assert conv_filters(
        conv1_before, model.layers["conv1"].weight.value, tmp_path / "conv1_filters.png"
    )
    assert mask_image(model.layers["fc1"].weight.mask, tmp_path / "fc1_mask.png")
    image = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    assert feature_maps(model, image, 9, tmp_path / "feature_maps.png", FASHION_MNIST)
    return tmp_path


@pytest.fixture
def run_dir(drawn, tmp_path):
    """A fresh copy of the drawn run's folder, for a test to change."""
    return Path(shutil.copytree(drawn, tmp_path / "run"))


def test_pictures_are_pngs_of_slide_size(run_dir):
    import matplotlib.image

    for name in ("curves.png", "conv1_filters.png", "fc1_mask.png", "feature_maps.png"):
        pixels = matplotlib.image.imread(run_dir / name)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600, name
        assert pixels[..., :3].std() > 0.1, f"{name} is (nearly) blank"


def test_sweep_size_plot_skips_points_without_sizes(tmp_path):
    point = {
        "sparsity": 0.9,
        "test_accuracy": 0.98,
        "bytes": {"dense_float32": 246824, "compressed": 30306},
    }
    result = {
        "model": "lenet5",
        "method": "global",
        "dense_accuracy": 0.99,
        "schedules": {"oneshot": [point, {"sparsity": 0.5, "test_accuracy": 0.99}]},
    }
    assert sweep_size_plot(result, tmp_path / "size.png") == tmp_path / "size.png"


def visible_text(page: str) -> str:
    """What a reader sees of an HTML page: no scripts, no style, no tags or attributes."""
    return re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page, flags=re.S)


def table_rows(page: str) -> list[list[str]]:
    """Every row of every table, as the text of its cells."""
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", page)]


def test_page_is_self_contained_and_holds_the_numbers(run_dir):
    page = build_page(run_dir)
    assert "fine-tuned 86.71%" in page and "int8 86.66%" in page and "dense 82.70%" in page
    assert page.count("src='data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)  # nothing fetched from a network
    assert "<script" in page and "http" not in page.split("<script>")[1].split("</script>")[0]


def test_page_lists_every_model_file_with_its_bytes_and_accuracy(run_dir):
    rows = {row[0]: row[1:4] for row in table_rows(build_page(run_dir)) if row[0].endswith(".tpz")}
    # bytes; dense float32 (246,824 bytes) / bytes; accuracy of the model the file decodes to
    assert rows == {
        "pruned.tpz": ["80,000", "3.1x", "86.71%"],
        "pruned-int8.tpz": ["30,000", "8.2x", "86.66%"],
        "shared.tpz": ["20,000", "12.3x", "86.50%"],
    }


def test_page_says_nothing_meant_for_the_developer(run_dir):
    text = visible_text(build_page(run_dir))
    for word in ("JavaScript", "decoded", "not checked", "n/a"):
        assert word not in text, word


def test_command_writes_the_page_and_refuses_a_folder_without_a_run(run_dir, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tinyprune.report", str(run_dir)], capture_output=True, text=True
    )
    assert done.returncode == 0 and (run_dir / "report.html").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "tinyprune.report", str(empty)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "no result.json" in done.stderr
    assert "Traceback" not in done.stderr


def test_chromium_renders_the_page_with_every_picture(run_dir, tmp_path):
    page = write_page(run_dir)
    pixels = screenshot(page, tmp_path / "shot.png")
    assert pixels.shape == (2400, 1200, 3)
    ink = (pixels.min(axis=2) < 0.9).mean()  # share of pixels that are not (nearly) white
    colour = ((pixels.max(axis=2) - pixels.min(axis=2)) > 0.3).mean()  # the plots' colours
    assert ink > 0.05 and colour > 0.005, f"blank-looking page: ink {ink:.3f}, colour {colour:.4f}"
    html = dom(page)
    assert 'data-pictures-decoded="4 of 4"' in html
    assert "fine-tuned 86.71%" in html and "shared.tpz" in html
    assert "could not be shown" not in visible_text(html)


def test_the_browser_check_sees_a_broken_picture(run_dir):
    (run_dir / "zz-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    html = dom(write_page(run_dir))
    assert 'data-pictures-decoded="4 of 5"' in html
    assert "These pictures could not be shown: zz-broken.png" in visible_text(html)
