"""Every picture of a finished run, and its HTML page, written into the run's folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyprune.data.mnist import Mnist, load_mnist
from tinyprune.nn.model import Sequential, load_model
from tinyprune.report.curves import training_curves
from tinyprune.report.html import read_run, write_page
from tinyprune.report.network_plots import conv_filters, feature_maps, mask_image
from tinyprune.report.plots import pyplot

NPZ_FILES = ("model.npz", "pruned.npz")  # the trained model, then the pruned one


def draw_run(
    model: Sequential,
    dense_weights: dict[str, np.ndarray],
    data: Mnist,
    train_history: list[dict],
    results: dict,
    out: Path,
    test_label: str = "test",
) -> Path:
    """curves.png, conv1_filters.png, fc1_mask.png, feature_maps.png (those the model has
    layers for; none without matplotlib), then report.html -> the page's path.

    dense_weights: the prunable weights before pruning; results: results.json's content;
    test_label: what the curves call the test set ("test (first 500)" when it is cut)."""
    if pyplot() is None:  # said why once; the page is still written, without pictures
        return write_page(out)
    title = f"{model.name} on {data.dataset.title}"
    training_curves(
        train_history,
        results["history"],
        results["rounds"],
        out / "curves.png",
        f"{title}: training, {results['method']} pruning ({results['schedule']}), fine-tuning",
        test_label,
    )
    before, after = dense_weights.get("conv1.weight"), model.params().get("conv1.weight")
    # the same filters before and after (--structure removes some: no picture pairs them)
    if before is not None and after is not None and before.shape == after.value.shape:
        conv_filters(
            before,
            after.value,
            out / "conv1_filters.png",
            f"{title}: conv1's filters before and after pruning (grey with a cross: pruned)",
        )
    if "fc1" in model.layers:
        weight = model.layers["fc1"].params["weight"]
        kept = weight.mask if weight.mask is not None else weight.value != 0
        mask_image(
            np.asarray(kept, np.uint8),
            out / "fc1_mask.png",
            inputs=fc1_inputs(model, kept.shape[1]),
        )
    if any(name.startswith("conv") for name in model.layers):
        feature_maps(
            model,
            data.test_images[0],
            int(data.test_labels[0]),
            out / "feature_maps.png",
            data.dataset,
            f"{title}: the first test image through the pruned network",
        )
    return write_page(out)


def fc1_inputs(model: Sequential, count: int) -> str:
    """What fc1's inputs are: the last conv's maps, flattened one after another."""
    convs = [name for name in model.layers if name.startswith("conv")]
    if not convs:
        return "input pixel"
    maps = model.layers[convs[-1]].params["weight"].value.shape[0]
    per_map = count // maps
    return f"input: {convs[-1]}'s {maps} maps after pooling, {per_map} columns a map"


def redraw(run_dir: Path, data_dir: Path | None = None) -> Path:
    """Draw a finished run's pictures again from its folder (model.npz, pruned.npz and the
    JSON), e.g. for a run made before the pictures existed -> the page's path."""
    dense_json, results = read_run(run_dir)
    dense, pruned = (load_model(run_dir / name, dense_json["model"]) for name in NPZ_FILES)
    data = load_mnist(data_dir, dataset=dense_json.get("dataset", "mnist"))
    limit = dense_json.get("test_limit")
    label = "test" if limit is None else f"test (first {limit:,})"
    weights = {name: p.value for name, p in dense.prunable().items()}
    return draw_run(pruned, weights, data, dense_json["history"], results, run_dir, label)
