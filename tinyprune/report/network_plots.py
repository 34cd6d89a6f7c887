"""Pictures of the network itself: conv1's filters, a layer's mask, one image's feature maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyprune.data.datasets import MNIST, Dataset
from tinyprune.data.transforms import to_input
from tinyprune.nn.model import Sequential
from tinyprune.report.plots import pyplot, save_figure


def conv_filters(before: np.ndarray, after: np.ndarray, path: Path, title: str = "") -> Path | None:
    """A first conv layer's filters (F, 1, K, K) before pruning (top row) and after (bottom
    row), on one colour scale: red positive, blue negative; a pruned tap (exactly 0 after) is
    grey with a black cross, so it cannot be mistaken for a small weight."""
    plt = pyplot()
    if plt is None:
        return None
    before, after = before[:, 0], after[:, 0]  # (F, K, K): one input channel
    limit = float(np.abs(before).max()) or 1.0
    count = len(before)
    fig, axes = plt.subplots(2, count, figsize=(1.3 * count + 1.2, 3.2), squeeze=False)
    image = None
    for f in range(count):
        for row, weights in enumerate((before[f], after[f])):
            ax = axes[row][f]
            shown = np.ma.masked_where(row == 1 and (weights == 0), weights)
            cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
            image = ax.imshow(shown, cmap=cmap, vmin=-limit, vmax=limit)
            if row == 1:
                ys, xs = np.nonzero(weights == 0)
                ax.plot(xs, ys, "x", color="black", markersize=6)
            ax.set_xticks([])
            ax.set_yticks([])
        pruned = int((after[f] == 0).sum())
        axes[0][f].set_title(f"filter {f}", fontsize=9)
        axes[1][f].set_title(f"{pruned} of {after[f].size} pruned", fontsize=8)
    axes[0][0].set_ylabel("before", fontsize=10)
    axes[1][0].set_ylabel("after", fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(title)
    return save_figure(fig, path)


def mask_image(
    mask: np.ndarray, path: Path, name: str = "fc1", title: str = "", inputs: str = "input"
) -> Path | None:
    """A fully connected layer's mask (out, in) as an image: black = kept, white = pruned;
    one row per output neuron, one column per input."""
    plt = pyplot()
    if plt is None:
        return None
    out_features, in_features = mask.shape
    fig, ax = plt.subplots(figsize=(min(12, 2 + in_features / 40), 2 + out_features / 40))
    ax.imshow(mask, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_xlabel(f"{inputs} ({in_features})")
    ax.set_ylabel(f"output neuron ({out_features})")
    kept = int(mask.sum())
    ax.set_title(
        title
        or f"{name}'s mask: {kept:,} of {mask.size:,} weights kept "
        f"({kept / mask.size:.1%}); black = kept, white = pruned"
    )
    return save_figure(fig, path)


def activations(model: Sequential, image: np.ndarray, dataset: Dataset = MNIST) -> dict:
    """Run one uint8 image (28, 28) through the model, keeping every layer's output:
    -> {"input": (1, 1, 28, 28), "<layer>": its output with a batch of 1}."""
    x = to_input(image[None], dataset)
    outputs = {"input": x}
    for name, layer in model.layers.items():
        x = layer.forward(x)
        outputs[name] = x
    return outputs


def feature_maps(
    model: Sequential,
    image: np.ndarray,
    label: int,
    path: Path,
    dataset: Dataset = MNIST,
    title: str = "",
) -> Path | None:
    """One image through the network: the input, the maps after each conv block (after its
    pooling and ReLU), and the predicted probabilities of the classes."""
    plt = pyplot()
    if plt is None:
        return None
    outputs = activations(model, image, dataset)
    maps = [
        (name, out[0])
        for name, out in outputs.items()
        if out.ndim == 4 and name != "input" and _last_of_block(model, name)
    ]
    logits = outputs[list(model.layers)[-1]][0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    columns = max(8, *(min(len(m), 8) for _, m in maps))
    map_rows = [-(-len(m) // columns) for _, m in maps]
    fig = plt.figure(figsize=(1.3 * columns, 2.6 + 1.45 * sum(map_rows)))
    heights = [1.9] + [1] * sum(map_rows)
    grid = fig.add_gridspec(1 + sum(map_rows), columns, hspace=0.8, height_ratios=heights)
    _draw_prediction(fig, grid, image, label, probs, dataset)
    row = 1
    for (name, m), n_rows in zip(maps, map_rows):
        _draw_maps(fig, grid, row, columns, m, _block(model, name))
        row += n_rows
    fig.suptitle(
        title
        or "one image through the network: feature maps after each conv block "
        "(bright = large activation)"
    )
    return save_figure(fig, path)


def _draw_prediction(
    fig, grid, image: np.ndarray, label: int, probs: np.ndarray, dataset: Dataset
) -> None:
    """The grid's top row: the input image (28, 28) and a bar chart of the probabilities
    (classes,), the true class in red."""
    ax = fig.add_subplot(grid[0, 0:2])
    ax.imshow(image, cmap="gray_r")
    ax.set_title(f"input: {dataset.classes[label]}", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(grid[0, 3:])
    colors = ["C3" if i == label else "C0" for i in range(len(probs))]
    ax.bar(range(len(probs)), 100 * probs, color=colors)
    long_names = len(max(dataset.classes, key=len)) > 2
    ax.set_xticks(range(len(probs)), dataset.classes, fontsize=7, rotation=30 if long_names else 0)
    ax.set_ylabel("probability (%)", fontsize=8)
    predicted = dataset.classes[int(probs.argmax())]
    ax.set_title(
        f"prediction: {predicted} ({100 * probs.max():.1f}%); red = true class", fontsize=9
    )


def _draw_maps(fig, grid, row: int, columns: int, maps: np.ndarray, block: str) -> None:
    """One block's feature maps (C, H, W), `columns` to a row of the grid from `row` on; the
    first of each row labelled with the block's layers."""
    for i, channel in enumerate(maps):
        ax = fig.add_subplot(grid[row + i // columns, i % columns])
        ax.imshow(channel, cmap="viridis")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"map {i}", fontsize=7)
        if i % columns == 0:
            ax.set_ylabel(f"{block}\n{len(maps)} x {maps.shape[1]}x{maps.shape[2]}", fontsize=8)


def _last_of_block(model: Sequential, name: str) -> bool:
    """Is `name` the last 4-d layer before the next conv (or the flatten)? Its output is the
    block's feature maps, the ones worth showing."""
    names = list(model.layers)
    following = names[names.index(name) + 1] if name != names[-1] else None
    return following is None or following.startswith(("conv", "flatten"))


def _block(model: Sequential, name: str) -> str:
    """The layers from the last conv up to `name`: "conv1, pool1, relu1"."""
    names = list(model.layers)[: list(model.layers).index(name) + 1]
    start = max(i for i, n in enumerate(names) if n.startswith("conv"))
    return ", ".join(names[start:])
