"""Every picture of a finished run, and its HTML page, written into the run's folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyprune.data.mnist import Mnist
from tinyprune.nn.model import Sequential
from tinyprune.report.curves import training_curves
from tinyprune.report.html import write_page
from tinyprune.report.network_plots import conv_filters, feature_maps, mask_image
from tinyprune.report.plots import pyplot


def draw_run(model: Sequential, dense_weights: dict[str, np.ndarray], data: Mnist,
             train_history: list[dict], results: dict, out: Path,
             test_label: str = "test") -> Path:
    """curves.png, conv1_filters.png, fc1_mask.png, feature_maps.png (those the model has
    layers for; none without matplotlib), then report.html -> the page's path.

    dense_weights: the prunable weights before pruning; results: results.json's content;
    test_label: what the curves call the test set ("test (first 500)" when it is cut)."""
    if pyplot() is None:  # said why once; the page is still written, without pictures
        return write_page(out)
    title = f"{model.name} on {data.dataset.title}"
    training_curves(train_history, results["history"], results["rounds"], out / "curves.png",
                    f"{title}: training, {results['method']} pruning ({results['schedule']}), "
                    f"fine-tuning", test_label)
    if "conv1.weight" in dense_weights and dense_weights["conv1.weight"].shape[1] == 1:
        conv_filters(dense_weights["conv1.weight"], model.layers["conv1"].params["weight"].value,
                     out / "conv1_filters.png", f"{title}: conv1's filters before and after "
                     f"pruning (grey with a cross: pruned)")
    if "fc1" in model.layers:
        weight = model.layers["fc1"].params["weight"]
        kept = weight.mask if weight.mask is not None else weight.value != 0
        mask_image(np.asarray(kept, np.uint8), out / "fc1_mask.png")
    if any(name.startswith("conv") for name in model.layers):
        feature_maps(model, data.test_images[0], int(data.test_labels[0]),
                     out / "feature_maps.png", data.dataset,
                     f"{title}: the first test image through the pruned network")
    return write_page(out)
