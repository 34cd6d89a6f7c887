"""Plots of pruning results, drawn with matplotlib if it is installed.

matplotlib is an optional extra (`pip install -e '.[plots]'`): it is imported inside each
function, so without it every command still runs and writes its tables and JSON. Each
function writes one PNG atomically and returns its path, or returns None and says why not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyprune.data.datasets import DATASETS
from tinyprune.files import atomic_write

HOW_TO_GET_PLOTS = "pip install -e '.[plots]'"


def pyplot():
    """matplotlib.pyplot drawing to files (no window), or None if matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        print(f"plots skipped: matplotlib is not installed; to get them: {HOW_TO_GET_PLOTS}")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write the figure as PNG (or what path's suffix says) atomically, then close it; -> path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_write(path) as tmp:
            # The temporary name ends in .tmp: tell savefig the format the real name says.
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip("."))
    finally:
        plt.close(fig)  # pyplot holds on to every figure until it is closed, failed or not
    print(f"plot written: {path}")
    return path


def weight_histograms(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray], path: Path, title: str = ""
) -> Path | None:
    """One panel per layer: weights before pruning, and the non-zero weights after."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(before), figsize=(3.2 * len(before), 2.8), squeeze=False)
    for ax, (name, w) in zip(axes[0], before.items()):
        kept = after[name][after[name] != 0]
        bins = np.linspace(w.min(), w.max(), 61)
        ax.hist(w.ravel(), bins=bins, color="0.7", label="before")
        ax.hist(kept.ravel(), bins=bins, color="C0", label="after (non-zero)")
        ax.set_title(
            f"{name.removesuffix('.weight')}: {kept.size:,} of {w.size:,} kept", fontsize=9
        )
        ax.set_yscale("log")
        ax.set_xlabel("weight")
    axes[0][0].set_ylabel("count")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, y=1.06)  # above the panels' own titles
    return save_figure(fig, path)


def _accuracy_plot(
    lines: dict[str, list[dict]], dense_accuracy: float, xlabel: str, title: str, path: Path
) -> Path | None:
    """Test accuracy (%) against sparsity (%), a line a key of `lines` (each a list of
    {"sparsity", "test_accuracy"}), and the dense model's accuracy dotted across."""
    plt = pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in lines.items():  # error bars: one std over seeds, where there are some
        ax.errorbar(
            [100 * p["sparsity"] for p in points],
            [100 * p["test_accuracy"] for p in points],
            yerr=[100 * p.get("std", 0.0) for p in points],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.axhline(100 * dense_accuracy, color="0.5", linestyle=":", label="dense")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def on_dataset(result: dict) -> str:
    """ " on Fashion-MNIST" for a sweep or sensitivity result of a data set other than MNIST."""
    key = result.get("dense", {}).get("dataset", "mnist")
    return "" if key == "mnist" else f" on {DATASETS[key].title}"


def sensitivity_plot(result: dict, path: Path) -> Path | None:
    """Test accuracy against the sparsity of one layer, the others unpruned; a line a layer."""
    return _accuracy_plot(
        result["layers"],
        result["dense_accuracy"],
        "weights pruned in that layer alone (%, no fine-tuning)",
        f"{result['model']}{on_dataset(result)}: sensitivity of each layer to pruning",
        path,
    )


def sweep_plot(result: dict, path: Path) -> Path | None:
    """Test accuracy after fine-tuning against sparsity; a line a schedule."""
    return _accuracy_plot(
        result["schedules"],
        result["dense_accuracy"],
        "weights pruned (%)",
        f"{result['model']}{on_dataset(result)}, {result['method']} pruning, "
        f"{result['finetune_epochs']} fine-tuning epochs",
        path,
    )


def sweep_size_plot(result: dict, path: Path) -> Path | None:
    """Test accuracy after fine-tuning against the size of the compressed float32 file
    (pruned.tpz: bitmask + kept values), a line a schedule; the dense model's float32 size
    and accuracy marked. Points without "bytes" (older sweeps) are left out."""
    plt = pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    dense_bytes = None
    for label, points in result["schedules"].items():
        points = [p for p in points if "bytes" in p]
        if points:
            dense_bytes = points[0]["bytes"]["dense_float32"]
            ax.plot(
                [p["bytes"]["compressed"] / 1000 for p in points],
                [100 * p["test_accuracy"] for p in points],
                marker="o",
                label=label,
            )
    if dense_bytes is not None:
        ax.plot(
            [dense_bytes / 1000],
            [100 * result["dense_accuracy"]],
            "s",
            color="0.3",
            label="dense (float32, unpruned)",
        )
    ax.set_xscale("log")
    low, high = ax.get_xlim()  # kB numbers as tick labels, not 10^1, 10^2
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if low <= t <= high]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(low, high)
    ax.set_xlabel("file size (kB, log scale; float32 values + 1-bit mask)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"{result['model']}{on_dataset(result)}: accuracy against file size "
        f"({result['method']} pruning)"
    )
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


def lottery_plot(rows: list[dict], path: Path, title: str = "") -> Path | None:
    """Two panels against the weights remaining (log scale, falling to the right): the
    early-stopping iteration, and test accuracy there; a line per kind (rewind, reinit), with
    error bars of one standard deviation over seeds. rows: lottery.summary()."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    dense = [r for r in rows if r["round"] == 0]
    min_remaining = min(r["remaining"] for r in rows)
    panels = (  # (key of the rows, scale, the axis's label), a panel each
        ("early_stop_iteration", 1, "early-stopping iteration\n(min. validation loss)"),
        ("early_stop_test_accuracy", 100, "test accuracy at early stop (%)"),
    )
    for kind, label in (("rewind", "rewound to init (ticket)"), ("reinit", "random reinit")):
        pruned = [r for r in rows if r["kind"] == kind and r["round"] > 0]
        if not pruned:
            continue
        line = dense + sorted(pruned, key=lambda r: r["round"])
        x = [100 * r["remaining"] for r in line]
        for ax, (key, scale, _) in zip(axes, panels):
            ax.errorbar(
                x,
                [scale * r[key]["mean"] for r in line],
                yerr=[scale * r[key]["std"] for r in line],
                marker="o",
                markersize=3,
                capsize=3,
                label=label,
            )
    for ax, (key, scale, ylabel) in zip(axes, panels):
        if dense:
            ax.axhline(scale * dense[0][key]["mean"], color="0.5", linestyle=":", label="dense")
        ax.set_xscale("log")
        ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5) if t >= 100 * min_remaining / 1.5]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xticks([], minor=True)  # no 9x10^1 labels between the ones above
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[1].legend()
    fig.suptitle(title)
    return save_figure(fig, path)
